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

In the classify stage the tagging itself (`tag_file`: decode, patches, the ONNX model)
runs on the executor (`ClassifiesFiles`: the local worker processes, one file per worker,
or a cluster), and only the clip's tag values and embedding come back; the model file is
checked here when the plugin is built, and opened again in each worker.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    FileWork,
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
from .kernels import COMPILING, kernels_ready, warm_kernels
from .numba_cache import configure_numba_cache, use_numba_cache
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


@dataclass(frozen=True)
class FileTags:
    """What a worker sends back for one file: the clip's tag values and embedding."""

    probs: np.ndarray
    embedding: np.ndarray | None


class TaggerClassifier:
    Config = TaggerSettings
    label_set = "genre"

    def __init__(self, settings: TaggerSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context: PluginContext | None = context
        self.batch_size = settings.batch_tracks
        self.data_dir = context.data_dir
        # librosa's numba cache, before numba loads (here, and in the workers)
        self.numba_cache = configure_numba_cache(context.data_dir)
        loaded = resolve_spec(settings.model)
        self._tagger: OnnxTagger | None = OnnxTagger(
            loaded, context.data_dir, threads=settings.threads
        )
        self.spec = loaded
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

    @property
    def tagger(self) -> OnnxTagger:
        """The ONNX model: checked when the plugin is built, opened again in a worker."""
        if self._tagger is None:
            self._tagger = OnnxTagger(self.spec, self.data_dir, threads=self.settings.threads)
        return self._tagger

    def __getstate__(self) -> dict[str, Any]:
        """What a worker gets: the settings and the spec, not the session nor the context."""
        return {**self.__dict__, "_tagger": None, "context": None}

    # ------------------------------------------------------------------ hooks

    def warm_up_needed(self) -> str | None:
        """`WarmsUp`: librosa's kernels are compiled once, before the workers start."""
        return None if kernels_ready(self.numba_cache) else COMPILING

    def warm_up(self, cancel: Event | None = None) -> bool:
        return warm_kernels(self.numba_cache, cancel)

    def file_work(self) -> FileWork:
        """`ClassifiesFiles`: each file is tagged in a worker (`tag_file`)."""
        return FileWork("tag_file")

    def tag_file(self, path: Path) -> FileTags | None:
        """The clip's tag values and embedding; None when it is silent where the tagger
        listens; AudioTooShort when shorter than one patch."""
        use_numba_cache(self.numba_cache)
        samples = self._samples(path)
        clip = self.tagger.tag(
            samples,
            min_dbfs=self.settings.silence_dbfs,
            batch_patches=self.settings.batch_patches,
        )
        if clip is None:
            if not self.tagger.choose_patches(samples, None):
                raise self._too_short(path, samples)  # permanent: until the file changes
            return None  # silent
        if not np.isfinite(clip.probs).all():
            raise TaggerOutputError(f"{path}: the model gave non-finite tag values")
        return FileTags(clip.probs, clip.embedding)

    def classify_files(
        self,
        tracks: Sequence[TrackRecord],
        outcomes: Mapping[int, Any],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        """Predictions from what the workers sent back (and the embeddings stored)."""
        embeddings: list[tuple[int, np.ndarray]] = []
        for track in tracks:
            path = local_audio_path(track, self._sources())
            if track.id is None or path is None or track.id not in outcomes:
                continue  # nothing to listen to: no prediction until the track changes
            outcome = outcomes[track.id]
            if isinstance(outcome, Exception):  # one bad file must not stop the batch
                if isinstance(outcome, AudioTooShort):
                    self._no_embedding(store, track.id, path, outcome)
                yield Unclassified(track.id, outcome)
                continue
            if not isinstance(outcome, FileTags):  # silent: nothing to say, nothing to embed
                silent = AudioSilent(f"{path}: silent where the tagger listens")
                self._no_embedding(store, track.id, path, silent)
                continue
            yield from self._predictions(track.id, outcome.probs)
            if outcome.embedding is not None and np.isfinite(outcome.embedding).all():
                embeddings.append((track.id, outcome.embedding))
        if store is not None and embeddings and self.settings.embeddings:
            features_q.write(store, self.feature_extractor, self.feature_version, embeddings)

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        """The same, every file tagged here, one after the other (no executor)."""
        outcomes: dict[int, Any] = {}
        for track in tracks:
            raise_if_cancelled(cancel, "classify (tagger)")
            path = local_audio_path(track, self._sources())
            if track.id is None or path is None:
                continue
            try:
                outcomes[track.id] = self.tag_file(path)
            except Exception as exc:
                outcomes[track.id] = exc
        yield from self.classify_files(tracks, outcomes, store=store, cancel=cancel)

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
        context = self.context
        if context is None or context.plugins is None:
            return {}
        return context.plugins.of("sources")

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
