"""Which label each track teaches the model: plain functions over plain data.

Sources, in order of trust: a manual override of the track's genres, the library's own
genres (canonicalized by the taxonomy), a confident LLM prediction. The most trusted
source that has something for a track decides its label, alone: the model is single-label,
so the label is that source's primary (first) genre. A manual override that empties a
track's genres leaves it out altogether (a person said it has none). Each source has a
sample weight and a confidence it needs (`train.labels` in the config).

Any label with at least `min_examples` tracks becomes a class, custom genres included;
the others are dropped and reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..config import TrainLabelsConfig

SOURCES = ("override", "library", "llm")  # most trusted first

Candidates = Sequence[tuple[str, float]]  # (label, confidence), primary first


@dataclass(frozen=True)
class LabelInputs:
    """What each source says per track id, as (label, confidence) lists, primary first.

    An `overrides` entry with no labels means "this track has no genre"."""

    overrides: Mapping[int, Candidates] = field(default_factory=dict)
    library: Mapping[int, Candidates] = field(default_factory=dict)
    llm: Mapping[int, Candidates] = field(default_factory=dict)

    def of(self, source: str) -> Mapping[int, Candidates]:
        return {"override": self.overrides, "library": self.library, "llm": self.llm}[source]

    def track_ids(self) -> set[int]:
        return set(self.overrides) | set(self.library) | set(self.llm)


@dataclass(frozen=True)
class TrainingLabel:
    track_id: int
    label: str
    source: str  # one of SOURCES
    weight: float


@dataclass(frozen=True)
class ClassSelection:
    classes: tuple[str, ...]  # sorted: a class's index is its position
    kept: tuple[TrainingLabel, ...]
    dropped: dict[str, int]  # label → tracks, for labels under min_examples


def assemble_labels(
    inputs: LabelInputs, settings: TrainLabelsConfig, track_ids: Iterable[int] | None = None
) -> list[TrainingLabel]:
    """One label per track that has one (of `track_ids`, default every track named),
    in track id order."""
    wanted = inputs.track_ids() if track_ids is None else set(track_ids)
    out = []
    for track_id in sorted(wanted):
        label = _label_of(track_id, inputs, settings)
        if label is not None:
            out.append(label)
    return out


def _label_of(
    track_id: int, inputs: LabelInputs, settings: TrainLabelsConfig
) -> TrainingLabel | None:
    for source in SOURCES:
        said = inputs.of(source).get(track_id)
        rule = getattr(settings, source)
        if said is None or not rule.enabled:
            continue
        if not said:
            if source == "override":
                return None  # a person cleared its genres: nothing to learn from it
            continue
        label, confidence = said[0]
        if confidence >= rule.min_confidence and label.strip():
            return TrainingLabel(track_id, label, source, rule.weight)
    return None


def select_classes(labels: Sequence[TrainingLabel], min_examples: int) -> ClassSelection:
    """Labels with at least `min_examples` tracks become the classes; the rest are dropped."""
    counts = Counter(label.label for label in labels)
    classes = tuple(sorted(name for name, n in counts.items() if n >= min_examples))
    keep = set(classes)
    return ClassSelection(
        classes=classes,
        kept=tuple(label for label in labels if label.label in keep),
        dropped={name: n for name, n in sorted(counts.items()) if name not in keep},
    )


def source_counts(labels: Iterable[TrainingLabel]) -> dict[str, int]:
    """How many labels each source gave (every source named, zeros included)."""
    counts = Counter(label.source for label in labels)
    return {source: counts.get(source, 0) for source in SOURCES}
