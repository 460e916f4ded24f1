"""Classify stage: run each enabled classifier over the tracks it has not seen yet.

A track is pending for a classifier when it has no prediction from it, the classifier's
version changed, or the track changed since. A track the classifier has nothing to say
about gets an empty prediction row, so it is not asked again until it changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from threading import Event
from typing import Any

from ..errors import raise_if_cancelled
from ..logs import get_logger
from ..progress import NullProgress, Progress
from ..records import Prediction, TrackRecord
from ..store import Store, failures, utcnow

log = get_logger("genred.classify")
STAGE = "classify"


def pending_ids(store: Store, name: str, version: str) -> list[int]:
    blocked = failures.blocked(store, f"{STAGE}:{name}")
    rows = store.conn.execute(
        """
        SELECT t.id FROM tracks t
        WHERE t.removed = 0 AND NOT EXISTS (
            SELECT 1 FROM predictions p
            WHERE p.track_id = t.id AND p.classifier = ? AND p.version = ?
              AND p.created_at >= t.changed_at)
        ORDER BY t.id
        """,
        (name, version),
    )
    return [r[0] for r in rows if str(r[0]) not in blocked]


def load_tracks(store: Store, ids: list[int]) -> list[TrackRecord]:
    marks = ",".join("?" * len(ids))
    cursor = store.conn.execute(f"SELECT * FROM tracks WHERE id IN ({marks}) ORDER BY id", ids)
    names = [d[0] for d in cursor.description]
    return [TrackRecord.from_row(dict(zip(names, row, strict=True))) for row in cursor]


def classify(
    store: Store,
    classifiers: Mapping[str, Any],
    progress: Progress | None = None,
    batch_size: int = 500,
    cancel: Event | None = None,
) -> dict[str, int]:
    """Run every classifier over its pending tracks; returns counts per classifier.

    `cancel` is checked after each committed batch (what is stored stays stored).
    """
    progress = progress or NullProgress()
    counts: dict[str, int] = {}
    for name, plugin in classifiers.items():
        version = str(plugin.version)
        pending = pending_ids(store, name, version)
        progress.start(f"classify ({name})", total=len(pending))
        predicted = failed = 0
        for start in range(0, len(pending), batch_size):
            ids = pending[start : start + batch_size]
            tracks = load_tracks(store, ids)
            try:
                predictions = list(plugin.classify(tracks))
            except Exception as exc:  # one bad batch must not stop the rest
                log.error(
                    "classifier failed on a batch",
                    classifier=name,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    tracks=len(ids),
                )
                for track_id in ids:
                    failures.record(store, f"{STAGE}:{name}", str(track_id), exc)
                failed += len(ids)
                progress.advance(len(ids))
                continue
            predicted += _store_batch(store, name, version, ids, predictions)
            failures.clear(store, f"{STAGE}:{name}", [str(i) for i in ids])
            progress.advance(len(ids))
            raise_if_cancelled(cancel, f"classify ({name})")
        counts[f"{name}.considered"] = len(pending)
        counts[f"{name}.predicted"] = predicted
        counts[f"{name}.failed"] = failed
        progress.finish(
            f"{name}: {predicted} of {len(pending)} pending tracks got a prediction"
            + (f", {failed} failed" if failed else "")
        )
    return counts


def _store_batch(
    store: Store, name: str, version: str, ids: list[int], predictions: list[Prediction]
) -> int:
    """Replace this classifier's predictions for the batch in one transaction."""
    now = utcnow()
    wanted = set(ids)
    rows = [
        (
            p.track_id,
            name,
            p.label_set,
            version,
            json.dumps([[label, round(conf, 4)] for label, conf in p.labels], ensure_ascii=False),
            now,
        )
        for p in predictions
        if p.track_id in wanted
    ]
    answered = {p.track_id for p in predictions if p.labels and p.track_id in wanted}
    silent = wanted - {r[0] for r in rows}
    rows += [(track_id, name, "genre", version, "[]", now) for track_id in sorted(silent)]
    marks = ",".join("?" * len(ids))
    with store.transaction() as conn:
        conn.execute(
            f"DELETE FROM predictions WHERE classifier = ? AND track_id IN ({marks})", [name, *ids]
        )
        conn.executemany(
            "INSERT OR REPLACE INTO predictions (track_id, classifier, label_set, version, labels,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(answered)
