"""One chat turn with a validated JSON answer: output mode, parsing, and asking again.

The output mode (formats.py) depends on the server kind and on what the model can do; in
every mode but ``json_schema`` the messages say "JSON" (Groq and OpenAI refuse
``json_object`` otherwise), an instruction with the schema is added when none does. In
``text`` mode the reply is parsed (``` fences and <think> blocks of reasoning models
stripped).

Every answer is parsed as JSON and passed to the caller's `validate`; an answer that fails
either (or that the provider itself rejected, Groq's `json_validate_failed`) is asked for
again, with the reason, at most `answer_retries` times; then LLMAnswerError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from genred.api import InvalidAnswer, LLMAnswerError, Usage, get_logger

from .formats import Mode

log = get_logger("genred_plugins.llm")

Messages = list[dict[str, str]]


class RejectedGeneration(Exception):
    """The provider refused what the model generated as invalid JSON (Groq: 400
    `json_validate_failed`); `text` is the failed generation, when the provider gave it."""

    def __init__(self, text: str) -> None:
        super().__init__("the provider rejected the generated JSON")
        self.text = text


@dataclass(frozen=True)
class Reply:
    """One answer of the provider, reduced to what the conversation needs."""

    text: str
    usage: Usage
    model: str
    truncated: bool = False  # finish_reason "length": max_tokens cut it off


# --------------------------------------------------------------------------- the request


def prepare_messages(
    messages: Sequence[Mapping[str, str]], schema: Mapping[str, Any] | None, mode: Mode
) -> Messages:
    """The caller's messages, plus a JSON instruction when no message mentions JSON
    (idempotent: a conversation that has one is returned as is)."""
    out = [dict(m) for m in messages]
    if mode == "json_schema" or any("json" in str(m.get("content", "")).lower() for m in out):
        return out
    instruction = "Answer with one JSON object only, no other text."
    if schema is not None:
        instruction += " It must match this JSON schema: " + json.dumps(schema)
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content', '')}\n\n{instruction}".lstrip()
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


# --------------------------------------------------------------------------- the answer

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.S)


def parse_answer(text: str) -> Any:
    """The JSON in a reply; fences and <think> blocks stripped. InvalidAnswer otherwise."""
    body = _THINK.sub("", text).strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON ({exc.msg} at char {exc.pos})") from None


def ask_again(messages: Messages, bad_text: str, reason: str) -> Messages:
    """The conversation once more, showing the model its unusable answer and why."""
    return [
        *messages,
        {"role": "assistant", "content": bad_text[:4000]},
        {
            "role": "user",
            "content": f"That answer was not usable: {reason}. "
            "Reply again with only the corrected JSON.",
        },
    ]


def converse(
    send: Callable[[Messages], Reply],
    messages: Messages,
    *,
    validate: Callable[[Any], Any] | None,
    answer_retries: int,
    who: str,
) -> tuple[Any, Reply, Usage]:
    """Send, parse and validate; ask again on an unusable answer, at most answer_retries
    times. Returns (data, the reply it came from, usage summed over every reply)."""
    usage = Usage()
    conversation = messages
    reason = ""
    for attempt in range(answer_retries + 1):
        try:
            reply = send(conversation)
        except RejectedGeneration as rejected:
            text, reason = rejected.text, "the provider rejected it as invalid JSON"
        else:
            usage += reply.usage
            text = reply.text
            try:
                data = parse_answer(text)
                return (validate(data) if validate else data), reply, usage
            except (InvalidAnswer, ValidationError) as exc:
                reason = _short(str(exc))
                if reply.truncated:  # asked again, it would be cut off again
                    raise LLMAnswerError(
                        f"{who}'s answer was cut off at max_tokens ({reason}): ask for less "
                        "at a time, or allow a longer answer"
                    ) from None
        log.warning("unusable answer from the LLM", llm=who, attempt=attempt + 1, reason=reason)
        conversation = ask_again(messages, text, reason)
    raise LLMAnswerError(
        f"{who} gave no usable answer in {answer_retries + 1} tries; last: {reason}"
    )


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
