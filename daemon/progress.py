"""Progress of long work: a bar on a terminal, log lines (and systemd STATUS=) elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
    """Logs where it stands at most every `interval` seconds; used by the daemon.

    `on_progress(description, done, total)` hears every step (the dashboard's live view);
    it must be cheap."""

    def __init__(
        self,
        interval: float = 10.0,
        on_status: Any = None,
        on_progress: Callable[[str, int, int | None], None] | None = None,
    ) -> None:
        self.interval = interval
        self.on_status = on_status  # e.g. a systemd STATUS= sender
        self.on_progress = on_progress
        self.log = get_logger("genred.progress")
        self.done = 0
        self.total: int | None = None
        self.description = ""
        self._last = 0.0

    def start(self, description: str, total: int | None = None) -> None:
        self.description, self.total, self.done = description, total, 0
        self._last = time.monotonic()
        self._report()
        if self.on_progress:
            self.on_progress(description, 0, total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.on_progress:
            self.on_progress(self.description, self.done, self.total)
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


@dataclass(frozen=True)
class JobProgress:
    """Where one running job stands, as the dashboard shows it."""

    job: str
    trigger: str
    run_id: int | None
    started_at: float  # time.time()
    step: str = ""  # the stage's current description ("writeback: reading current values")
    done: int = 0
    total: int | None = None


class LiveProgress:
    """The progress of every job running in the daemon right now; thread-safe.

    The worker reports into it (the same progress the log and systemd's STATUS= get); the
    dashboard reads `snapshot()` and waits for `version` to change."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobProgress] = {}
        self._lock = threading.Lock()
        self.version = 0

    def begin(self, job: str, trigger: str) -> None:
        with self._lock:
            self._jobs[job] = JobProgress(job, trigger, None, time.time())
            self.version += 1

    def recorded(self, job: str, run_id: int) -> None:
        with self._lock:
            if job in self._jobs:
                self._jobs[job] = replace(self._jobs[job], run_id=run_id)
                self.version += 1

    def update(self, job: str, step: str, done: int, total: int | None) -> None:
        with self._lock:
            current = self._jobs.get(job)
            if current is not None:
                self._jobs[job] = replace(current, step=step, done=done, total=total)
                self.version += 1

    def end(self, job: str) -> None:
        with self._lock:
            if self._jobs.pop(job, None) is not None:
                self.version += 1

    def snapshot(self) -> tuple[int, list[JobProgress]]:
        with self._lock:
            return self.version, sorted(self._jobs.values(), key=lambda j: j.started_at)


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
