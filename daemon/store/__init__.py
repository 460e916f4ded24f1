"""SQLite store: one file in the data dir, WAL, foreign keys, versioned schema.

`Store` owns the connection, transactions and migrations. Queries live in small
modules beside it (`tracks`, `runs`, `failures`, `state`), each a set of functions
taking a `Store`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from . import schema

_SAVEPOINTS = itertools.count()


class StoreError(Exception):
    """The database cannot be used as it is (newer schema, corrupt, unwritable)."""


def utcnow() -> str:
    """Timestamps are ISO 8601 UTC text, so they sort and compare as strings."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Store:
    """An open genred database."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = 30_000) -> Store:
        """Open (creating if needed) and migrate the database at `path`."""
        path = Path(path)
        fresh = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from None
        if fresh:
            os.chmod(path, 0o600)
        store = cls(conn, path)
        store._configure(busy_timeout_ms)
        store.migrate()
        return store

    @classmethod
    def memory(cls) -> Store:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        store = cls(conn, None)
        store._configure(1000)
        store.migrate()
        return store

    def _configure(self, busy_timeout_ms: int) -> None:
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if self.path is not None:
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable SQLite database: {exc}") from None

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, target: int | None = None) -> int:
        """Apply forward migrations up to `target` (default: the latest); returns how many ran."""
        latest = len(schema.MIGRATIONS)
        target = latest if target is None else target
        current = self.version
        if current > latest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this genred "
                f"understands ({latest}); upgrade genred or restore a backup"
            )
        ran = 0
        for number in range(current + 1, target + 1):
            with self.transaction():
                schema.MIGRATIONS[number - 1](self.conn)
                self.conn.execute(f"PRAGMA user_version = {number}")
            ran += 1
        return ran

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it commits, or none of it.

        Nested use becomes a savepoint, so a helper that opens its own transaction
        composes with a caller's batch.
        """
        if self.conn.in_transaction:
            name = f"nested_{next(_SAVEPOINTS)}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            self.conn.execute(f"RELEASE {name}")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def table_names(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [row[0] for row in rows]

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
