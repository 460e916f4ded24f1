"""The base of LLM plugins speaking the OpenAI chat-completions protocol (groq, openai).

Both SDKs are generated from the same template, so one class sends for both; a subclass
names its SDK's client and error classes, its settings defaults, and what its rate-limit
headers mean.

Retries happen in ONE layer, here, with tenacity; the SDK is built with `max_retries=0`.
The SDK's own loop cannot be used: it ignores a `retry-after` above 60 s and retries a
per-day 429 after a few seconds (spending requests that are sure to fail), it sleeps with
`time.sleep` (no cancel, no test clock), and its requests would bypass the rate limiter.
Both layers at once would multiply (attempts × SDK retries).

What is retried: dropped connections, timeouts and 408/409/498/5xx with exponential backoff
and jitter, up to `retries.attempts` requests, then LLMUnavailable; a 429 after its
`retry-after` (or the "try again in 6.78s" of its message) through the rate limiter, or,
when that is beyond `limits.max_wait`, LLMBudgetExhausted at once. Never retried: 401/403
(LLMAuthFailed), 413 and 429 "Request too large" (LLMRequestTooLarge), other 4xx
(LLMRequestFailed). A 400 `json_validate_failed` is an unusable answer (see chat.py). A 4xx or
5xx refusing the output mode (formats.py: llama.cpp's 500 "Input should be 'text' or
'json_object'") is not retried either: the next mode is sent at once and kept.

A request runs in a worker thread while the caller waits on the run's cancel event: a stop
abandons it within CANCEL_POLL seconds (its thread ends with the answer or the timeout; the
answer is dropped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, cast

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from genred.api import (
    ChatResult,
    GenredError,
    LLMAuthFailed,
    LLMRequestFailed,
    LLMRequestTooLarge,
    LLMUnavailable,
    PluginEntry,
    RetrySettings,
    Usage,
    get_logger,
    load_processors,
    plugin_entries,
    raise_if_cancelled,
)

from .chat import Messages, RejectedGeneration, Reply, converse, prepare_messages
from .formats import Mode, ModeChoice, ServerKind, candidate_modes, format_refused, request_fields
from .limits import RateLimiter, RateLimits, estimate_tokens, parse_go_duration
from .processors import apply_to_messages, apply_to_reply, processor_names

log = get_logger("genred_plugins.llm")

TRANSIENT_STATUS = {408, 409, 498}  # + every 5xx; 498: Groq's flex tier is at capacity
CANCEL_POLL = 0.1  # seconds between looks at the cancel event during a request


class _StatusError(Protocol):
    """What both SDKs' APIStatusError carry."""

    status_code: int
    response: Any
    body: Any


class ChatSettings(BaseModel):
    """Settings every chat-completions plugin takes; subclasses set the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = Field(
        None, description="use ${GROQ_API_KEY} / ${OPENAI_API_KEY}; unset: read from that variable"
    )
    model: str
    base_url: AnyHttpUrl | None = None
    timeout: float = Field(60.0, gt=0, description="seconds to wait for one answer")
    max_tokens: int = Field(1024, ge=1, description="answer length when the caller sets none")
    json_schema_models: list[str] = Field(
        default_factory=list, description="models that support strict json_schema output"
    )
    json_mode: bool = Field(True, description='server accepts response_format "json_object"')
    server: ServerKind = Field(
        "auto",
        description="what serves the API, for its constrained output: openai, groq, "
        "llama.cpp, ollama, vllm, or auto (probe once, most constrained mode first)",
    )
    limits: RateLimits = RateLimits()
    model_limits: dict[str, RateLimits] = Field(
        default_factory=dict,
        description="limits of other models a preset may ask for (default: `limits`)",
    )
    retries: RetrySettings = RetrySettings()
    answer_retries: int = Field(2, ge=0, le=10, description="unusable answers asked again")
    processors: list[PluginEntry] = Field(
        default_factory=list, description="LLM processors (genred.llm_processors), in order"
    )

    @field_validator("api_key", "base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value  # `${GROQ_API_KEY:-}` with the variable unset

    @field_validator("processors", mode="before")
    @classmethod
    def _processor_entries(cls, value: Any) -> Any:
        return plugin_entries(value)


class _Transient(Exception):
    """A failure worth another request (after backoff, or after the limiter's pause)."""

    def __init__(self, message: str, *, paused: bool = False) -> None:
        super().__init__(message)
        self.paused = paused  # a 429: the rate limiter already waits, no backoff on top


class _FormatRefused(Exception):
    """The server does not take the request's output mode: try the next one."""


class ChatCompletionsLLM:
    """Chat messages in, validated JSON out, within the provider's rate limits."""

    Config: ClassVar[type[ChatSettings]]
    uses_config: ClassVar[tuple[str, ...]] = ()  # only its own section
    provider: ClassVar[str]
    api_key_env: ClassVar[str]
    # What the x-ratelimit-*-{requests,tokens} headers count: "minute" or "day".
    header_windows: ClassVar[Mapping[str, str]] = {}
    max_tokens_field: ClassVar[str] = "max_tokens"
    status_error: ClassVar[type[Exception]]  # the SDK's APIStatusError
    connection_error: ClassVar[type[Exception]]  # the SDK's APIConnectionError (and timeout)

    def __init__(
        self, settings: ChatSettings, context: Any = None, *, limiter: RateLimiter | None = None
    ) -> None:
        self.settings = settings
        self.processors = load_processors(settings.processors, self.provider)
        self.name = self.name_for(settings.model)
        self.limiter = limiter or RateLimiter(settings.limits, name=self.name)
        self._limiters = {settings.model: self.limiter}  # one budget per model, as providers do
        self.modes = ModeChoice()  # the output mode each model uses, learnt once
        self.client = self.make_client(self.api_key())

    def name_for(self, model: str) -> str:
        """`provider:model`, plus the processors (they change the answers)."""
        names = processor_names(self.settings.processors)
        return f"{self.provider}:{model}" + "".join(f"+{n}" for n in names)

    def limiter_for(self, model: str) -> RateLimiter:
        if model not in self._limiters:
            limits = self.settings.model_limits.get(model, self.settings.limits)
            base = self.limiter  # same clocks, so a test clock drives every model's budget
            self._limiters[model] = RateLimiter(
                limits,
                name=self.name_for(model),
                clock=base.clock,
                sleep=base._sleep,
                wall=base.wall,
            )
        return self._limiters[model]

    # -- subclass hooks -------------------------------------------------------------------

    def make_client(self, api_key: str | None) -> Any:
        """The SDK client, built with max_retries=0 (retries are ours)."""
        raise NotImplementedError

    def api_key(self) -> str | None:
        if self.settings.api_key is not None:
            return self.settings.api_key.get_secret_value()
        return os.environ.get(self.api_key_env) or None

    # -- the LLMPlugin protocol ---------------------------------------------------------

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        *,
        validate: Callable[[Any], Any] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
        model: str | None = None,
    ) -> ChatResult:
        """Ask `model` (default: the configured one); return the parsed, validated JSON
        answer. Raises the LLM* GenredErrors."""
        model = model or self.settings.model
        limiter = self.limiter_for(model)
        who = self.name_for(model)
        modes = candidate_modes(
            self.settings.server,
            model,
            schema,
            json_schema_models=self.settings.json_schema_models,
            json_mode=self.settings.json_mode,
        )
        limit = max_tokens or self.settings.max_tokens
        sent = [0]

        def send(conversation: Messages) -> Reply:
            while True:
                mode = self.modes.current(model, modes)
                if mode != "json_schema":  # after a fallback from it: say "JSON"
                    conversation = prepare_messages(conversation, schema, mode)
                request: dict[str, Any] = {
                    "model": model,
                    "messages": conversation,
                    self.max_tokens_field: limit,
                    **request_fields(mode, schema),
                }
                estimate = estimate_tokens(conversation, limit)
                try:
                    reply = self._send(request, estimate, cancel, sent, limiter)
                except _FormatRefused as refused:
                    self._fall_back(who, model, mode, modes, str(refused))
                    continue
                self._settled(who, model, mode, schema is not None)
                if self.processors:
                    text = apply_to_reply(self.processors, reply.text)
                    reply = dataclasses.replace(reply, text=text)
                return reply

        conversation = prepare_messages(messages, schema, self.modes.current(model, modes))
        if self.processors:
            conversation = apply_to_messages(self.processors, conversation)
        data, reply, usage = converse(
            send,
            conversation,
            validate=validate,
            answer_retries=self.settings.answer_retries,
            who=who,
        )
        return ChatResult(data, usage, reply.model, reply.text, sent[0])

    def output_mode(self, model: str | None = None) -> Mode | None:
        """The mode the last schema request of `model` used (None: none answered yet)."""
        return self.modes.settled(model or self.settings.model)

    def _fall_back(
        self, who: str, model: str, mode: Mode, modes: Sequence[Mode], reason: str
    ) -> None:
        if mode == modes[-1]:
            raise LLMRequestFailed(
                f"{who} refused every output mode ({', '.join(modes)}); last: {reason}"
            )
        if self.modes.refuse(model, mode):
            log.info(
                "the server does not take this output mode, using the next",
                llm=who,
                server=self.settings.server,
                refused=mode,
                next=self.modes.current(model, modes),
                reason=reason,
            )

    def _settled(self, who: str, model: str, mode: Mode, constrained: bool) -> None:
        if constrained and self.modes.settle(model, mode):
            log.info("LLM output mode", llm=who, server=self.settings.server, mode=mode)

    def close(self) -> None:
        self.client.close()

    # -- one request, with retries ------------------------------------------------------

    def _send(
        self,
        request: dict[str, Any],
        estimate: int,
        cancel: threading.Event | None,
        sent: list[int],
        limiter: RateLimiter,
    ) -> Reply:
        retries = self.settings.retries
        backoff = wait_exponential_jitter(
            multiplier=retries.backoff_initial,
            max=retries.backoff_max,
            jitter=retries.backoff_initial,
        )

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            return 0.0 if isinstance(failure, _Transient) and failure.paused else backoff(state)

        def attempt() -> Reply:
            raise_if_cancelled(cancel, f"{self.name}: before a request")
            reservation = limiter.acquire(estimate, cancel)
            sent[0] += 1
            try:
                raw = self._create(request, cancel)
            except self.status_error as error:
                exc = cast(_StatusError, error)
                limiter.observe(exc.response.headers, self.header_windows)
                if exc.status_code in (413, 429):
                    limiter.release(reservation)  # refused before it counted
                raise self._failure(exc, limiter, request["model"]) from None
            except self.connection_error as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            completion = raw.parse()
            usage = _usage(completion)
            limiter.settle(reservation, usage.total_tokens or estimate)
            limiter.observe(raw.headers, self.header_windows)
            choice = completion.choices[0] if completion.choices else None  # none: unusable
            return Reply(
                text=(choice.message.content if choice else None) or "",
                usage=usage,
                model=completion.model or request["model"],
                truncated=choice is not None and choice.finish_reason == "length",
            )

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(retries.attempts),
            wait=wait,
            sleep=lambda seconds: limiter.sleep(seconds, cancel),
            before_sleep=lambda state: log.warning(
                "LLM request failed, retrying",
                llm=self.name,
                attempt=state.attempt_number,
                error=self._scrub(str(state.outcome.exception())) if state.outcome else None,
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as exc:
            if exc.paused:  # rate limited on every attempt: the budget is gone for now
                raise limiter.exhausted(
                    max(limiter.paused_until - limiter.clock(), 0.0),
                    f"rate limited {retries.attempts} times in a row",
                ) from None
            raise LLMUnavailable(
                f"{limiter.name} kept failing after {retries.attempts} attempts: "
                + self._scrub(str(exc))
            ) from None

    def _create(self, request: dict[str, Any], cancel: threading.Event | None) -> Any:
        """The SDK call, abandoned when `cancel` is set while it waits for the answer."""
        create = self.client.chat.completions.with_raw_response.create
        if cancel is None:
            return create(**request)
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append((True, create(**request)))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append((False, exc))
            finally:
                done.set()

        threading.Thread(target=run, name=f"{self.name} request", daemon=True).start()
        while not done.wait(CANCEL_POLL):
            raise_if_cancelled(cancel, f"{self.name}: during a request (abandoned)")
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    def _failure(self, exc: Any, limiter: RateLimiter, model: str) -> Exception:
        """The error to raise for an HTTP error answer (a _Transient is retried)."""
        status: int = exc.status_code
        body = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else {}
        body = body if isinstance(body, dict) else {}
        message = self._scrub(str(body.get("message") or exc.message))
        what = f"{self.provider} ({model}) answered {status}: {message}"
        if status in (401, 403):
            return LLMAuthFailed(
                f"{self.provider} refused the API key ({status}): check "
                f"plugins.llm.{self.provider}.api_key or ${self.api_key_env}"
            )
        if status == 413 or (status == 429 and too_large(message)):
            return LLMRequestTooLarge(what)
        if status == 429:
            wait = retry_wait(exc.response.headers, message)
            if wait is None:
                return _Transient(what)
            limiter.rate_limited(wait)  # raises LLMBudgetExhausted beyond max_wait
            log.info("rate limited by the provider", llm=limiter.name, wait=round(wait, 3))
            return _Transient(what, paused=True)
        if status == 400 and body.get("code") == "json_validate_failed":
            return RejectedGeneration(str(body.get("failed_generation") or ""))
        if format_refused(status, message):
            return _FormatRefused(what)
        if status >= 500 or status in TRANSIENT_STATUS:
            return _Transient(what)
        return LLMRequestFailed(what)

    def _scrub(self, text: str) -> str:
        key = self.api_key()
        return text.replace(key, "***") if key and len(key) >= 4 else text


def _usage(completion: Any) -> Usage:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, usage.total_tokens or 0)


# --------------------------------------------------------------------------- 429 bodies

_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d*)?(?:ns|us|µs|μs|ms|s|m|h))+)", re.I)
_LIMIT_REQUESTED = re.compile(r"Limit (\d+), (?:Used \d+, )?Requested ~?(\d+)")


def too_large(message: str) -> bool:
    """A 429/413 for a request that exceeds the limit by itself ("Request too large", or a
    "Requested" count above the "Limit"): waiting will never make it fit."""
    if "request too large" in message.lower():
        return True
    match = _LIMIT_REQUESTED.search(message)
    return bool(match and int(match.group(2)) > int(match.group(1)))


def retry_wait(headers: Mapping[str, str], message: str) -> float | None:
    """Seconds a 429 asks to wait: the longest of retry-after-ms, retry-after and the
    message's "try again in 9m38.016s"; None when it says nothing."""
    waits: list[float] = []
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        with contextlib.suppress(ValueError):
            waits.append(float(headers.get(name, "")) * scale)
    match = _TRY_AGAIN.search(message)
    if match:
        waits.append(parse_go_duration(match.group(1)))
    return max(waits) if waits else None


def require_key(provider: str, env: str, key: str | None) -> str:
    """The API key, or a GenredError saying where to put it (the key itself is never shown)."""
    if not key:
        raise GenredError(
            f"the {provider} plugin needs an API key: set ${env} "
            f"(or plugins.llm.{provider}.api_key in the config file)"
        )
    return key
