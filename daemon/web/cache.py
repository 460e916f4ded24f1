"""Figures that cost a scan of the library, kept until the data changes.

The overview's aggregates take about a second at 100,000 tracks, so no request computes
them (but the very first): `Refresher`, a thread of the web app, looks every two seconds
whether another connection changed the store and computes them again then, at once when
no job runs, else at most every `busy_every` seconds (a long stage commits all the time).
Library counts are kept per filter until the store changes (page 2 of a search does not
count again).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from genred.logs import get_logger

from .db import Database

log = get_logger("genred.web")
T = TypeVar("T")


class Fresh(Generic[T]):
    """One value computed from the store: `get()` gives the last one computed (computing
    it only the first time); `refresh()` computes it again when the store changed."""

    def __init__(self, db: Database, compute: Callable[[], T]) -> None:
        self.db = db
        self.compute = compute
        self._value: T | None = None
        self._marker: int | None = None
        self.computed_at = 0.0  # time.monotonic()
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        return value if value is not None else self._refresh(self.db.changes())

    @property
    def stale(self) -> bool:
        return self._value is None or self.db.changes() != self._marker

    def refresh(self) -> None:
        marker = self.db.changes()
        if self._value is None or marker != self._marker:
            self._refresh(marker)

    def _refresh(self, marker: int) -> T:
        with self._lock:  # one computation at a time; a waiting caller takes its result
            if self._value is not None and self._marker == marker:
                return self._value
            value = self.compute()
            self._value, self._marker, self.computed_at = value, marker, time.monotonic()
            return value


class Refresher(Generic[T]):
    """Keeps a `Fresh` value up to date in a thread of its own until `stop` is set."""

    def __init__(
        self,
        fresh: Fresh[T],
        stop: threading.Event,
        busy: Callable[[], bool] = lambda: False,
        every: float = 2.0,
        busy_every: float = 30.0,
    ) -> None:
        self.fresh, self.stop, self.busy = fresh, stop, busy
        self.every, self.busy_every = every, busy_every
        self._thread = threading.Thread(target=self._run, name="genred-web-stats", daemon=True)

    def start(self) -> Refresher[T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.tick()
            except Exception:  # a store being replaced, a disk error: try again later
                log.exception("computing the dashboard's figures failed")

    def tick(self) -> bool:
        """One look: compute the value again if it is due; whether it was."""
        if not self.fresh.stale:
            return False
        waited = time.monotonic() - self.fresh.computed_at
        if self.busy() and waited < self.busy_every:
            return False
        self.fresh.refresh()
        return True


class Counts:
    """Counts per key (a library filter), valid while the store has not changed."""

    def __init__(self, db: Database, size: int = 64) -> None:
        self.db = db
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, count: Callable[[], int]) -> int:
        marker = self.db.changes()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == marker:
                self._kept.move_to_end(key)
                return kept[1]
        value = count()
        with self._lock:
            self._kept[key] = (marker, value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return value
