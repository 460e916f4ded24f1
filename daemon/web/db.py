"""The web app's connections to the store: a few read-only ones, shared by the request
threads, and a fresh one for each change.

SQLite in WAL mode lets these read while the daemon's stages write. `changes()` is
`PRAGMA data_version` of a connection of its own: it moves whenever any other connection
(a stage, a CLI command, the app's own writes) commits, which is what the caches key on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from genred.store import Store

READERS = 4  # each holds SQLite's page cache (2 MB), so the idle daemon stays small


class Database:
    def __init__(self, path: Path, readers: int = READERS) -> None:
        self.path = path
        self._free: queue.LifoQueue[Store] = queue.LifoQueue()
        self._made = 0
        self._limit = readers
        self._lock = threading.Lock()
        self._marker: Store | None = None
        self._marker_lock = threading.Lock()

    def _open_reader(self) -> Store:
        store = Store.open(self.path)
        store.conn.execute("PRAGMA query_only = 1")
        return store

    @contextlib.contextmanager
    def reading(self) -> Iterator[Store]:
        """A read-only store for the block (waits when all of them are in use)."""
        store: Store | None = None
        try:
            store = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._limit
                if make:
                    self._made += 1
            if make:
                try:
                    store = self._open_reader()
                except BaseException:
                    with self._lock:
                        self._made -= 1
                    raise
            else:
                store = self._free.get(timeout=30)
        try:
            yield store
        finally:
            if store.conn.in_transaction:  # a read cut short mid-statement
                store.conn.rollback()
            self._free.put(store)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Store]:
        """A store of its own for one change (committed by its transactions)."""
        with Store.open(self.path) as store:
            yield store

    def changes(self) -> int:
        """A number that moves whenever another connection committed a change."""
        with self._marker_lock:
            if self._marker is None:
                self._marker = Store.open(self.path)
            return int(self._marker.conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                break
        with self._marker_lock:
            if self._marker is not None:
                self._marker.close()
                self._marker = None
