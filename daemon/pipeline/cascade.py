"""The decide policy: a cascade of classifier steps, then album smoothing. Pure functions.

Cheap and confident first: the first step's classifiers (say the library's own tags and
the LLM on metadata) vote; when their best genre scores at least the step's `accept`, the
track is decided there. Otherwise the next step's classifiers (audio) join the vote, and
so on; the last step is the weighted vote of everyone that voted. The classify stage asks
a later step's classifiers only about tracks the earlier steps left below `accept`
(`reaches_step`), so the costly audio models run on the long tail alone.

Album smoothing: a track whose genre differs from the clear majority of its album's
tracks must score `margin` more than `min_confidence` to keep it; else it takes the
album's genres. A track with no genre of its own on such an album takes them too.
Compilations (tracks by different artists) are never smoothed. Manual overrides always win.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..config import AlbumSmoothing, DecideConfig


@dataclass(frozen=True)
class Vote:
    """What one classifier said for one label set: labels best first, with confidence."""

    classifier: str
    labels: Sequence[tuple[str, float]]


@dataclass(frozen=True)
class LabelDecision:
    labels: tuple[str, ...]
    confidence: float | None  # the lowest score of the labels kept
    provenance: dict[str, Any]
    decided: bool
    best: float | None = None  # the best label's score, kept or not


@dataclass(frozen=True)
class Step:
    """Classifiers that vote from this step on (None: all not named by another step)."""

    classifiers: frozenset[str] | None
    accept: float | None


def steps_of(config: DecideConfig) -> list[Step]:
    if not config.cascade:
        return [Step(None, None)]
    out = [Step(frozenset(t.classifiers), t.accept) for t in config.cascade]
    if out[-1].accept is not None:
        out.append(Step(None, None))  # classifiers no step names vote last
    return out


def step_index(classifier: str, steps: Sequence[Step]) -> int:
    for index, step in enumerate(steps):
        if step.classifiers is not None and classifier in step.classifiers:
            return index
    return len(steps) - 1


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
        return LabelDecision(tuple(override), 1.0, {"override": list(override)}, True, 1.0)
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
    best = round(ranked[0][1], 4) if ranked else None
    provenance = {label: sources[label] for label, _ in (kept or ranked[:max_labels])}
    if not kept:
        return LabelDecision((), best, provenance, False, best)
    confidence = min(score for _, score in kept)
    return LabelDecision(
        tuple(label for label, _ in kept), round(confidence, 4), provenance, True, best
    )


def cascade_genres(
    votes: Sequence[Vote],
    override: Sequence[str] | None,
    steps: Sequence[Step],
    weights: Mapping[str, float],
    min_confidence: float,
    max_labels: int,
) -> tuple[LabelDecision, int, bool]:
    """The decision; the step it was taken at (the votes of the steps up to it count);
    whether a step accepted it (False: the last step's vote, confident or not)."""
    if override is not None:
        return decide_labels((), override, weights, min_confidence, max_labels), 0, True
    result = LabelDecision((), None, {}, False)
    for index, step in enumerate(steps):
        consulted = [v for v in votes if step_index(v.classifier, steps) <= index]
        result = decide_labels(consulted, None, weights, min_confidence, max_labels)
        if step.accept is not None and result.decided and (result.best or 0) >= step.accept:
            return result, index, True
    return result, len(steps) - 1, False


def reaches_step(
    votes: Sequence[Vote],
    step: int,
    steps: Sequence[Step],
    weights: Mapping[str, float],
    min_confidence: float,
    max_labels: int,
) -> bool:
    """Do the steps before `step` leave this track below their `accept` (so the
    classifiers of `step` are asked about it)?"""
    if step == 0:
        return True
    earlier = [v for v in votes if step_index(v.classifier, steps) < step]
    _, _, accepted = cascade_genres(
        earlier, None, steps[:step], weights, min_confidence, max_labels
    )
    return not accepted


# --------------------------------------------------------------------------- albums


@dataclass(frozen=True)
class AlbumTrack:
    track_id: int
    album: str | None  # the source's album id (None: no album)
    artist: str | None


def smooth_albums(
    decisions: Mapping[int, LabelDecision],
    tracks: Sequence[AlbumTrack],
    others: Mapping[str, Sequence[Sequence[str]]],
    settings: AlbumSmoothing,
    min_confidence: float,
) -> dict[int, LabelDecision]:
    """`decisions` with album smoothing applied (overrides are never touched).

    `others`: per album, the decided genres of its tracks not in `decisions` (decided
    earlier). Returns only the decisions that changed.
    """
    if not settings.enabled:
        return {}
    by_album: dict[str, list[AlbumTrack]] = defaultdict(list)
    for track in tracks:
        if track.album and track.track_id in decisions:
            by_album[track.album].append(track)
    changed: dict[int, LabelDecision] = {}
    for album, members in by_album.items():
        if len({m.artist for m in members if m.artist}) > 1:
            continue  # a compilation: its tracks may well differ
        lists = [decisions[m.track_id].labels for m in members] + list(others.get(album, ()))
        firsts = [labels[0] for labels in lists if labels]
        if len(firsts) < settings.min_tracks:
            continue
        genre, count = Counter(firsts).most_common(1)[0]
        share = count / len(firsts)
        if share < settings.min_share:
            continue
        album_genres = _album_genres(lists, genre)
        for member in members:
            decision = decisions[member.track_id]
            if "override" in decision.provenance:
                continue
            own = decision.labels[0] if decision.labels else None
            if own == genre:
                continue
            if own is not None and (decision.best or 0) >= min_confidence + settings.margin:
                continue  # confident enough to differ from its album
            changed[member.track_id] = replace(
                decision,
                labels=album_genres,
                confidence=round(share, 4),
                decided=True,
                provenance={
                    **decision.provenance,
                    "album": {"genres": list(album_genres), "share": round(share, 4),
                              "was": list(decision.labels)},
                },
            )  # fmt: skip
    return changed


def _album_genres(lists: Sequence[Sequence[str]], first: str) -> tuple[str, ...]:
    """The album's genres: its majority genre, then those at least half its tracks carry."""
    voted = [labels for labels in lists if labels]
    counts = Counter(g for labels in voted for g in dict.fromkeys(labels))
    more = [g for g, n in counts.most_common() if g != first and n * 2 >= len(voted)]
    return (first, *more)
