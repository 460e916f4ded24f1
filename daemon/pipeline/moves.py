"""Moved files keep their track: the store id, and with it every prediction, decision and
override, follows a file to its new path instead of being removed and added anew.

Two ways a move is learnt: the folder watcher sees the rename (`move`), or a scan finds a
track gone from one place and the same track new in another (`adopt_offline_moves`, for
files moved while the daemon was down). Both keep the older row, which is the one the
derived data hangs on. Neither bumps `changed_at`: the file is the same, only its place
changed, so nothing downstream has to be redone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..logs import get_logger
from ..records import TRACK_COLUMNS
from ..store import Store

log = get_logger("genred.moves")

IDS = "SELECT value FROM json_each(?)"
MOVED_COLUMNS = tuple(c for c in TRACK_COLUMNS if c != "source")  # what a new row brings
# What must agree, besides the place, for an adopted move to leave the track unchanged.
SAME_TRACK = tuple(c for c in MOVED_COLUMNS if c not in ("source_id", "path", "source_updated_at"))

MatchKey = tuple[Any, ...]


def move(store: Store, source_name: str, old_path: str, new_path: str) -> int:
    """Give the tracks at or under `old_path` (a file or a directory) the new location.

    A track's `source_id` (and `path`) equal to `old_path`, or under `old_path + "/"`, is
    rewritten to the same place under `new_path`; the store id stays. A row already stored
    at a new location (a scan saw the new file first) is deleted, with what hangs on it, so
    the older identity wins. A moved track marked removed is restored. Returns how many moved.
    """
    old_path, new_path = old_path.rstrip("/") or "/", new_path.rstrip("/") or "/"
    if old_path == new_path:
        return 0
    with store.transaction() as conn:
        moving = [
            (track_id, sid, path, _relocate(sid, old_path, new_path))
            for track_id, sid, path in _at_or_under(conn, source_name, old_path)
        ]
        if not moving:
            return 0
        moving_ids = {m[0] for m in moving}
        taken = [
            track_id
            for (track_id,) in conn.execute(
                f"SELECT id FROM tracks WHERE source = ? AND source_id IN ({IDS})",
                (source_name, json.dumps([m[3] for m in moving])),
            )
            if track_id not in moving_ids
        ]
        _delete_tracks(conn, taken)
        conn.executemany(
            "UPDATE tracks SET source_id = ?, path = ?, removed = 0, removed_at = NULL "
            "WHERE id = ?",
            [
                (new_sid, _relocate(path, old_path, new_path) or path, track_id)
                for track_id, _, path, new_sid in moving
            ],
        )
    log.info(
        "tracks moved",
        source=source_name,
        old=old_path,
        new=new_path,
        count=len(moving),
        replaced=len(taken),
    )
    return len(moving)


@dataclass(frozen=True)
class OfflineMove:
    """A track found gone at `old_source_id` and new at `new_source_id` in the same run."""

    track_id: int  # the older row: keeps its id, takes the new location
    replaced_id: int  # the row the run had just added for the new location: deleted
    old_source_id: str
    new_source_id: str
    content_changed: bool  # tags differ too (changed_at was bumped)


def match_key(
    artist: str | None,
    album: str | None,
    title: str | None,
    track_no: int | None,
    disc_no: int | None,
    duration_ms: int | None,
) -> MatchKey | None:
    """What must be equal for two rows to be one track moved; None when too little is known."""
    if not title or not duration_ms:
        return None
    return (artist, album, title, track_no, disc_no, round(duration_ms / 1000))


def adopt_offline_moves(
    store: Store, source_name: str, gone: Sequence[str], added_since: str, now: str
) -> list[OfflineMove]:
    """Pair tracks confirmed `gone` with tracks first seen since `added_since`, and move.

    A pair needs the same `match_key`, and the key must be unique among the gone tracks and
    among the added ones (two copies of one track are never guessed apart). The gone row
    takes the added row's source id and content; the added row is deleted.
    """
    if not gone:
        return []
    old = _keyed(
        store.conn.execute(
            f"SELECT id, source_id, {_KEY_SQL} FROM tracks "
            f"WHERE source = ? AND removed = 0 AND source_id IN ({IDS})",
            (source_name, json.dumps(list(gone))),
        )
    )
    if not old:
        return []
    new = _keyed(
        store.conn.execute(
            f"SELECT id, source_id, {_KEY_SQL} FROM tracks "
            f"WHERE source = ? AND removed = 0 AND first_seen_at >= ? "
            f"AND source_id NOT IN ({IDS})",
            (source_name, added_since, json.dumps(list(gone))),
        )
    )
    pairs = [(old[key], new[key]) for key in old.keys() & new.keys()]
    if not pairs:
        return []
    found: list[OfflineMove] = []
    cols = ", ".join(MOVED_COLUMNS)
    with store.transaction() as conn:
        for (track_id, old_sid), (new_id, new_sid) in sorted(pairs):
            values = conn.execute(
                f"SELECT {cols}, synced_at FROM tracks WHERE id = ?", (new_id,)
            ).fetchone()
            before = conn.execute(
                f"SELECT {', '.join(SAME_TRACK)} FROM tracks WHERE id = ?", (track_id,)
            ).fetchone()
            row = dict(zip((*MOVED_COLUMNS, "synced_at"), values, strict=True))
            changed = tuple(row[c] for c in SAME_TRACK) != tuple(before)
            _delete_tracks(conn, [new_id])
            assignments = ", ".join(f"{c} = :{c}" for c in (*MOVED_COLUMNS, "synced_at"))
            conn.execute(
                f"UPDATE tracks SET {assignments}, removed = 0, removed_at = NULL"
                f"{', changed_at = :now' if changed else ''} WHERE id = :track_id",
                {**row, "now": now, "track_id": track_id},
            )
            found.append(OfflineMove(track_id, new_id, old_sid, new_sid, changed))
    log.info("moved tracks found by their tags", source=source_name, count=len(found))
    return found


# --------------------------------------------------------------------------- helpers

_KEY_SQL = "artist, album, title, track_no, disc_no, duration_ms"


def _keyed(rows: Iterable[tuple[Any, ...]]) -> dict[MatchKey, tuple[int, str]]:
    """(id, source_id) by match key, for the keys held by exactly one row."""
    by_key: dict[MatchKey, tuple[int, str]] = {}
    counts: Counter[MatchKey] = Counter()
    for track_id, sid, *fields in rows:
        key = match_key(*fields)
        if key is not None:
            counts[key] += 1
            by_key[key] = (track_id, sid)
    return {key: row for key, row in by_key.items() if counts[key] == 1}


def _at_or_under(conn: Any, source: str, path: str) -> list[tuple[int, str, str | None]]:
    """Tracks whose source id is `path` or under it (a range over the unique index)."""
    prefix = path if path.endswith("/") else path + "/"
    return conn.execute(
        "SELECT id, source_id, path FROM tracks WHERE source = ? "
        "AND (source_id = ? OR (source_id >= ? AND source_id < ?))",
        (source, path, prefix, prefix[:-1] + "0"),  # "0" sorts right after "/"
    ).fetchall()


def _relocate(value: str | None, old: str, new: str) -> str | None:
    """`value` with its `old` prefix replaced by `new`; None when it is not at/under `old`."""
    if value is None:
        return None
    if value == old:
        return new
    prefix = old if old.endswith("/") else old + "/"
    if value.startswith(prefix):
        return new.rstrip("/") + "/" + value[len(prefix) :]
    return None


def _delete_tracks(conn: Any, track_ids: Sequence[int]) -> None:
    """Delete tracks; features, predictions, decisions and overrides go by ON DELETE CASCADE.

    Failures keyed by the bare track id are deleted too: SQLite may hand a deleted highest
    id to the next insert, which must not inherit them.
    """
    if not track_ids:
        return
    ids = json.dumps([str(i) for i in track_ids])
    conn.execute(f"DELETE FROM failures WHERE item IN ({IDS})", (ids,))
    conn.execute(f"DELETE FROM tracks WHERE id IN ({IDS})", (json.dumps(list(track_ids)),))
