"""The LLM emulator, checked through the real groq and openai SDKs and raw HTTP.

Each test asserts on what crossed the wire: bodies, headers, statuses and the request log.
Rate limits run on a FakeClock, so a minute or a day passes in no time.
"""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
from typing import Any

import groq
import httpx
import openai
import pytest

from genred.taxonomy import canonicalize
from tests.emulators.llm import (
    OUT_OF_TAXONOMY,
    FakeClock,
    GroundTruth,
    Limits,
    LLMEmulator,
    Noise,
    find_document,
    go_duration,
    parse_go_duration,
    recorded,
)
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.llm.ratelimits import (
    ModelBudget,
    estimate_tokens,
    prompt_tokens,
    rate_limit_body,
)
from tests.emulators.plex.sources import read_freemusicc, split_tags

MODEL = "llama-3.1-8b-instant"
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(s|ms|µs|ns))$|^0s$")
SYSTEM = {"role": "system", "content": "You label music. Answer with one JSON document."}


def groq_client(emu: LLMEmulator, key: str = LLM_KEY) -> groq.Groq:
    return groq.Groq(base_url=emu.url, api_key=key, max_retries=0)


def openai_client(emu: LLMEmulator, key: str = LLM_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.openai_base_url, api_key=key, max_retries=0)


def user(document: dict[str, Any]) -> dict[str, str]:
    return {
        "role": "user",
        "content": "Classify these tracks.\n```json\n" + json.dumps(document) + "\n```",
    }


def csv_items(count: int, step: int = 997) -> list[tuple[dict[str, Any], list[str]]]:
    """(request item, expected genres) for freemusi.cc rows spread over the file."""
    rows = read_freemusicc()
    out = []
    for n, row in enumerate(rows[::step][:count]):
        genres = list(dict.fromkeys(split_tags(row["genre"]) + split_tags(row["style"])))
        item = {
            "id": f"t{n}",
            "artist": row["track_artist"] if n % 2 else row["album_artist"],
            "album": row["album"],
            "title": row["title"],
            "year": row["year"],
        }
        out.append((item, genres))
    return out


def post(emu: LLMEmulator, body: dict[str, Any], prefix: str = "/openai/v1") -> httpx.Response:
    return httpx.post(
        f"{emu.url}{prefix}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {LLM_KEY}"},
        timeout=10,
    )


def hello(emu: LLMEmulator, model: str = MODEL, **kw: Any) -> httpx.Response:
    return post(emu, {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw})


# -- 200s through both SDKs, shaped as recorded ---------------------------------------------


def test_groq_sdk_parses_a_200_with_usage(llm_emulator: LLMEmulator) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    raw = groq_client(llm_emulator).chat.completions.with_raw_response.create(
        model=MODEL, messages=messages
    )
    done = raw.parse()
    assert done.choices[0].message.content == "The capital of France is Paris."  # replayed
    assert done.choices[0].finish_reason == "stop"
    assert done.id.startswith("chatcmpl-") and done.object == "chat.completion"
    assert done.model == MODEL and done.created == int(llm_emulator.clock())
    assert done.x_groq is not None and done.x_groq.id.startswith("req_")
    assert done.service_tier == "on_demand" and done.system_fingerprint.startswith("fp_")
    usage = done.usage
    assert usage is not None
    assert usage.prompt_tokens == prompt_tokens(messages) == 3 + (4 + 7) + (4 + 8)
    assert usage.completion_tokens == estimate_tokens("The capital of France is Paris.") == 8
    assert usage.total_tokens == 34
    assert usage.queue_time and usage.prompt_time and usage.completion_time
    assert usage.total_time == pytest.approx(usage.prompt_time + usage.completion_time)
    assert raw.headers["x-request-id"] == done.x_groq.id
    (record,) = llm_emulator.requests
    assert (record.method, record.path, record.status) == (
        "POST",
        "/openai/v1/chat/completions",
        200,
    )
    assert (record.model, record.kind, record.prompt_tokens, record.completion_tokens) == (
        MODEL,
        "chat",
        26,
        8,
    )
    assert record.headers["user-agent"].startswith("Groq/Python")
    assert record.headers["x-stainless-retry-count"] == "0"
    assert record.body is not None and record.body["messages"] == messages


def test_openai_sdk_parses_a_200_on_the_plain_v1_path(llm_emulator: LLMEmulator) -> None:
    done = openai_client(llm_emulator).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    assert done.choices[0].message.role == "assistant"
    assert "genred LLM emulator" in (done.choices[0].message.content or "")
    assert (
        done.usage is not None
        and done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    )
    assert done.usage.prompt_tokens == 3 + 4 + estimate_tokens("hello there")
    (record,) = llm_emulator.requests
    assert record.path == "/v1/chat/completions"
    assert record.headers["user-agent"].startswith("OpenAI/Python")
    # The openai SDK can also use Groq's own prefix, as people do with api.groq.com.
    client = openai.OpenAI(base_url=llm_emulator.groq_openai_base_url, api_key=LLM_KEY)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert llm_emulator.requests[-1].path == "/openai/v1/chat/completions"


@pytest.mark.parametrize("exchange", recorded.recorded_200s(), ids=lambda e: e.name)
def test_answers_have_the_recorded_shape(
    llm_emulator: LLMEmulator, exchange: recorded.Exchange
) -> None:
    answer = post(llm_emulator, exchange.request)  # the recorded request, as recorded
    assert answer.status_code == 200, answer.text
    got, want = answer.json(), exchange.response
    assert set(want) - {"usage_breakdown"} <= set(got)
    assert set(got) - set(want) <= {"service_tier"}  # the oldest recording predates it
    assert set(got["choices"][0]) == set(want["choices"][0])
    assert set(got["choices"][0]["message"]) == set(want["choices"][0]["message"])
    assert set(got["usage"]) == set(want["usage"]) - {
        "completion_tokens_details",
        "prompt_tokens_details",
    }
    assert set(got["x_groq"]) == {"id"}
    assert got["choices"][0]["message"]["content"] == want["choices"][0]["message"]["content"]
    assert got["id"].startswith("chatcmpl-") and want["id"].startswith("chatcmpl-")
    assert answer.headers["content-type"] == "application/json"
    assert (
        answer.headers["cache-control"] == "private, max-age=0, no-store, no-cache, must-revalidate"
    )


def test_models_are_listed_on_both_paths(llm_emulator: LLMEmulator) -> None:
    listed = groq_client(llm_emulator).models.list()
    ids = [m.id for m in listed.data]
    assert ids == list(llm_emulator.models)
    assert MODEL in ids and "openai/gpt-oss-120b" in ids
    assert [m.id for m in openai_client(llm_emulator).models.list()] == ids
    one = groq_client(llm_emulator).models.retrieve("openai/gpt-oss-120b")
    assert one.id == "openai/gpt-oss-120b" and one.owned_by == "OpenAI"
    assert [r.path for r in llm_emulator.requests] == [
        "/openai/v1/models",
        "/v1/models",
        "/openai/v1/models/openai%2Fgpt-oss-120b",  # as the SDK quotes it
    ]


# -- auth and unknown models ---------------------------------------------------------------


INVALID_KEY = {
    "error": {
        "message": "Invalid API Key",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
}


def test_a_wrong_or_missing_key_is_401(llm_emulator: LLMEmulator) -> None:
    with pytest.raises(groq.AuthenticationError) as caught:
        groq_client(llm_emulator, "wrong-key").chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.body == INVALID_KEY
    missing = httpx.post(f"{llm_emulator.url}/openai/v1/chat/completions", json={})
    assert (missing.status_code, missing.json()) == (401, INVALID_KEY)
    with pytest.raises(openai.AuthenticationError):
        openai_client(llm_emulator, "nope").models.list()
    assert [r.status for r in llm_emulator.requests] == [401, 401, 401]
    assert all(r.response_headers == {} for r in llm_emulator.requests)
    assert all(r.error_code == "invalid_api_key" for r in llm_emulator.requests)


def test_an_unknown_model_is_404_as_recorded(llm_emulator: LLMEmulator) -> None:
    want = recorded.model_not_found_body()
    with pytest.raises(groq.NotFoundError) as caught:
        groq_client(llm_emulator).chat.completions.create(
            model="non-existent", messages=[{"role": "user", "content": "hello"}]
        )
    got = caught.value.body
    assert isinstance(got, dict) and set(got["error"]) == set(want["error"])
    assert got == want  # the recorded request asked for "non-existent" too
    with pytest.raises(openai.NotFoundError):
        openai_client(llm_emulator).chat.completions.create(
            model="llama-9", messages=[{"role": "user", "content": "hi"}]
        )
    assert llm_emulator.requests[-1].error_code == "model_not_found"
    assert httpx.get(f"{llm_emulator.url}/openai/v1/nothing").status_code == 401
    assert (
        httpx.get(
            f"{llm_emulator.url}/v2/x", headers={"Authorization": f"Bearer {LLM_KEY}"}
        ).json()["error"]["code"]
        == "unknown_url"
    )


# -- rate limits ---------------------------------------------------------------------------


def test_go_durations() -> None:
    cases = {
        0.3: "300ms",
        7.66: "7.66s",
        179.56: "2m59.56s",
        5011: "1h23m31s",
        6.780999999: "6.780999999s",
        60: "1m0s",
        3600: "1h0m0s",
        0: "0s",
        0.0015: "1.5ms",
    }
    for seconds, text in cases.items():
        assert go_duration(seconds) == text
        assert parse_go_duration(text) == pytest.approx(seconds)
    assert parse_go_duration("9m38.016s") == pytest.approx(578.016)


TPM_MESSAGE = re.compile(
    r"^Rate limit reached for model `[^`]+` in organization `org_\w+`( service tier `on_demand`)?"
    r" on tokens per minute \(TPM\): Limit \d+, Used \d+, Requested ~?\d+\. Please try again in "
    r"[\d.hms]+\. Visit https://console\.groq\.com/docs/rate-limits for more information\.$"
)


@pytest.mark.parametrize("name", ["429_rate_limit_exceeded_tpm", "429_rate_limit_exceeded_tpm_2"])
def test_the_tpm_429_has_the_recorded_shape_and_arithmetic(name: str) -> None:
    want = recorded.error_body(name)["error"]
    numbers = re.search(r"Limit (\d+), Used (\d+), Requested ~?(\d+)\. .* in ([\d.hms]+)\.", want["message"])  # fmt: skip
    assert numbers and TPM_MESSAGE.match(want["message"])
    limit, used, requested = (int(numbers[i]) for i in (1, 2, 3))
    budget = ModelBudget(Limits(rpm=None, rpd=None, tpm=limit, tpd=None))
    budget.take_tokens(0.0, used)
    # The recorded wait is what a bucket refilling limit/60 s gives (to Groq's rounding).
    wait = (used + requested - limit) / (limit / 60)
    assert wait == pytest.approx(parse_go_duration(numbers[4]), abs=0.01)
    verdict = budget.check(0.0, requested)
    if requested > limit:  # answered 429 in 2024; later reports (and the emulator) say 413
        assert verdict.too_large
        budget.take_tokens(0.0, limit)
        verdict = budget.check(0.0, 1)  # a 429 to compare the body with
    else:
        assert verdict.wait_s == pytest.approx(wait)
    body = rate_limit_body("llama-3.3-70b-versatile", "org_01hs26sgxde6dva0eke39336sv", verdict)
    assert set(body["error"]) == set(want) and TPM_MESSAGE.match(body["error"]["message"])
    assert (body["error"]["type"], body["error"]["code"]) == (want["type"], want["code"])


def test_every_answer_carries_groq_rate_limit_headers(
    llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    client = groq_client(llm_emulator)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    total = raw.parse().usage.total_tokens
    h = raw.headers
    assert h["x-ratelimit-limit-requests"] == "14400"  # RPD
    assert h["x-ratelimit-limit-tokens"] == "6000"  # TPM
    assert h["x-ratelimit-remaining-requests"] == "14399"
    assert h["x-ratelimit-remaining-tokens"] == str(6000 - total)
    assert h["x-ratelimit-reset-requests"] == "6s"  # one request of 14400 a day refills in 6 s
    assert h["x-ratelimit-reset-tokens"] == go_duration(total * 60 / 6000)
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert GO_DURATION.match(h[name]), h[name]
    assert "retry-after" not in h
    llm_clock.advance(3)  # the buckets drain continuously
    h2 = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    ).headers
    assert h2["x-ratelimit-remaining-requests"] == "14398"
    assert parse_go_duration(h2["x-ratelimit-reset-requests"]) == pytest.approx(12 - 3, abs=1e-3)
    assert h2["x-ratelimit-reset-tokens"] == go_duration(total * 60 / 6000)  # drained at 3 s
    assert llm_emulator.requests[-1].response_headers == {
        k: v for k, v in h2.items() if k.startswith("x-ratelimit-")
    }
    # Errors of a known model carry them too.
    assert (
        "x-ratelimit-limit-tokens"
        in post(
            llm_emulator,
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 9000},
        ).headers
    )


def test_rpm_limit_answers_429_until_the_minute_refills(
    llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    client = groq_client(llm_emulator)
    send = lambda: client.chat.completions.create(  # noqa: E731
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    for _ in range(30):
        send()
    with pytest.raises(groq.RateLimitError) as caught:
        send()
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "2"  # RPM 30 regains one request per 2 s
    assert error.body == {
        "error": {
            "message": (
                f"Rate limit reached for model `{MODEL}` in organization "
                f"`{llm_emulator.organization}` service tier `on_demand` on requests per "
                "minute (RPM): Limit 30, Used 30, Requested 1. Please try again in 2s. "
                "Visit https://console.groq.com/docs/rate-limits for more information."
            ),
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    assert error.response.headers["x-ratelimit-remaining-requests"] == "14370"  # not counted
    llm_clock.advance(1.5)
    with pytest.raises(groq.RateLimitError) as again:
        send()
    assert "Please try again in 500ms" in str(again.value.body)
    llm_clock.advance(0.5)
    send()
    llm_clock.advance(60)
    for _ in range(30):
        send()
    statuses = [r.status for r in llm_emulator.completions()]
    assert statuses == [200] * 30 + [429, 429] + [200] * 31
    assert [r.limit for r in llm_emulator.completions() if r.status == 429] == ["RPM", "RPM"]


def test_tpm_limit_counts_prompt_plus_requested_completion(
    llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    llm_emulator.set_limits(Limits(rpm=None, rpd=None, tpm=1000, tpd=None), MODEL)
    client = groq_client(llm_emulator)
    messages = [{"role": "user", "content": "Tell me about dub techno. " * 20}]
    prompt = prompt_tokens(messages)
    used = 0
    while True:
        try:
            done = client.chat.completions.create(
                model=MODEL, messages=messages, max_completion_tokens=300
            )
        except groq.RateLimitError as refused:
            error = refused
            break
        used += done.usage.total_tokens
    requested = prompt + 300
    assert used + requested > 1000 >= used
    wait = (used + requested - 1000) / (1000 / 60)
    message = error.body["error"]["message"]
    assert (
        f"on tokens per minute (TPM): Limit 1000, Used {used}, Requested {requested}. "
        f"Please try again in {go_duration(wait)}. Visit" in message
    )
    assert error.body["error"]["type"] == "tokens"
    assert error.response.headers["retry-after"] == str(math.ceil(wait))
    record = llm_emulator.requests[-1]
    assert (record.status, record.limit, record.requested_tokens) == (429, "TPM", requested)
    assert sum(r.tokens for r in llm_emulator.requests) == used
    llm_clock.advance(int(error.response.headers["retry-after"]))
    client.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=300)


def test_rpd_limit_waits_for_the_day_bucket(
    llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    llm_emulator.set_limits(Limits(rpm=None, rpd=3, tpm=None, tpd=None), MODEL)
    remaining = [hello(llm_emulator).headers["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = hello(llm_emulator)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "28800"  # a day / 3
    assert refused.headers["x-ratelimit-reset-requests"] == "24h0m0s"
    assert refused.json()["error"]["type"] == "requests"
    assert (
        "on requests per day (RPD): Limit 3, Used 3, Requested 1. Please try again in 8h0m0s."
        in refused.json()["error"]["message"]
    )
    llm_clock.advance(28_799)
    assert hello(llm_emulator).status_code == 429
    llm_clock.advance(1)
    assert hello(llm_emulator).status_code == 200


def test_tpd_limit(llm_emulator: LLMEmulator, llm_clock: FakeClock) -> None:
    llm_emulator.set_limits(Limits(rpm=None, rpd=None, tpm=None, tpd=100), MODEL)
    spent = 0
    while (answer := hello(llm_emulator)).status_code == 200:
        spent += answer.json()["usage"]["total_tokens"]
    assert answer.status_code == 429
    body = answer.json()["error"]
    # The check counts what the request asks (its prompt: no max_completion_tokens given);
    # the bucket is charged what it used, so the last admitted answer may overshoot.
    assert (
        f"Limit 100, Used {spent}, Requested {prompt_tokens([{'content': 'hi'}])}."
        in body["message"]
    )
    assert body["type"] == "tokens" and body["code"] == "rate_limit_exceeded"
    assert "on tokens per day (TPD): Limit 100" in body["message"]
    assert body["message"].endswith(
        "Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
    )
    llm_clock.advance(int(answer.headers["retry-after"]))
    assert hello(llm_emulator).status_code == 200


def test_a_request_that_can_never_fit_is_413(llm_emulator: LLMEmulator) -> None:
    messages = [{"role": "user", "content": "a" * 400}]
    with pytest.raises(groq.APIStatusError) as caught:
        groq_client(llm_emulator).chat.completions.create(
            model=MODEL, messages=messages, max_completion_tokens=6000
        )
    error = caught.value
    assert error.status_code == 413
    requested = prompt_tokens(messages) + 6000
    assert error.body == {
        "error": {
            "message": (
                f"Request too large for model `{MODEL}` in organization "
                f"`{llm_emulator.organization}` service tier `on_demand` on tokens per minute "
                f"(TPM): Limit 6000, Requested {requested}, please reduce your message size "
                "and try again. Visit https://console.groq.com/docs/rate-limits for more "
                "information."
            ),
            "type": "tokens",
            "code": "rate_limit_exceeded",
        }
    }
    assert "retry-after" not in error.response.headers
    assert error.response.headers["x-ratelimit-remaining-requests"] == "14400"


@pytest.mark.slow
def test_an_hour_of_throttled_traffic_in_fake_time(
    llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    """One request every 2 s against 20 RPM for an hour: a burst of 20, then 1 in 3."""
    llm_emulator.set_limits(Limits(rpm=20, rpd=None, tpm=None, tpd=None), MODEL)
    with httpx.Client(headers={"Authorization": f"Bearer {LLM_KEY}"}) as http:
        for _ in range(1800):
            http.post(
                f"{llm_emulator.url}/v1/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            )
            llm_clock.advance(2)
    ok = [r.at for r in llm_emulator.completions() if r.status == 200]
    # At most the bucket plus the refill (1 per 3 s) over the 3598 s; little is wasted.
    assert 20 + 3598 // 3 - 4 <= len(ok) <= 20 + 3598 / 3
    start = llm_emulator.requests[0].at
    for t0 in range(0, 3600, 60):  # never more than the bucket plus a minute's refill
        assert sum(start + t0 <= t < start + t0 + 60 for t in ok) <= 40


# -- structured output ---------------------------------------------------------------------


def test_json_object_needs_the_word_json(llm_emulator: LLMEmulator) -> None:
    client = groq_client(llm_emulator)
    with pytest.raises(groq.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Give me a city."}],
            response_format={"type": "json_object"},
        )
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["message"].startswith(
        "'messages' must contain the word 'json'"
    )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    done = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a city as JSON."}],
        response_format={"type": "json_object"},
    )
    assert json.loads(done.choices[0].message.content or "") == {}
    assert [r.status for r in llm_emulator.requests] == [400, 200]
    assert llm_emulator.requests[0].response_format == "json_object"


def test_json_schema_only_for_models_that_support_it(llm_emulator: LLMEmulator) -> None:
    native = next(e for e in recorded.recorded_200s() if e.name == "test_groq_native_output.yaml")
    response_format = native.request["response_format"]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(llm_emulator).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Where?"}],
            response_format=response_format,
        )
    assert caught.value.body["message"] == "This model does not support response format json_schema"
    done = openai_client(llm_emulator).chat.completions.create(
        model="openai/gpt-oss-120b",
        messages=[{"role": "user", "content": "Name a city."}],
        response_format=response_format,
    )
    assert json.loads(done.choices[0].message.content or "") == {"city": "", "country": ""}
    raw = post(
        llm_emulator,
        {
            "model": "openai/gpt-oss-120b",
            "messages": [user({"items": [{"id": "x", "artist": "a", "title": "b"}]})],
            "response_format": response_format,
        },
    ).json()
    assert json.loads(raw["choices"][0]["message"]["content"])["items"][0]["id"] == "x"
    assert raw["choices"][0]["message"]["reasoning"]  # gpt-oss reasons, as recorded


# -- the oracle ----------------------------------------------------------------------------


def test_the_oracle_answers_the_ground_truth(llm_emulator: LLMEmulator) -> None:
    cases = csv_items(20)
    items = [item for item, _ in cases] + [{"id": "nobody", "artist": "No One", "title": "None"}]
    done = groq_client(llm_emulator).chat.completions.create(
        model=MODEL,
        messages=[SYSTEM, user({"items": items})],
        response_format={"type": "json_object"},
    )
    answer = json.loads(done.choices[0].message.content or "")
    by_id = {entry["id"]: entry for entry in answer["items"]}
    assert list(by_id) == [item["id"] for item in items]
    for item, genres in cases:
        got = by_id[item["id"]]["genres"]
        assert [g["name"] for g in got] == genres, item
        assert got[0]["confidence"] == 0.9 and all(0.5 <= g["confidence"] <= 0.9 for g in got)
        assert by_id[item["id"]]["moods"] == []
    assert by_id["nobody"]["genres"] == []
    record = llm_emulator.requests[-1]
    assert record.kind == "classify" and record.items == tuple(i["id"] for i in items)
    assert record.document == {"items": items}
    assert record.unknown_ids == ("nobody",)


def test_the_oracle_keeps_to_the_labels_and_to_a_canonical_truth() -> None:
    truth = GroundTruth.from_freemusicc(limit=50, canonicalize=canonicalize)
    (item, raw_genres), *_ = csv_items(1, step=1)
    with LLMEmulator(truth, key=LLM_KEY, clock=FakeClock()) as emu:
        raw = post(emu, {"model": MODEL, "messages": [user({"items": [item]})]}).json()
        genres = [
            g["name"]
            for g in json.loads(raw["choices"][0]["message"]["content"])["items"][0]["genres"]
        ]
        assert genres == canonicalize(raw_genres) and genres
        document = {"items": [item], "labels": [genres[0].upper(), "Jazz"]}
        raw = post(emu, {"model": MODEL, "messages": [user(document)]}).json()
        answer = json.loads(raw["choices"][0]["message"]["content"])
        assert [g["name"] for g in answer["items"][0]["genres"]] == [genres[0].upper()]


def test_label_prompts_answer_match_from_the_label_truth() -> None:
    truth = GroundTruth.from_mapping({"a": ["Ambient"], "b": ["Rock"]})
    truth.set_label("Focus", ["a", ("Brian Eno", "Music for Airports", "1/1")])
    items = [
        {"id": "a", "title": "x"},
        {"id": "b", "title": "y"},
        {"id": "c", "artist": "brian eno", "album": "Music For Airports", "title": "1/1"},
    ]
    with LLMEmulator(truth, key=LLM_KEY, clock=FakeClock()) as emu:
        raw = post(emu, {"model": MODEL, "messages": [user({"label": "Focus", "items": items})]})
        answer = json.loads(raw.json()["choices"][0]["message"]["content"])
        assert answer == {
            "items": [
                {"id": "a", "match": True, "confidence": 0.9},
                {"id": "b", "match": False, "confidence": 0.1},
                {"id": "c", "match": True, "confidence": 0.9},
            ]
        }
        assert emu.requests[-1].kind == "label" and emu.requests[-1].label == "Focus"


def test_find_document_reads_whole_fenced_and_embedded_json() -> None:
    doc = {"items": [{"id": "1"}]}
    assert find_document(json.dumps(doc)) == doc
    assert find_document("Here:\n```json\n" + json.dumps(doc) + "\n```\nThanks") == doc
    assert find_document("Tracks: " + json.dumps(doc) + " -- answer in JSON") == doc
    assert find_document("no document") is None
    assert find_document('{"other": 1}') is None


def test_a_small_max_completion_tokens_cuts_the_answer(llm_emulator: LLMEmulator) -> None:
    items = [item for item, _ in csv_items(5)]
    raw = post(
        llm_emulator,
        {"model": MODEL, "messages": [user({"items": items})], "max_completion_tokens": 10},
    ).json()
    assert raw["choices"][0]["finish_reason"] == "length"
    assert raw["usage"]["completion_tokens"] <= 10
    with pytest.raises(ValueError):
        json.loads(raw["choices"][0]["message"]["content"])


# -- noise ---------------------------------------------------------------------------------

NOISE_KINDS = (
    "wrong_genre",
    "unknown_genre",
    "missing_id",
    "extra_id",
    "non_json",
    "truncated",
    "json_validate_failed",
    "error_5xx",
    "drop",
)


def classify(emu: LLMEmulator, items: list[dict[str, Any]]) -> Any:
    """The parsed answer document, or the exception the groq SDK raised."""
    try:
        done = groq_client(emu).chat.completions.create(
            model=MODEL,
            messages=[SYSTEM, user({"items": items})],
            response_format={"type": "json_object"},
        )
    except groq.APIError as error:
        return error
    content = done.choices[0].message.content or ""
    try:
        return json.loads(content), done.choices[0].finish_reason
    except ValueError:
        return content, done.choices[0].finish_reason


def noise_seen(kind: str, result: Any, cases: list[tuple[dict[str, Any], list[str]]]) -> bool:
    """Whether `result` shows `kind` (checked on the wire, not in the log)."""
    asked = {item["id"]: genres for item, genres in cases}
    if kind == "drop":
        return isinstance(result, groq.APIConnectionError)
    if kind == "error_5xx":
        return isinstance(result, groq.InternalServerError) and result.status_code == 500
    if kind == "json_validate_failed":
        if not isinstance(result, groq.BadRequestError):
            return False
        want = recorded.error_body("400_json_validate_failed")["error"]
        got = result.body["error"]
        assert set(got) == set(want)
        assert {k: got[k] for k in ("message", "type", "code")} == {
            k: want[k] for k in ("message", "type", "code")
        }
        assert got["failed_generation"].startswith("```json\n{")
        return True
    assert not isinstance(result, Exception), result
    document, finish = result
    if kind == "non_json":
        return isinstance(document, str) and finish == "stop"
    if kind == "truncated":
        return isinstance(document, str) and finish == "length"
    assert isinstance(document, dict), document
    entries = document["items"]
    if kind == "missing_id":
        return len(entries) < len(asked)
    if kind == "extra_id":
        return any(e["id"] not in asked for e in entries)
    names = {e["id"]: [g["name"] for g in e["genres"]] for e in entries}
    if kind == "wrong_genre":
        return all(len(names[i]) == 1 and names[i][0] not in asked[i] for i in asked)
    assert kind == "unknown_genre"
    return all(names[i][0] in OUT_OF_TAXONOMY and names[i][1:] == asked[i] for i in asked)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_each_noise_kind_always_at_rate_1_and_never_at_0(
    llm_emulator: LLMEmulator, kind: str
) -> None:
    cases = csv_items(4)
    items = [item for item, _ in cases]
    llm_emulator.noise = Noise.of({kind: 1.0})
    for _ in range(3):
        assert noise_seen(kind, classify(llm_emulator, items), cases), kind
    assert all(kind in r.noise for r in llm_emulator.completions())
    llm_emulator.noise = Noise.of({kind: 0.0})
    for _ in range(3):
        result = classify(llm_emulator, items)
        assert not isinstance(result, Exception), result
        document, finish = result
        assert finish == "stop"
        assert [[g["name"] for g in e["genres"]] for e in document["items"]] == [
            genres for _, genres in cases
        ]
    assert [bool(r.noise) for r in llm_emulator.completions()] == [True] * 3 + [False] * 3


def test_noise_is_seeded_and_settable_at_run_time(llm_emulator: LLMEmulator) -> None:
    items = [item for item, _ in csv_items(10)]
    seen = []
    for _ in range(2):
        llm_emulator.noise = Noise(wrong_genre_rate=0.3, missing_id_rate=0.2, seed=7)
        seen.append([classify(llm_emulator, items) for _ in range(3)])
    assert seen[0] == seen[1]
    kinds = {k for r in llm_emulator.completions() for k in r.noise}
    assert kinds == {"wrong_genre", "missing_id"}
    assert all(name in {"N/A", "Unknown"} or not canonicalize(name) for name in OUT_OF_TAXONOMY)
    llm_emulator.noise = Noise(error_5xx_rate=1.0, error_status=503, max_faults=1)
    assert isinstance(classify(llm_emulator, items), groq.InternalServerError)
    assert isinstance(classify(llm_emulator, items), tuple)  # max_faults reached


def test_out_of_taxonomy_names_map_to_no_genre() -> None:
    assert all(canonicalize(name) == [] for name in OUT_OF_TAXONOMY)


# -- standalone ----------------------------------------------------------------------------


def test_standalone_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.llm",
            "--port",
            "0",
            "--key",
            "K",
            "--truth",
            "none",
            "--rpm",
            "2",
            "--noise",
            "extra_id=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        client = groq.Groq(base_url=url, api_key="K", max_retries=0)
        for _ in range(2):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(groq.RateLimitError):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
