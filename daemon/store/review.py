"""The review queue: tracks under review first, then the least confident decisions, one
album at a time (most corrections are per album). A track with a genre override is out
of the queue: a person has answered for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import Store
from .library import CursorError

RANKS = ("review", "decided")  # the queue's order: under review first


@dataclass(frozen=True)
class ReviewTrack:
    id: int
    title: str | None
    artist: str | None
    track_no: int | None
    status: str
    confidence: float | None
    genres: tuple[str, ...]  # decided
    candidates: tuple[str, ...]  # decided, or under review the best guesses
    source_genres: tuple[str, ...]
    overridden: bool  # answered already (its genre override)


@dataclass(frozen=True)
class ReviewAlbum:
    key: str  # `source:album id`, or `track:<id>` for a track with no album
    album: str | None
    artist: str | None
    tracks: list[ReviewTrack]
    position: str  # the queue position of its first track, to skip past it

    def open_tracks(self) -> list[ReviewTrack]:
        return [t for t in self.tracks if not t.overridden]


def _encode(rank: int, confidence: float, track_id: int) -> str:
    return f"{rank}:{confidence!r}:{track_id}"


def _decode(position: str) -> tuple[int, float, int]:
    try:
        rank, confidence, track_id = position.split(":")
        decoded = int(rank), float(confidence), int(track_id)
    except ValueError:
        decoded = (-1, 0.0, 0)
    if decoded[0] not in (0, 1):
        raise CursorError("not a position in the review queue: start from its beginning")
    return decoded


QUEUE = """
SELECT d.track_id, coalesce(d.confidence, -1.0) FROM decisions d JOIN tracks t ON t.id = d.track_id
WHERE d.status = ? AND t.removed = 0
  AND NOT EXISTS (SELECT 1 FROM overrides o WHERE o.track_id = d.track_id AND o.field = 'genre')
  AND (coalesce(d.confidence, -1.0), d.track_id) > (?, ?)
ORDER BY d.status, coalesce(d.confidence, -1.0), d.track_id LIMIT 1
"""


def _first(store: Store, after: tuple[int, float, int] | None) -> tuple[int, int, float] | None:
    """(rank, track id, confidence) of the first queued track after `after`."""
    start_rank, confidence, track_id = after if after else (0, -2.0, 0)
    for rank in range(start_rank, len(RANKS)):
        row = store.conn.execute(QUEUE, (RANKS[rank], confidence, track_id)).fetchone()
        if row is not None:
            return rank, int(row[0]), float(row[1])
        confidence, track_id = -2.0, 0
    return None


def next_album(store: Store, after: str | None = None) -> ReviewAlbum | None:
    """The album of the first queued track (after the position `after`); None: all done."""
    found = _first(store, _decode(after) if after else None)
    if found is None:
        return None
    rank, track_id, confidence = found
    source, album_id = store.conn.execute(
        "SELECT source, album_source_id FROM tracks WHERE id = ?", (track_id,)
    ).fetchone()
    if album_id:
        where, params, key = "t.source = ? AND t.album_source_id = ?", [source, album_id], None
    else:
        where, params, key = "t.id = ?", [track_id], f"track:{track_id}"
    rows = store.conn.execute(
        f"""
        SELECT t.id, t.title, t.artist, t.track_no, t.album, t.album_artist, t.genres,
               d.status, d.confidence, d.genres, d.provenance,
               EXISTS (SELECT 1 FROM overrides o WHERE o.track_id = t.id AND o.field = 'genre')
        FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id
        WHERE {where} AND t.removed = 0
        ORDER BY coalesce(t.disc_no, 0), coalesce(t.track_no, 0), t.id
        """,
        params,
    ).fetchall()
    tracks = [
        ReviewTrack(
            id=r[0],
            title=r[1],
            artist=r[2],
            track_no=r[3],
            status=r[7] or "undecided",
            confidence=r[8],
            genres=tuple(json.loads(r[9] or "[]")),
            candidates=candidates_of(r[9], r[10]),
            source_genres=tuple(json.loads(r[6] or "[]")),
            overridden=bool(r[11]),
        )
        for r in rows
    ]
    first = rows[0]
    return ReviewAlbum(
        key=key or f"{source}:{album_id}",
        album=first[4],
        artist=first[5] or first[2],
        tracks=tracks,
        position=_encode(rank, confidence, track_id),
    )


def candidates_of(genres: str | None, provenance: str | None) -> tuple[str, ...]:
    decided = tuple(json.loads(genres or "[]"))
    if decided:
        return decided
    voted = json.loads(provenance or "{}").get("genre")
    if not isinstance(voted, dict):
        return ()
    scores = {
        name: sum(v for v in said.values() if isinstance(v, int | float))
        for name, said in voted.items()
        if name not in ("album", "override") and isinstance(said, dict)
    }
    return tuple(sorted(scores, key=lambda g: -scores[g])[:3])


def waiting(store: Store) -> int:
    """Tracks under review that nobody has answered for yet."""
    return int(
        store.conn.execute(
            "SELECT COUNT(*) FROM decisions d JOIN tracks t ON t.id = d.track_id "
            "WHERE d.status = 'review' AND t.removed = 0 AND NOT EXISTS (SELECT 1 FROM "
            "overrides o WHERE o.track_id = d.track_id AND o.field = 'genre')"
        ).fetchone()[0]
    )
