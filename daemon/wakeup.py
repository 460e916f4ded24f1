"""Waking the daemon's main thread, from another thread or by a signal to any thread.

Python runs signal handlers in the main thread, but the kernel hands a process signal to
any thread that does not block it. Reached elsewhere, the signal leaves a main thread
blocked in a lock wait (`threading.Event.wait`) asleep until its timeout runs out: a
SIGTERM then took up to the main loop's 60 s. With `signal.set_wakeup_fd`, the C-level
handler writes to a pipe that the main loop waits on with `select`, so it wakes whichever
thread the signal reached, and Python runs the handler at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal


class Wakeup:
    """A pipe the main loop waits on; `set()` from any thread, or a signal, wakes it."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._for_signals = False

    def take_signals(self) -> None:
        """Make every signal wake the waiter (call from the main thread)."""
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._for_signals = True

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> bool:
        """Wait until woken or `timeout` seconds; True when woken. Drains the pipe."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        return True

    def close(self) -> None:
        if self._for_signals:
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.set_wakeup_fd(-1)
            self._for_signals = False
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
