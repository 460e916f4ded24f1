"""`train.auto`: retrain by itself once people taught genred enough, keep only what is
not worse.

The corrections people make (overrides from the dashboard, the API, `genred override`,
accepted reviews) are the most trusted training labels. When at least
`train.auto.min_new_labels` of them arrived since the current model was trained, the
daemon's `train` job (on `schedule.train`) trains a new one; it becomes current only if
its held-out macro-F1 is not worse than the current model's (as each card reports it:
the two held-out splits differ, since the new labels change the data). Either way the
new model is stored and its card says why it was or was not made current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..errors import ModelUnavailable
from ..progress import Progress
from ..store import Store, overrides
from . import registry
from .card import ModelCard
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


def not_worse_than(previous: ModelCard | None) -> Callable[[ModelCard], tuple[bool, str]]:
    """The rule: a new model is kept when its held-out macro-F1 is at least the previous's."""

    def keep(card: ModelCard) -> tuple[bool, str]:
        new = card.metrics.macro_f1
        if previous is None:
            return True, f"kept (train.auto): the first model, held-out macro-F1 {new:.3f}"
        old = previous.metrics.macro_f1
        if new >= old:
            return True, (
                f"kept (train.auto): held-out macro-F1 {new:.3f} is not worse than "
                f"{old:.3f} of {previous.version}"
            )
        return False, (
            f"not made current (train.auto): held-out macro-F1 {new:.3f} is worse than "
            f"{old:.3f} of {previous.version}, which stays current"
        )

    return keep


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
    previous = registry.read_card(config.data_dir, labels.model) if labels.model else None
    trained = train_audio_model(
        store, config, progress=progress, say=say, keep=not_worse_than(previous)
    )
    kept = registry.current_version(config.data_dir) == trained.card.version
    return AutoResult(labels, trained, kept, trained.card.auto_train)
