"""Classifier `audio-model`: genres from stored audio features, by the model `genred train`
fitted on this library (pip install 'genred[ml]').

It uses the data dir's current model (or the one pinned by `version`), and its `version`
is that model's, so a newly trained model classifies every track again. Each track needs
the features the model was trained on, at the same extractor versions. A track lacking
one is `Unclassified` with the reason (extract it; or retrain, when the extractor's
version moved on): the classify stage records that and asks again after a backoff (or as
soon as the features are stored), so the track is classified once its features are there
instead of being passed over. When the features can never be computed from the file as
it is (its extractor recorded a permanent failure: too short, not audio), the failure is
permanent: recorded once and skipped until the file changes. Labels
are the model's top-k classes with temperature-calibrated probabilities (they sum to 1
over all classes).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from threading import Event
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.api import (
    FeaturesMissing,
    ModelUnavailable,
    PluginContext,
    PluginUnavailable,
    Prediction,
    Store,
    TrackRecord,
    Unclassified,
    failures,
    get_logger,
)
from genred.api import features as features_q
from genred.api import model_registry as registry

log = get_logger("genred.classify")
NEEDS = ("numpy", "torch")


class AudioModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str | None = Field(
        None, description="a stored model version to use (null: the current one)"
    )
    top_k: int = Field(5, ge=1, le=100, description="labels stored per track")
    batch_tracks: int = Field(500, ge=1, le=100000, description="tracks per classify batch")

    @field_validator("version")
    @classmethod
    def _a_version(cls, value: str | None) -> str | None:
        if value is not None and not registry.is_version(value):
            raise ValueError("a model version looks like 20260101-093000-1a2b3c4d")
        return value


class AudioModelClassifier:
    Config = AudioModelSettings
    uses_config = ("data_dir",)
    label_set = "genre"

    def __init__(self, settings: AudioModelSettings, context: PluginContext) -> None:
        missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
        if missing:
            raise PluginUnavailable(
                f"plugin 'audio-model' (classifiers) needs {', '.join(missing)}: "
                "install it with pip install 'genred[ml]'"
            )
        self.settings = settings
        self.batch_size = settings.batch_tracks
        self.data_dir = context.data_dir
        self.store = context.store
        try:
            wanted = self._wanted()
            if wanted is None:
                raise ModelUnavailable(
                    f"no audio model is trained yet (in {registry.models_dir(self.data_dir)}): "
                    "run `genred train`"
                )
            self.model = registry.load_model(self.data_dir, wanted)
        except ModelUnavailable as exc:
            raise PluginUnavailable(str(exc)) from None

    def _wanted(self) -> str | None:
        return self.settings.version or registry.current_version(self.data_dir)

    @property
    def version(self) -> str:
        """The model's version; a newly trained current model is loaded here, so the
        stage's version and the model that classifies always match."""
        try:
            wanted = self._wanted()
            if wanted is not None and wanted != self.model.version:
                self.model = registry.load_model(self.data_dir, wanted)
                log.info("audio model loaded", version=wanted)
        except ModelUnavailable as exc:
            log.warning(
                "keeping the audio model in use", version=self.model.version, error=str(exc)
            )
        return self.model.version

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        from genred.api import stacked_features

        store = store or self.store
        if store is None:
            raise PluginUnavailable("the audio-model classifier reads features from the store")
        model = self.model
        ids = [t.id for t in tracks if t.id is not None]
        found, matrix, missing = stacked_features(store, model.card.features, ids)
        upstream = [features_q.failure_stage(spec.extractor) for spec in model.card.features]
        never = failures.permanent(store, upstream, [str(i) for i in missing])
        for track_id in ids:
            if track_id not in missing:
                continue
            reason = never.get(str(track_id))
            if reason is None:
                error = FeaturesMissing(f"track {track_id}: {missing[track_id]}")
            else:
                error = FeaturesMissing(
                    f"track {track_id}: its features cannot be computed from its file ({reason})",
                    permanent=True,
                )
            yield Unclassified(track_id, error)
        if not found:
            return
        probabilities = model.probabilities(matrix)
        labels = model.card.labels
        top = min(self.settings.top_k, len(labels))
        for track_id, row in zip(found, probabilities, strict=True):
            best = _ranked(row)[:top]
            yield Prediction(track_id, "genre", tuple((labels[i], float(row[i])) for i in best))


def _ranked(row: Any) -> list[int]:
    """Class indices by probability, highest first (ties: label order)."""
    return sorted(range(len(row)), key=lambda i: (-float(row[i]), i))
