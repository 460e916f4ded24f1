"""One training run: stored features and labels → an evaluated, calibrated, stored model.

The model that is stored is the one evaluated: fitted on the training part only, so the
card's figures describe exactly what predicts. A validation part of the training albums
stops the fitting early; the held-out albums (or artists) give the metrics and the
temperature. Training reads the store and writes only files in the data dir.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..config import Config, TrainConfig
from ..errors import TrainingError
from ..progress import NullProgress, Progress
from ..store import Store, utcnow
from ..taxonomy import taxonomy_from_config
from . import metrics, registry
from .card import (
    Architecture,
    Calibration,
    ClassCount,
    Metrics,
    ModelCard,
    SplitInfo,
    TrainingInfo,
)
from .dataset import FeatureTable, feature_table, grouped_tracks, label_inputs
from .labels import ClassSelection, assemble_labels, select_classes, source_counts
from .model import (
    FitSettings,
    Fitted,
    fit,
    fit_temperature,
    network_logits,
    softmax,
    state_to_bytes,
)
from .split import group_keys, split_groups

if TYPE_CHECKING:
    import numpy as np

VALIDATION_FRACTION = 0.15  # of the training part's groups, for early stopping


@dataclass(frozen=True)
class Trained:
    card: ModelCard
    path: Path


@dataclass(frozen=True)
class Examples:
    """The labelled tracks as arrays; rows in the order of `selection.kept`."""

    x: np.ndarray
    y: np.ndarray  # class index
    weight: np.ndarray  # the label source's weight
    groups: list[str]  # album (or artist) key


@dataclass(frozen=True)
class Parts:
    """Row indices: fitted on, watched for early stopping, held out for the evaluation."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    @property
    def train(self) -> np.ndarray:
        import numpy as np

        return np.sort(np.concatenate([self.fit, self.validation]))


def train_audio_model(
    store: Store,
    config: Config,
    *,
    features: Sequence[str] | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
    now: datetime | None = None,
    keep: Callable[[ModelCard], tuple[bool, str]] | None = None,
) -> Trained:
    """Train on what the store holds, evaluate on held-out albums, calibrate, store.

    `features`: extractor names (default `train.features`). `say` gets one line per
    step. `keep(card)` says whether the new model becomes the current one, and why (the
    reason goes into its card); default: it does. Raises TrainingError when the store
    cannot give a model worth having."""
    settings = config.train
    say = say or (lambda _text: None)
    progress = progress or NullProgress()
    table = feature_table(store, list(features or settings.features))
    say(
        "features: "
        + ", ".join(f"{f.extractor} {f.version} ({f.dims} values)" for f in table.features)
        + f"; {len(table.track_ids)} tracks have all of them"
    )
    labels_read_at = utcnow()
    inputs = label_inputs(store, taxonomy_from_config(config.taxonomy), settings.labels)
    labelled = assemble_labels(inputs, settings.labels, table.track_ids)
    without_features = len(assemble_labels(inputs, settings.labels)) - len(labelled)
    selection = select_classes(labelled, settings.min_examples)
    say(
        f"labels: {len(labelled)} of those tracks have one ("
        + ", ".join(f"{k} {v}" for k, v in source_counts(labelled).items())
        + f"); {without_features} labelled tracks lack features"
    )
    if selection.dropped:
        rare = ", ".join(f"{k} ({v})" for k, v in selection.dropped.items())
        say(f"dropped, fewer than {settings.min_examples} tracks: {rare}")
    if len(selection.classes) < 2:
        raise TrainingError(_too_few(selection.classes, len(labelled), settings.min_examples))

    examples = _examples(store, table, selection, settings.split_by)
    parts = _parts(selection, examples, settings)
    say(
        f"classes: {len(selection.classes)}; split by {settings.split_by}: {len(parts.fit)} "
        f"tracks to fit, {len(parts.validation)} to stop early, {len(parts.test)} held out "
        f"({len({examples.groups[i] for i in parts.test})} {settings.split_by}s)"
    )
    arch = Architecture(
        inputs=int(examples.x.shape[1]),
        hidden=tuple(settings.hidden),
        classes=len(selection.classes),
        dropout=settings.dropout,
    )
    progress.start("train (epochs)", total=settings.epochs)
    fitted = fit(
        arch,
        FitSettings(
            epochs=settings.epochs,
            patience=settings.patience,
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            batch_size=settings.batch_size,
            seed=settings.seed,
        ),
        (examples.x[parts.fit], examples.y[parts.fit], examples.weight[parts.fit]),
        (examples.x[parts.validation], examples.y[parts.validation])
        if len(parts.validation)
        else None,
        on_epoch=lambda _epoch, _loss: progress.advance(1),
    )
    progress.finish(f"{fitted.epochs} epochs; kept the weights of epoch {fitted.best_epoch}")

    logits = network_logits(arch, fitted.state, examples.x[parts.test])
    y_test = examples.y[parts.test]
    weights = state_to_bytes(fitted.state)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    card = ModelCard(
        version=registry.new_version(created, weights + created.isoformat().encode()),
        created_at=created.isoformat(timespec="seconds"),
        genred_version=__version__,
        labels=selection.classes,
        counts=_counts(selection.classes, examples.y, parts),
        label_sources=source_counts(selection.kept),
        dropped_labels=selection.dropped,
        features=table.features,
        architecture=arch,
        training=_training_info(settings, fitted, selection.classes),
        split=_split_info(settings, examples.groups, parts),
        metrics=evaluate(logits, y_test, selection.classes),
        calibration=calibrate(
            logits, y_test, [examples.groups[i] for i in parts.test], settings.seed
        ),
        left_out={
            "labelled_without_features": without_features,
            "incomplete_features": table.incomplete,
            "non_finite_features": table.non_finite,
            "rare_labels": sum(selection.dropped.values()),
        },
        labels_read_at=labels_read_at,
    )
    activate = True
    if keep is not None:
        activate, why = keep(card)
        card = card.model_copy(update={"auto_train": why})
    path = registry.save(config.data_dir, card, weights, settings.keep_versions, activate=activate)
    return Trained(card, path)


def _examples(
    store: Store, table: FeatureTable, selection: ClassSelection, split_by: str
) -> Examples:
    import numpy as np

    position = {name: i for i, name in enumerate(selection.classes)}
    row_of = {track_id: i for i, track_id in enumerate(table.track_ids)}
    kept = selection.kept
    tracks = grouped_tracks(store, [item.track_id for item in kept])
    return Examples(
        x=table.matrix[[row_of[item.track_id] for item in kept]].astype(np.float64),
        y=np.array([position[item.label] for item in kept], dtype=np.int64),
        weight=np.array([item.weight for item in kept], dtype=np.float64),
        groups=group_keys(tracks, split_by),
    )


def _parts(selection: ClassSelection, examples: Examples, settings: TrainConfig) -> Parts:
    """Held-out groups first; then, of the rest, a validation part (also whole groups)."""
    import numpy as np

    names = [item.label for item in selection.kept]
    held = split_groups(names, examples.groups, settings.test_fraction, settings.seed)
    if not held.test:
        raise TrainingError(
            f"nothing can be held out for an honest evaluation: each class's tracks come "
            f"from a single {settings.split_by}; label tracks of more {settings.split_by}s"
        )
    train = np.array(held.train, dtype=np.int64)
    inner = split_groups(
        [names[i] for i in train],
        [examples.groups[i] for i in train],
        VALIDATION_FRACTION,
        settings.seed,
    )
    return Parts(
        fit=train[list(inner.train)],
        validation=train[list(inner.test)],
        test=np.array(held.test, dtype=np.int64),
    )


def evaluate(logits: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> Metrics:
    predicted = logits.argmax(axis=1)
    confusion = metrics.confusion_matrix(y, predicted, len(classes))
    f1 = metrics.f1_per_class(confusion)
    return Metrics(
        accuracy=round(metrics.accuracy(y, predicted), 4),
        macro_f1=round(metrics.macro_f1(y, predicted, len(classes)), 4),
        f1={name: round(float(v), 4) for name, v in zip(classes, f1, strict=True)},
        confusion=confusion.tolist(),
        test_tracks=len(y),
    )


def calibrate(logits: np.ndarray, y: np.ndarray, groups: Sequence[str], seed: int) -> Calibration:
    """Temperature fitted on all held-out tracks; ECE before it, and after it measured
    2-fold cross-fitted over the held-out groups (in-sample when there is only one)."""
    import numpy as np

    temperature = fit_temperature(logits, y)
    before = metrics.expected_calibration_error(softmax(logits), y)
    folds = _halves(groups, seed)
    method = "temperature scaling (LBFGS on NLL) on the held-out split"
    if folds is not None:
        probabilities = np.empty_like(logits)
        for fitted_on, measured in (folds, folds[::-1]):
            t = fit_temperature(logits[fitted_on], y[fitted_on])
            probabilities[measured] = softmax(logits[measured], t)
        method += "; ECE after: 2-fold cross-fitted over held-out groups"
    else:
        probabilities = softmax(logits, temperature)
        method += "; ECE after: in-sample (one held-out group: nothing to cross-fit)"
    return Calibration(
        temperature=round(temperature, 4),
        ece_before=round(before, 4),
        ece_after=round(metrics.expected_calibration_error(probabilities, y), 4),
        method=method,
    )


def _halves(groups: Sequence[str], seed: int) -> tuple[list[int], list[int]] | None:
    """Track indices in two halves of the (shuffled) groups; None for a single group."""
    names = sorted(set(groups))
    if len(names) < 2:
        return None
    random.Random(seed).shuffle(names)
    first = set(names[::2])
    return (
        [i for i, g in enumerate(groups) if g in first],
        [i for i, g in enumerate(groups) if g not in first],
    )


def _counts(classes: Sequence[str], y: np.ndarray, parts: Parts) -> dict[str, ClassCount]:
    return {
        name: ClassCount(
            train=int((y[parts.train] == i).sum()), test=int((y[parts.test] == i).sum())
        )
        for i, name in enumerate(classes)
    }


def _training_info(settings: TrainConfig, fitted: Fitted, classes: Sequence[str]) -> TrainingInfo:
    return TrainingInfo(
        epochs=fitted.epochs,
        best_epoch=fitted.best_epoch,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        batch_size=settings.batch_size,
        class_weights={
            name: round(v, 4) for name, v in zip(classes, fitted.class_weights, strict=True)
        },
    )


def _split_info(settings: TrainConfig, groups: Sequence[str], parts: Parts) -> SplitInfo:
    return SplitInfo(
        by=settings.split_by,
        test_fraction=settings.test_fraction,
        seed=settings.seed,
        train_tracks=len(parts.train),
        test_tracks=len(parts.test),
        train_groups=len({groups[i] for i in parts.train}),
        test_groups=len({groups[i] for i in parts.test}),
        validation_tracks=len(parts.validation),
    )


def _too_few(classes: Sequence[str], labelled: int, min_examples: int) -> str:
    have = f"only {len(classes)} ({', '.join(classes)})" if classes else "none"
    return (
        f"too few classes to train: {have} of the labels have at least {min_examples} "
        f"tracks with features ({labelled} labelled tracks in all); label more tracks "
        "(genres in the library, manual edits, the llm-metadata classifier), extract "
        "features for more of them, or lower train.min_examples"
    )
