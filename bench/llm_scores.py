"""Accuracy and macro-F1 of decided genres against a ground truth, as plain functions.

Per track (only tracks with at least one true genre are scored):
- accuracy: the decided top genre is one of the track's true genres (no decision: wrong);
- macro-F1: one-vs-rest per true primary genre (a track's first true genre), the
  prediction being the decided top genre; F1 per genre = 2·TP / (2·TP + FP + FN), averaged
  unweighted over every genre that is some track's primary.

Both sides are canonical taxonomy names: the caller maps them through the taxonomy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    tracks: int  # scored: tracks with a true genre
    undecided: int  # of those, without a decided genre
    accuracy: float
    macro_f1: float


def score(
    decided: Mapping[Hashable, Sequence[str]], truth: Mapping[Hashable, Sequence[str]]
) -> Scores:
    """`decided`: track → decided genres, best first; `truth`: track → true genres, primary
    first. A track missing from `decided` has no decision."""
    scored = [(key, list(genres)) for key, genres in truth.items() if genres]
    correct = undecided = 0
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for key, genres in scored:
        top = next(iter(decided.get(key) or ()), None)
        undecided += top is None
        correct += top in genres
        primary = genres[0]
        if top == primary:
            tp[primary] += 1
        else:
            fn[primary] += 1
            if top is not None:
                fp[top] += 1
    classes = {genres[0] for _, genres in scored}
    f1 = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) for c in classes]
    return Scores(
        tracks=len(scored),
        undecided=undecided,
        accuracy=correct / len(scored) if scored else 0.0,
        macro_f1=sum(f1) / len(f1) if f1 else 0.0,
    )
