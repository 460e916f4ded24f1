"""Constrained output per server kind: which output modes to try, in which order, and what
a refused one looks like.

Modes, most constrained first:

- ``json_schema``: ``response_format: {type: json_schema, json_schema: {..., strict}}``
  (OpenAI, Groq for the models in `json_schema_models`; Ollama >= 0.5 and vLLM enforce it
  with a grammar for every model).
- ``schema_object``: llama.cpp's own form, ``response_format: {type: json_object, schema}``
  (grammar-constrained); llama-cpp-python's server answers 500 "Input should be 'text' or
  'json_object'" to ``json_schema``.
- ``guided_json``: vLLM's guided decoding, ``extra_body: {guided_json: schema}``.
- ``json_object``: some JSON object, the prompt says which.
- ``text``: no JSON mode; the reply is parsed.

A server that refuses a mode's request form (`format_refused`) states a configuration fact,
not an outage: the next mode is tried at once, without retries, and the mode that worked is
kept for the process (`ModeChoice`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Mode = Literal["json_schema", "schema_object", "guided_json", "json_object", "text"]
ServerKind = Literal["openai", "groq", "llama.cpp", "ollama", "vllm", "auto"]

_BY_KIND: dict[str, tuple[Mode, ...]] = {
    "llama.cpp": ("schema_object", "json_object", "text"),
    "ollama": ("json_schema", "json_object", "text"),
    "vllm": ("json_schema", "guided_json", "json_object", "text"),
    # Probed most constrained first; guided_json is left out: a server that does not know
    # the field ignores it, so accepting it proves nothing.
    "auto": ("json_schema", "schema_object", "json_object", "text"),
}


def candidate_modes(
    server: str,
    model: str,
    schema: Mapping[str, Any] | None,
    *,
    json_schema_models: Sequence[str],
    json_mode: bool,
) -> tuple[Mode, ...]:
    """The modes to try for one request, in order; the first the server accepts is used."""
    plain: tuple[Mode, ...] = ("json_object", "text") if json_mode else ("text",)
    if schema is None:
        return plain
    if server in ("openai", "groq"):
        strict: tuple[Mode, ...] = ("json_schema",) if model in json_schema_models else ()
        return strict + plain
    if server == "auto" and not json_mode:  # a server that takes no response_format
        return plain
    modes = _BY_KIND[server]
    if not json_mode:  # the server has no JSON mode: nor llama.cpp's form built on it
        modes = tuple(m for m in modes if m not in ("json_object", "schema_object"))
    return modes


def request_fields(mode: Mode, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a mode adds to the request: `response_format` and/or `extra_body`."""
    if schema is not None and mode == "json_schema":
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "answer"))[:64]
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema), "strict": True},
            }
        }
    if schema is not None and mode == "schema_object":
        return {"response_format": {"type": "json_object", "schema": dict(schema)}}
    if schema is not None and mode == "guided_json":
        return {"extra_body": {"guided_json": dict(schema)}}
    if mode in ("json_object", "schema_object"):
        return {"response_format": {"type": "json_object"}}
    return {}


# What servers answer to a response format they do not take:
# llama-cpp-python 500 "Input should be 'text' or 'json_object'"; OpenAI 400 "Invalid
# parameter: 'response_format' of type 'json_schema' is not supported with this model.";
# Groq 400 "This model does not support response format json_schema"; vLLM 400 on an
# unknown/unsupported `guided_json` or response format ("... is not supported", "Extra
# inputs are not permitted"); an older server "... value is not one of the allowed values".
_NAMES = re.compile(
    r"response[_ ]format|json_schema|json_object|guided_json|structured output", re.I
)
_REFUSAL = re.compile(
    r"not supported|not support|unsupported|input should be|not one of|allowed values"
    r"|not permitted|unrecognized|unknown (?:field|parameter)",
    re.I,
)


def format_refused(status: int, message: str) -> bool:
    """An HTTP error that refuses the request's output mode (a 4xx or a llama.cpp 500)."""
    return 400 <= status < 600 and bool(_NAMES.search(message) and _REFUSAL.search(message))


class ModeChoice:
    """The mode each model uses, learnt from the server's refusals; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refused: dict[str, set[Mode]] = {}
        self._settled: dict[str, Mode] = {}

    def current(self, model: str, modes: Sequence[Mode]) -> Mode:
        with self._lock:
            refused = self._refused.get(model, set())
        for mode in modes:
            if mode not in refused:
                return mode
        return modes[-1]

    def refuse(self, model: str, mode: Mode) -> bool:
        """Remember a refused mode; False when it was known already (another thread)."""
        with self._lock:
            refused = self._refused.setdefault(model, set())
            known = mode in refused
            refused.add(mode)
            return not known

    def settle(self, model: str, mode: Mode) -> bool:
        """A mode the server accepted; True the first time (for the one log line)."""
        with self._lock:
            if self._settled.get(model) == mode:
                return False
            self._settled[model] = mode
            return True

    def settled(self, model: str) -> Mode | None:
        with self._lock:
            return self._settled.get(model)
