"""Where a track's audio file is on this machine.

A source reports paths as it sees them (Plex: the server's paths); a source plugin with
the `local_path` hook (`genred.hookspecs.LocatesFiles`) says where the same file is here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import LocatesFiles
from .records import TrackRecord

if TYPE_CHECKING:
    from .store import Store


def local_audio_path(track: TrackRecord, sources: Mapping[str, Any]) -> Path | None:
    """The local path of `track`'s audio (through its source's `local_path`), or None."""
    if not track.path:
        return None
    source = sources.get(track.source)
    if isinstance(source, LocatesFiles):
        return source.local_path(track)
    return Path(track.path)


def file_fingerprint(path: Path | None) -> str | None:
    """The file's size and modification time, to tell when it changed; None: no such file."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def track_fingerprints(store: Store, sources: Mapping[str, Any]) -> Callable[[str], str | None]:
    """For a per-track item (a track id, as the stages record failures): the fingerprint
    of its file on this machine now (None: no file, or no such track)."""

    def fingerprint(item: str) -> str | None:
        if not item.isdigit():
            return None
        cursor = store.conn.execute("SELECT * FROM tracks WHERE id = ?", (int(item),))
        row = cursor.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cursor.description]
        track = TrackRecord.from_row(dict(zip(names, row, strict=True)))
        return file_fingerprint(local_audio_path(track, sources))

    return fingerprint
