"""The `genred` executable: for `genred run`, a stop signal is a clean stop from the start.

Importing the CLI (click, pydantic, the config models) takes a few hundred milliseconds,
and building the plugins longer; a SIGTERM in that time would end the process by the
signal (exit -15) before the daemon's own handlers are in place. So this module, which
imports nothing heavy, takes SIGTERM and SIGINT first and only notes them;
`genred run` looks at `stop_requested()` once it can stop cleanly, and exits 0. While
it builds its plugins (imports that can take seconds) a stop interrupts that at once
(`stop_interrupts`): nothing is started yet, so there is nothing to stop cleanly.
Other commands keep the default behaviour (Ctrl-C interrupts them at once).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

_requested: str | None = None
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _note(signum: int, _frame: FrameType | None) -> None:
    global _requested
    if _requested is None:
        _requested = signal.Signals(signum).name


class StopRequested(BaseException):
    """A stop signal came while `genred run` was still building itself (see `stop_interrupts`)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _note(signum, frame)
    raise StopRequested(signal.Signals(signum).name)


@contextmanager
def stop_interrupts() -> Iterator[None]:
    """Within the block a stop signal (or one noted before) raises StopRequested."""
    if _requested is not None:
        raise StopRequested(_requested)
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_requested() -> str | None:
    """The stop signal received before the daemon's handlers were installed, if any."""
    return _requested


def subcommand(args: Sequence[str]) -> str | None:
    """The command `args` run (`genred --config X run` → "run"), before click parses them."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> None:
    if subcommand(sys.argv[1:] if argv is None else argv) == "run":
        for signum in STOP_SIGNALS:
            signal.signal(signum, _note)
    from .cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
