"""Progress of long work: a bar on a terminal, log lines (and systemd STATUS=) elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol

from .logs import get_logger


class Progress(Protocol):
    def start(self, description: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self, summary: str) -> None: ...


class NullProgress:
    """Reports nothing; for tests and nested work."""

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self, summary: str) -> None:
        pass


class LogProgress:
    """Logs where it stands at most every `interval` seconds; used by the daemon."""

    def __init__(self, interval: float = 10.0, on_status: Any = None) -> None:
        self.interval = interval
        self.on_status = on_status  # e.g. a systemd STATUS= sender
        self.log = get_logger("genred.progress")
        self.done = 0
        self.total: int | None = None
        self.description = ""
        self._last = 0.0

    def start(self, description: str, total: int | None = None) -> None:
        self.description, self.total, self.done = description, total, 0
        self._last = time.monotonic()
        self._report()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            self._report()

    def _report(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.description}: {self.done}{of}"
        self.log.info("progress", stage=self.description, done=self.done, total=self.total)
        if self.on_status:
            self.on_status(text)

    def finish(self, summary: str) -> None:
        self.log.info("done", stage=self.description, summary=summary)
        if self.on_status:
            self.on_status(f"{self.description}: {summary}")


class BarProgress:
    """A rich progress bar on stderr; the summary line stays on screen."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.console = Console(stderr=True)
        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task: Any = None

    def start(self, description: str, total: int | None = None) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)
        else:
            self._bar.update(self._task, description=description, total=total, completed=0)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def finish(self, summary: str) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None
        print(summary, flush=True)


class SummaryProgress(NullProgress):
    """No bar (not a terminal): only each step's summary line, on stdout."""

    def finish(self, summary: str) -> None:
        print(summary, flush=True)


def for_terminal() -> Progress:
    """For the CLI: a bar when stderr is a terminal; the summary lines either way."""
    return BarProgress() if sys.stderr.isatty() else SummaryProgress()
