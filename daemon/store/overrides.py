"""Manual overrides: a person's genres, moods or labels for a track, which always win.

They come from `genred override`, the dashboard's forms and review queue, the API, and
hand edits noticed in Plex (`plex-edit`). Setting one makes the track pending for the
decide stage (its `created_at` is newer than the decision); clearing one drops the
track's decision so decide makes it again from the predictions. Genre overrides are the
most trusted training labels (`genred.training.labels`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import Store, utcnow

FIELDS = ("genre", "mood", "label")
ORIGINS = ("cli", "web", "api", "plex-edit")
MAX_VALUES = 20
MAX_VALUE_LENGTH = 100


class OverrideError(ValueError):
    """Values an override cannot take; the message says which and why."""


@dataclass(frozen=True)
class Override:
    track_id: int
    field: str
    values: tuple[str, ...]
    origin: str
    created_by: str | None
    created_at: str


def clean_values(values: Iterable[str], field: str) -> tuple[str, ...]:
    """Stripped, without empty or repeated (case-insensitively) values; OverrideError when
    one is too long or there are too many."""
    if field not in FIELDS:
        raise OverrideError(f"unknown field {field!r} (one of {', '.join(FIELDS)})")
    out: dict[str, str] = {}
    for raw in values:
        value = " ".join(str(raw).split())
        if not value:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise OverrideError(
                f"{field} {value[:30]!r}… is longer than {MAX_VALUE_LENGTH} characters"
            )
        if any(ord(c) < 32 for c in value):
            raise OverrideError(f"{field} {value[:30]!r} holds control characters")
        out.setdefault(value.casefold(), value)
    if len(out) > MAX_VALUES:
        raise OverrideError(f"at most {MAX_VALUES} {field} values per track ({len(out)} given)")
    return tuple(out.values())


def put(
    store: Store,
    track_ids: Sequence[int],
    field: str,
    values: Sequence[str],
    *,
    origin: str,
    who: str | None = None,
) -> int:
    """Set `field` of every track in `track_ids` to `values` (an empty list: "none").

    A hand edit genred noticed in Plex made it keep its hands off the item; a new override
    from a person lifts that, so the override is written. Returns how many were set."""
    if origin not in ORIGINS:
        raise OverrideError(f"unknown origin {origin!r}")
    values = clean_values(values, field)
    now = utcnow()
    encoded = json.dumps(list(values), ensure_ascii=False)
    with store.transaction() as conn:
        for track_id in track_ids:
            if origin != "plex-edit":
                _lift_hands_off(conn, track_id, field)
            conn.execute(
                "INSERT INTO overrides (track_id, field, value, origin, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (track_id, field) DO UPDATE SET "
                "value = excluded.value, origin = excluded.origin, "
                "created_by = excluded.created_by, created_at = excluded.created_at",
                (track_id, field, encoded, origin, who, now),
            )
    return len(track_ids)


def _lift_hands_off(conn: sqlite3.Connection, track_id: int, field: str) -> None:
    """The writebacks row of a hand-edited track: what the person wrote (the `plex-edit`
    override) becomes what genred last wrote, and the hands-off mark goes."""
    row = conn.execute(
        "SELECT value FROM overrides WHERE track_id = ? AND field = ? AND origin = 'plex-edit'",
        (track_id, field),
    ).fetchone()
    conn.execute(
        "UPDATE writebacks SET manual_at = NULL, pending = NULL, written = coalesce(?, written) "
        "WHERE item_kind = 'track' AND field = ? AND manual_at IS NOT NULL AND item_id = "
        "(SELECT source_id FROM tracks WHERE id = ?)",
        (row[0] if row else None, field, track_id),
    )


def clear(store: Store, track_ids: Sequence[int], fields: Sequence[str] = FIELDS) -> int:
    """Drop the overrides of `fields`; the tracks' decisions go too, so the next decide
    makes them again from the predictions. Returns how many overrides were dropped."""
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise OverrideError(f"unknown field {unknown[0]!r} (one of {', '.join(FIELDS)})")
    dropped = 0
    with store.transaction() as conn:
        for track_id in track_ids:
            for field in fields:
                cur = conn.execute(
                    "DELETE FROM overrides WHERE track_id = ? AND field = ?", (track_id, field)
                )
                dropped += cur.rowcount
                if cur.rowcount:
                    conn.execute("DELETE FROM decisions WHERE track_id = ?", (track_id,))
    return dropped


def of_tracks(store: Store, track_ids: Sequence[int]) -> dict[int, dict[str, Override]]:
    """The overrides of these tracks, per track and field."""
    out: dict[int, dict[str, Override]] = {i: {} for i in track_ids}
    ids = list(track_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            "SELECT track_id, field, value, origin, created_by, created_at FROM overrides "
            f"WHERE track_id IN ({marks})",
            chunk,
        )
        for track_id, field, value, origin, who, created in rows:
            out[track_id][field] = Override(
                track_id, field, tuple(json.loads(value)), origin, who, created
            )
    return out


def new_labels(store: Store, since: str | None) -> int:
    """Genre overrides of active tracks made after `since` (None: all of them): the
    training labels a model trained at `since` has not seen."""
    sql = (
        "SELECT COUNT(*) FROM overrides o JOIN tracks t ON t.id = o.track_id "
        "WHERE o.field = 'genre' AND o.value != '[]' AND t.removed = 0"
    )
    params: tuple[str, ...] = ()
    if since is not None:
        sql += " AND o.created_at > ?"
        params = (since,)
    return int(store.conn.execute(sql, params).fetchone()[0])
