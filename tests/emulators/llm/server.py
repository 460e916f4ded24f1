"""LLMEmulator: Groq's OpenAI-compatible chat API on 127.0.0.1, answering from an oracle."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from ..http import EmulatorServer, ThreadedEmulator, send_reply
from . import recorded
from .models import ModelSpec, model_table
from .noise import Noise, NoiseInjector
from .oracle import GroundTruth, answer, asked_items, example_for_schema, find_document
from .playlists import PlaylistOracle, find_playlist_request
from .ratelimits import (
    Limits,
    ModelBudget,
    Verdict,
    estimate_tokens,
    message_text,
    prompt_tokens,
    rate_limit_body,
    retry_after,
)

API_PREFIXES = ("/openai/v1", "/v1")  # Groq's, and the plain OpenAI-compatible one
JSON_TYPE = "application/json"
# What the recorded answers carry besides the body (recorded/*.yaml, headers kept there).
BASE_HEADERS = {
    "cache-control": "private, max-age=0, no-store, no-cache, must-revalidate",
    "vary": "Origin",
}
DEFAULT_REPLY = (
    "This is the genred LLM emulator. Put a JSON document with an `items` list in the last "
    "user message to get genres (see tests/emulators/llm/README.md)."
)
NON_JSON_REPLIES = (
    "I'm sorry, but I can't tell the genres of these tracks with any certainty.",
    "Sure! These tracks sound like a mix of electronic and ambient music, with some rock.",
    "Here are the genres you asked for:\n- Electronic\n- Rock\nLet me know if you need more!",
)
SERVER_KINDS = ("groq", "openai", "llama.cpp", "ollama", "vllm")
# llama-cpp-python 0.3.36's server: a pydantic literal error on response_format.type, as 500.
LLAMA_CPP_REFUSAL = (
    "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}]"
)
OPENAI_REFUSAL = (
    "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."
)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_HEADERS_OF_INTEREST = ("user-agent", "content-type", "accept")  # and every x-stainless-*


@dataclass(frozen=True)
class LLMRequestRecord:
    """One request as it crossed the wire (status 0: the connection was dropped).

    `at` is the emulator's clock. `requested_tokens` is what the TPM check counted (prompt
    estimate + max_completion_tokens); the buckets are charged prompt + completion tokens.
    `kind`: "classify", "label", "chat", "models", a playlist task ("playlist-intent",
    "playlist-refine", "playlist-rank", "playlist-songs") or "" (refused before the body).
    """

    method: str
    path: str
    status: int
    at: float
    model: str | None = None
    kind: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requested_tokens: int = 0
    items: tuple[Any, ...] = ()  # the ids asked, in order
    document: dict[str, Any] | None = None  # the oracle document the last user message held
    label: str | None = None
    response_format: str | None = None
    schema_enforced: bool = False  # the server constrained the answer to a JSON schema
    max_completion_tokens: int | None = None
    finish_reason: str | None = None
    error_code: str | None = None  # "rate_limit_exceeded", "json_validate_failed", …
    limit: str | None = None  # the limit a 413/429 names: "RPM", "RPD", "TPM", "TPD"
    noise: tuple[str, ...] = ()
    unknown_ids: tuple[Any, ...] = ()  # asked ids the ground truth does not know
    headers: dict[str, str] = field(default_factory=dict)  # user-agent, x-stainless-*, …
    response_headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*, retry-after
    body: dict[str, Any] | None = None  # the request JSON
    content: str | None = None  # the answer's message content

    @property
    def tokens(self) -> int:
        """What this request cost against TPM/TPD."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answer in Groq's envelope."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", code: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"message": message, "type": type_, "code": code}}


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # see the Plex emulator: no 40 ms Nagle + delayed ACK
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the emulator keeps its own request log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.emulator.respond(
            self.command, self.path, dict(self.headers.items()), body
        )
        send_reply(self, reply)  # None: a dropped connection

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class LLMEmulator(ThreadedEmulator):
    """Groq (and any OpenAI-compatible server) for tests: the real groq and openai SDKs talk
    to it. `groq.Groq(base_url=emu.url, api_key=emu.key)` (the SDK adds /openai/v1 itself);
    `openai.OpenAI(base_url=emu.url + "/v1", api_key=emu.key)`.

    `truth` answers the oracle prompts; `models` the served models (ids or `ModelSpec`s;
    default: four Groq models with their free-plan limits); `limits` overrides every model's
    limits; `clock` drives the limits, `created` and the log (pass a `FakeClock` to run an
    hour of traffic in milliseconds); `key=None` accepts any or no Authorization.

    `server_kind` is what it behaves like towards constrained output (settable at run time):
    "groq" (default) and "openai": json_schema only for the models whose spec says so (else
    400), json_object only when a message says "json"; "llama.cpp": json_schema is a 500
    "Input should be 'text' or 'json_object'", json_object takes a `schema` and answers in its
    shape; "ollama": json_schema for every model; "vllm": json_schema for every model and
    `guided_json` in the body. Whether the schema was enforced is logged (`schema_enforced`).
    """

    handler = _Handler
    thread_name = "llm-emulator"

    def __init__(
        self,
        truth: GroundTruth | None = None,
        *,
        key: str | None = "test-key",
        models: Iterable[ModelSpec | str] | None = None,
        limits: Limits | None = None,
        noise: Noise | None = None,
        clock: Callable[[], float] = time.time,
        organization: str = "org_01genredemulator0000000000",
        seed: int = 0,
        server_kind: str = "groq",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.truth = truth if truth is not None else GroundTruth()
        if server_kind not in SERVER_KINDS:
            raise ValueError(f"server_kind must be one of {SERVER_KINDS}")
        self.server_kind = server_kind
        self.key = key
        self.models = model_table(models)
        if limits is not None:
            self.models = {k: m.with_limits(limits) for k, m in self.models.items()}
        self.clock = clock
        self.organization = organization
        self._init_http(host, port)
        self._lock = threading.RLock()
        self._budgets = {k: ModelBudget(m.limits) for k, m in self.models.items()}
        self._injector = NoiseInjector(noise or Noise())
        self._ids = random.Random(seed)
        self._log: list[LLMRequestRecord] = []
        self.playlists = PlaylistOracle()  # the playlist questions (playlists.py)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        """The openai SDK's base_url for the plain OpenAI-compatible paths (/v1/…)."""
        return f"{self.url}/v1"

    @property
    def groq_openai_base_url(self) -> str:
        """The openai SDK pointed at Groq's own paths, as people do with api.groq.com."""
        return f"{self.url}/openai/v1"

    # -- settings, limits and the request log ------------------------------------------------

    @property
    def noise(self) -> Noise:
        return self._injector.noise

    @noise.setter
    def noise(self, noise: Noise) -> None:
        with self._lock:
            self._injector = NoiseInjector(noise)

    def set_limits(self, limits: Limits, model: str | None = None) -> None:
        """New limits for one model (None: every model); its buckets start empty."""
        with self._lock:
            for name in [model] if model else list(self.models):
                self.models[name] = self.models[name].with_limits(limits)
                self._budgets[name] = ModelBudget(limits)

    def reset_limits(self) -> None:
        """Empty every bucket (as a new day and minute)."""
        with self._lock:
            self._budgets = {k: ModelBudget(m.limits) for k, m in self.models.items()}

    def budget(self, model: str) -> ModelBudget:
        return self._budgets[model]

    @property
    def requests(self) -> list[LLMRequestRecord]:
        with self._lock:
            return list(self._log)

    def completions(self) -> list[LLMRequestRecord]:
        """The chat-completion requests (any status)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- request handling -------------------------------------------------------------------

    def respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Reply | None:
        """Answer one request (None: drop the connection). Thread-safe; logs the request."""
        path = urlsplit(target).path.rstrip("/") or "/"
        lower = {k.lower(): v for k, v in headers.items()}
        base = {
            "method": method,
            "path": path,
            "headers": {
                k: v
                for k, v in lower.items()
                if k in _HEADERS_OF_INTEREST or k.startswith("x-stainless-")
            },
        }
        latency = self.noise.latency_ms
        if latency and path.endswith("/chat/completions"):
            time.sleep(latency / 1000)
        try:
            if self.key is not None and lower.get("authorization") != f"Bearer {self.key}":
                raise ApiError(401, "Invalid API Key", code="invalid_api_key")
            route, rest = self._route(method, path)
            if route == "chat":
                return self._chat(body, base)
            return self._log_reply(self._models(rest), {**base, "kind": "models"})
        except ApiError as error:
            return self._log_reply(Reply(error.status, _json(error.body)), base, error)

    def _route(self, method: str, path: str) -> tuple[str, str]:
        for prefix in API_PREFIXES:
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) :]
            if rest == "/chat/completions" and method == "POST":
                return "chat", ""
            if (rest == "/models" or rest.startswith("/models/")) and method == "GET":
                return "models", unquote(rest[len("/models/") :])
        raise ApiError(
            404,
            f"Unknown request URL: {method} {path}. Please check the URL for typos, "
            "or see the docs at https://console.groq.com/docs/",
            code="unknown_url",
        )

    def _log_reply(
        self, reply: Reply | None, fields: dict[str, Any], error: ApiError | None = None
    ) -> Reply | None:
        if reply is not None:
            reply.headers = {"content-type": JSON_TYPE, **BASE_HEADERS, **reply.headers}
        if error is not None:
            fields.setdefault("error_code", error.body["error"].get("code"))
        at = fields.pop("at", None)
        record = LLMRequestRecord(
            status=0 if reply is None else reply.status,
            at=self.clock() if at is None else at,
            response_headers={
                k: v
                for k, v in (reply.headers if reply else {}).items()
                if k.startswith("x-ratelimit-") or k == "retry-after"
            },
            **fields,
        )
        with self._lock:
            self._log.append(record)
        return reply

    def _models(self, model_id: str) -> Reply:
        def card(spec: ModelSpec) -> dict[str, Any]:
            return {
                "id": spec.id,
                "object": "model",
                "created": spec.created,
                "owned_by": spec.owned_by,
                "active": True,
                "context_window": spec.context_window,
                "public_apps": None,
                "max_completion_tokens": spec.max_completion_tokens,
            }

        if model_id:
            if model_id not in self.models:
                raise self._model_not_found(model_id)
            return Reply(body=_json(card(self.models[model_id])))
        data = [card(spec) for spec in self.models.values()]
        return Reply(body=_json({"object": "list", "data": data}))

    @staticmethod
    def _model_not_found(model: str) -> ApiError:
        recorded_error = recorded.model_not_found_body()["error"]
        return ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            recorded_error["type"],
            recorded_error["code"],
        )

    # -- chat completions -------------------------------------------------------------------

    def _chat(self, raw: bytes, base: dict[str, Any]) -> Reply | None:
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        base["body"] = body
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' : property 'model' is missing")
        base["model"] = model
        spec = self.models.get(model)
        if spec is None:
            raise self._model_not_found(model)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' : minimum number of items is 1")
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise ApiError(400, "'messages' : every message needs a 'role'")
        if body.get("stream"):
            raise ApiError(400, "'stream' : streaming is not emulated (send stream=false)")
        raw_format = body.get("response_format")
        base["response_format"] = (
            raw_format.get("type") if isinstance(raw_format, dict) else raw_format
        )
        fmt, schema = self._response_format(spec, raw_format, messages)
        guided = body.get("guided_json")
        if self.server_kind == "vllm" and guided is not None:
            if not isinstance(guided, dict):
                raise ApiError(400, "guided_json must be a JSON schema object")
            fmt, schema = "json_schema", guided  # vLLM's guided decoding: enforced
        base["response_format"] = fmt
        base["schema_enforced"] = schema is not None
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ApiError(400, "'max_completion_tokens' : must be a positive integer")
        if cap is not None and cap > spec.max_completion_tokens:
            raise ApiError(
                400,
                f"`max_tokens` must be less than or equal to `{spec.max_completion_tokens}`, "
                "the maximum value for `max_tokens` is less than the `context_window` for "
                "this model",
            )
        base["max_completion_tokens"] = cap
        extra = [json.dumps(x) for x in (schema, body.get("tools")) if x]
        prompt = prompt_tokens(messages, extra)
        requested = prompt + (cap or 0)
        base["requested_tokens"] = requested
        user_text = next(
            (message_text(m) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        document = find_document(user_text)
        playlist = find_playlist_request(user_text)
        if playlist is not None:  # playlists.py: intent, refine, rank, songs
            document = None
            base["kind"] = str(playlist["task"])
            base["document"] = playlist
            base["items"] = tuple(i.get("id") for i in asked_items(playlist))
        elif document is not None:
            base["kind"] = "label" if isinstance(document.get("label"), str) else "classify"
            base["items"] = tuple(item.get("id") for item in asked_items(document))
            base["document"] = document
            base["label"] = document.get("label") if base["kind"] == "label" else None
        elif playlist is None:
            base["kind"] = "chat"

        with self._lock:
            now = base["at"] = self.clock()
            budget = self._budgets[model]
            verdict = budget.check(now, requested)
            if not verdict.ok:
                return self._limited(spec, budget, verdict, now, base)
            budget.take_request(now)
            fault = self._injector.request_fault(json_mode=fmt != "text")
            if fault == "drop":
                return self._log_reply(None, {**base, "noise": ("drop",)})
            if fault == "error_5xx":
                status = self.noise.error_status
                error = ApiError(status, HTTPStatus(status).phrase, "internal_server_error", None)
                reply = Reply(status, _json(error.body), budget.headers(now))
                return self._log_reply(reply, {**base, "noise": ("error_5xx",)}, error)
            return self._complete(spec, body, fmt, schema, document, fault, prompt, base, now)

    def _response_format(
        self, spec: ModelSpec, response_format: Any, messages: list[dict[str, Any]]
    ) -> tuple[str, Any]:
        """("text" | "json_object" | "json_schema", the schema or None); 400 when refused."""
        if response_format is None:
            return "text", None
        fmt = response_format.get("type") if isinstance(response_format, dict) else None
        if fmt == "text":
            return "text", None
        kind = self.server_kind
        if fmt == "json_object":
            if kind == "llama.cpp":  # its own form: a schema on json_object, grammar-enforced
                schema = response_format.get("schema")
                return fmt, schema if isinstance(schema, dict) else None
            if kind in ("groq", "openai") and not any(
                "json" in message_text(m).casefold() for m in messages
            ):
                raise ApiError(
                    400,
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                )
            return fmt, None
        if fmt == "json_schema":
            if kind == "llama.cpp":
                raise ApiError(500, LLAMA_CPP_REFUSAL, "internal_server_error")
            if kind in ("groq", "openai") and not spec.json_schema:
                message = (
                    OPENAI_REFUSAL
                    if kind == "openai"
                    else ("This model does not support response format json_schema")
                )
                raise ApiError(400, message)
            json_schema = response_format.get("json_schema")
            if not isinstance(json_schema, dict) or not isinstance(json_schema.get("schema"), dict):
                raise ApiError(400, "'response_format.json_schema' : property 'schema' is missing")
            if not isinstance(json_schema.get("name"), str):
                raise ApiError(400, "'response_format.json_schema' : property 'name' is missing")
            return fmt, json_schema["schema"]
        if kind == "llama.cpp":
            raise ApiError(500, LLAMA_CPP_REFUSAL.replace("'json_schema'", repr(fmt)))
        raise ApiError(
            400,
            "'response_format.type' : value is not one of the allowed values "
            "['text', 'json_object', 'json_schema']",
        )

    def _limited(
        self,
        spec: ModelSpec,
        budget: ModelBudget,
        verdict: Verdict,
        now: float,
        base: dict[str, Any],
    ) -> Reply | None:
        body = rate_limit_body(spec.id, self.organization, verdict)
        headers = budget.headers(now)
        if verdict.too_large:
            status = 413
        else:
            status = 429
            headers["retry-after"] = retry_after(verdict.wait_s)
        fields = {**base, "limit": verdict.limit_name, "error_code": "rate_limit_exceeded"}
        return self._log_reply(Reply(status, _json(body), headers), fields)

    def _complete(
        self,
        spec: ModelSpec,
        body: dict[str, Any],
        fmt: str,
        schema: Any,
        document: dict[str, Any] | None,
        fault: str | None,
        prompt: int,
        base: dict[str, Any],
        now: float,
    ) -> Reply | None:
        noise: list[str] = []
        reasoning: str | None = None
        if document is not None:
            oracle = answer(document, self.truth, self._injector)
            content = json.dumps(oracle.document, ensure_ascii=False, separators=(",", ":"))
            noise += oracle.noise
            base["unknown_ids"] = tuple(oracle.unknown_ids)
            if spec.reasoning:
                reasoning = (
                    f"The user asks for {len(base['items'])} tracks. Look each one up and "
                    "answer with the JSON document only."
                )
        elif base["kind"].startswith("playlist-"):
            played = self.playlists.answer(base["document"], self._injector)
            content = json.dumps(played.document, ensure_ascii=False, separators=(",", ":"))
            noise += played.noise
        else:
            content, reasoning = self._chat_reply(body, fmt, schema)
            reasoning = reasoning if spec.reasoning else None
        finish = "stop"
        if fault == "non_json":
            content = self._injector.rng.choice(NON_JSON_REPLIES)
        elif fault in ("truncated", "json_validate_failed"):
            content = content[: max(1, len(content) // 2)]
            finish = "length"
        if fault:
            noise.append(fault)
        cap = base.get("max_completion_tokens")
        used_by_reasoning = estimate_tokens(reasoning or "")
        if cap is not None and used_by_reasoning + estimate_tokens(content) > cap:
            content = content[: max(0, (cap - used_by_reasoning) * 4)]
            finish = "length"
        completion = max(1, used_by_reasoning + estimate_tokens(content))
        self._budgets[spec.id].take_tokens(now, prompt + completion)
        headers = self._budgets[spec.id].headers(now)
        fields = {
            **base,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "noise": tuple(noise),
            "content": content,
        }
        request_id = self._request_id()
        headers["x-request-id"] = request_id
        if fault == "json_validate_failed":
            recorded_error = recorded.error_body("400_json_validate_failed")["error"]
            error = ApiError(400, recorded_error["message"], recorded_error["type"])
            error.body["error"]["code"] = recorded_error["code"]
            error.body["error"]["failed_generation"] = "```json\n" + content
            return self._log_reply(Reply(400, _json(error.body), headers), fields, error)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning"] = reasoning
        queue, prompt_time, completion_time = 0.05, prompt / 40_000, completion / 750
        result = {
            "id": f"chatcmpl-{uuid.UUID(int=self._ids.getrandbits(128), version=4)}",
            "object": "chat.completion",
            "created": int(now),
            "model": spec.id,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "queue_time": queue,
                "prompt_tokens": prompt,
                "prompt_time": round(prompt_time, 9),
                "completion_tokens": completion,
                "completion_time": round(completion_time, 9),
                "total_tokens": prompt + completion,
                "total_time": round(prompt_time + completion_time, 9),
            },
            "usage_breakdown": None,
            "system_fingerprint": spec.system_fingerprint,
            "x_groq": {"id": request_id},
            "service_tier": "on_demand",
        }
        fields["finish_reason"] = finish
        return self._log_reply(Reply(200, _json(result), headers), fields)

    def _chat_reply(self, body: dict[str, Any], fmt: str, schema: Any) -> tuple[str, str | None]:
        """Not an oracle prompt: a recorded reply to the recorded prompt, else a stand-in."""
        messages = body.get("messages", [])
        text = recorded.last_user_text(messages)
        replayed = recorded.replies().get((text or "", None if fmt == "text" else fmt))
        if replayed is not None:
            return replayed
        if schema is not None:  # json_schema, or llama.cpp's json_object with a schema
            return json.dumps(example_for_schema(schema), separators=(",", ":")), None
        if fmt == "json_object":
            return "{}", None
        return DEFAULT_REPLY, None

    def _request_id(self) -> str:
        return "req_" + "".join(self._ids.choice(_CROCKFORD) for _ in range(26))
