"""The recorded Groq exchanges vendored in recorded/ (see recorded/SOURCES.md), loaded once.

The emulator takes its answer shapes and error texts from them, replays their replies to
their own prompts, and tests compare its answers with them key by key.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RECORDED = Path(__file__).resolve().parent / "recorded"
CASSETTES = (
    "test_groq_model_instructions.yaml",  # plain chat, llama-3.3-70b-versatile
    "test_groq_prompted_output.yaml",  # json_object, openai/gpt-oss-120b
    "test_groq_native_output.yaml",  # json_schema, openai/gpt-oss-120b
    "test_tool_regular_error.yaml",  # 404 model_not_found
)


@dataclass(frozen=True)
class Exchange:
    """One recorded request/response pair (bodies parsed)."""

    name: str
    request: dict[str, Any]
    status: int
    response: dict[str, Any]


@functools.cache
def exchanges() -> tuple[Exchange, ...]:
    found: list[Exchange] = []
    for name in CASSETTES:
        data = yaml.safe_load((RECORDED / name).read_text(encoding="utf-8"))
        for interaction in data["interactions"]:
            found.append(
                Exchange(
                    name=name,
                    request=interaction["request"]["parsed_body"],
                    status=int(interaction["response"]["status"]["code"]),
                    response=interaction["response"]["parsed_body"],
                )
            )
    return tuple(found)


def recorded_200s() -> list[Exchange]:
    return [e for e in exchanges() if e.status == 200]


@functools.cache
def error_body(name: str) -> dict[str, Any]:
    """An error body from recorded/*.json (e.g. "400_json_validate_failed")."""
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


@functools.cache
def model_not_found_body() -> dict[str, Any]:
    return next(e.response for e in exchanges() if e.status == 404)


def last_user_text(messages: list[Any]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


@functools.cache
def replies() -> dict[tuple[str, str | None], tuple[str, str | None]]:
    """(last user message, response_format type) -> (content, reasoning) of the recorded 200s."""
    table: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    for exchange in recorded_200s():
        text = last_user_text(exchange.request.get("messages", []))
        message = exchange.response["choices"][0]["message"]
        fmt = (exchange.request.get("response_format") or {}).get("type")
        if text is not None and message.get("content") is not None:
            table[(text, fmt)] = (message["content"], message.get("reasoning"))
    return table
