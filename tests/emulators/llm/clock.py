"""Clocks for the rate limits: a fake one tests move by hand, a sped-up one for demos.

A clock is any callable returning seconds (like `time.time`). The emulator reads it for
every limit, `created` and the request log, and never sleeps on it.
"""

from __future__ import annotations

import threading
import time

# 2023-11-14T22:13:20Z: a round number, well after the recorded `created` values begin.
FAKE_EPOCH = 1_700_000_000.0


class FakeClock:
    """A clock that stands still until `advance()` moves it (thread-safe)."""

    def __init__(self, start: float = FAKE_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to `now` (not before the current time)."""
        with self._lock:
            if now < self._now:
                raise ValueError(f"a clock does not go back ({now} < {self._now})")
            self._now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self():.3f})"


class ScaledClock:
    """Real time sped up `speed` times from `start` (`speed=60`: a minute per second)."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._t0) * self.speed
