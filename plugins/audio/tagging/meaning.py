"""What a tagger's tags mean to genred: canonical genres, moods and other labels.

Built once per model from its spec's mapping and the taxonomy in use (a mapped genre is
canonicalized, so a user's taxonomy edits apply); then `ranked` turns a clip's tag
probabilities into labels best first. Several tags meaning one label ("electronic",
"electronica") give it the highest of their probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from genred.api import Taxonomy

from .spec import TaggerSpec


@dataclass(frozen=True)
class TagMeaning:
    """Tag index → label, per label set ("genre", "mood", "tags")."""

    by_set: Mapping[str, Mapping[int, str]]
    unmapped_genres: tuple[str, ...] = field(default=())  # mapped names the taxonomy refused


def genre_of(text: str, taxonomy: Taxonomy, separator: str | None) -> str | None:
    """The canonical genre a tag names: with a separator ("Electronic---Deep House") the most
    specific part first, then the broader one."""
    parts = [p.strip() for p in text.split(separator)] if separator else [text]
    for part in reversed(parts):
        found = taxonomy.canonicalize(part) if part else []
        if found:
            return found[0]
    return None


def tag_meaning(spec: TaggerSpec, tags: Sequence[str], taxonomy: Taxonomy) -> TagMeaning:
    index = {tag: i for i, tag in enumerate(tags)}
    genres: dict[int, str] = {}
    refused: list[str] = []
    for tag, name in spec.genres.items():
        found = taxonomy.canonicalize(name)
        if found:
            genres[index[tag]] = found[0]
        else:
            refused.append(name)
    if spec.genres_from_taxonomy:
        listed = set(spec.genres) | set(spec.moods) | set(spec.labels) | set(spec.ignore)
        for tag, i in index.items():
            if tag not in listed and (genre := genre_of(tag, taxonomy, spec.tag_separator)):
                genres[i] = genre
    return TagMeaning(
        {
            "genre": genres,
            "mood": {index[t]: m for t, m in spec.moods.items()},
            "tags": {index[t]: label for t, label in spec.labels.items()},
        },
        tuple(refused),
    )


def ranked(
    probs: np.ndarray, meaning: Mapping[int, str], threshold: float, top_k: int
) -> tuple[tuple[str, float], ...]:
    """Labels whose best tag reaches `threshold`, best first, at most `top_k`."""
    best: dict[str, float] = {}
    for i, label in meaning.items():
        p = float(probs[i])
        if p > best.get(label, -1.0):
            best[label] = p
    kept = sorted(
        ((label, p) for label, p in best.items() if p >= threshold), key=lambda lp: (-lp[1], lp[0])
    )
    return tuple((label, round(p, 4)) for label, p in kept[:top_k])
