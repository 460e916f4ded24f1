"""Classifier `llm-metadata`: genres (and moods) from artist, album, title, year, file name
and the tags a track already has, through an enabled `llm` plugin (groq, openai).

One question per album (per track for compilations), as many per request as the token
budget allows (`llm_prompt.pack`); every answer is cached in the store's `llm_cache` by
its metadata, model and `prompt_version`, so a re-run, or a track whose album was already
asked, costs no request. Answers are checked twice: their structure by the chat's
`validate` hook (a malformed answer is asked again), their content here: a genre the
taxonomy does not know is dropped (and counted), an id that was not sent is ignored, an
entry left out gets no prediction this time and is asked again later (a failure, not an
empty prediction), confidences are clamped to [0, 1].

A failed request (no usable answer, provider unavailable, too large) costs only its own
entries: a request too large or answered unusably is split in half and each half asked
once more; after that, or when the provider stays unavailable, its tracks are yielded as
`Unclassified`. A spent daily budget (LLMBudgetExhausted) stops the stage; what was
answered is cached and the next run goes on from there.

The LLM plugin is the one `load_plugins` built (`context.plugins`), so whatever uses that
LLM shares one rate limiter; it is looked up at use, never copied. The store comes from
the classify stage (`classify(tracks, store=…, cancel=…)`).

Measured with the defaults (`plan`, in tests/test_llm_metadata.py): freemusi.cc's 21,502
tracks are 9,616 questions in 123 requests (~0.66M tokens); a generated 100,000-track
library with the catalogue's album sizes and compilations, 23,476 questions in 323
requests (~1.7M tokens: about 3.5 days of Groq's free 500k tokens/day on
llama-3.1-8b-instant, at ~1 request a minute under its 6k tokens/minute).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    InvalidAnswer,
    PluginContext,
    PluginUnavailable,
    Prediction,
    Store,
    Taxonomy,
    TrackRecord,
    Unclassified,
    taxonomy_from_config,
)

from . import cache as llm_cache
from .asking import Budget, Tally, ask_entries, clamp
from .prompt import (
    ANSWER_SCHEMA,
    ANSWER_TOKENS_PER_ITEM,
    MAX_LABEL,
    MOOD_TOKENS_PER_ITEM,
    AnswerItem,
    Entry,
    Plan,
    album_key,
    build_entries,
    check_answer,
    messages_for,
    plan_requests,
    system_prompt,
)


class LLMMetadataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    llm: str = Field("groq", description="the enabled llm plugin to ask")
    moods: bool = Field(False, description="ask for moods too")
    max_items_per_request: int = Field(100, ge=1, le=500, description="albums/tracks per request")
    max_request_tokens: int = Field(
        5500,
        ge=256,
        description="prompt + answer tokens of one request (estimated), a little under the "
        "provider's tokens per minute (Groq's free llama-3.1-8b-instant: 6000)",
    )
    max_tokens: int = Field(4096, ge=64, description="answer tokens of one request, at most")
    min_confidence: float = Field(0.3, ge=0, le=1, description="answers below are dropped")
    prompt_version: int = Field(1, ge=1, description="change it to ask everything again")
    batch_tracks: int = Field(
        5000, ge=1, description="tracks per classify batch (predictions are stored per batch)"
    )
    cache_days: int = Field(
        180, ge=1, description="cached answers nobody read for this many days are deleted"
    )


class LLMMetadataClassifier:
    Config = LLMMetadataSettings
    # "plugins": its LLM's settings; a changed LLM rebuilds it, so it never holds a stale one.
    uses_config = ("taxonomy", "plugins")
    label_set = "genre"

    def __init__(self, settings: LLMMetadataSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context
        self.taxonomy = taxonomy_from_config(context.config.taxonomy)
        self.batch_size = settings.batch_tracks
        self._taxonomy_digest = hashlib.sha256(
            json.dumps(
                [sorted(self.taxonomy.names), context.config.taxonomy.model_dump(mode="json")],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        self._expired = False

    # -- the LLM ----------------------------------------------------------------------------

    def llm(self) -> Any:
        """The enabled LLM plugin named by `llm` (PluginUnavailable says why not)."""
        return enabled_llm(self.context, self.settings.llm, "llm-metadata")

    def model(self) -> str:
        """The model answers come from: part of the cache key and of the version."""
        llm = self.llm()
        return str(getattr(llm, "name", None) or self.settings.llm)

    @property
    def version(self) -> str:
        """Follows the model, the prompt, the moods switch, min_confidence and the taxonomy:
        changing any classifies again (from the cache where the answer is the same)."""
        try:
            model = self.model()
        except PluginUnavailable:
            model = f"{self.settings.llm}?"
        s = self.settings
        blob = json.dumps(
            [model, s.prompt_version, s.moods, s.min_confidence, self._taxonomy_digest]
        )
        return "1-" + hashlib.sha256(blob.encode()).hexdigest()[:10]

    def plan(self, tracks: Sequence[TrackRecord]) -> Plan:
        """The requests and tokens a first run over `tracks` would take (nothing is sent)."""
        s = self.settings
        return plan_requests(
            tracks,
            batch_tracks=s.batch_tracks,
            max_items=s.max_items_per_request,
            max_request_tokens=s.max_request_tokens,
            max_answer_tokens=s.max_tokens,
            moods=s.moods,
        )

    # -- classify ---------------------------------------------------------------------------

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        llm = self.llm()
        model = self.model()
        store = store or self.context.store
        s = self.settings
        if store is not None and not self._expired:
            self._expired = True  # once per daemon run is enough
            llm_cache.expire(store, s.cache_days)
        form = GenreForm(self, model)
        tally = Tally()
        try:
            yield from ask_entries(
                form,
                llm,
                build_entries(tracks, album_mates(store, tracks) if store else None),
                budget=Budget(s.max_items_per_request, s.max_request_tokens, s.max_tokens),
                store=store,
                model=model,
                prompt_version=str(s.prompt_version),
                cancel=cancel,
                tally=tally,
            )
        finally:
            tally.log("llm-metadata batch")

    def genres(
        self, labels: Sequence[Sequence[Any]], unknown: Counter[str] | None = None
    ) -> tuple[tuple[str, float], ...]:
        """The answer's genres as taxonomy names, best first; unknown names dropped."""
        return canonical_genres(self.taxonomy, labels, self.settings.min_confidence, unknown)

    def moods(
        self, labels: Sequence[Sequence[Any]], min_confidence: float | None = None
    ) -> tuple[tuple[str, float], ...]:
        """The answer's moods (no mood taxonomy: trimmed, deduplicated, short words)."""
        floor = self.settings.min_confidence if min_confidence is None else min_confidence
        best: dict[str, tuple[str, float]] = {}
        for name, confidence in labels:
            text = " ".join(str(name).split())
            score = round(clamp(confidence), 4)
            key = text.casefold()
            if not text or len(text) > 40 or not any(c.isalpha() for c in text):
                continue
            if score >= floor and score > best.get(key, ("", -1.0))[1]:
                best[key] = (text, score)
        return tuple(sorted(best.values(), key=lambda kv: (-kv[1], kv[0])))


class GenreForm:
    """The genre question of `genred_plugins.llm.prompt`, read through the taxonomy."""

    schema = ANSWER_SCHEMA

    def __init__(self, classifier: LLMMetadataClassifier, model: str) -> None:
        self.classifier, self.model = classifier, model
        moods = classifier.settings.moods
        self.base_chars = len(system_prompt(moods)) + len('{"items":[]}')
        self.per_item = ANSWER_TOKENS_PER_ITEM + (MOOD_TOKENS_PER_ITEM if moods else 0)

    def cache_key(self, entry: Entry) -> str:
        s = self.classifier.settings
        return entry.cache_key(self.model, s.prompt_version, s.moods)

    def messages(self, entries: Sequence[Entry]) -> list[dict[str, str]]:
        return messages_for(entries, self.classifier.settings.moods)

    def check(self, data: Any) -> list[AnswerItem]:
        return check_answer(data, self.classifier.settings.moods)

    def read(self, item: AnswerItem) -> dict[str, Any]:
        """The answer as cached: taxonomy names (any confidence: min_confidence applies at
        reading), moods as given; genres none of which the taxonomy knows are no answer."""
        c = self.classifier
        genres = canonical_genres(c.taxonomy, item.genres, 0.0)
        if item.genres and not genres:
            names = ", ".join(name for name, _ in item.genres[:5])
            raise InvalidAnswer(f'item "{item.id}": no genre the taxonomy knows ({names})')
        moods = c.moods(item.moods, 0.0) if c.settings.moods else ()
        answer: dict[str, Any] = {
            "genres": [list(g) for g in genres],
            "moods": [list(m) for m in moods],
        }
        if not genres:
            answer["reason"] = item.reason
        return answer

    def usable(self, answer: Any) -> bool:
        return usable_genre_answer(answer)

    def predictions(self, entry: Entry, answer: Any, tally: Tally) -> Iterator[Prediction]:
        tally.answered += 1
        genres = self.classifier.genres(_labels(answer, "genres"), tally.unknown_names)
        moods = None
        if self.classifier.settings.moods:
            moods = self.classifier.moods(_labels(answer, "moods"))
        for track_id in entry.track_ids:
            yield Prediction(track_id, "genre", genres)
            if moods is not None:
                yield Prediction(track_id, "mood", moods)


# --------------------------------------------------------------------------- helpers


def enabled_llm(context: PluginContext, name: str, who: str) -> Any:
    """The enabled LLM plugin `name` (PluginUnavailable says why not)."""
    if context.plugins is None:
        raise PluginUnavailable(f"{who} needs the llm plugins; build it with load_plugins")
    return context.plugins.get("llm", name)


def canonical_genres(
    taxonomy: Taxonomy,
    labels: Sequence[Sequence[Any]],
    min_confidence: float,
    unknown: Counter[str] | None = None,
) -> tuple[tuple[str, float], ...]:
    """`(name, confidence)` pairs as taxonomy names, best first; unknown names dropped
    (and counted), confidences clamped, those under `min_confidence` left out."""
    best: dict[str, float] = {}
    for name, confidence in labels:
        matches = taxonomy.match(str(name)) if len(str(name)) <= MAX_LABEL else []
        if not matches and unknown is not None:
            unknown[str(name)] += 1
        for match in matches:
            score = round(clamp(confidence) * match.confidence, 4)
            if score >= min_confidence and score > best.get(match.name, -1):
                best[match.name] = score
    return tuple(sorted(best.items(), key=lambda kv: (-kv[1], kv[0])))


def usable_genre_answer(answer: Any) -> bool:
    """A cached genre answer as `GenreForm.read` writes it: genres, or none and a reason
    (rows of older versions, cached unvalidated, may have neither: asked again)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("genres"), list):
        return False
    reason = answer.get("reason")
    return bool(answer["genres"]) or (isinstance(reason, str) and bool(reason.strip()))


def _labels(answer: Any, key: str) -> list[tuple[str, float]]:
    """A cached or fresh answer's labels; anything malformed (an old cache row) is none."""
    try:
        return [(str(name), clamp(conf)) for name, conf in answer.get(key, ())]
    except (TypeError, ValueError, AttributeError):
        return []


def album_mates(
    store: Store, tracks: Sequence[TrackRecord]
) -> dict[tuple[str, ...], list[TrackRecord]]:
    """Every stored, live track of the albums `tracks` belong to (by the source's album id)."""
    wanted = {(t.source, t.album_source_id) for t in tracks if t.album_source_id}
    out: dict[tuple[str, ...], list[TrackRecord]] = {}
    by_source: dict[str, list[str]] = {}
    for source, album in wanted:
        by_source.setdefault(source, []).append(album)
    for source, albums in by_source.items():
        for start in range(0, len(albums), 500):
            chunk = albums[start : start + 500]
            cursor = store.conn.execute(
                f"SELECT * FROM tracks WHERE removed = 0 AND source = ? AND album_source_id IN "
                f"({','.join('?' * len(chunk))})",
                [source, *chunk],
            )
            names = [d[0] for d in cursor.description]
            for row in cursor:
                track = TrackRecord.from_row(dict(zip(names, row, strict=True)))
                key = album_key(track)
                if key is not None:
                    out.setdefault(key, []).append(track)
    return out
