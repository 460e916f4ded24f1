"""The groq and openai plugins, through their real SDKs, against a scripted HTTP stub on
127.0.0.1 that answers with the recorded Groq responses in tests/fixtures/groq/."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from genred.config import load_config
from genred.errors import (
    Cancelled,
    InvalidAnswer,
    LLMAnswerError,
    LLMAuthFailed,
    LLMBudgetExhausted,
    LLMRequestFailed,
    LLMRequestTooLarge,
    LLMUnavailable,
)
from genred.hookspecs import LLMPlugin
from genred.loader import discover
from genred.logs import configure_logging
from genred_plugins.llm.groq_llm import GroqLLM
from genred_plugins.llm.limits import RateLimiter
from genred_plugins.llm.openai_llm import OpenAILLM
from genred_plugins.llm.provider import ChatCompletionsLLM
from tests.conftest import EXAMPLE_CONFIG, FIXTURES

GROQ = FIXTURES / "groq"
KEY = "gsk_TestKey0123456789abcdef"
CITY_SCHEMA = {
    "title": "CityLocation",
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
CITY = {"city": "Mexico City", "country": "Mexico"}


# --------------------------------------------------------------------------- recorded data


def cassette(name: str, index: int = 0) -> tuple[int, dict[str, Any]]:
    data = yaml.safe_load((GROQ / "pydantic-ai-cassettes" / f"{name}.yaml").read_text())
    response = data["interactions"][index]["response"]
    return response["status"]["code"], response["parsed_body"]


def error_body(name: str) -> dict[str, Any]:
    return json.loads((GROQ / "errors" / f"{name}.json").read_text())


def completion(content: str, *, usage: tuple[int, int] = (40, 10)) -> dict[str, Any]:
    """A 200 body shaped like the recorded ones, with another content."""
    _, body = cassette("test_groq_model_instructions")
    body = json.loads(json.dumps(body))
    body["choices"][0]["message"]["content"] = content
    body["usage"].update(
        prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)
    )
    return body


# --------------------------------------------------------------------------- the stub


@dataclass
class Canned:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ChatStub:
    """A chat-completions endpoint that answers from a script, recording every request."""

    def __init__(self) -> None:
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append(Seen(self.path, headers, body))
                canned = stub.script.pop(0) if stub.script else Canned(599, {"error": {}})
                if canned.drop:
                    self.close_connection = True
                    return
                payload = json.dumps(canned.body).encode()
                self.send_response(canned.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def push(self, *canned: Canned) -> None:
        self.script.extend(canned)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """Monotonic seconds that move only when something sleeps; the sleeps are recorded."""

    WALL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()

    def wall(self) -> datetime:
        return self.WALL + timedelta(seconds=self.now - 1000.0)


@pytest.fixture
def stub() -> Iterator[ChatStub]:
    server = ChatStub()
    yield server
    server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Make = Callable[..., ChatCompletionsLLM]


@pytest.fixture
def make(stub: ChatStub, clock: FakeClock) -> Iterator[Make]:
    built: list[ChatCompletionsLLM] = []

    def build(cls: type[ChatCompletionsLLM] = GroqLLM, **settings: Any) -> ChatCompletionsLLM:
        base = stub.url if cls is GroqLLM else stub.url + "/v1"
        settings = {"api_key": KEY, "base_url": base, **settings}
        if cls is OpenAILLM:
            settings.setdefault("model", "llama3.1:8b")
        config = cls.Config.model_validate(settings)
        limiter = RateLimiter(
            config.limits, name="test", clock=clock, sleep=clock.sleep, wall=clock.wall
        )
        plugin = cls(config, None, limiter=limiter)
        built.append(plugin)
        return plugin

    yield build
    for plugin in built:
        plugin.close()


ASK_CITY = [{"role": "user", "content": "What is the largest city in Mexico?"}]


# --------------------------------------------------------------------------- 200 answers


@pytest.mark.parametrize(
    ("cls", "path", "tokens_field"),
    [
        (GroqLLM, "/openai/v1/chat/completions", "max_completion_tokens"),
        (OpenAILLM, "/v1/chat/completions", "max_tokens"),
    ],
)
def test_recorded_answer_through_both_plugins(
    stub: ChatStub, make: Make, cls: type[ChatCompletionsLLM], path: str, tokens_field: str
) -> None:
    status, body = cassette("test_groq_native_output")
    stub.push(Canned(status, body))
    plugin = make(cls, model="openai/gpt-oss-120b", json_schema_models=["openai/gpt-oss-120b"])
    assert isinstance(plugin, LLMPlugin)
    result = plugin.chat(ASK_CITY, CITY_SCHEMA, max_tokens=200)
    assert result.data == CITY
    assert result.raw_text == '{"city":"Mexico City","country":"Mexico"}'
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (178, 94)
    assert result.usage.total_tokens == 272
    assert (result.model, result.attempts) == ("openai/gpt-oss-120b", 1)
    [seen] = stub.requests
    assert seen.path == path
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body[tokens_field] == 200
    # The request has the recorded request's shape.
    recorded = yaml.safe_load((GROQ / "pydantic-ai-cassettes/test_groq_native_output.yaml").open())
    sent_format = seen.body["response_format"]
    recorded_format = recorded["interactions"][0]["request"]["parsed_body"]["response_format"]
    assert sent_format["type"] == recorded_format["type"] == "json_schema"
    assert sent_format["json_schema"]["name"] == recorded_format["json_schema"]["name"]
    assert sent_format["json_schema"]["strict"] is True
    assert sent_format["json_schema"]["schema"] == CITY_SCHEMA
    assert seen.body["messages"] == ASK_CITY


def test_json_object_mode_adds_the_json_instruction(stub: ChatStub, make: Make) -> None:
    status, body = cassette("test_groq_prompted_output")
    stub.push(Canned(status, body), Canned(status, body))
    plugin = make(model="llama-3.1-8b-instant")  # not in json_schema_models
    system = {"role": "system", "content": "You are a geographer."}
    assert plugin.chat([system, *ASK_CITY], CITY_SCHEMA).data == CITY
    sent = stub.requests[0].body
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["model"] == "llama-3.1-8b-instant"
    first = sent["messages"][0]
    assert first["role"] == "system" and first["content"].startswith("You are a geographer.")
    assert "JSON" in first["content"] and '"CityLocation"' in first["content"]
    assert sent["messages"][1:] == ASK_CITY
    # Messages that already ask for JSON are sent as they are.
    asks_json = [{"role": "user", "content": "Largest city in Mexico? Reply in json."}]
    plugin.chat(asks_json, None)
    assert stub.requests[1].body["messages"] == asks_json
    assert stub.requests[1].body["response_format"] == {"type": "json_object"}


def test_text_mode_parses_a_fenced_reply(stub: ChatStub, make: Make) -> None:
    reply = "<think>The user wants JSON.</think>\n```json\n" + json.dumps(CITY) + "\n```"
    stub.push(Canned(200, completion(reply)))
    plugin = make(OpenAILLM, json_mode=False)
    result = plugin.chat(ASK_CITY, CITY_SCHEMA)
    assert result.data == CITY
    sent = stub.requests[0].body
    assert "response_format" not in sent
    assert sent["messages"][0]["role"] == "system"
    assert "JSON" in sent["messages"][0]["content"]
    assert "authorization" in stub.requests[0].headers


# --------------------------------------------------------------------------- unusable answers


def genres_only(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("genres"), list):
        raise InvalidAnswer('expected {"genres": [...]}')
    return data["genres"]


def test_invalid_answers_are_asked_again(stub: ChatStub, make: Make) -> None:
    stub.push(
        Canned(200, completion("Sure! Here are the genres: Rock", usage=(50, 10))),
        Canned(200, completion('{"genre": "Rock"}', usage=(70, 5))),
        Canned(200, completion('{"genres": ["Rock"]}', usage=(90, 6))),
    )
    plugin = make()
    result = plugin.chat(ASK_CITY, None, validate=genres_only)
    assert result.data == ["Rock"]
    assert result.attempts == 3
    assert result.usage.total_tokens == 60 + 75 + 96
    second = stub.requests[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": "Sure! Here are the genres: Rock"}
    assert second[-1]["role"] == "user" and "not valid JSON" in second[-1]["content"]
    third = stub.requests[2].body["messages"]
    assert third[-2]["content"] == '{"genre": "Rock"}'
    assert "expected" in third[-1]["content"]
    assert len(third) == len(second)  # asked again from the start, not a growing thread


def test_answers_that_stay_invalid_fail_the_batch(stub: ChatStub, make: Make) -> None:
    stub.push(*[Canned(200, completion('{"genre": "Rock"}')) for _ in range(5)])
    plugin = make(answer_retries=1)
    with pytest.raises(LLMAnswerError, match="2 tries"):
        plugin.chat(ASK_CITY, None, validate=genres_only)
    assert len(stub.requests) == 2


def test_json_validate_failed_is_asked_again(stub: ChatStub, make: Make) -> None:
    rejected = error_body("400_json_validate_failed")
    stub.push(Canned(400, rejected), Canned(200, completion('{"genres": ["Jazz"]}')))
    result = make().chat(ASK_CITY, None, validate=genres_only)
    assert (result.data, result.attempts) == (["Jazz"], 2)
    retry = stub.requests[1].body["messages"]
    assert retry[-2]["content"] == rejected["error"]["failed_generation"]


def test_other_4xx_are_not_retried(stub: ChatStub, make: Make) -> None:
    stub.push(Canned(*cassette("test_tool_regular_error")), Canned(200, completion("{}")))
    with pytest.raises(LLMRequestFailed, match=r"`non-existent` does not exist"):
        make(model="non-existent").chat(ASK_CITY, None)
    assert len(stub.requests) == 1


# --------------------------------------------------------------------------- rate limits


def test_429_retry_after_is_honoured_on_the_clock(
    stub: ChatStub, make: Make, clock: FakeClock
) -> None:
    stub.push(
        Canned(429, error_body("429_rate_limit_exceeded_tpm_2"), {"retry-after": "7"}),
        Canned(
            429,
            {"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
            {"retry-after": "2"},
        ),
        Canned(200, completion('{"genres": []}')),
    )
    result = make().chat(ASK_CITY, None)
    assert result.data == {"genres": []}
    assert result.attempts == 3
    # 7 s (header; the body's 6.78 s is shorter), then 2 s: no backoff on top.
    assert clock.slept == [7.0, 2.0]


def test_per_day_429_stops_the_job_until_the_budget_returns(
    stub: ChatStub, make: Make, clock: FakeClock
) -> None:
    message = (
        "Rate limit reached for model `llama-3.1-8b-instant` in organization `org_x` on "
        "tokens per day (TPD): Limit 500000, Used 499000, Requested 1500. Please try again "
        "in 9m38.016s. Need more tokens? Upgrade to Dev Tier today at "
        "https://console.groq.com/settings/billing"
    )
    body = {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}}
    stub.push(Canned(429, body), Canned(200, completion("{}")))
    plugin = make()
    with pytest.raises(LLMBudgetExhausted) as info:
        plugin.chat(ASK_CITY, None)
    assert info.value.retry_at == FakeClock.WALL + timedelta(seconds=578.016)
    assert len(stub.requests) == 1 and clock.slept == []
    # The next chat does not even send: the limiter knows the budget is gone.
    with pytest.raises(LLMBudgetExhausted):
        plugin.chat(ASK_CITY, None)
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (
            413,
            {"error": {"message": "Request Entity Too Large", "type": "invalid_request_error"}},
            {},
        ),
        (
            429,
            {
                "error": {
                    "message": "Request too large for model `llama-3.3-70b-versatile` in "
                    "organization `org_x` on tokens per minute (TPM): Limit 6000, Requested "
                    "6294, please reduce your message size and try again.",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            },
            {"retry-after": "1"},
        ),
        (429, error_body("429_rate_limit_exceeded_tpm"), {"retry-after": "51"}),  # ~12903 > 7000
    ],
)
def test_request_too_large_is_sent_once(
    stub: ChatStub, make: Make, clock: FakeClock, status: int, body: Any, headers: Any
) -> None:
    stub.push(Canned(status, body, headers), Canned(200, completion("{}")))
    with pytest.raises(LLMRequestTooLarge):
        make(limits={"max_wait": 600}).chat(ASK_CITY, None)
    assert len(stub.requests) == 1 and clock.slept == []


def test_request_over_the_tpm_limit_is_never_sent(stub: ChatStub, make: Make) -> None:
    plugin = make(limits={"tokens_per_minute": 1000})
    with pytest.raises(LLMRequestTooLarge, match="can never fit"):
        plugin.chat([{"role": "user", "content": "x" * 3000}], None, max_tokens=300)
    assert stub.requests == []


def test_headers_correct_the_budget(stub: ChatStub, make: Make, clock: FakeClock) -> None:
    headers = {
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-remaining-requests": "14370",
        "x-ratelimit-reset-requests": "2m59.56s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "7.66s",
    }
    stub.push(Canned(200, completion("{}"), headers), Canned(200, completion("{}")))
    plugin = make()
    plugin.chat(ASK_CITY, None, max_tokens=50)
    assert clock.slept == []
    plugin.chat(ASK_CITY, None, max_tokens=200)  # more than the 100 tokens left
    assert clock.slept == [pytest.approx(7.66)]


# --------------------------------------------------------------------------- failures


def test_5xx_retries_are_bounded_and_not_multiplied(
    stub: ChatStub, make: Make, clock: FakeClock
) -> None:
    stub.push(*[Canned(503, {"error": {"message": "Service Unavailable"}}) for _ in range(10)])
    plugin = make(retries={"attempts": 3, "backoff_initial": 1.0, "backoff_max": 4.0})
    with pytest.raises(LLMUnavailable, match="3 attempts"):
        plugin.chat(ASK_CITY, None)
    assert len(stub.requests) == 3  # not 3 × the SDK's own retries
    assert len(clock.slept) == 2 and all(0 < s <= 4.0 for s in clock.slept)


def test_dropped_connections_and_502_are_retried(
    stub: ChatStub, make: Make, clock: FakeClock
) -> None:
    stub.push(Canned(drop=True), Canned(502, {}), Canned(200, completion('{"ok": true}')))
    result = make().chat(ASK_CITY, None)
    assert (result.data, result.attempts, len(stub.requests)) == ({"ok": True}, 3, 3)
    assert len(clock.slept) == 2


def test_401_is_an_auth_failure_without_the_key(stub: ChatStub, make: Make) -> None:
    body = {
        "error": {
            "message": "Invalid API Key",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    stub.push(Canned(401, body), Canned(200, completion("{}")))
    with pytest.raises(LLMAuthFailed) as info:
        make().chat(ASK_CITY, None)
    assert len(stub.requests) == 1
    assert KEY not in str(info.value) and "GROQ_API_KEY" in str(info.value)


def test_cancel_stops_before_the_next_attempt(stub: ChatStub, make: Make, clock: FakeClock) -> None:
    cancel = threading.Event()
    clock.on_sleep = cancel.set  # shutdown arrives during the backoff
    stub.push(Canned(503, {}), Canned(200, completion("{}")))
    with pytest.raises(Cancelled):
        make().chat(ASK_CITY, None, cancel=cancel)
    assert len(stub.requests) == 1
    with pytest.raises(Cancelled):
        make().chat(ASK_CITY, None, cancel=cancel)  # already set: nothing is sent
    assert len(stub.requests) == 1


def test_the_api_key_never_reaches_the_log(stub: ChatStub, make: Make) -> None:
    plain_key = "test-key-Zq81xYw7Lm"  # matches no redaction pattern: must never be logged
    stream = io.StringIO()
    configure_logging("debug", "json", [], stream=stream)
    stub.push(
        Canned(503, {"error": {"message": f"upstream echoed {plain_key}"}}),
        Canned(200, completion("not json")),
        Canned(401, {"error": {"message": f"Invalid API Key {plain_key}"}}),
    )
    plugin = make(api_key=plain_key)
    with pytest.raises(LLMAuthFailed) as info:
        plugin.chat(ASK_CITY, None)
    assert stub.requests[0].headers["authorization"] == f"Bearer {plain_key}"
    logged = stream.getvalue()
    assert "LLM request failed" in logged and "unusable answer" in logged
    assert plain_key not in logged
    assert plain_key not in str(info.value)


# --------------------------------------------------------------------------- wiring


def test_plugins_are_registered_and_the_example_config_validates() -> None:
    found = {i.name: i for i in discover(["llm"])}
    assert found["groq"].cls is GroqLLM and found["openai"].cls is OpenAILLM
    config = load_config(EXAMPLE_CONFIG, env={"PLEX_TOKEN": "abcd1234"})
    sections = {e.name: e.settings for e in config.plugins.llm}
    assert set(sections) == {"groq", "openai"}
    assert config.plugins.enabled("llm") == []
    groq = GroqLLM.Config.model_validate(sections["groq"])
    assert (groq.api_key, groq.model, groq.limits.requests_per_minute) == (
        None,
        "llama-3.1-8b-instant",
        30,
    )
    assert groq.limits.max_wait == 60.0
    local = OpenAILLM.Config.model_validate(sections["openai"])
    assert str(local.base_url) == "http://127.0.0.1:11434/v1"
    assert local.limits.tokens_per_minute is None


def test_groq_without_a_key_says_where_to_put_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(Exception, match=r"needs an API key: set \$GROQ_API_KEY"):
        GroqLLM(GroqLLM.Config(), None)
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    plugin = GroqLLM(GroqLLM.Config(), None)
    assert plugin.api_key() == KEY
    plugin.close()


def test_openai_never_sends_the_env_key_to_another_server(
    monkeypatch: pytest.MonkeyPatch, stub: ChatStub, make: Make
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-0000")
    stub.push(Canned(200, completion("{}")))
    make(OpenAILLM, api_key=None).chat(ASK_CITY, None)
    assert "sk-from-the-environment" not in stub.requests[0].headers.get("authorization", "")


def test_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        GroqLLM.Config.model_validate({"modle": "x"})
    with pytest.raises(ValueError, match="extra"):
        GroqLLM.Config.model_validate({"limits": {"rpm": 3}})
