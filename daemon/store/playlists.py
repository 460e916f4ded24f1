"""Playlists, their versions, where each is pushed, push records, and target matches.

A playlist has numbered versions; `head` is the current one and each version names the
one it was made from (`parent`), so undo goes back along that chain and every version
stays. A push is a row in `playlist_pushes` with one `playlist_push_chunks` row per
request, each marked sent once it landed: a push cut short leaves a running row that the
next push sees (it re-reads the remote playlist before it plans, so nothing is added
twice). `playlist_matches` caches where a track is at a target ("not there" included).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..records import PlaylistEdit, TrackMatch
from . import Store, utcnow


@dataclass(frozen=True)
class PlaylistRow:
    id: int
    name: str
    prompt: str
    targets: tuple[str, ...]
    head: int | None
    saved: bool
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class VersionRow:
    playlist_id: int
    number: int
    parent: int | None
    reason: str
    intent: dict[str, Any]
    tracks: list[dict[str, Any]]  # {track_id, why, pinned, score}
    banned: list[int]
    report: dict[str, Any]
    llm_requests: int
    created_at: str

    @property
    def track_ids(self) -> list[int]:
        return [int(t["track_id"]) for t in self.tracks]

    @property
    def pinned(self) -> list[int]:
        return [int(t["track_id"]) for t in self.tracks if t.get("pinned")]


@dataclass(frozen=True)
class RemoteRow:
    playlist_id: int
    target: str
    remote_id: str
    items: list[str]
    description: str
    version: int | None
    pushed_at: str | None


@dataclass(frozen=True)
class PushRow:
    id: int
    playlist_id: int
    target: str
    version: int
    remote_id: str | None
    status: str
    started_at: str
    ended_at: str | None
    error: str | None
    chunks: int
    sent: int


_PLAYLIST = "id, name, prompt, targets, head, saved, created_at, updated_at"


def _playlist(row: Sequence[Any]) -> PlaylistRow:
    return PlaylistRow(
        row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], bool(row[5]), row[6], row[7]
    )


def find(store: Store, name: str) -> PlaylistRow | None:
    row = store.conn.execute(
        f"SELECT {_PLAYLIST} FROM playlists WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return _playlist(row) if row else None


def get(store: Store, playlist_id: int) -> PlaylistRow:
    row = store.conn.execute(
        f"SELECT {_PLAYLIST} FROM playlists WHERE id = ?", (playlist_id,)
    ).fetchone()
    if row is None:
        raise KeyError(playlist_id)
    return _playlist(row)


def all_playlists(store: Store) -> list[PlaylistRow]:
    rows = store.conn.execute(f"SELECT {_PLAYLIST} FROM playlists ORDER BY name COLLATE NOCASE")
    return [_playlist(r) for r in rows]


def create(
    store: Store, name: str, prompt: str, targets: Sequence[str], *, saved: bool = False
) -> int:
    now = utcnow()
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO playlists (name, prompt, targets, saved, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, prompt, json.dumps(list(targets)), int(saved), now, now),
        )
    return int(cur.lastrowid or 0)


def update(
    store: Store,
    playlist_id: int,
    *,
    prompt: str | None = None,
    targets: Sequence[str] | None = None,
    saved: bool | None = None,
) -> None:
    sets: list[str] = ["updated_at = ?"]
    params: list[Any] = [utcnow()]
    if prompt is not None:
        sets.append("prompt = ?")
        params.append(prompt)
    if targets is not None:
        sets.append("targets = ?")
        params.append(json.dumps(list(targets)))
    if saved is not None:
        sets.append("saved = ?")
        params.append(int(saved))
    with store.transaction() as conn:
        conn.execute(f"UPDATE playlists SET {', '.join(sets)} WHERE id = ?", [*params, playlist_id])


def delete(store: Store, playlist_id: int) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,))


# --------------------------------------------------------------------------- versions


def _version(row: Sequence[Any]) -> VersionRow:
    return VersionRow(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        json.loads(row[5]),
        [int(i) for i in json.loads(row[6])],
        json.loads(row[7]),
        int(row[8]),
        row[9],
    )


_VERSION = (
    "playlist_id, number, parent, reason, intent, tracks, banned, report, llm_requests, created_at"
)


def add_version(
    store: Store,
    playlist_id: int,
    *,
    parent: int | None,
    reason: str,
    intent: Mapping[str, Any],
    tracks: Sequence[Mapping[str, Any]],
    banned: Iterable[int],
    report: Mapping[str, Any],
    llm_requests: int,
) -> int:
    """Store a new version and make it the head, in one transaction; its number."""
    with store.transaction() as conn:
        number = int(
            conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM playlist_versions WHERE playlist_id = ?",
                (playlist_id,),
            ).fetchone()[0]
        )
        conn.execute(
            f"INSERT INTO playlist_versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                playlist_id,
                number,
                parent,
                reason,
                json.dumps(intent, ensure_ascii=False),
                json.dumps(list(tracks), ensure_ascii=False),
                json.dumps(sorted(set(banned))),
                json.dumps(report, ensure_ascii=False),
                llm_requests,
                utcnow(),
            ),
        )
        conn.execute(
            "UPDATE playlists SET head = ?, updated_at = ? WHERE id = ?",
            (number, utcnow(), playlist_id),
        )
    return number


def version(store: Store, playlist_id: int, number: int) -> VersionRow | None:
    row = store.conn.execute(
        f"SELECT {_VERSION} FROM playlist_versions WHERE playlist_id = ? AND number = ?",
        (playlist_id, number),
    ).fetchone()
    return _version(row) if row else None


def versions(store: Store, playlist_id: int) -> list[VersionRow]:
    rows = store.conn.execute(
        f"SELECT {_VERSION} FROM playlist_versions WHERE playlist_id = ? ORDER BY number",
        (playlist_id,),
    )
    return [_version(r) for r in rows]


def set_head(store: Store, playlist_id: int, number: int) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE playlists SET head = ?, updated_at = ? WHERE id = ?",
            (number, utcnow(), playlist_id),
        )


# --------------------------------------------------------------------------- remotes


def remote(store: Store, playlist_id: int, target: str) -> RemoteRow | None:
    row = store.conn.execute(
        "SELECT playlist_id, target, remote_id, items, description, version, pushed_at "
        "FROM playlist_remotes WHERE playlist_id = ? AND target = ?",
        (playlist_id, target),
    ).fetchone()
    if row is None:
        return None
    return RemoteRow(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])


def remotes(store: Store, playlist_id: int) -> list[RemoteRow]:
    rows = store.conn.execute(
        "SELECT target FROM playlist_remotes WHERE playlist_id = ? ORDER BY target", (playlist_id,)
    )
    found = [remote(store, playlist_id, r[0]) for r in rows]
    return [r for r in found if r is not None]


def set_remote(
    store: Store,
    playlist_id: int,
    target: str,
    remote_id: str,
    *,
    items: Sequence[str] | None,
    description: str | None = None,
    version: int | None = None,
) -> None:
    """Record where the playlist lives at `target`; `items` None: unknown (a push broke off)."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO playlist_remotes (playlist_id, target, remote_id, items, description, "
            "version, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (playlist_id, target) DO UPDATE SET remote_id = excluded.remote_id, "
            "items = excluded.items, description = COALESCE(?, description), "
            "version = excluded.version, pushed_at = excluded.pushed_at",
            (
                playlist_id,
                target,
                remote_id,
                json.dumps(list(items) if items is not None else ["?unknown"]),
                description or "",
                version,
                utcnow(),
                description,
            ),
        )


def drop_remote(store: Store, playlist_id: int, target: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            "DELETE FROM playlist_remotes WHERE playlist_id = ? AND target = ?",
            (playlist_id, target),
        )


# --------------------------------------------------------------------------- pushes


def start_push(
    store: Store,
    playlist_id: int,
    target: str,
    version: int,
    remote_id: str | None,
    edits: Sequence[PlaylistEdit],
) -> int:
    """A running push with its planned edits, all pending, in one transaction."""
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO playlist_pushes (playlist_id, target, version, remote_id, status, "
            "started_at) VALUES (?, ?, ?, ?, 'running', ?)",
            (playlist_id, target, version, remote_id, utcnow()),
        )
        push_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO playlist_push_chunks (push_id, seq, edit, status) "
            "VALUES (?, ?, ?, 'pending')",
            [(push_id, i, json.dumps(e.to_json())) for i, e in enumerate(edits)],
        )
    return push_id


def set_push_remote(store: Store, push_id: int, remote_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE playlist_pushes SET remote_id = ? WHERE id = ?", (remote_id, push_id))


def chunk_sent(store: Store, push_id: int, seq: int) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE playlist_push_chunks SET status = 'sent', sent_at = ? "
            "WHERE push_id = ? AND seq = ?",
            (utcnow(), push_id, seq),
        )


def finish_push(store: Store, push_id: int, status: str, error: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE playlist_pushes SET status = ?, ended_at = ?, error = ? WHERE id = ?",
            (status, utcnow(), error, push_id),
        )


def last_push(store: Store, playlist_id: int, target: str) -> PushRow | None:
    row = store.conn.execute(
        "SELECT p.id, p.playlist_id, p.target, p.version, p.remote_id, p.status, p.started_at,"
        " p.ended_at, p.error, COUNT(c.seq), COALESCE(SUM(c.status = 'sent'), 0) "
        "FROM playlist_pushes p LEFT JOIN playlist_push_chunks c ON c.push_id = p.id "
        "WHERE p.playlist_id = ? AND p.target = ? GROUP BY p.id ORDER BY p.id DESC LIMIT 1",
        (playlist_id, target),
    ).fetchone()
    return PushRow(*row) if row else None


def push_edits(store: Store, push_id: int) -> list[tuple[PlaylistEdit, str]]:
    rows = store.conn.execute(
        "SELECT edit, status FROM playlist_push_chunks WHERE push_id = ? ORDER BY seq", (push_id,)
    )
    return [(PlaylistEdit.from_json(json.loads(e)), s) for e, s in rows]


# --------------------------------------------------------------------------- matches


@dataclass(frozen=True)
class CachedMatch:
    match: TrackMatch
    fingerprint: str
    checked_at: str


def matches(store: Store, target: str, track_ids: Sequence[int]) -> dict[int, CachedMatch]:
    out: dict[int, CachedMatch] = {}
    for start in range(0, len(track_ids), 900):
        chunk = list(track_ids[start : start + 900])
        rows = store.conn.execute(
            "SELECT track_id, item, how, score, note, fingerprint, checked_at "
            "FROM playlist_matches WHERE target = ? AND track_id IN "
            "(SELECT value FROM json_each(?))",
            (target, json.dumps(chunk)),
        )
        for track_id, item, how, score, note, fingerprint, checked in rows:
            out[track_id] = CachedMatch(
                TrackMatch(track_id, item, how, score, note), fingerprint, checked
            )
    return out


def put_matches(store: Store, target: str, found: Iterable[tuple[TrackMatch, str]]) -> int:
    """Cache (match, fingerprint) pairs in one transaction; how many."""
    now = utcnow()
    rows = [(target, m.track_id, fp, m.item, m.how, m.score, m.note, now) for m, fp in found]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO playlist_matches (target, track_id, fingerprint, item, how, score, "
            "note, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (target, track_id) DO UPDATE SET fingerprint = excluded.fingerprint, "
            "item = excluded.item, how = excluded.how, score = excluded.score, "
            "note = excluded.note, checked_at = excluded.checked_at",
            rows,
        )
    return len(rows)
