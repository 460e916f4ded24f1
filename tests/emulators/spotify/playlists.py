"""Playlist item operations with the semantics and limits Spotify documents.

- Add (`POST /playlists/{id}/items`): at most 100 URIs a request; `position` (query or body)
  is a zero-based insert index, default append; items keep the order they were sent in.
- Replace (`PUT …/items` with `uris`): the playlist becomes exactly these (≤ 100; `[]`
  clears it). Reorder (`PUT …/items` with `range_start`, `insert_before`, `range_length`
  default 1): the range moves to before `insert_before`, an index into the playlist as it
  was before the move. The two are exclusive in one request.
- Remove (`DELETE …/items`, body `{"items": [{"uri"[, "positions"]}]}`, ≤ 100 objects):
  every occurrence of each URI, or only those at `positions` (indexes before the removal).
- A playlist holds at most 10,000 items (403 beyond, from the reference's add-items text).
- Every accepted change makes a new snapshot_id; a request that fails changes nothing.

Error messages: "Too many ids requested" (101 URIs), "Invalid base62 id" (an album URI or a
malformed id), "No uris provided" (a body without `uris`/`items`, the old `tracks` key of
DELETE, or a bare JSON array) are the real API's, from a public probe of the live API in
Development Mode (2026) and spotipy#1075; the others are the emulator's own wording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .ids import ID_LENGTH, is_base62, parse_uri
from .model import Playlist, PlaylistEntry
from .replies import ApiError

MAX_URIS = 100
MAX_ITEMS = 10_000


def track_ids_from_uris(uris: Sequence[Any], known: Callable[[str], bool]) -> list[str]:
    """Spotify track URIs → ids; 400 for anything else, or a track not (or no longer) on it."""
    if not uris:
        raise ApiError(400, "No uris provided")
    if len(uris) > MAX_URIS:
        raise ApiError(400, "Too many ids requested")
    ids = []
    for value in uris:
        parsed = parse_uri(value) if isinstance(value, str) else None
        if parsed is None or parsed[0] != "track":
            if parsed is not None and parsed[0] == "episode":
                raise ApiError(400, "Payload contains a non-existing ID")
            raise ApiError(400, "Invalid base62 id")
        ident = parsed[1]
        if not is_base62(ident) or len(ident) != ID_LENGTH:
            raise ApiError(400, "Invalid base62 id")
        if not known(ident):
            raise ApiError(400, "Payload contains a non-existing ID")
        ids.append(ident)
    return ids


def _position(value: Any, length: int) -> int:
    if value is None:
        return length
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ApiError(400, "Invalid position") from None
    if not 0 <= value <= length:
        raise ApiError(400, "Index out of bounds")
    return value


def add(
    playlist: Playlist, track_ids: list[str], position: Any, user_id: str, added_at: str
) -> str:
    if len(playlist.entries) + len(track_ids) > MAX_ITEMS:
        raise ApiError(403, "Playlist size limit reached")
    at = _position(position, len(playlist.entries))
    new = [PlaylistEntry(t, added_at, user_id) for t in track_ids]
    playlist.entries[at:at] = new
    return playlist.bump()


def replace(playlist: Playlist, track_ids: list[str], user_id: str, added_at: str) -> str:
    if len(track_ids) > MAX_URIS:
        raise ApiError(400, "Too many ids requested")
    playlist.entries = [PlaylistEntry(t, added_at, user_id) for t in track_ids]
    return playlist.bump()


def reorder(playlist: Playlist, body: dict[str, Any]) -> str:
    length = len(playlist.entries)
    try:
        start = int(body["range_start"])
        before = int(body["insert_before"])
        count = int(body.get("range_length", 1))
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "Missing required field: range_start or insert_before") from None
    if count < 1 or start < 0 or start + count > length or not 0 <= before <= length:
        raise ApiError(400, "Index out of bounds")
    _check_snapshot(playlist, body)
    moved = playlist.entries[start : start + count]
    if start <= before <= start + count:  # moving a range next to itself changes nothing
        return playlist.bump()
    rest = playlist.entries[:start] + playlist.entries[start + count :]
    at = before if before < start else before - count
    playlist.entries = rest[:at] + moved + rest[at:]
    return playlist.bump()


def remove(playlist: Playlist, body: dict[str, Any]) -> str:
    objects = body.get("items")
    if not isinstance(objects, list) or not objects:
        raise ApiError(400, "No uris provided")
    if len(objects) > MAX_URIS:
        raise ApiError(400, "Too many ids requested")
    _check_snapshot(playlist, body)
    drop_all: set[str] = set()
    drop_at: set[int] = set()
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("uri"), str):
            raise ApiError(400, "Invalid track uri")
        ident = track_ids_from_uris([obj["uri"]], lambda _ident: True)[0]
        positions = obj.get("positions")
        if positions is None:
            drop_all.add(ident)
            continue
        for pos in positions:
            if not isinstance(pos, int) or not 0 <= pos < len(playlist.entries):
                raise ApiError(400, "Index out of bounds")
            if playlist.entries[pos].track_id != ident:
                raise ApiError(400, f"Track at position {pos} is not {obj['uri']}")
            drop_at.add(pos)
    playlist.entries = [
        e for i, e in enumerate(playlist.entries) if i not in drop_at and e.track_id not in drop_all
    ]
    return playlist.bump()


def _check_snapshot(playlist: Playlist, body: dict[str, Any]) -> None:
    snapshot = body.get("snapshot_id")
    if snapshot is not None and snapshot not in playlist.snapshots:
        raise ApiError(400, "Invalid snapshot_id")
