"""Decide stage: all predictions of a track → one decision. A manual override always wins.

The policy is plain functions (`genred.pipeline.cascade`: the cascade of classifier
steps, the weighted vote, album smoothing; `decide_custom_labels` here for the presets'
labels); `decide` runs it over pending tracks, album by album. New classifiers plug in
without touching this: each contributes with its configured weight (default 1.0). Every
decision records who voted what, at which cascade step it was taken, and whether its
album changed it (`provenance`), so the dashboard can show why.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from threading import Event
from typing import Any

from ..config import DecideConfig
from ..errors import raise_if_cancelled
from ..progress import NullProgress, Progress
from ..records import split_label_set
from ..store import Store, state, utcnow
from .cascade import (
    AlbumTrack,
    LabelDecision,
    Vote,
    cascade_genres,
    decide_labels,
    smooth_albums,
    steps_of,
)

__all__ = ["LabelDecision", "Vote", "decide", "decide_custom_labels", "decide_labels"]


def decide_custom_labels(
    votes: Mapping[str, Sequence[Vote]], weights: Mapping[str, float], min_confidence: float
) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, float]]]:
    """The user's own labels (prompt presets: label sets `kind:Name`) that apply.

    Each is its own yes/no question: its score is the weighted mean of the probabilities
    of the classifiers that answered it (nobody else has an opinion on "Focus"); it
    applies at `min_confidence`. Returns the names per kind (genre, mood, label) and, per
    label set, who said what.
    """
    out: dict[str, list[str]] = {"genre": [], "mood": [], "label": []}
    provenance: dict[str, dict[str, float]] = {}
    for label_set in sorted(votes):
        parsed = split_label_set(label_set)
        if parsed is None:
            continue
        kind, name = parsed
        said = {
            v.classifier: _probability(v, name)
            for v in votes[label_set]
            if weights.get(v.classifier, 1.0) > 0
        }
        if not said:
            continue
        total = sum(weights.get(c, 1.0) for c in said)
        score = sum(weights.get(c, 1.0) * p for c, p in said.items()) / total
        provenance[label_set] = {**said, "score": round(score, 4)}
        if score >= min_confidence:
            out[kind].append(name)
    return {k: tuple(v) for k, v in out.items()}, provenance


def _probability(vote: Vote, name: str) -> float:
    for label, confidence in vote.labels:
        if label == name:
            return round(min(max(float(confidence), 0.0), 1.0), 4)
    return 0.0


def _with(decided: Sequence[str], extra: Sequence[str], overridden: bool) -> tuple[str, ...]:
    """Decided labels plus the custom ones of that kind (not over a manual override)."""
    if overridden:
        return tuple(decided)
    have = {v.casefold() for v in decided}
    return (*decided, *(v for v in extra if v.casefold() not in have))


def policy_fingerprint(config: DecideConfig) -> str:
    """Changes when the decide settings change, so every track is decided again."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pending_ids(store: Store, everything: bool) -> list[int]:
    """Pending tracks, album by album (so album smoothing sees an album whole)."""
    if everything:
        sql = "SELECT t.id FROM tracks t WHERE t.removed = 0"
    else:
        sql = """
        SELECT t.id FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id
        WHERE t.removed = 0 AND (
            d.track_id IS NULL
            OR EXISTS (SELECT 1 FROM predictions p
                       WHERE p.track_id = t.id AND p.created_at > d.decided_at)
            OR EXISTS (SELECT 1 FROM overrides o
                       WHERE o.track_id = t.id AND o.created_at > d.decided_at))
        """
    sql += " ORDER BY t.source, coalesce(t.album_source_id, ''), t.id"
    return [row[0] for row in store.conn.execute(sql)]


def decide(
    store: Store,
    config: DecideConfig,
    progress: Progress | None = None,
    batch_size: int = 2000,
    cancel: Event | None = None,
) -> dict[str, int]:
    """Decide every pending track; returns counts (decided, review, overridden, …).

    `cancel` is checked between committed batches; a policy change is only recorded once
    every track was decided under it, so a cancelled run is redone in full.
    """
    progress = progress or NullProgress()
    fingerprint = policy_fingerprint(config)
    policy_changed = state.get(store, "decide.policy") != fingerprint
    pending = _pending_ids(store, everything=policy_changed)
    counts = {"decided": 0, "review": 0, "overridden": 0, "smoothed": 0}
    steps = steps_of(config)
    counts.update({f"step{n + 1}": 0 for n in range(len(steps))} if len(steps) > 1 else {})
    progress.start("decide", total=len(pending))
    start = 0
    while start < len(pending):
        batch = _album_whole(store, pending, start, batch_size)
        start += len(batch)
        rows = _decide_batch(store, batch, config, counts)
        with store.transaction() as conn:
            conn.executemany(
                """
                INSERT INTO decisions (track_id, genres, moods, labels, confidence, provenance,
                                       status, decided_at, decided_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (track_id) DO UPDATE SET genres = excluded.genres,
                    moods = excluded.moods, labels = excluded.labels,
                    confidence = excluded.confidence,
                    provenance = excluded.provenance, status = excluded.status,
                    decided_at = excluded.decided_at, decided_by = excluded.decided_by
                """,
                rows,
            )
        progress.advance(len(batch))
        raise_if_cancelled(cancel, "decide")
    state.put(store, "decide.policy", fingerprint)
    progress.finish(
        f"decided {counts['decided']} tracks, {counts['review']} need review, "
        f"{counts['overridden']} by manual override, {counts['smoothed']} by their album"
    )
    return counts


def _album_whole(store: Store, pending: list[int], start: int, size: int) -> list[int]:
    """`size` ids from `start`, extended to the end of the last album begun."""
    batch = pending[start : start + size]
    if start + size >= len(pending):
        return batch
    album_of = dict(
        store.conn.execute(
            "SELECT id, album_source_id FROM tracks WHERE id IN (?, ?)",
            (batch[-1], pending[start + size]),
        ).fetchall()
    )
    end = start + size
    last = album_of.get(batch[-1])
    while last is not None and end < len(pending) and end - start < size * 2:
        (album,) = store.conn.execute(
            "SELECT album_source_id FROM tracks WHERE id = ?", (pending[end],)
        ).fetchone()
        if album != last:
            break
        end += 1
    return pending[start:end]


def _decide_batch(
    store: Store, batch: list[int], config: DecideConfig, counts: dict[str, int]
) -> list[tuple[Any, ...]]:
    votes = votes_of(store, batch)
    overrides = overrides_of(store, batch)
    steps = steps_of(config)
    genres: dict[int, LabelDecision] = {}
    taken: dict[int, int] = {}
    for track_id in batch:
        genres[track_id], taken[track_id], _ = cascade_genres(
            votes[track_id]["genre"],
            overrides[track_id].get("genre"),
            steps,
            config.weights,
            config.min_confidence,
            config.max_genres,
        )
    albums, others = _album_context(store, batch)
    smoothed = smooth_albums(genres, albums, others, config.album_smoothing, config.min_confidence)
    genres.update(smoothed)
    counts["smoothed"] += len(smoothed)
    rows = []
    for track_id in batch:
        by_set, override = votes[track_id], overrides[track_id]
        genre = genres[track_id]
        mood = decide_labels(
            by_set["mood"],
            override.get("mood"),
            config.weights,
            config.mood_min_confidence,
            config.max_moods,
        )
        custom, custom_provenance = decide_custom_labels(
            by_set, config.weights, config.min_confidence
        )
        genre_list = _with(genre.labels, custom["genre"], "genre" in override)
        moods = _with(mood.labels, custom["mood"], "mood" in override)
        labels = tuple(override["label"]) if "label" in override else custom["label"]
        status = "decided" if genre.decided or (genre_list and not genre.labels) else "review"
        counts[status] += 1
        counts["overridden"] += "genre" in override
        if len(steps) > 1 and "genre" not in override:
            counts[f"step{taken[track_id] + 1}"] += 1
        provenance: dict[str, Any] = {"genre": genre.provenance, "mood": mood.provenance}
        if len(steps) > 1:
            provenance["step"] = taken[track_id] + 1
        if custom_provenance:
            provenance["custom"] = custom_provenance
        if "label" in override:
            provenance["label"] = {"override": list(override["label"])}
        rows.append(
            (
                track_id,
                json.dumps(list(genre_list), ensure_ascii=False),
                json.dumps(list(moods), ensure_ascii=False),
                json.dumps(list(labels), ensure_ascii=False),
                genre.confidence,
                json.dumps(provenance, ensure_ascii=False, sort_keys=True),
                status,
                utcnow(),
                decided_by(genre),
            )
        )
    return rows


def decided_by(genre: LabelDecision) -> str:
    """Who gave a track its genre, for the dashboard's filter: `override`, `album`
    (smoothing), or the classifiers that voted for its first genre (best guess when under
    review), comma-separated."""
    provenance = genre.provenance
    if "override" in provenance:
        return "override"
    if "album" in provenance:
        return "album"
    first = genre.labels[0] if genre.labels else next(iter(provenance), None)
    voters = provenance.get(first) if first is not None else None
    return ",".join(sorted(voters)) if isinstance(voters, dict) else ""


def _in_chunks(ids: list[int], size: int = 500) -> Any:
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


def votes_of(store: Store, ids: list[int]) -> dict[int, dict[str, list[Vote]]]:
    """Every prediction of these tracks, per track and label set."""
    out: dict[int, dict[str, list[Vote]]] = {i: defaultdict(list) for i in ids}
    for chunk, marks in _in_chunks(ids):
        for track_id, classifier, label_set, labels in store.conn.execute(
            f"SELECT track_id, classifier, label_set, labels FROM predictions "
            f"WHERE track_id IN ({marks})",
            chunk,
        ):
            out[track_id][label_set].append(
                Vote(classifier, [tuple(x) for x in json.loads(labels)])
            )
    return out


def overrides_of(store: Store, ids: list[int]) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {i: {} for i in ids}
    for chunk, marks in _in_chunks(ids):
        for track_id, field, value in store.conn.execute(
            f"SELECT track_id, field, value FROM overrides WHERE track_id IN ({marks})", chunk
        ):
            out[track_id][field] = json.loads(value)
    return out


def _album_context(
    store: Store, ids: list[int]
) -> tuple[list[AlbumTrack], dict[str, list[list[str]]]]:
    """The batch's tracks with album and artist, and the decided genres of their album
    mates outside the batch."""
    tracks: list[AlbumTrack] = []
    for chunk, marks in _in_chunks(ids):
        tracks += [
            AlbumTrack(track_id, f"{source}/{album}" if album else None, artist)
            for track_id, source, album, artist in store.conn.execute(
                f"SELECT id, source, album_source_id, artist FROM tracks WHERE id IN ({marks})",
                chunk,
            )
        ]
    wanted = sorted({t.album for t in tracks if t.album})
    inside = set(ids)
    others: dict[str, list[list[str]]] = defaultdict(list)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for track_id, source, album, genres in store.conn.execute(
            f"SELECT t.id, t.source, t.album_source_id, d.genres FROM tracks t "
            f"JOIN decisions d ON d.track_id = t.id WHERE t.removed = 0 "
            f"AND t.source || '/' || t.album_source_id IN ({marks})",
            chunk,
        ):
            if track_id not in inside:
                others[f"{source}/{album}"].append(json.loads(genres))
    return tracks, others
