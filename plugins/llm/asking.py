"""Asking an LLM about many entries, as the LLM classifiers do it: each question once,
answers from the cache first, the rest packed into as few requests as the budget allows,
a failed request split in half and each half asked once more.

What is asked and how answers are read is a `Form` (genres of albums in llm_metadata,
"is it Focus?" in llm_labels); this module is the loop around it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from genred.api import (
    InvalidAnswer,
    LLMAnswerError,
    LLMRequestTooLarge,
    LLMUnavailable,
    Prediction,
    Store,
    Unclassified,
    get_logger,
    raise_if_cancelled,
)

from . import cache as llm_cache
from .prompt import Entry, pack, request_ids

log = get_logger("genred.classify")
RECOVER = 4  # full answers in a row before a shrunk request size doubles again


class Form(Protocol):
    """One kind of question: how to ask about entries and how to read the answers."""

    schema: dict[str, Any]
    base_chars: int  # the system message and the user message's frame
    per_item: int  # answer tokens reserved per entry

    def cache_key(self, entry: Entry) -> str: ...
    def messages(self, entries: Sequence[Entry]) -> list[dict[str, str]]: ...
    def check(self, data: Any) -> list[Any]:
        """The chat's validate hook: items with an `.id`; InvalidAnswer asks again."""
        ...

    def read(self, item: Any) -> Any:
        """One usable answer item as the JSON-able answer that is cached (what survived
        validation); InvalidAnswer when nothing of it is usable (the entry fails)."""
        ...

    def usable(self, answer: Any) -> bool:
        """Whether a cached answer is one `read` could have written (else asked again)."""
        ...

    def predictions(self, entry: Entry, answer: Any, tally: Tally) -> Iterator[Prediction]:
        """Predictions of the entry's tracks from its answer (cached or fresh)."""
        ...


@dataclass(frozen=True)
class Budget:
    """Request sizes (the classifier's settings)."""

    max_items: int
    max_request_tokens: int
    max_tokens: int


@dataclass
class Tally:
    """What one classify call did, for its log line."""

    entries: int = 0
    cached: int = 0
    requests: int = 0
    answered: int = 0
    left_out: int = 0
    failed: int = 0
    unknown_ids: int = 0
    unknown_names: Counter[str] = field(default_factory=Counter)

    def log(self, what: str) -> None:
        if not self.entries:
            return
        log.info(
            what,
            entries=self.entries,
            cached=self.cached,
            requests=self.requests,
            answered=self.answered,
            left_out=self.left_out,
            failed=self.failed,
            unknown_ids=self.unknown_ids,
            unknown_names=sum(self.unknown_names.values()),
            top_unknown=", ".join(n for n, _ in self.unknown_names.most_common(5)) or None,
        )


def ask_entries(
    form: Form,
    llm: Any,
    entries: Sequence[Entry],
    *,
    budget: Budget,
    store: Store | None,
    model: str,
    prompt_version: str,
    cancel: threading.Event | None,
    tally: Tally,
    chat_options: dict[str, Any] | None = None,
) -> Iterator[Prediction | Unclassified]:
    """Predictions (or Unclassified) for every track of `entries`."""
    by_key: dict[str, list[Entry]] = {}  # equal entries: asked once, answered alike
    for entry in entries:
        by_key.setdefault(form.cache_key(entry), []).append(entry)
    tally.entries += len(entries)
    cached = llm_cache.get(store, by_key) if store else {}
    cached = {k: a for k, a in cached.items() if form.usable(a)}  # else asked again
    todo = [same[0] for key, same in by_key.items() if key not in cached]
    keys = {id(same[0]): key for key, same in by_key.items()}
    for key, answer in cached.items():
        tally.cached += len(by_key[key])
        for entry in by_key[key]:
            yield from form.predictions(entry, answer, tally)
    asker = _Asker(form, llm, budget, cancel, tally, chat_options or {}, budget.max_items)
    unavailable: Exception | None = None
    for batch in pack(
        todo,
        max_items=budget.max_items,
        max_request_tokens=budget.max_request_tokens,
        max_answer_tokens=budget.max_tokens,
        moods=False,
        base_chars=form.base_chars,
        per_item=form.per_item,
    ):
        got: dict[int, Any] = {}
        errors: dict[int, Exception] = {}
        rest = list(batch)
        while rest:
            if unavailable is not None:
                errors.update({id(e): unavailable for e in rest})
                break
            raise_if_cancelled(cancel, "llm classifier")
            part, rest = rest[: asker.size], rest[asker.size :]
            answered, failed = asker.ask(part, split=True)
            got.update(answered)
            if asker.adapt(part, answered, failed):  # smaller requests: these once more
                again = [e for e in part if id(e) in failed and asker.alone_at(e) > asker.size]
                rest = again + rest
                failed = {k: v for k, v in failed.items() if k not in {id(e) for e in again}}
            errors.update(failed)
            unavailable = next(
                (e for e in failed.values() if isinstance(e, LLMUnavailable)), None
            )  # the provider kept failing: ask no more in this batch of tracks
        fresh = {keys[id(e)]: got[id(e)] for e in batch if id(e) in got}
        if store and fresh:
            llm_cache.put(store, fresh, model, prompt_version)
        for entry in batch:
            for same in by_key[keys[id(entry)]]:
                if id(entry) in got:
                    yield from form.predictions(same, got[id(entry)], tally)
                else:
                    tally.failed += 1
                    for track_id in same.track_ids:
                        yield Unclassified(track_id, errors[id(entry)])


class LeftOut(LLMAnswerError):
    """An entry the answer did not mention: asked again at the next run, not now."""


@dataclass
class _Asker:
    form: Form
    llm: Any
    budget: Budget
    cancel: threading.Event | None
    tally: Tally
    chat_options: dict[str, Any]
    size: int  # entries per request now: halved while answers fail validation
    good: int = 0  # requests answered in full since the last change of `size`

    failed_at: int = 0  # entries of the smallest request answered unusably since `adapt`
    smallest: dict[int, int] = field(default_factory=dict)  # id(entry): fewest asked with

    def alone_at(self, entry: Entry) -> int:
        """The fewest entries `entry` was asked with (in one request)."""
        return self.smallest.get(id(entry), 1 << 30)

    def adapt(self, batch: list[Entry], answered: dict[int, Any], failed: dict[int, Any]) -> bool:
        """After asking about `batch`: fewer entries per request (half the smallest request
        answered unusably, down to 1) while answers fail validation; twice as many again
        (up to `max_items`) after RECOVER full answers in a row. True when it shrank."""
        invalid = [
            e
            for e in failed.values()
            if isinstance(e, LLMAnswerError) and not isinstance(e, LeftOut)
        ]
        smallest = min(self.failed_at or len(batch), len(batch)) if invalid else self.failed_at
        self.failed_at = 0
        if smallest:
            self.good = 0
            size = max(1, min(self.size, smallest) // 2)
            if size < self.size:
                self.size = size
                log.warning(
                    "LLM answers fail validation; asking fewer entries per request",
                    entries=size,
                    error=str(invalid[0]) if invalid else None,
                )
                return True
            return False
        if answered and len(answered) == len(batch):
            self.good += 1
            if self.good >= RECOVER and self.size < self.budget.max_items:
                self.size = min(self.budget.max_items, self.size * 2)
                self.good = 0
                log.info("LLM answers are usable again", entries=self.size)
        return False

    def ask(
        self, batch: list[Entry], *, split: bool, longest: bool = False
    ) -> tuple[dict[int, Any], dict[int, Exception]]:
        """One request for `batch`: (answers by id(entry), errors by id(entry)).

        Too large or no usable answer: each half once more (split=True), with twice the
        answer tokens per item (an answer cut off at max_tokens is unusable, and a half
        asks for as many tokens in all); a lone entry whose answer was cut off once more
        with the longest answer allowed (`max_tokens`: a compilation track with many
        genres); provider unavailable: the whole batch fails.
        Other errors (LLMBudgetExhausted, LLMAuthFailed, Cancelled, …) are raised.
        """
        form, b = self.form, self.budget
        ids = dict(zip(request_ids(len(batch)), batch, strict=True))
        for asked in batch:
            self.smallest[id(asked)] = min(self.alone_at(asked), len(batch))
        answer = (32 + len(batch) * form.per_item) * (1 if split else 2)
        if longest:
            answer = b.max_tokens
        self.tally.requests += 1
        try:
            result = self.llm.chat(
                form.messages(batch),
                form.schema,
                validate=form.check,
                max_tokens=min(answer, b.max_tokens),
                cancel=self.cancel,
                **self.chat_options,
            )
        except (LLMRequestTooLarge, LLMAnswerError) as exc:
            if isinstance(exc, LLMAnswerError) and "cut off" not in str(exc):
                self.failed_at = min(self.failed_at or len(batch), len(batch))
            if split and len(batch) > 1:
                log.warning(
                    "LLM request failed; asking in two halves", entries=len(batch), error=str(exc)
                )
                half = len(batch) // 2
                first = self.ask(batch[:half], split=False)
                second = self.ask(batch[half:], split=False)
                return {**first[0], **second[0]}, {**first[1], **second[1]}
            cut_off = isinstance(exc, LLMAnswerError) and "cut off" in str(exc)
            if cut_off and len(batch) == 1 and not longest and answer < b.max_tokens:
                return self.ask(batch, split=False, longest=True)
            log.warning("LLM request failed", entries=len(batch), error=str(exc))
            return {}, {id(e): exc for e in batch}
        except LLMUnavailable as exc:
            log.warning("the LLM is unavailable", entries=len(batch), error=str(exc))
            return {}, {id(e): exc for e in batch}
        answered: dict[int, Any] = {}
        invalid: dict[int, Exception] = {}
        for item in result.data:
            entry = ids.get(item.id)
            if entry is None or id(entry) in answered or id(entry) in invalid:
                self.tally.unknown_ids += 1  # not an id we sent (or twice): ignored
                continue
            try:
                if item.problem:
                    raise InvalidAnswer(item.problem)
                answered[id(entry)] = form.read(item)
            except InvalidAnswer as exc:
                invalid[id(entry)] = LLMAnswerError(f"{llm_name(self.llm)}: {exc}")
        if invalid:
            log.warning(
                "unusable items in the LLM's answer",
                entries=len(invalid),
                error=str(next(iter(invalid.values()))),
            )
            again = [e for e in batch if id(e) in invalid]
            if split and len(again) < len(batch):  # the others were usable: these once more
                more, still = self.ask(again, split=False)
                answered.update(more)
                invalid = {k: v for k, v in invalid.items() if k not in more}
                invalid.update({k: v for k, v in still.items() if k not in more})
        missing = LeftOut(f"{llm_name(self.llm)} left this track out of its answer")
        errors: dict[int, Exception] = {
            id(e): invalid.get(id(e), missing) for e in batch if id(e) not in answered
        }
        self.tally.left_out += sum(
            1 for e in batch if id(e) not in answered and id(e) not in invalid
        )
        return answered, errors


def llm_name(llm: Any) -> str:
    return str(getattr(llm, "name", None) or type(llm).__name__)


def clamp(value: Any) -> float:
    """A confidence in [0, 1]; anything that is not a number is 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if number != number else min(max(number, 0.0), 1.0)  # NaN → 0
