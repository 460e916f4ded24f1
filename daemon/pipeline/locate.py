"""Each track's audio file on this machine, or why there is none, for the file stages.

The source's `local_path` hook maps its paths (Plex's `path_map`); a track without a
path, or whose file is not there, gets an AudioFileMissing that says which setting to
look at. Tracks are read from the store TRACK_CHUNK at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import AudioFileMissing
from ..hookspecs import LocatesFiles
from ..paths import local_audio_path
from ..records import FileItem, TrackRecord
from ..store import Store

TRACK_CHUNK = 500  # tracks read from the store at a time


def load_tracks(store: Store, ids: Sequence[int]) -> list[TrackRecord]:
    """The stored tracks of `ids`, by id."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    cursor = store.conn.execute(
        f"SELECT * FROM tracks WHERE id IN ({marks}) ORDER BY id", list(ids)
    )
    names = [d[0] for d in cursor.description]
    return [TrackRecord.from_row(dict(zip(names, row, strict=True))) for row in cursor]


class Locator:
    """Where the tracks' files are: the enabled sources say (`LocatesFiles`)."""

    def __init__(self, store: Store, sources: Mapping[str, Any]) -> None:
        self.store, self.sources = store, sources

    def tracks(self, ids: Sequence[int]) -> Iterator[tuple[TrackRecord, FileItem | Exception]]:
        """Each track of `ids` with its file, or the AudioFileMissing saying why there is none."""
        for start in range(0, len(ids), TRACK_CHUNK):
            for track in load_tracks(self.store, ids[start : start + TRACK_CHUNK]):
                yield track, self.file_of(track)

    def file_of(self, track: TrackRecord) -> FileItem | Exception:
        assert track.id is not None
        path = local_audio_path(track, self.sources)
        if path is None:
            return AudioFileMissing(f"track {track.id} has no file path at its source")
        try:
            found = os.stat(path)
            missing = not path.is_file()
        except OSError:
            missing = True
        if missing:
            hint = ""
            source = self.sources.get(track.source)
            if isinstance(source, LocatesFiles) and str(path) == track.path:
                hint = (
                    f" (if that is {track.source}'s path, map it to this machine with "
                    f"{source.path_setting})"
                )
            return AudioFileMissing(f"{path}: no such file on this machine{hint}")
        return FileItem(track.id, str(path), found.st_size, found.st_mtime)
