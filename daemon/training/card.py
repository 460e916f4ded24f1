"""The model card: everything stored beside a trained model's weights (`card.json`).

It is read back by `genred train --report` and by the `audio-model` classifier (labels,
feature set, architecture, temperature), so it is validated like any untrusted input.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

TASK = "single-label genre: each track is taught its primary genre; predictions rank all classes"


class CardModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FeatureSet(CardModel):
    """One extractor's vectors the model reads: which, at which version, how long."""

    extractor: str
    version: str
    dims: int = Field(ge=1)


class Architecture(CardModel):
    inputs: int = Field(ge=1)
    hidden: tuple[int, ...]
    classes: int = Field(ge=2)
    dropout: float = Field(ge=0, lt=1)


class ClassCount(CardModel):
    train: int
    test: int


class Metrics(CardModel):
    """On the held-out split (whole albums, or artists, the model never saw)."""

    accuracy: float
    macro_f1: float
    f1: dict[str, float]  # per class
    confusion: list[list[int]]  # rows: true class, columns: predicted, in `labels` order
    test_tracks: int


class Calibration(CardModel):
    """Temperature scaling (Guo et al. 2017) fitted on the held-out split by LBFGS on NLL.

    `ece_after` is measured cross-fitted (a temperature fitted on one half of the held-out
    albums, measured on the other, and back), so it is not flattered by its own fit;
    `method` says when the split was too small for that and it is in-sample."""

    temperature: float = Field(gt=0)
    ece_before: float
    ece_after: float
    method: str


class SplitInfo(CardModel):
    by: str
    test_fraction: float
    seed: int
    train_tracks: int
    test_tracks: int
    train_groups: int
    test_groups: int
    validation_tracks: int  # of the training part, for early stopping


class TrainingInfo(CardModel):
    epochs: int
    best_epoch: int
    learning_rate: float
    weight_decay: float
    batch_size: int
    class_weights: dict[str, float]


class ModelCard(CardModel):
    name: str = "audio-model"
    version: str
    created_at: str  # ISO 8601 UTC
    genred_version: str
    task: str = TASK
    labels: tuple[str, ...] = Field(min_length=2)
    counts: dict[str, ClassCount]
    label_sources: dict[str, int]  # source → tracks it labelled (of those trained and tested)
    dropped_labels: dict[str, int]  # labels with too few tracks → their count
    features: tuple[FeatureSet, ...] = Field(min_length=1)
    architecture: Architecture
    training: TrainingInfo
    split: SplitInfo
    metrics: Metrics
    calibration: Calibration
    left_out: dict[str, int] = Field(default_factory=dict)  # why labelled tracks were not used
    auto_train: str = ""  # train.auto: why it became the current model, or why not
    labels_read_at: str = ""  # when its labels were read: later overrides are new labels

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels repeat")
        if self.architecture.classes != len(self.labels):
            raise ValueError(f"{len(self.labels)} labels for {self.architecture.classes} outputs")
        if self.architecture.inputs != sum(f.dims for f in self.features):
            raise ValueError("the features' dims do not add up to the network's inputs")
        return self

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    def feature_names(self) -> list[str]:
        return [f.extractor for f in self.features]
