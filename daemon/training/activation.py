"""Whether a newly trained model may become `current`: the one rule, and its figures.

A model is activated only when its held-out macro-F1 beats the majority-class baseline
(the training part's most common class guessed for every held-out track: what a model
that learnt nothing scores) and is no worse than the current model's on the very same
held-out tracks. Otherwise it is stored but not activated, and its card says why.
`decide_activation` is the rule (pure: figures in, verdict out), for `genred train` and
for scheduled retraining alike; `majority_baseline` and `score_current` measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GenredError
from . import metrics, registry
from .card import Activation

if TYPE_CHECKING:
    import numpy as np

    from ..store import Store

UNCLASSIFIED = "(unclassified)"  # what the current model "predicts" for a track it cannot read


@dataclass(frozen=True)
class CurrentScore:
    """The current model on the new model's held-out tracks. `macro_f1` is None when it
    could not be measured (`problem` says why); `unclassified`: tracks it lacks features
    for (counted as wrong: classify cannot give them a prediction either)."""

    version: str
    macro_f1: float | None
    unclassified: int = 0
    problem: str | None = None


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray, n_classes: int) -> float:
    """Macro-F1 of guessing the training part's most common class (ties: the first) for
    every held-out track."""
    import numpy as np

    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)
    guess = np.full(len(y_test), int(np.argmax(counts)), dtype=np.int64)
    return round(metrics.macro_f1(np.asarray(y_test), guess, n_classes), 4)


def score_current(
    store: Store, data_dir: Path, track_ids: Sequence[int], labels: Sequence[str]
) -> CurrentScore | None:
    """The current model's macro-F1 on `track_ids`, whose true labels are `labels`; None
    when there is no current model. Classes either model knows count (a label the current
    model never learnt is a miss for it, as is a track it has no features for)."""
    import numpy as np

    from ..errors import ModelUnavailable
    from .dataset import stacked_features

    try:
        version = registry.current_version(data_dir)
    except ModelUnavailable as exc:
        return CurrentScore("?", None, problem=str(exc))
    if version is None:
        return None
    try:
        model = registry.load_model(data_dir, version)
        found, matrix, missing = stacked_features(store, model.card.features, track_ids)
    except GenredError as exc:
        return CurrentScore(version, None, problem=str(exc))
    predicted = dict.fromkeys(track_ids, UNCLASSIFIED)
    if found:
        names = model.card.labels
        for track_id, row in zip(found, model.probabilities(matrix), strict=True):
            predicted[track_id] = names[int(np.argmax(row))]
    space = list(dict.fromkeys([*labels, *model.card.labels, UNCLASSIFIED]))
    index = {name: i for i, name in enumerate(space)}
    y_true = np.array([index[name] for name in labels], dtype=np.int64)
    y_pred = np.array([index[predicted[t]] for t in track_ids], dtype=np.int64)
    return CurrentScore(
        version,
        round(metrics.macro_f1(y_true, y_pred, len(space)), 4),
        unclassified=len(missing),
    )


def decide_activation(
    macro_f1: float,
    baseline_macro_f1: float,
    current: CurrentScore | None = None,
    *,
    force: bool = False,
) -> Activation:
    """The rule: activate when `macro_f1` > `baseline_macro_f1` and, when the current
    model could be measured, `macro_f1` >= its macro-F1 on the same tracks. `force`
    activates whatever the figures (and says so)."""
    beats_baseline = macro_f1 > baseline_macro_f1
    current_f1 = current.macro_f1 if current is not None else None
    not_worse = current_f1 is None or macro_f1 >= current_f1
    mine = f"held-out macro-F1 {macro_f1:.3f}"
    if not beats_baseline:
        reason = (
            f"{mine} does not beat the majority-class baseline's {baseline_macro_f1:.3f} "
            "(always guessing the most common class)"
        )
    elif not not_worse and current is not None:
        reason = (
            f"{mine} is worse than the current model {current.version}'s "
            f"{current_f1:.3f} on the same held-out tracks"
        )
    else:
        reason = f"{mine} beats the majority-class baseline's {baseline_macro_f1:.3f}"
        if current is None:
            reason += "; no model was current"
        elif current_f1 is not None:
            reason += (
                f" and is not worse than the current model {current.version}'s {current_f1:.3f}"
            )
        else:
            reason += (
                f"; the current model {current.version} could not be compared: {current.problem}"
            )
    good = beats_baseline and not_worse
    if force and not good:
        reason = f"activated by --force although its {reason}"
    return Activation(
        activated=good or force,
        reason=reason,
        macro_f1=macro_f1,
        baseline_macro_f1=baseline_macro_f1,
        current_version=current.version if current is not None else None,
        current_macro_f1=current_f1,
        current_unclassified=current.unclassified if current is not None else 0,
        forced=force and not good,
    )
