"""Files genred replaced itself (a writeback into tags), by path, with their stat after it.

The folder watcher asks `ours` before it hands a settled file to the sync: a file whose
size and mtime are still exactly what genred's write left is genred's own change, not a
new one. Kept in the store so it holds across processes (`genred writeback` run by hand
while the daemon watches); rows older than KEEP are dropped as new ones come.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from ..records import WrittenFile
from . import Store

KEEP = timedelta(hours=6)  # far longer than any watcher settle time


def record(conn: sqlite3.Connection, files: Iterable[WrittenFile]) -> None:
    """Note `files` (inside the caller's transaction) and forget the stale ones."""
    now = datetime.now(UTC)
    rows = [
        (path, f.size, f.mtime_ns, now.isoformat(timespec="microseconds"))
        for f in files
        for path in dict.fromkeys(f.paths)
    ]
    if not rows:
        return
    conn.executemany(
        "INSERT INTO file_writes (path, size, mtime_ns, written_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
        "written_at = excluded.written_at",
        rows,
    )
    conn.execute(
        "DELETE FROM file_writes WHERE written_at < ?",
        ((now - KEEP).isoformat(timespec="microseconds"),),
    )


def ours(store: Store, stats: Mapping[str, tuple[int, int]]) -> set[str]:
    """Of these paths and their current (size, mtime_ns), those genred's last write of that
    path left exactly so."""
    found: set[str] = set()
    items = list(stats.items())
    for start in range(0, len(items), 500):
        chunk = dict(items[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            f"SELECT path, size, mtime_ns FROM file_writes WHERE path IN ({marks})", list(chunk)
        )
        found.update(path for path, size, mtime_ns in rows if chunk[path] == (size, mtime_ns))
    return found
