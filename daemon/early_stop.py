"""A stop signal that comes before `genred run` can stop cleanly: noted, then honoured.

`genred.launch` (the executable) installs `note` for SIGTERM and SIGINT before anything
heavy is imported; `genred run` asks `stop_requested()` once it can stop cleanly, and
wraps the building of its plugins (imports that can take seconds) in `stop_interrupts`,
where a stop cuts it short at once: nothing is started yet, so nothing needs stopping.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: str | None = None


class StopRequested(BaseException):
    """A stop signal came while `genred run` was still building itself."""


def note(signum: int, _frame: FrameType | None) -> None:
    """Signal handler: remember the first stop signal."""
    global _requested
    if _requested is None:
        _requested = signal.Signals(signum).name


def install() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, note)


def stop_requested() -> str | None:
    """The stop signal received before the daemon's own handlers were installed, if any."""
    return _requested


def _interrupt(signum: int, frame: FrameType | None) -> None:
    note(signum, frame)
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
