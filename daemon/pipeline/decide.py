"""Decide stage: all predictions of a track → one decision. A manual override always wins.

`decide_labels` is the policy, a plain function; `decide` runs it over pending tracks.
New classifiers plug in without touching this: each contributes with its configured
weight (default 1.0).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from threading import Event
from typing import Any

from ..config import DecideConfig
from ..errors import raise_if_cancelled
from ..progress import NullProgress, Progress
from ..store import Store, state, utcnow

LABEL_FIELDS = {"genre": "genres", "mood": "moods"}


@dataclass(frozen=True)
class Vote:
    """What one classifier said for one label set: labels best first, with confidence."""

    classifier: str
    labels: Sequence[tuple[str, float]]


@dataclass(frozen=True)
class LabelDecision:
    labels: tuple[str, ...]
    confidence: float | None
    provenance: dict[str, Any]
    decided: bool


def decide_labels(
    votes: Sequence[Vote],
    override: Sequence[str] | None,
    weights: Mapping[str, float],
    min_confidence: float,
    max_labels: int,
) -> LabelDecision:
    """Weighted vote: a label's score is the weighted mean of its confidence over the
    classifiers that had an opinion (a classifier that did not name it counts as 0).
    Labels scoring at least `min_confidence` are kept, best first, at most `max_labels`.
    """
    if override is not None:
        return LabelDecision(tuple(override), 1.0, {"override": list(override)}, True)
    voting = [v for v in votes if v.labels and weights.get(v.classifier, 1.0) > 0]
    if not voting:
        return LabelDecision((), None, {}, False)
    total_weight = sum(weights.get(v.classifier, 1.0) for v in voting)
    scores: dict[str, float] = defaultdict(float)
    sources: dict[str, dict[str, float]] = defaultdict(dict)
    for vote in voting:
        weight = weights.get(vote.classifier, 1.0)
        for label, confidence in vote.labels:
            confidence = min(max(float(confidence), 0.0), 1.0)
            scores[label] += weight * confidence / total_weight
            sources[label][vote.classifier] = round(confidence, 4)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [(label, score) for label, score in ranked if score >= min_confidence][:max_labels]
    best = ranked[0][1] if ranked else None
    provenance = {label: sources[label] for label, _ in (kept or ranked[:max_labels])}
    if not kept:
        return LabelDecision((), round(best, 4) if best is not None else None, provenance, False)
    confidence = min(score for _, score in kept)
    return LabelDecision(tuple(label for label, _ in kept), round(confidence, 4), provenance, True)


def policy_fingerprint(config: DecideConfig) -> str:
    """Changes when the decide settings change, so every track is decided again."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pending_ids(store: Store, everything: bool) -> list[int]:
    if everything:
        sql = "SELECT id FROM tracks WHERE removed = 0 ORDER BY id"
    else:
        sql = """
        SELECT t.id FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id
        WHERE t.removed = 0 AND (
            d.track_id IS NULL
            OR EXISTS (SELECT 1 FROM predictions p
                       WHERE p.track_id = t.id AND p.created_at > d.decided_at)
            OR EXISTS (SELECT 1 FROM overrides o
                       WHERE o.track_id = t.id AND o.created_at > d.decided_at))
        ORDER BY t.id
        """
    return [row[0] for row in store.conn.execute(sql)]


def decide(
    store: Store,
    config: DecideConfig,
    progress: Progress | None = None,
    batch_size: int = 2000,
    cancel: Event | None = None,
) -> dict[str, int]:
    """Decide every pending track; returns counts (decided, review, overridden).

    `cancel` is checked between committed batches; a policy change is only recorded once
    every track was decided under it, so a cancelled run is redone in full.
    """
    progress = progress or NullProgress()
    fingerprint = policy_fingerprint(config)
    policy_changed = state.get(store, "decide.policy") != fingerprint
    pending = _pending_ids(store, everything=policy_changed)
    counts = {"decided": 0, "review": 0, "overridden": 0}
    progress.start("decide", total=len(pending))
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        rows = [_decide_one(store, track_id, config, counts) for track_id in batch]
        with store.transaction() as conn:
            conn.executemany(
                """
                INSERT INTO decisions (track_id, genres, moods, labels, confidence, provenance,
                                       status, decided_at)
                VALUES (?, ?, ?, '[]', ?, ?, ?, ?)
                ON CONFLICT (track_id) DO UPDATE SET genres = excluded.genres,
                    moods = excluded.moods, confidence = excluded.confidence,
                    provenance = excluded.provenance, status = excluded.status,
                    decided_at = excluded.decided_at
                """,
                rows,
            )
        progress.advance(len(batch))
        raise_if_cancelled(cancel, "decide")
    state.put(store, "decide.policy", fingerprint)
    progress.finish(
        f"decided {counts['decided']} tracks, {counts['review']} need review, "
        f"{counts['overridden']} by manual override"
    )
    return counts


def _decide_one(
    store: Store, track_id: int, config: DecideConfig, counts: dict[str, int]
) -> tuple[Any, ...]:
    votes: dict[str, list[Vote]] = defaultdict(list)
    for classifier, label_set, labels in store.conn.execute(
        "SELECT classifier, label_set, labels FROM predictions WHERE track_id = ?", (track_id,)
    ):
        votes[label_set].append(Vote(classifier, [tuple(x) for x in json.loads(labels)]))
    overrides = {
        field: json.loads(value)
        for field, value in store.conn.execute(
            "SELECT field, value FROM overrides WHERE track_id = ?", (track_id,)
        )
    }
    genre = decide_labels(
        votes["genre"],
        overrides.get("genre"),
        config.weights,
        config.min_confidence,
        config.max_genres,
    )
    mood = decide_labels(
        votes["mood"],
        overrides.get("mood"),
        config.weights,
        config.min_confidence,
        config.max_genres,
    )
    status = "decided" if genre.decided else "review"
    counts[status] += 1
    counts["overridden"] += "genre" in overrides
    provenance = {"genre": genre.provenance, "mood": mood.provenance}
    return (
        track_id,
        json.dumps(list(genre.labels), ensure_ascii=False),
        json.dumps(list(mood.labels), ensure_ascii=False),
        genre.confidence,
        json.dumps(provenance, ensure_ascii=False, sort_keys=True),
        status,
        utcnow(),
    )
