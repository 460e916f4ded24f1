"""Classifier `audio-llm`: genres, moods and a caption from listening, with Music Flamingo.

The escalation step for the tracks the metadata and the tagger leave undecided: it runs
as a later step of `decide.cascade` (refused otherwise, unless `every_track: true`), so
only those tracks are asked. Per track the stage's executor decodes what the model
hears (`listen`, in a worker) and runs the model on batches of tracks (`answer_batch`:
in the stage's process with the local executor, on GPU model workers with `ray`); the
answers become predictions (`classify_files`) and the captions are stored (`captions`).

Off by default, and the weights are not shipped: Music Flamingo and Audio Flamingo 3 are
released by NVIDIA for non-commercial research only. The model is loaded on first use and
released when the stage ends, so the idle daemon stays small; it refuses to run on a CPU
unless `allow_cpu: true` (an 8B model on a CPU takes minutes per track).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from threading import Event
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    FileWork,
    GenredError,
    InvalidAnswer,
    PluginContext,
    PluginUnavailable,
    Prediction,
    Store,
    TrackRecord,
    Unclassified,
    captions,
    get_logger,
    local_audio_path,
    taxonomy_from_config,
)

from .answers import REMINDER, Answer, genre_labels, mood_labels, parse_answer, question
from .listening import WINDOW_SECONDS, Listening, listen

log = get_logger("genred.classify")
NAME = "audio-llm"
NEEDS = {"ml": ("torch", "transformers"), "audio": ("numpy", "soundfile", "soxr", "pebble")}
CANDIDATES = 8  # earlier steps' genres put in the question, at most
NOTICE = (
    "Music Flamingo / Audio Flamingo 3 weights are under NVIDIA's non-commercial licence "
    "(research only); genred ships none"
)


class AudioLLMRefused(GenredError):
    """The model will not run as configured (no GPU without allow_cpu)."""


class AudioLLMAnswerError(GenredError):
    """The model kept replying with something that is not the JSON asked for."""


class AudioLLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "nvidia/music-flamingo-2601-hf",
        description="Hugging Face model id or a local checkpoint (Music Flamingo, Audio Flamingo 3)",
    )
    revision: str | None = Field(None, description="branch, tag or commit of the model id")
    cache_dir: Path | None = Field(None, description="download cache (default: in the data dir)")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="auto: bfloat16 on a GPU (float16 where it lacks bf16), float32 on a CPU",
    )
    attention: Literal["auto", "sdpa", "flash_attention_2", "eager"] = Field(
        "auto", description="auto: flash-attention 2 when installed (GPU), else SDPA"
    )
    device_map: str | None = Field(
        None, description='"auto" shards the model over the GPUs (needs accelerate)'
    )
    allow_cpu: bool = Field(False, description="run without a GPU (minutes per track)")
    every_track: bool = Field(
        False, description="ask about every track, not only those the cascade leaves undecided"
    )
    mode: Literal["excerpts", "whole"] = Field(
        "excerpts",
        description="excerpts: 30 s windows from the body; whole: up to the model's limit",
    )
    excerpts: int = Field(3, ge=1, le=10, description="30 s excerpts per track (excerpts mode)")
    max_seconds: float | None = Field(
        None, gt=0, description="whole mode: listen to at most this much (null: the model's limit)"
    )
    batch_size: int = Field(4, ge=1, le=64, description="tracks per generate call")
    max_new_tokens: int = Field(256, ge=16, le=4096, description="reply length, at most")
    retries: int = Field(2, ge=0, le=5, description="re-asks when the reply is not the JSON asked")
    moods: bool = True
    caption: bool = True
    min_confidence: float = Field(0.3, ge=0, le=1, description="labels below are left out")
    prompt_version: int = Field(1, ge=1, description="change it to ask everything again")
    batch_tracks: int = Field(16, ge=1, le=1000, description="tracks per stored batch")


class AudioLLMClassifier:
    Config = AudioLLMSettings
    uses_config = ("data_dir", "taxonomy", "decide")
    label_set = "genre"
    notice: ClassVar[str] = NOTICE

    def __init__(self, settings: AudioLLMSettings, context: PluginContext) -> None:
        for extra, modules in NEEDS.items():
            missing = [m for m in modules if importlib.util.find_spec(m) is None]
            if missing:
                raise PluginUnavailable(
                    f"plugin {NAME!r} (classifiers) needs {', '.join(missing)}: "
                    f"install it with pip install 'genred[{extra}]'"
                )
        if not settings.every_track and not _later_cascade_step(context):
            raise PluginUnavailable(
                f"{NAME} listens only to the tracks the cheaper classifiers leave undecided: "
                f"name it in a later step of decide.cascade (after [llm-metadata, tagger], "
                f"say), or set plugins.classifiers.{NAME}.every_track: true"
            )
        self.settings = settings
        self.context: PluginContext | None = context
        self.batch_size = settings.batch_tracks
        self.cache_dir = settings.cache_dir or context.data_dir / "cache" / "huggingface"
        taxonomy = taxonomy_from_config(context.config.taxonomy)
        self.top_levels = tuple(sorted(taxonomy.top_levels))
        s = settings
        blob = json.dumps(
            [
                s.model,
                s.revision,
                s.mode,
                s.excerpts,
                s.max_seconds,
                s.moods,
                s.caption,
                s.min_confidence,
                s.prompt_version,
                sorted(taxonomy.names),
                context.config.taxonomy.model_dump(mode="json"),
            ],
            sort_keys=True,
            default=str,
        )
        self.version = "1-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
        self._taxonomy: Any = taxonomy
        self._limit: float | None = None
        self._model: Any = None
        self._batch_limit = settings.batch_size

    def __getstate__(self) -> dict[str, Any]:
        """What a worker gets: settings and the question, never the model or the store."""
        return {**self.__dict__, "_model": None, "context": None, "_taxonomy": None}

    # ------------------------------------------------------------------ the model

    def load(self) -> None:
        """`LoadsModel`: the checkpoint on the GPU (refused on a CPU unless allow_cpu)."""
        if self._model is not None:
            return
        import torch

        from .model import FlamingoModel

        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise AudioLLMRefused(
                f"{NAME}: device cuda, but torch sees no CUDA GPU (install a CUDA build of torch)"
            )
        if device == "cpu" and not self.settings.allow_cpu and not self.settings.device_map:
            raise AudioLLMRefused(
                f"{NAME}: no GPU here, and an 8B audio model takes minutes per track on a CPU; "
                f"set plugins.classifiers.{NAME}.allow_cpu: true to run it anyway"
            )
        if device == "cpu":
            log.warning(
                "audio-llm runs on the CPU: expect minutes per track with a real checkpoint",
                model=self.settings.model,
            )
        s = self.settings
        self._model = FlamingoModel(
            s.model,
            revision=s.revision,
            cache_dir=self.cache_dir,
            device=device,
            dtype=s.dtype,
            attention=s.attention,
            device_map=s.device_map,
        )

    def unload(self) -> None:
        """Free the model (and its GPU memory) until the next stage."""
        if self._model is not None:
            self._model.release()
        self._model = None

    # ------------------------------------------------------------------ the file work

    def file_work(self) -> FileWork:
        """`ClassifiesFiles`: decode in a worker (`listen_file`), the model on batches."""
        if self._limit is None:
            from .model import audio_limit

            self._limit = audio_limit(self.settings.model, self.settings.revision, self.cache_dir)
        return FileWork("listen_file", "answer_batch", self.settings.batch_size, with_hint=True)

    def file_hints(
        self, tracks: Sequence[TrackRecord], *, store: Store | None = None
    ) -> Mapping[int, Any]:
        """`HintsFiles`: the genres the other classifiers proposed for each track."""
        ids = [t.id for t in tracks if t.id is not None]
        if store is None or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        best: dict[int, dict[str, float]] = {}
        for track_id, labels in store.conn.execute(
            f"SELECT track_id, labels FROM predictions WHERE label_set = 'genre'"
            f" AND classifier != ? AND track_id IN ({marks})",
            [NAME, *ids],
        ):
            for name, confidence in json.loads(labels):
                mine = best.setdefault(track_id, {})
                mine[name] = max(mine.get(name, 0.0), float(confidence))
        return {
            track_id: [n for n, _ in sorted(found.items(), key=lambda kv: -kv[1])][:CANDIDATES]
            for track_id, found in best.items()
        }

    def listen_file(self, path: Path, hint: Any = None) -> Listening:
        """What the model hears of the file (in a worker: no model, no torch)."""
        s = self.settings
        limit = self._limit or WINDOW_SECONDS * s.excerpts
        if s.max_seconds is not None:
            limit = min(limit, s.max_seconds)
        listening = listen(path, mode=s.mode, excerpts=s.excerpts, limit_seconds=limit, hint=hint)
        if listening.cut:
            log.info(
                "track longer than the model listens to: cut",
                file=str(path),
                seconds=listening.track_seconds,
                heard=listening.seconds,
            )
        return listening

    def answer_batch(self, listenings: Sequence[Listening]) -> list[Answer | BaseException]:
        """Ask the model about each track; re-ask those whose reply is not the JSON asked
        (`retries` times), then give up on them; out of memory halves the batch."""
        self.load()
        s = self.settings
        prompts = [
            question(self.top_levels, list(item.hint or ()), moods=s.moods, caption=s.caption)
            for item in listenings
        ]
        outcomes: list[Answer | BaseException] = [
            InvalidAnswer("not asked yet") for _ in listenings
        ]
        todo = list(range(len(listenings)))
        for attempt in range(s.retries + 1):
            asked = [prompts[i] + ("\n" + REMINDER if attempt else "") for i in todo]
            replies = self._replies([listenings[i] for i in todo], asked, attempt)
            again = []
            for index, reply in zip(todo, replies, strict=True):
                if isinstance(reply, BaseException):
                    outcomes[index] = reply
                    continue
                try:
                    answer = parse_answer(reply)
                except InvalidAnswer as exc:
                    outcomes[index] = AudioLLMAnswerError(
                        f"{listenings[index].name}: the model's reply is not the JSON asked "
                        f"for ({exc}) after {attempt + 1} tries: {reply[:120]!r}"
                    )
                    again.append(index)
                    continue
                item = listenings[index]
                outcomes[index] = Answer(
                    answer.genres, answer.moods, answer.caption, reply, item.seconds, item.cut
                )
            todo = again
            if not todo:
                break
        return outcomes

    def _replies(
        self, listenings: list[Listening], prompts: list[str], attempt: int
    ) -> list[str | BaseException]:
        """The model's replies, batch by batch (a re-ask samples: greedy said it already)."""
        from .model import in_batches

        def ask(chunk: list[int]) -> list[str]:
            items = [listenings[i] for i in chunk]
            replies: list[str] = self._model.generate(
                items,
                [prompts[i] for i in chunk],
                max_new_tokens=self.settings.max_new_tokens,
                sample=attempt > 0,
                extras=self.generation_extras(items, attempt),
            )
            return replies

        return in_batches(ask, len(listenings), self._batch_limit, self._smaller)

    def generation_extras(self, listenings: Sequence[Listening], attempt: int) -> dict[str, Any]:
        """More arguments for `generate` (none; a test scripts the replies through here)."""
        return {}

    def _smaller(self, size: int) -> None:
        self._batch_limit = size  # the GPU holds no more: later batches start there

    # ------------------------------------------------------------------ the answers

    def classify_files(
        self,
        tracks: Sequence[TrackRecord],
        outcomes: Mapping[int, Any],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        """Genres (taxonomy names), moods and captions from the model's answers."""
        s = self.settings
        unknown: Counter[str] = Counter()
        said: list[captions.Caption] = []
        for track in tracks:
            if track.id is None or local_audio_path(track, self._sources()) is None:
                continue  # nothing to listen to: no prediction until the track changes
            outcome = outcomes.get(track.id)
            if isinstance(outcome, Exception):
                yield Unclassified(track.id, outcome)
                continue
            if not isinstance(outcome, Answer):
                continue
            genres = genre_labels(self.taxonomy, outcome.genres, s.min_confidence, unknown)
            yield Prediction(track.id, "genre", genres)
            if s.moods:
                moods = mood_labels(outcome.moods, s.min_confidence)
                if moods:
                    yield Prediction(track.id, "mood", moods)
            if s.caption and outcome.caption:
                said.append(
                    captions.Caption(track.id, outcome.caption, outcome.seconds, outcome.cut)
                )
        if unknown:
            log.info(
                "audio-llm named genres the taxonomy does not know; left out",
                names=sum(unknown.values()),
                top=", ".join(n for n, _ in unknown.most_common(5)),
            )
        if store is not None and said:
            captions.write(store, NAME, self.version, said)

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        """The same without an executor: each file decoded here, then asked in batches."""
        self.file_work()
        hints = self.file_hints(tracks, store=store)
        heard: dict[int, Any] = {}
        for track in tracks:
            path = local_audio_path(track, self._sources())
            if track.id is None or path is None:
                continue
            try:
                heard[track.id] = self.listen_file(path, hints.get(track.id))
            except Exception as exc:
                heard[track.id] = exc
        ready = [(i, x) for i, x in heard.items() if isinstance(x, Listening)]
        for start in range(0, len(ready), self.settings.batch_size):
            chunk = ready[start : start + self.settings.batch_size]
            for (track_id, _), answer in zip(
                chunk, self.answer_batch([x for _, x in chunk]), strict=True
            ):
                heard[track_id] = answer
        yield from self.classify_files(tracks, heard, store=store, cancel=cancel)

    @property
    def taxonomy(self) -> Any:
        if self._taxonomy is None:
            config = self.context.config if self.context is not None else None
            if config is None:
                raise GenredError(f"{NAME}: the answers are read where the config is")
            self._taxonomy = taxonomy_from_config(config.taxonomy)
        return self._taxonomy

    def _sources(self) -> Mapping[str, Any]:
        context = self.context
        if context is None or context.plugins is None:
            return {}
        return context.plugins.of("sources")


def _later_cascade_step(context: PluginContext) -> bool:
    """Is audio-llm a step of the cascade after the first (so it sees undecided tracks only)?"""
    cascade = context.config.decide.cascade
    if not cascade:
        return False
    if any(NAME in tier.classifiers for tier in cascade[1:]):
        return True
    named = any(NAME in tier.classifiers for tier in cascade)
    return not named and cascade[-1].accept is not None  # unnamed: votes in the last step
