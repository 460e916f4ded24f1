"""What training and prediction read from the store: labels, album keys, feature vectors.

Library genres are read as the library had them before genred wrote any: where a
writeback of genres to a track (or its album) is on record, its `original` value stands
in for what the source now reports, so the model never learns from its own decisions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import TrainLabelsConfig
from ..errors import TrainingError
from ..store import Store
from ..store import features as features_q
from ..taxonomy import Taxonomy
from .card import FeatureSet
from .labels import Candidates, LabelInputs
from .split import GroupedTrack

if TYPE_CHECKING:
    import numpy as np


# --------------------------------------------------------------------------- labels


def label_inputs(store: Store, taxonomy: Taxonomy, settings: TrainLabelsConfig) -> LabelInputs:
    """Every active track's overrides, library genres and LLM genres, canonicalized."""
    return LabelInputs(
        overrides=_overrides(store, taxonomy),
        library=_library(store, taxonomy),
        llm=_predicted(store, taxonomy, settings.llm_classifier),
    )


def _overrides(store: Store, taxonomy: Taxonomy) -> dict[int, Candidates]:
    """Canonical names where the taxonomy knows them; a person's own name stays as is."""
    out: dict[int, Candidates] = {}
    rows = store.conn.execute(
        "SELECT o.track_id, o.value FROM overrides o JOIN tracks t ON t.id = o.track_id"
        " WHERE o.field = 'genre' AND t.removed = 0"
    )
    for track_id, value in rows:
        names: list[str] = []
        for raw in _json_list(value):
            matched = taxonomy.match(str(raw))
            if matched:
                names.extend(m.name for m in matched)
            else:
                names.append(str(raw).strip())
        out[track_id] = tuple((n, 1.0) for n in dict.fromkeys(n for n in names if n))
    return out


def _library(store: Store, taxonomy: Taxonomy) -> dict[int, Candidates]:
    """The track's own genres, else its album's, as taxonomy matches (exact 1.0, fuzzy less)."""
    originals = {
        (target, kind, item_id): original
        for target, kind, item_id, original in store.conn.execute(
            "SELECT target, item_kind, item_id, original FROM writebacks WHERE field = 'genre'"
            " AND written IS NOT NULL AND reverted_at IS NULL AND manual_at IS NULL"
        )
    }
    out: dict[int, Candidates] = {}
    rows = store.conn.execute(
        "SELECT id, source, source_id, album_source_id, genres, album_genres FROM tracks"
        " WHERE removed = 0"
    )
    for track_id, source, source_id, album_id, genres, album_genres in rows:
        own = originals.get((source, "track", source_id), genres)
        album = (
            originals.get((source, "album", album_id), album_genres) if album_id else album_genres
        )
        for raw in (own, album):
            matches = taxonomy.match([str(g) for g in _json_list(raw)])
            if matches:
                out[track_id] = tuple((m.name, m.confidence) for m in matches)
                break
    return out


def _predicted(store: Store, taxonomy: Taxonomy, classifier: str) -> dict[int, Candidates]:
    """A classifier's genre predictions, best first, canonical names only."""
    out: dict[int, Candidates] = {}
    rows = store.conn.execute(
        "SELECT p.track_id, p.labels FROM predictions p JOIN tracks t ON t.id = p.track_id"
        " WHERE p.classifier = ? AND p.label_set = 'genre' AND t.removed = 0",
        (classifier,),
    )
    for track_id, labels in rows:
        found: dict[str, float] = {}
        for item in _json_list(labels):
            if not (isinstance(item, list) and len(item) == 2):
                continue
            name, confidence = item
            matched = taxonomy.match(str(name))
            if matched and isinstance(confidence, int | float):
                found.setdefault(matched[0].name, float(confidence))
        if found:
            out[track_id] = tuple(sorted(found.items(), key=lambda kv: -kv[1]))
    return out


def _json_list(text: Any) -> list[Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return []
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------- groups


def grouped_tracks(store: Store, ids: Sequence[int]) -> list[GroupedTrack]:
    """What the split groups by, for `ids`, in their order."""
    found: dict[int, GroupedTrack] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            "SELECT id, source, album_source_id, album, album_artist, artist, artist_source_id"
            f" FROM tracks WHERE id IN ({marks})",
            chunk,
        )
        for row in rows:
            found[row[0]] = GroupedTrack(*row)
    return [found.get(i, GroupedTrack(i)) for i in wanted]


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureTable:
    """Tracks that have a vector of every extractor asked, side by side in one matrix."""

    track_ids: list[int]
    matrix: np.ndarray  # n × sum of dims, float32
    features: tuple[FeatureSet, ...]
    incomplete: int  # tracks with some of the extractors' vectors, not all
    non_finite: int  # tracks left out for NaN or infinite values


def extract_hint(extractor: str) -> str:
    if extractor.startswith("tagger-"):
        return "enable the tagger classifier (embeddings: true) and run `genred classify`"
    return f"run `genred extract --extractor {extractor}`"


def feature_table(store: Store, extractors: Sequence[str]) -> FeatureTable:
    """The stored vectors of `extractors` (one version each) for training.

    Raises TrainingError when an extractor has no vectors, or vectors of more than one
    version (a model must be trained and used on one)."""
    import numpy as np

    chosen: list[FeatureSet] = []
    parts: list[tuple[list[int], np.ndarray]] = []
    for name in dict.fromkeys(extractors):
        stored = features_q.versions(store, name)
        if not stored:
            raise TrainingError(
                f"no features of extractor {name!r} are stored: {extract_hint(name)} first"
            )
        if len(stored) > 1:
            latest = features_q.latest_version(store, name)
            listed = ", ".join(f"{v} ({n} tracks)" for v, n in sorted(stored.items()))
            raise TrainingError(
                f"the stored features of {name!r} are of {len(stored)} versions ({listed}): "
                f"{extract_hint(name)} until every track has the latest ({latest}), so the "
                "model is trained on one version"
            )
        version = next(iter(stored))
        try:
            ids, matrix = features_q.load_matrix(store, name, version)
        except ValueError as exc:
            raise TrainingError(f"features of {name!r} are unusable: {exc}") from None
        if not ids:
            raise TrainingError(
                f"no active track has features of {name!r}: {extract_hint(name)} first"
            )
        chosen.append(FeatureSet(extractor=name, version=version, dims=int(matrix.shape[1])))
        parts.append((ids, matrix))
    common = sorted(set.intersection(*(set(ids) for ids, _ in parts)))
    union = set().union(*(set(ids) for ids, _ in parts))
    columns = []
    for ids, matrix in parts:
        row = {track_id: i for i, track_id in enumerate(ids)}
        columns.append(matrix[[row[t] for t in common]])
    joined = (
        np.hstack(columns) if common else np.zeros((0, sum(f.dims for f in chosen)), np.float32)
    )
    finite = np.asarray(np.isfinite(joined).all(axis=1))
    return FeatureTable(
        track_ids=[t for t, ok in zip(common, finite, strict=True) if ok],
        matrix=joined[finite],
        features=tuple(chosen),
        incomplete=len(union) - len(common),
        non_finite=int((~finite).sum()),
    )


def stacked_features(
    store: Store, feature_set: Sequence[FeatureSet], ids: Sequence[int]
) -> tuple[list[int], np.ndarray, dict[int, str]]:
    """For prediction: the vectors of `feature_set` (exactly those versions) for `ids`.

    Returns the ids that have all of them (in the order of `ids`), their stacked matrix,
    and for each other id why not (which extractor is missing, or at another version)."""
    import numpy as np

    found: list[dict[int, np.ndarray]] = []
    missing: dict[int, str] = {}
    for spec in feature_set:
        got, matrix = features_q.load_matrix(store, spec.extractor, spec.version, ids)
        if matrix.size and matrix.shape[1] != spec.dims:
            raise TrainingError(
                f"features {spec.extractor} {spec.version} have {matrix.shape[1]} values, "
                f"the model expects {spec.dims}"
            )
        found.append(dict(zip(got, matrix, strict=True)))
        lacking = [i for i in ids if i not in found[-1] and i not in missing]
        other = _versions_of(store, spec.extractor, lacking)
        for track_id in lacking:
            if track_id in other:
                missing[track_id] = (
                    f"its {spec.extractor} features are version {other[track_id]}, the audio "
                    f"model was trained on {spec.version}: run `genred train` again"
                )
            else:
                missing[track_id] = (
                    f"no {spec.extractor} features ({spec.version}) yet: "
                    f"{extract_hint(spec.extractor)}"
                )
    complete = [i for i in dict.fromkeys(ids) if i not in missing]
    width = sum(spec.dims for spec in feature_set)
    if not complete:
        return [], np.zeros((0, width), dtype=np.float32), missing
    matrix = np.hstack([np.stack([part[i] for i in complete]) for part in found])
    return complete, matrix.astype(np.float32), missing


def _versions_of(store: Store, extractor: str, ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            f"SELECT track_id, version FROM features WHERE extractor = ? AND track_id IN ({marks})",
            [extractor, *chunk],
        )
        out.update(dict(rows))
    return out
