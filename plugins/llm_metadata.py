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
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genred.errors import LLMAnswerError, LLMRequestTooLarge, LLMUnavailable, raise_if_cancelled
from genred.logs import get_logger
from genred.plugins import PluginContext, PluginUnavailable, Unclassified
from genred.records import Prediction, TrackRecord
from genred.store import Store, utcnow
from genred.taxonomy import taxonomy_from_config

from .llm_prompt import (
    ANSWER_SCHEMA,
    MAX_LABEL,
    AnswerItem,
    Entry,
    Plan,
    album_key,
    answer_budget,
    build_entries,
    check_answer,
    messages_for,
    pack,
    plan_requests,
    request_ids,
)

log = get_logger("genred.classify")


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


@dataclass
class _Tally:
    """What one classify call did, for its log line."""

    entries: int = 0
    cached: int = 0
    requests: int = 0
    answered: int = 0
    left_out: int = 0
    failed: int = 0
    unknown_ids: int = 0
    unknown_genres: Counter[str] = field(default_factory=Counter)


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

    # -- the LLM ----------------------------------------------------------------------------

    def llm(self) -> Any:
        """The enabled LLM plugin named by `llm` (PluginUnavailable says why not)."""
        plugins = self.context.plugins
        if plugins is None:
            raise PluginUnavailable(
                "llm-metadata needs the llm plugins; build it with load_plugins"
            )
        return plugins.get("llm", self.settings.llm)

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
        entries = build_entries(tracks, _album_mates(store, tracks) if store else None)
        by_key: dict[str, list[Entry]] = {}  # equal entries: asked once, answered alike
        for entry in entries:
            by_key.setdefault(entry.cache_key(model, s.prompt_version, s.moods), []).append(entry)
        tally = _Tally(entries=len(entries))
        cached = _cache_get(store, set(by_key)) if store else {}
        todo = [same[0] for key, same in by_key.items() if key not in cached]
        keys = {id(same[0]): key for key, same in by_key.items()}
        try:
            for key, answer in cached.items():
                tally.cached += len(by_key[key])
                for entry in by_key[key]:
                    yield from self._predictions(entry, answer, tally)
            unavailable: Exception | None = None
            for batch in pack(
                todo,
                max_items=s.max_items_per_request,
                max_request_tokens=s.max_request_tokens,
                max_answer_tokens=s.max_tokens,
                moods=s.moods,
            ):
                if unavailable is None:
                    raise_if_cancelled(cancel, "llm-metadata")
                    got, errors = self._ask(llm, batch, cancel, tally, split=True)
                    unavailable = next(
                        (e for e in errors.values() if isinstance(e, LLMUnavailable)), None
                    )  # the provider kept failing: ask no more in this batch of tracks
                else:
                    got, errors = {}, {id(e): unavailable for e in batch}
                fresh = {keys[id(e)]: got[id(e)] for e in batch if id(e) in got}
                if store and fresh:
                    _cache_put(store, fresh, model, s.prompt_version)
                for entry in batch:
                    for same in by_key[keys[id(entry)]]:
                        if id(entry) in got:
                            yield from self._predictions(same, got[id(entry)], tally)
                        else:
                            tally.failed += 1
                            yield from _unclassified(same, errors[id(entry)])
        finally:
            self._log(tally)

    def _ask(
        self,
        llm: Any,
        batch: list[Entry],
        cancel: threading.Event | None,
        tally: _Tally,
        *,
        split: bool,
    ) -> tuple[dict[int, dict[str, Any]], dict[int, Exception]]:
        """One request for `batch`: (answers by id(entry), errors by id(entry)).

        Too large or no usable answer: each half once more (split=True), with twice the
        answer tokens per item (an answer cut off at max_tokens is unusable, and a half
        asks for as many tokens in all); provider unavailable: the whole batch fails.
        Other errors (LLMBudgetExhausted, LLMAuthFailed, Cancelled, …) are raised.
        """
        s = self.settings
        ids = dict(zip(request_ids(len(batch)), batch, strict=True))
        answer = answer_budget(len(batch), s.moods, s.max_tokens) * (1 if split else 2)
        tally.requests += 1
        try:
            result = llm.chat(
                messages_for(batch, s.moods),
                ANSWER_SCHEMA,
                validate=check_answer,
                max_tokens=min(answer, s.max_tokens),
                cancel=cancel,
            )
        except (LLMRequestTooLarge, LLMAnswerError) as exc:
            if split and len(batch) > 1:
                log.warning(
                    "llm-metadata request failed; asking in two halves",
                    entries=len(batch),
                    error=str(exc),
                )
                half = len(batch) // 2
                first = self._ask(llm, batch[:half], cancel, tally, split=False)
                second = self._ask(llm, batch[half:], cancel, tally, split=False)
                return {**first[0], **second[0]}, {**first[1], **second[1]}
            log.warning("llm-metadata request failed", entries=len(batch), error=str(exc))
            return {}, {id(e): exc for e in batch}
        except LLMUnavailable as exc:
            log.warning("llm-metadata: the LLM is unavailable", entries=len(batch), error=str(exc))
            return {}, {id(e): exc for e in batch}
        answered: dict[int, dict[str, Any]] = {}
        item: AnswerItem
        for item in result.data:
            entry = ids.get(item.id)
            if entry is None or id(entry) in answered:
                tally.unknown_ids += 1  # not an id we sent (or twice): ignored
                continue
            answered[id(entry)] = {"genres": item.genres, "moods": item.moods if s.moods else ()}
        missing = LLMAnswerError(f"{llm_name(llm)} left this track out of its answer")
        errors: dict[int, Exception] = {id(e): missing for e in batch if id(e) not in answered}
        tally.left_out += len(errors)
        return answered, errors

    def _predictions(
        self, entry: Entry, answer: dict[str, Any], tally: _Tally
    ) -> Iterator[Prediction]:
        tally.answered += 1
        genres = self.genres(answer.get("genres", ()), tally.unknown_genres)
        moods = self.moods(answer.get("moods", ())) if self.settings.moods else None
        for track_id in entry.track_ids:
            yield Prediction(track_id, "genre", genres)
            if moods is not None:
                yield Prediction(track_id, "mood", moods)

    def genres(
        self, labels: Sequence[Sequence[Any]], unknown: Counter[str] | None = None
    ) -> tuple[tuple[str, float], ...]:
        """The answer's genres as taxonomy names, best first; unknown names dropped."""
        best: dict[str, float] = {}
        for name, confidence in labels:
            matches = self.taxonomy.match(str(name)) if len(str(name)) <= MAX_LABEL else []
            if not matches and unknown is not None:
                unknown[str(name)] += 1
            for match in matches:
                score = round(_clamp(confidence) * match.confidence, 4)
                if score >= self.settings.min_confidence and score > best.get(match.name, -1):
                    best[match.name] = score
        return tuple(sorted(best.items(), key=lambda kv: (-kv[1], kv[0])))

    def moods(self, labels: Sequence[Sequence[Any]]) -> tuple[tuple[str, float], ...]:
        """The answer's moods (no mood taxonomy: trimmed, deduplicated, short words)."""
        best: dict[str, tuple[str, float]] = {}
        for name, confidence in labels:
            text = " ".join(str(name).split())
            score = round(_clamp(confidence), 4)
            key = text.casefold()
            if not text or len(text) > 40 or not any(c.isalpha() for c in text):
                continue
            if score >= self.settings.min_confidence and score > best.get(key, ("", -1.0))[1]:
                best[key] = (text, score)
        return tuple(sorted(best.values(), key=lambda kv: (-kv[1], kv[0])))

    def _log(self, tally: _Tally) -> None:
        if not tally.entries:
            return
        log.info(
            "llm-metadata batch",
            entries=tally.entries,
            cached=tally.cached,
            requests=tally.requests,
            answered=tally.answered,
            left_out=tally.left_out,
            failed=tally.failed,
            unknown_ids=tally.unknown_ids,
            unknown_genres=sum(tally.unknown_genres.values()),
            top_unknown=", ".join(n for n, _ in tally.unknown_genres.most_common(5)) or None,
        )


# --------------------------------------------------------------------------- helpers


def llm_name(llm: Any) -> str:
    return str(getattr(llm, "name", None) or type(llm).__name__)


def _clamp(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if number != number else min(max(number, 0.0), 1.0)  # NaN → 0


def _unclassified(entry: Entry, error: Exception) -> Iterator[Unclassified]:
    for track_id in entry.track_ids:
        yield Unclassified(track_id, error)


def _album_mates(
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


def _cache_get(store: Store, keys: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows = store.conn.execute(
            f"SELECT key, response FROM llm_cache WHERE key IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for key, response in rows:
            answer = _cached_answer(response)
            if answer is not None:  # else unreadable: asked again, and overwritten
                out[key] = answer
    return out


def _cached_answer(response: str) -> dict[str, Any] | None:
    try:
        data = json.loads(response)
        return {
            field: tuple((str(name), _clamp(conf)) for name, conf in data.get(field, ()))
            for field in ("genres", "moods")
        }
    except (ValueError, TypeError, AttributeError):
        return None


def _cache_put(
    store: Store, answers: dict[str, dict[str, Any]], model: str, prompt_version: int
) -> None:
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO llm_cache (key, model, prompt_version, response, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    key,
                    model,
                    str(prompt_version),
                    json.dumps(
                        {k: [list(x) for x in v] for k, v in answer.items()}, ensure_ascii=False
                    ),
                    now,
                )
                for key, answer in answers.items()
            ],
        )
