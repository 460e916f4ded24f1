"""Where a track's audio file is on this machine.

A source reports paths as it sees them (Plex: the server's paths); a source plugin with
the `local_path` hook (`genred.hookspecs.LocatesFiles`) says where the same file is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .hookspecs import LocatesFiles
from .records import TrackRecord


def local_audio_path(track: TrackRecord, sources: Mapping[str, Any]) -> Path | None:
    """The local path of `track`'s audio (through its source's `local_path`), or None."""
    if not track.path:
        return None
    source = sources.get(track.source)
    if isinstance(source, LocatesFiles):
        return source.local_path(track)
    return Path(track.path)
