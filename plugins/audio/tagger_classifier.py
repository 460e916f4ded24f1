"""Classifier `tagger`: genres and moods from the sound, with a pretrained ONNX tagger.

Offline out of the box: the two musicnn models ship with genred (`msd-musicnn`, the
default: Last.fm genres, moods, eras; `mtt-musicnn`: instruments, vocals, tempo). Another
model is a spec file (`model: /path/to/spec.yaml`, or a fetchable one from
`genred models list`). Each track is decoded at the spec's sample rate, `seconds` of it
from the middle (the whole track when null), cut into the spec's patches (silent ones
skipped), tagged, and the tags mapped to canonical genres (label set "genre"), moods
("mood") and other labels ("tags", e.g. Female Vocals, 1980s) by the spec's mapping.
Confidences are the model's own clip-level probabilities (independent sigmoids, so they
do not sum to 1). The clip's mean embedding is stored in `features` as extractor
`tagger-<model>`, for a classifier trained on it later.

A file that cannot be decoded is `Unclassified` (retried after a backoff, or, for a
permanent reason such as not audio, once the file changes); so is one shorter than one
patch (about 3 s: `AudioTooShort`, permanent). A track with no local path, or silent, gets
no prediction. A clip with no embedding (too short, silent) records why as a permanent
failure of its features (`extract:tagger-<model>`), so a classifier trained on them
(`audio-model`) skips it instead of retrying it day after day.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from threading import Event
from typing import Any

import numpy as np
import soundfile  # noqa: F401  (decoding needs it: a missing extra is reported at load)
import soxr  # noqa: F401
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.api import (
    AudioSilent,
    AudioTooShort,
    GenredError,
    PluginContext,
    Prediction,
    Store,
    TrackRecord,
    Unclassified,
    failures,
    file_fingerprint,
    get_logger,
    local_audio_path,
    raise_if_cancelled,
    taxonomy_from_config,
)
from genred.api import features as features_q

from .decode import load_audio, probe_duration
from .numba_cache import configure_numba_cache
from .tagging.meaning import ranked as ranked_labels
from .tagging.meaning import tag_meaning
from .tagging.model import SILENCE_DBFS, OnnxTagger
from .tagging.spec import ModelSpecError, resolve_spec

log = get_logger("genred.classify")


class TaggerOutputError(GenredError):
    """The model gave values that are not probabilities (NaN/inf) for a track."""


class TaggerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "msd-musicnn", description="a model name from `genred models list`, or a spec file path"
    )
    seconds: float | None = Field(
        60.0,
        ge=3.0,
        description="audio analysed per track, from its middle (60 s = 20 musicnn patches); "
        "null = the whole track",
    )
    threshold: float = Field(0.1, ge=0, le=1, description="labels below this are left out")
    top_k: int = Field(5, ge=1, le=50, description="labels kept per label set")
    tags: bool = Field(True, description='also store other labels (vocals, eras) as set "tags"')
    silence_dbfs: float | None = Field(
        SILENCE_DBFS, le=0, description="patches quieter than this (RMS) are skipped; null = keep"
    )
    embeddings: bool = Field(True, description="store the clip embedding in `features`")
    batch_patches: int = Field(
        1, ge=1, le=4096, description="patches per inference call (1 is fastest on a CPU)"
    )
    threads: int = Field(1, ge=1, le=64, description="onnxruntime threads (intra-op)")
    batch_tracks: int = Field(
        20, ge=1, le=5000, description="tracks per classify batch (stored per batch)"
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        try:
            resolve_spec(value)  # `genred config check` names an unknown model or a bad spec
        except ModelSpecError as exc:
            raise ValueError(str(exc)) from None
        return value


class TaggerClassifier:
    Config = TaggerSettings
    label_set = "genre"

    def __init__(self, settings: TaggerSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context
        self.batch_size = settings.batch_tracks
        configure_numba_cache(context.data_dir)  # librosa's numba cache, before numba loads
        loaded = resolve_spec(settings.model)
        self.tagger = OnnxTagger(loaded, context.data_dir, threads=settings.threads)
        taxonomy = taxonomy_from_config(context.config.taxonomy)
        self.meaning = tag_meaning(loaded.spec, self.tagger.tags, taxonomy)
        if self.meaning.unmapped_genres:
            log.warning(
                "tagger genres the taxonomy does not know are left out",
                model=loaded.name,
                genres=sorted(set(self.meaning.unmapped_genres)),
            )
        s = settings
        self.feature_extractor = f"tagger-{loaded.name}"
        self.feature_version = _digest([loaded.digest, s.seconds, s.silence_dbfs])
        self.version = "1-" + _digest(
            [
                self.feature_version,
                s.threshold,
                s.top_k,
                s.tags,
                sorted((k, sorted(v.items())) for k, v in self.meaning.by_set.items()),
            ]
        )

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        embeddings: list[tuple[int, np.ndarray]] = []
        for track in tracks:
            raise_if_cancelled(cancel, "classify (tagger)")
            if track.id is None:
                continue
            path = local_audio_path(track, self._sources())
            if path is None:
                continue  # nothing to listen to: no prediction until the track changes
            try:
                samples = self._samples(path)
                clip = self.tagger.tag(
                    samples,
                    min_dbfs=self.settings.silence_dbfs,
                    batch_patches=self.settings.batch_patches,
                )
                if clip is not None and not np.isfinite(clip.probs).all():
                    raise TaggerOutputError(f"{path}: the model gave non-finite tag values")
                if clip is None and not self.tagger.choose_patches(samples, None):
                    raise self._too_short(path, samples)
            except Exception as exc:  # one bad file must not stop the batch
                if isinstance(exc, AudioTooShort):
                    self._no_embedding(store, track.id, path, exc)
                yield Unclassified(track.id, exc)
                continue
            if clip is None:  # silent: nothing to say, and nothing to embed
                silent = AudioSilent(f"{path}: silent where the tagger listens")
                self._no_embedding(store, track.id, path, silent)
                continue
            yield from self._predictions(track.id, clip.probs)
            if clip.embedding is not None and np.isfinite(clip.embedding).all():
                embeddings.append((track.id, clip.embedding))
        if store is not None and embeddings and self.settings.embeddings:
            features_q.write(store, self.feature_extractor, self.feature_version, embeddings)

    def _too_short(self, path: Path, samples: np.ndarray) -> AudioTooShort:
        spec = self.tagger.spec
        rate = spec.audio.sample_rate
        edge = 0 if spec.mel.center else spec.mel.n_fft
        patch_s = ((spec.patch.frames - 1) * spec.mel.hop_length + edge) / rate
        return AudioTooShort(
            f"{path}: {len(samples) / rate:.1f} s of audio, shorter than one "
            f"{self.feature_extractor} patch ({patch_s:.1f} s)"
        )

    def _no_embedding(
        self, store: Store | None, track_id: int, path: Path, reason: Exception
    ) -> None:
        """Why this track has no embedding, for the classifiers that would use it."""
        if store is None or not self.settings.embeddings:
            return
        failures.record(
            store,
            features_q.failure_stage(self.feature_extractor),
            str(track_id),
            reason,
            fingerprint=file_fingerprint(path),
        )

    def _sources(self) -> Mapping[str, Any]:
        """The enabled sources, which say where their files are on this machine."""
        return self.context.plugins.of("sources") if self.context.plugins is not None else {}

    def _samples(self, path: Path) -> np.ndarray:
        """The analysed stretch: `seconds` from the middle of the track, or all of it."""
        rate = self.tagger.spec.audio.sample_rate
        seconds = self.settings.seconds
        if seconds is None:
            return load_audio(path, sr=rate)[0]
        total = probe_duration(path)
        offset = max(0.0, (total - seconds) / 2) if total and math.isfinite(total) else 0.0
        return load_audio(path, sr=rate, offset=offset, duration=seconds)[0]

    def _predictions(self, track_id: int, probs: np.ndarray) -> Iterator[Prediction]:
        sets = ("genre", "mood", "tags") if self.settings.tags else ("genre", "mood")
        for label_set in sets:
            labels = ranked_labels(
                probs, self.meaning.by_set[label_set], self.settings.threshold, self.settings.top_k
            )
            if labels:
                yield Prediction(track_id, label_set, labels)


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
