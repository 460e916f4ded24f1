"""The library in figures, for the dashboard's overview and `GET /api/stats`.

`overview` reads the whole library (a few hundred milliseconds at 100,000 tracks), so the
web app keeps its result until the data changes (`genred.web.cache`); `failing` and the
runs are small and read each time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import Store, utcnow

BINS = 10  # the confidence histogram: 0–0.1, …, 0.9–1.0
TOP = 15


@dataclass(frozen=True)
class Overview:
    tracks: int  # active
    removed: int
    classified: int  # with at least one prediction
    decided: int
    review: int
    written: int  # tracks whose genres genred wrote (not reverted)
    failed: int  # tracks (or items) with a failure on record
    overridden: int  # tracks with a manual override
    genres_before: int  # distinct genre tags before genred wrote any
    genres_now: int  # distinct decided genres
    top_now: list[tuple[str, int]] = field(default_factory=list)
    top_before: list[tuple[str, int]] = field(default_factory=list)
    confidence: list[int] = field(default_factory=list)  # BINS counts of decided confidence
    genre_counts: dict[str, int] = field(default_factory=dict)  # every decided genre
    mood_counts: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # what computing it took
    at: str = ""  # when (ISO UTC)

    @property
    def undecided(self) -> int:
        return max(self.tracks - self.decided - self.review, 0)


def _counts(store: Store, column: str) -> dict[str, int]:
    rows = store.conn.execute(
        f"SELECT j.value, COUNT(*) FROM decisions d JOIN tracks t ON t.id = d.track_id, "
        f"json_each(d.{column}) j WHERE t.removed = 0 GROUP BY j.value"
    )
    return {str(name): int(n) for name, n in rows}


def overview(store: Store) -> Overview:
    started = time.perf_counter()
    one = store.conn.execute
    tracks, removed = one(
        "SELECT COALESCE(SUM(removed = 0), 0), COALESCE(SUM(removed), 0) FROM tracks"
    ).fetchone()
    decided, review = one(
        "SELECT COALESCE(SUM(d.status = 'decided'), 0), COALESCE(SUM(d.status = 'review'), 0) "
        "FROM decisions d JOIN tracks t ON t.id = d.track_id WHERE t.removed = 0"
    ).fetchone()
    classified = one(
        "SELECT COUNT(*) FROM tracks t WHERE t.removed = 0 AND EXISTS "
        "(SELECT 1 FROM predictions p WHERE p.track_id = t.id AND p.labels != '[]')"
    ).fetchone()[0]
    written = one(
        "SELECT COUNT(DISTINCT item_id) FROM writebacks WHERE item_kind = 'track' "
        "AND written IS NOT NULL AND reverted_at IS NULL"
    ).fetchone()[0]
    failed = one("SELECT COUNT(DISTINCT item) FROM failures").fetchone()[0]
    overridden = one("SELECT COUNT(DISTINCT track_id) FROM overrides").fetchone()[0]
    before: dict[str, int] = {}
    for name, n in one(
        """
        SELECT j.value, COUNT(*) FROM tracks t
        LEFT JOIN writebacks w ON w.item_kind = 'track' AND w.item_id = t.source_id
            AND w.field = 'genre' AND w.written IS NOT NULL AND w.reverted_at IS NULL,
        json_each(coalesce(w.original, t.genres)) j
        WHERE t.removed = 0 GROUP BY j.value
        """
    ):
        key = " ".join(str(name).split())
        before[key] = before.get(key, 0) + int(n)
    genres = _counts(store, "genres")
    histogram = [0] * BINS
    for index, n in one(
        "SELECT MIN(CAST(d.confidence * ? AS INTEGER), ? - 1), COUNT(*) FROM decisions d "
        "JOIN tracks t ON t.id = d.track_id WHERE t.removed = 0 AND d.status = 'decided' "
        "AND d.confidence IS NOT NULL GROUP BY 1",
        (BINS, BINS),
    ):
        histogram[max(int(index), 0)] += int(n)
    return Overview(
        tracks=int(tracks),
        removed=int(removed),
        classified=int(classified),
        decided=int(decided),
        review=int(review),
        written=int(written),
        failed=int(failed),
        overridden=int(overridden),
        genres_before=len(before),
        genres_now=len(genres),
        top_now=_top(genres),
        top_before=_top(before),
        confidence=histogram,
        genre_counts=genres,
        mood_counts=_counts(store, "moods"),
        label_counts=_counts(store, "labels"),
        seconds=time.perf_counter() - started,
        at=utcnow(),
    )


def _top(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))[:TOP]


@dataclass(frozen=True)
class Failing:
    stage: str
    item: str
    track_id: int | None
    title: str | None
    error_type: str
    message: str
    attempts: int
    last_failed_at: str
    next_retry_at: str | None


def failing(store: Store, limit: int = 20) -> tuple[list[Failing], dict[str, int]]:
    """The most recent failures (with their track when the item is one) and counts by stage."""
    rows = store.conn.execute(
        """
        SELECT f.stage, f.item, t.id, t.artist || ' – ' || t.title, f.error_type, f.message,
               f.attempts, f.last_failed_at, f.next_retry_at
        FROM failures f LEFT JOIN tracks t
            ON t.id = CASE WHEN f.item GLOB '[0-9]*' THEN CAST(f.item AS INTEGER) END
        ORDER BY f.last_failed_at DESC LIMIT ?
        """,
        (limit,),
    ).fetchall()
    by_stage = dict(store.conn.execute("SELECT stage, COUNT(*) FROM failures GROUP BY stage"))
    return [Failing(*r) for r in rows], {str(k): int(v) for k, v in by_stage.items()}
