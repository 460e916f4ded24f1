"""Sections that steer the stages: extract, decide, train, writeback, and the taxonomy."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .types import Duration, StrictModel

LOCAL_EXECUTOR = "local"


class ExtractConfig(StrictModel):
    """The file work of the extract and classify stages: where it runs (the local worker
    processes, or an executor plugin such as `ray`), a per-file time limit, commit size."""

    executor: str = Field(
        LOCAL_EXECUTOR,
        min_length=1,
        description="local: worker processes on this machine; or an executor plugin (ray)",
    )

    workers: int | None = Field(
        None, ge=1, le=256, description="worker processes decoding audio; null = CPU cores"
    )
    timeout: Duration = Field(
        timedelta(minutes=5), description="one file taking longer is stopped and recorded"
    )
    batch: int = Field(50, ge=1, le=10000, description="vectors per committed batch")

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


class CascadeTier(StrictModel):
    """One step of the decide cascade: these classifiers' votes, and when to stop here."""

    classifiers: list[str] = Field(min_length=1)
    accept: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="decided at this step when the best genre scores at least this; "
        "null: the last step (everything that voted)",
    )


class AlbumSmoothing(StrictModel):
    """A track whose genre differs from its album's needs more confidence."""

    enabled: bool = True
    margin: float = Field(0.2, ge=0.0, le=1.0, description="extra confidence to differ")
    min_tracks: int = Field(3, ge=2, description="albums with fewer decided tracks: no smoothing")
    min_share: float = Field(
        0.6, gt=0.5, le=1.0, description="the album's genre must be this share of its tracks'"
    )


class DecideConfig(StrictModel):
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    mood_min_confidence: float = Field(
        0.3, ge=0.0, le=1.0, description="moods are kept from this score (taggers are shy)"
    )
    max_genres: int = Field(3, ge=1, le=20)
    max_moods: int = Field(3, ge=0, le=20)
    weights: dict[str, float] = Field(
        default_factory=dict, description="classifier name → weight in the vote (default 1.0)"
    )
    cascade: list[CascadeTier] = Field(
        default_factory=list,
        description="cheap and confident first; later steps (audio) only where earlier ones "
        "stay below `accept`; empty: one weighted vote of every classifier",
    )
    album_smoothing: AlbumSmoothing = AlbumSmoothing()

    @model_validator(mode="after")
    def _cascade_order(self) -> DecideConfig:
        named = [c for tier in self.cascade for c in tier.classifiers]
        twice = sorted({c for c in named if named.count(c) > 1})
        if twice:
            raise ValueError(f"cascade: {', '.join(twice)} named in more than one step")
        if any(tier.accept is None for tier in self.cascade[:-1]):
            raise ValueError("cascade: only the last step may leave `accept` unset")
        return self


class LabelSource(StrictModel):
    """One source of training labels: its weight in the loss, the confidence it needs."""

    enabled: bool = True
    weight: float = Field(1.0, gt=0, le=10, description="sample weight of its labels")
    min_confidence: float = Field(0.0, ge=0, le=1, description="labels below it are not used")


class TrainLabelsConfig(StrictModel):
    """Where `genred train` takes labels, in order of trust (the first that has one wins)."""

    override: LabelSource = LabelSource()
    library: LabelSource = LabelSource()
    llm: LabelSource = LabelSource(weight=0.5, min_confidence=0.8)
    llm_classifier: str = Field("llm-metadata", description="whose predictions `llm` reads")


class AutoTrain(StrictModel):
    """Retraining by itself (`schedule.train` says when it looks): only once enough new
    manual labels arrived, and the new model is kept only if it is not worse."""

    enabled: bool = Field(False, description="opt-in")
    min_new_labels: int = Field(
        50, ge=1, description="overrides and accepted reviews since the current model"
    )


class TrainConfig(StrictModel):
    """`genred train`: the `audio-model` classifier fitted on stored features."""

    features: list[str] = Field(
        default_factory=lambda: ["handcrafted"], min_length=1, description="extractor names"
    )
    labels: TrainLabelsConfig = TrainLabelsConfig()
    min_examples: int = Field(20, ge=2, description="a label needs this many tracks to be a class")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held out for the evaluation")
    split_by: Literal["album", "artist"] = "album"
    seed: int = 0
    epochs: int = Field(200, ge=1, le=100000)
    patience: int = Field(20, ge=1, description="stop after this many epochs without progress")
    hidden: list[int] = Field(default_factory=lambda: [256], description="hidden layer widths")
    dropout: float = Field(0.3, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(1e-2, ge=0)
    batch_size: int = Field(64, ge=1, le=65536)
    keep_versions: int = Field(3, ge=1, description="trained models kept in the data dir")
    auto: AutoTrain = AutoTrain()

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(w < 1 or w > 65536 for w in value):
            raise ValueError("hidden layer widths must be between 1 and 65536")
        return value


Level = Literal["track", "album", "artist"]


class WritebackConfig(StrictModel):
    mode: Literal["append", "replace", "fill"] = "append"
    levels: list[Level] = Field(default_factory=lambda: list[Level](["track"]))
    dry_run: bool = False
    lock: bool = True
    batch_size: int = Field(100, ge=1, le=1000)
    labels_as: Literal["label", "mood"] = Field(
        "label", description="where decided custom labels (presets of kind label) go in Plex"
    )


class TaxonomyConfig(StrictModel):
    path: Path | None = Field(None, description="Use this genres.yaml instead of the built-in one")
    genres: dict[str, str | None] = Field(
        default_factory=dict, description="Extra canonical genres: name → parent (null = top)"
    )
    aliases: dict[str, str] = Field(default_factory=dict, description="raw text → canonical name")
    ignore: list[str] = Field(default_factory=list, description="raw texts that are no genre")
    whitelist: dict[str, bool] = Field(
        default_factory=dict, description="genre → written (false: folded into its parent)"
    )
