"""Constrained output per server kind, through the real openai SDK against the emulator
playing llama.cpp, Ollama, vLLM and Groq: which request forms cross the wire, which mode is
kept, what is logged, and a stop that abandons a slow request."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from genred.api import Cancelled, LLMAnswerError, LLMUnavailable
from genred.logs import configure_logging
from genred_plugins.llm.formats import format_refused
from genred_plugins.llm.openai_llm import OpenAILLM
from tests.emulators.llm import LLMEmulator, Noise
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.llm.server import LLAMA_CPP_REFUSAL, OPENAI_REFUSAL
from tests.llm_setup import FAST_RETRIES

MODEL = "llama-3.1-8b-instant"  # no json_schema in the emulator's Groq table
ASK = [{"role": "user", "content": "What is the largest city in Mexico?"}]
SCHEMA = {
    "title": "City",
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


@pytest.fixture
def emu() -> Iterator[LLMEmulator]:
    with LLMEmulator(key=LLM_KEY) as emulator:
        yield emulator


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", "json", [], stream=stream)
    return stream


def openai_on(emu: LLMEmulator, **settings: Any) -> OpenAILLM:
    config = OpenAILLM.Config.model_validate(
        {
            "api_key": LLM_KEY,
            "base_url": emu.openai_base_url,
            "model": MODEL,
            "retries": FAST_RETRIES,
            **settings,
        }
    )
    return OpenAILLM(config)


def wire(emu: LLMEmulator) -> list[tuple[int, Any, Any, bool]]:
    """(status, response_format, guided_json, schema enforced) per completion request."""
    return [
        (
            r.status,
            (r.body or {}).get("response_format"),
            (r.body or {}).get("guided_json"),
            r.schema_enforced,
        )
        for r in emu.completions()
    ]


def logged(stream: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "City", "schema": SCHEMA, "strict": True},
}
LLAMA_FORM = {"type": "json_object", "schema": SCHEMA}


def test_auto_on_llama_cpp_falls_back_to_its_schema_form_once(
    emu: LLMEmulator, log_stream: io.StringIO
) -> None:
    emu.server_kind = "llama.cpp"
    plugin = openai_on(emu)  # server: auto, the openai plugin's default
    first = plugin.chat(ASK, SCHEMA)
    second = plugin.chat(ASK, SCHEMA)
    assert first.data == second.data == {"city": "Mexico City", "country": "Mexico"}
    assert wire(emu) == [
        (500, JSON_SCHEMA, None, False),  # refused: a configuration fact, not retried
        (200, LLAMA_FORM, None, True),
        (200, LLAMA_FORM, None, True),  # remembered: no second probe
    ]
    assert plugin.output_mode() == "schema_object"
    assert (first.attempts, second.attempts) == (2, 1)
    [fallback] = logged(log_stream, "the server does not take this output mode, using the next")
    assert (fallback["refused"], fallback["next"], fallback["level"]) == (
        "json_schema",
        "schema_object",
        "info",
    )
    assert "Input should be 'text' or 'json_object'" in fallback["reason"]
    [mode] = logged(log_stream, "LLM output mode")
    assert (mode["mode"], mode["server"]) == ("schema_object", "auto")
    assert not logged(log_stream, "LLM request failed, retrying")


@pytest.mark.parametrize(
    ("kind", "server", "sent", "mode"),
    [
        ("llama.cpp", "llama.cpp", [(200, LLAMA_FORM, None, True)], "schema_object"),
        ("ollama", "ollama", [(200, JSON_SCHEMA, None, True)], "json_schema"),
        ("ollama", "auto", [(200, JSON_SCHEMA, None, True)], "json_schema"),
        ("vllm", "vllm", [(200, JSON_SCHEMA, None, True)], "json_schema"),
        ("vllm", "auto", [(200, JSON_SCHEMA, None, True)], "json_schema"),
        # Groq's model without json_schema: 400, then llama.cpp's form, taken as json_object
        ("groq", "auto", [(400, JSON_SCHEMA, None, False), (200, LLAMA_FORM, None, False)],
         "schema_object"),
        ("groq", "groq", [(200, {"type": "json_object"}, None, False)], "json_object"),
    ],
)  # fmt: skip
def test_each_server_kind_gets_its_own_form(
    emu: LLMEmulator, kind: str, server: str, sent: list[Any], mode: str
) -> None:
    emu.server_kind = kind
    plugin = openai_on(emu, server=server)
    assert plugin.chat(ASK, SCHEMA).data["city"]
    assert wire(emu) == sent
    assert plugin.output_mode() == mode


def test_vllm_without_json_schema_uses_guided_decoding(emu: LLMEmulator) -> None:
    emu.server_kind = "openai"  # refuses json_schema for this model, with OpenAI's message
    plugin = openai_on(emu, server="vllm", answer_retries=0)
    with pytest.raises(LLMAnswerError):  # as "openai" it ignores guided_json: a text reply
        plugin.chat(ASK, SCHEMA)
    assert [(s, f, g) for s, f, g, _ in wire(emu)] == [
        (400, JSON_SCHEMA, None),
        (200, None, SCHEMA),
    ]
    assert plugin.output_mode() == "guided_json"


def test_a_real_outage_is_still_retried(emu: LLMEmulator) -> None:
    emu.server_kind = "llama.cpp"
    emu.noise = Noise(error_5xx_rate=1.0)
    plugin = openai_on(emu, server="llama.cpp")
    with pytest.raises(LLMUnavailable):
        plugin.chat(ASK, SCHEMA)
    assert [r.status for r in emu.completions()] == [500] * FAST_RETRIES["attempts"]
    assert plugin.output_mode() is None


def test_refusals_are_told_from_outages() -> None:
    assert format_refused(500, LLAMA_CPP_REFUSAL)
    assert format_refused(400, OPENAI_REFUSAL)
    assert format_refused(400, "This model does not support response format json_schema")
    assert format_refused(400, "guided_json: Extra inputs are not permitted")
    assert not format_refused(500, "Internal Server Error")
    assert not format_refused(503, "model is loading")
    assert not format_refused(
        400,
        "'messages' must contain the word 'json' in some form, to use 'response_format' of "
        "type 'json_object'.",
    )
    assert not format_refused(200, LLAMA_CPP_REFUSAL)


def test_a_stop_abandons_a_slow_request(emu: LLMEmulator) -> None:
    delay = 5.0
    emu.noise = Noise(latency_ms=delay * 1000)
    plugin = openai_on(emu, server="ollama")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="during a request"):
        plugin.chat(ASK, SCHEMA, cancel=cancel)
    assert time.monotonic() - started < delay  # it did not wait for the answer
