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
    `method` says when the split was too small for that and it is in-sample. A fit that
    makes the ECE worse is dropped: `temperature` is then 1 (the raw softmax), and
    `fitted_temperature` and `dropped` keep what was fitted and why it is not used."""

    temperature: float = Field(gt=0)  # what predictions use
    ece_before: float
    ece_after: float  # with the fitted temperature
    method: str
    fitted_temperature: float | None = None  # only when the fit was dropped
    dropped: str | None = None  # why the fitted temperature is not used

    @property
    def applied(self) -> bool:
        return self.dropped is None


class Activation(CardModel):
    """Whether this model became `current`, and the figures that decided it: its held-out
    macro-F1 must beat the majority-class baseline's and be no worse than the current
    model's on the same held-out tracks (`genred.training.activation.decide_activation`)."""

    activated: bool
    reason: str
    macro_f1: float  # the new model's, on its held-out split
    baseline_macro_f1: float  # the training part's most common class, predicted for all
    current_version: str | None = None  # the model that was current when this one was trained
    current_macro_f1: float | None = None  # that model on the same held-out tracks
    current_unclassified: int = 0  # held-out tracks it could not classify (features)
    forced: bool = False  # `genred train --force`


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
    activation: Activation | None = None  # None on cards written before genred checked it
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
