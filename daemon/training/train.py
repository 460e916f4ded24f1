"""One training run: stored features and labels → an evaluated, calibrated, stored model.

The model that is stored is the one evaluated: fitted on the training part only, so the
card's figures describe exactly what predicts. A validation part of the training albums
stops the fitting early; the held-out albums (or artists) give the metrics and the
temperature. Training reads the store and writes only files in the data dir.

Nothing worse than chance is installed: a class whose tracks all come from one album
(or artist) cannot be both trained on and held out, so it is dropped, and with fewer
than two classes left training refuses with the counts it needs; a temperature that
makes the calibration error worse is not applied; and the new model becomes `current`
only when `activation.decide_activation` says so (else it is stored, not activated).
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
from .activation import decide_activation, majority_baseline, score_current
from .card import (
    Activation,
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
from .split import group_keys, groups_per_class, split_groups

if TYPE_CHECKING:
    import numpy as np

VALIDATION_FRACTION = 0.15  # of the training part's groups, for early stopping
MIN_GROUPS = 2  # albums (or artists) a class needs: one to train on, one to hold out


@dataclass(frozen=True)
class Trained:
    card: ModelCard
    path: Path

    @property
    def activation(self) -> Activation:
        assert self.card.activation is not None  # every card train_audio_model writes has one
        return self.card.activation

    @property
    def activated(self) -> bool:
        return self.activation.activated


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
    force: bool = False,
) -> Trained:
    """Train on what the store holds, evaluate on held-out albums, calibrate, store, and
    activate it if it is good enough (`force`: whatever its figures; see `Trained.activation`).

    `features`: extractor names (default `train.features`). `say` gets one line per
    step. Raises TrainingError when the store cannot give a model worth having."""
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
    selection, single = _drop_single_group_classes(selection, examples, settings)
    if single:
        say(
            f"dropped, all tracks from a single {settings.split_by} (nothing to hold out): "
            + ", ".join(f"{k} ({v})" for k, v in single.items())
        )
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
    evaluation = evaluate(logits, y_test, selection.classes)
    test_ids = [selection.kept[i].track_id for i in parts.test]
    activation = decide_activation(
        evaluation.macro_f1,
        majority_baseline(examples.y[parts.train], y_test, len(selection.classes)),
        score_current(
            store,
            config.data_dir,
            test_ids,
            [selection.classes[int(i)] for i in y_test],
        ),
        force=force,
    )
    card = ModelCard(
        version=registry.new_version(created, weights + created.isoformat().encode()),
        created_at=created.isoformat(timespec="seconds"),
        genred_version=__version__,
        labels=selection.classes,
        counts=_counts(selection.classes, examples.y, parts),
        label_sources=source_counts(selection.kept),
        dropped_labels={**selection.dropped, **single},
        features=table.features,
        architecture=arch,
        training=_training_info(settings, fitted, selection.classes),
        split=_split_info(settings, examples.groups, parts),
        metrics=evaluation,
        calibration=calibrate(
            logits, y_test, [examples.groups[i] for i in parts.test], settings.seed
        ),
        left_out={
            "labelled_without_features": without_features,
            "incomplete_features": table.incomplete,
            "non_finite_features": table.non_finite,
            "rare_labels": sum(selection.dropped.values()),
            "single_group_labels": sum(single.values()),
        },
        activation=activation,
        labels_read_at=labels_read_at,
    )
    path = registry.save(
        config.data_dir, card, weights, settings.keep_versions, activate=activation.activated
    )
    return Trained(card, path)


def _drop_single_group_classes(
    selection: ClassSelection, examples: Examples, settings: TrainConfig
) -> tuple[ClassSelection, dict[str, int]]:
    """Classes with fewer than MIN_GROUPS groups leave (label → tracks); TrainingError,
    with what each class has and needs, when fewer than two classes remain."""
    names = [item.label for item in selection.kept]
    offered = groups_per_class(names, examples.groups)
    tracks = {name: names.count(name) for name in selection.classes}
    single = {name: tracks[name] for name in selection.classes if offered[name] < MIN_GROUPS}
    if not single:
        return selection, {}
    classes = tuple(name for name in selection.classes if name not in single)
    if len(classes) < 2:
        unit = settings.split_by
        have = ", ".join(
            f"{name} {tracks[name]} tracks in {offered[name]} {unit}{'s' * (offered[name] != 1)}"
            for name in selection.classes
        )
        raise TrainingError(
            f"too little data for an honest held-out split: at least 2 classes need tracks "
            f"from {MIN_GROUPS} or more {unit}s each (one to train on, one to hold out), and "
            f"{len(classes)} {'has' if len(classes) == 1 else 'have'} them; have: {have}. "
            f"Label tracks of more {unit}s (or split_by: album, when it is artist)"
        )
    kept = tuple(item for item in selection.kept if item.label not in single)
    return ClassSelection(classes, kept, dict(selection.dropped)), single


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
    2-fold cross-fitted over the held-out groups (in-sample when there is only one). A
    temperature that makes the ECE worse is dropped (temperature 1, the fit kept aside)."""
    import numpy as np

    temperature = round(fit_temperature(logits, y), 4)
    before = round(metrics.expected_calibration_error(softmax(logits), y), 4)
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
    after = round(metrics.expected_calibration_error(probabilities, y), 4)
    if after > before:  # the fit does not generalize even across the held-out albums
        return Calibration(
            temperature=1.0,
            ece_before=before,
            ece_after=after,
            method=method,
            fitted_temperature=temperature,
            dropped=f"the fitted temperature {temperature:g} makes the ECE worse "
            f"({before:.3f} before, {after:.3f} after): not applied",
        )
    return Calibration(temperature=temperature, ece_before=before, ece_after=after, method=method)


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
