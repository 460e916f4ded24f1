"""Captions: the sentence an audio-language model wrote about a track (playlist and search
material), one per track and classifier, replaced when the classifier answers again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import Store, utcnow


@dataclass(frozen=True)
class Caption:
    track_id: int
    text: str
    listened_seconds: float | None = None
    cut: bool = False  # the file was longer than the model listens to


def write(store: Store, classifier: str, version: str, captions: Iterable[Caption]) -> int:
    """Store these captions (one transaction); returns how many."""
    now = utcnow()
    rows = [
        (c.track_id, classifier, version, c.text, c.listened_seconds, int(c.cut), now)
        for c in captions
    ]
    if rows:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO captions (track_id, classifier, version, text,"
                " listened_seconds, cut, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)


def of_tracks(
    store: Store, track_ids: Sequence[int], classifier: str | None = None
) -> dict[int, str]:
    """The caption of each of `track_ids` that has one (of `classifier`, or the newest)."""
    out: dict[int, str] = {}
    for start in range(0, len(track_ids), 500):
        chunk = list(track_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        where = "AND classifier = ?" if classifier else ""
        params = [*chunk, classifier] if classifier else chunk
        for track_id, text in store.conn.execute(
            f"SELECT track_id, text FROM captions WHERE track_id IN ({marks}) {where}"
            " ORDER BY created_at",
            params,
        ):
            out[track_id] = text
    return out
