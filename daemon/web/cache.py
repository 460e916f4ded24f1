"""Figures that cost a scan of the library, kept until the data changes.

The overview's aggregates take about a second at 100,000 tracks, so a request never
computes them while an older value exists: when the store changed (and the value is at
least `min_age` old, so a running stage does not cause a recompute per request) the old
value is served and a thread computes the new one. Library counts are kept per filter
the same way (page 2 of a search does not count again).
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
    """One value computed from the store, recomputed in the background when it changed."""

    def __init__(self, db: Database, compute: Callable[[], T], min_age: float = 5.0) -> None:
        self.db = db
        self.compute = compute
        self.min_age = min_age
        self._value: T | None = None
        self._marker: int | None = None
        self._at = 0.0
        self._lock = threading.Lock()
        self._computing = threading.Lock()
        self._refreshing = False

    def get(self) -> T:
        marker = self.db.changes()
        with self._lock:
            value, stale = self._value, marker != self._marker
            due = stale and time.monotonic() - self._at >= self.min_age and not self._refreshing
            if value is not None and due:
                self._refreshing = True
        if value is None:
            return self._refresh(marker)
        if due:
            threading.Thread(
                target=self._refresh, args=(marker,), name="genred-web-stats", daemon=True
            ).start()
        return value

    def _refresh(self, marker: int) -> T:
        try:
            with self._computing:
                with self._lock:
                    if self._value is not None and self._marker == marker:
                        return self._value
                value = self.compute()
                with self._lock:
                    self._value, self._marker, self._at = value, marker, time.monotonic()
                return value
        except Exception:
            log.exception("computing the dashboard's figures failed")
            raise
        finally:
            with self._lock:
                self._refreshing = False

    def warm(self) -> None:
        """Compute it now, in a thread, so the first page view finds it."""
        threading.Thread(target=self.get, name="genred-web-stats", daemon=True).start()


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
