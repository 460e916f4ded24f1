"""`train.auto`: retrain by itself once people taught genred enough, keep only what is
not worse.

The corrections people make (overrides from the dashboard, the API, `genred override`,
accepted reviews) are the most trusted training labels. When at least
`train.auto.min_new_labels` of them arrived since the current model was trained, the
daemon's `train` job (on `schedule.train`) trains a new one; it becomes current only by
the rule every training follows (`activation.decide_activation`: it beats the majority
baseline and is not worse than the current model on the same held-out tracks). Either
way the new model is stored and its card says why it was or was not made current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..errors import ModelUnavailable
from ..progress import Progress
from ..store import Store, overrides
from . import registry
from .train import Trained, train_audio_model


@dataclass(frozen=True)
class LabelsSince:
    """How many manual labels the current model has not seen."""

    new: int
    model: str | None  # the current model's version (None: none trained yet)
    since: str | None  # when it was trained


def labels_since_current(store: Store, config: Config) -> LabelsSince:
    try:
        version = registry.current_version(config.data_dir)
        card = registry.read_card(config.data_dir, version) if version else None
    except ModelUnavailable:
        version, card = None, None
    since = (card.labels_read_at or card.created_at) if card else None
    return LabelsSince(overrides.new_labels(store, since), version, since)


@dataclass(frozen=True)
class AutoResult:
    labels: LabelsSince
    trained: Trained | None = None  # None: not enough new labels, nothing trained
    kept: bool = False
    reason: str = ""


def retrain_if_due(
    store: Store,
    config: Config,
    *,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
) -> AutoResult:
    """Train when enough new labels arrived; keep the model only if it is not worse."""
    labels = labels_since_current(store, config)
    wanted = config.train.auto.min_new_labels
    if labels.new < wanted:
        return AutoResult(
            labels,
            reason=f"{labels.new} new labels since "
            f"{'model ' + labels.model if labels.model else 'the start'}; "
            f"train.auto waits for {wanted}",
        )
    trained = train_audio_model(store, config, progress=progress, say=say)
    reason = trained.activation.reason if trained.activation else ""
    return AutoResult(labels, trained, trained.activated, f"train.auto: {reason}")
