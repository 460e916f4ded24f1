"""Rate budgets on a fake clock (an hour of traffic in milliseconds) and Go durations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from genred.errors import Cancelled, LLMBudgetExhausted, LLMRequestTooLarge
from genred_plugins.llm.limits import (
    RateBudget,
    RateLimiter,
    RateLimits,
    estimate_tokens,
    parse_go_duration,
)
from genred_plugins.llm.provider import retry_wait, too_large

GROQ_HEADERS = {"requests": "day", "tokens": "minute"}
WALL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.now)


def limiter(clock: Clock, **limits: object) -> RateLimiter:
    return RateLimiter(
        RateLimits.model_validate(limits), clock=clock, sleep=clock.sleep, wall=clock.wall
    )


# --------------------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("300ms", 0.3),
        ("7.66s", 7.66),
        ("1m30s", 90.0),
        ("2m59.56s", 179.56),
        ("1h23m31s", 5011.0),
        ("9m38.016s", 578.016),
        ("6.780999999s", 6.780999999),
        ("50.597142857s", 50.597142857),
        ("1h0m0s", 3600.0),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("1m", 60.0),
        ("15ms", 0.015),
        ("1.5ms", 0.0015),
        ("500us", 0.0005),
        ("500µs", 0.0005),  # micro sign
        ("500μs", 0.0005),  # Greek mu
        ("100ns", 1e-7),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("1s500ms", 1.5),
        ("+5s", 5.0),
        ("-1m", -60.0),
        (" 7.66s ", 7.66),  # header whitespace
    ],
)
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "1",
        "12",
        "1x",
        "1m30",
        "abc",
        "1 s",
        "1h 2m",
        "1d",
        "--1s",
        ".s",
        "1.2.3s",
        "1sec",
        "ms",
    ],
)
def test_parse_go_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)


# --------------------------------------------------------------------------- budgets


def test_rpm_30_never_lets_31_requests_into_one_minute() -> None:
    clock = Clock()
    limits = limiter(clock, requests_per_minute=30, requests_per_day=None, tokens_per_minute=None)
    sent = []
    for _ in range(100):
        limits.acquire(10)
        sent.append(clock.now)
        clock.now += 0.1  # each request takes a moment
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 30
    # …and waits no longer than needed: request 31 goes the moment request 1 turns 60 s old.
    assert sent[30] == pytest.approx(sent[0] + 60)
    assert sent[-1] < 4 * 60


def test_token_budget_waits_for_old_tokens_to_expire() -> None:
    clock = Clock()
    limits = limiter(clock, tokens_per_minute=1000)
    limits.acquire(600)
    clock.now = 20
    limits.acquire(300)
    clock.now = 30
    limits.acquire(500)  # 900 used: waits until the 600 expire at t=60
    assert clock.slept == [30.0]
    assert clock.now == 60


def test_settle_replaces_the_estimate_with_real_usage() -> None:
    clock = Clock()
    limits = limiter(clock, tokens_per_minute=1000)
    reservation = limits.acquire(900)
    limits.settle(reservation, 120)
    limits.acquire(800)  # 120 + 800 fit
    assert clock.slept == []


def test_a_refused_request_gives_its_reservation_back() -> None:
    clock = Clock()
    limits = limiter(clock, requests_per_minute=1, tokens_per_minute=1000)
    limits.release(limits.acquire(900))
    limits.acquire(900)
    assert clock.slept == []


def test_too_long_a_wait_stops_with_the_time_the_budget_returns() -> None:
    clock = Clock()
    limits = limiter(clock, requests_per_day=2, max_wait="5m")
    limits.acquire(1)
    clock.now = 100
    limits.acquire(1)
    with pytest.raises(LLMBudgetExhausted) as info:
        limits.acquire(1)
    # The daily bucket regains one of its 2 requests every 12 h, from the first request on.
    assert info.value.retry_at == WALL + timedelta(seconds=43_200)
    assert clock.slept == []


def test_a_request_above_a_token_limit_can_never_fit() -> None:
    limits = limiter(Clock(), tokens_per_minute=6000, tokens_per_day=500_000)
    with pytest.raises(LLMRequestTooLarge, match="6000 tokens per minute"):
        limits.acquire(6001)
    limits.acquire(6000)


def test_estimate_is_prompt_chars_over_4_plus_max_tokens() -> None:
    messages = [{"role": "system", "content": "x" * 400}, {"role": "user", "content": "y" * 401}]
    assert estimate_tokens(messages, 256) == 101 + 100 + 256


def test_unlimited_budgets_never_wait() -> None:
    clock = Clock()
    limits = limiter(
        clock,
        requests_per_minute=None,
        requests_per_day=None,
        tokens_per_minute=None,
        tokens_per_day=None,
    )
    for _ in range(1000):
        limits.acquire(100_000)
    assert clock.slept == []


# --------------------------------------------------------------------------- headers, 429


def test_headers_lower_the_remaining_budget() -> None:
    clock = Clock()
    limits = limiter(clock, requests_per_day=14_400, max_wait="10m")
    limits.acquire(10)
    limits.observe(
        {
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": "2m59.56s",
        },
        GROQ_HEADERS,
    )
    day = limits.budgets[("requests", "day")]
    assert day.limit - day.used(clock.now) == 3
    for _ in range(3):
        limits.acquire(10)
    assert clock.slept == []
    limits.acquire(10)  # the fourth waits for the bucket to regain one: 86,400 s / 14,400
    assert clock.slept == [pytest.approx(6.0)]


def test_headers_never_raise_the_budget_and_a_lower_limit_wins() -> None:
    clock = Clock()
    limits = limiter(clock, tokens_per_minute=6000)
    tpm = limits.budgets[("tokens", "minute")]
    limits.acquire(5000)
    limits.observe({"x-ratelimit-remaining-tokens": "5900"}, GROQ_HEADERS)
    assert tpm.used(clock.now) == 5000  # the provider saw less; ours is kept
    limits.observe(
        {"x-ratelimit-limit-tokens": "3000", "x-ratelimit-remaining-tokens": "0"}, GROQ_HEADERS
    )
    assert tpm.limit == 3000
    with pytest.raises(LLMRequestTooLarge):
        limits.acquire(3001)


def test_garbage_headers_are_ignored() -> None:
    clock = Clock()
    limits = limiter(clock)
    limits.observe(
        {"x-ratelimit-remaining-tokens": "lots", "x-ratelimit-reset-requests": "soon"},
        GROQ_HEADERS,
    )
    limits.observe(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "soon"}, GROQ_HEADERS
    )
    day = limits.budgets[("requests", "day")]
    assert day.used(clock.now) == day.limit  # "0 left" counts; the reset needs no parsing


def test_a_429_pauses_every_request() -> None:
    clock = Clock()
    limits = limiter(clock)
    limits.rate_limited(2.5)
    limits.acquire(10)
    assert clock.slept == [2.5]
    with pytest.raises(LLMBudgetExhausted) as info:
        limits.rate_limited(578.016)
    assert info.value.retry_at == WALL + timedelta(seconds=2.5 + 578.016)


def test_429_wait_and_size_from_recorded_bodies() -> None:
    tpm = (
        "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_x` on "
        "tokens per minute (TPM): Limit 6000, Used 3513, Requested 3166. Please try again "
        "in 6.780999999s. Visit https://console.groq.com/docs/rate-limits for more information."
    )
    assert retry_wait({}, tpm) == pytest.approx(6.780999999)
    assert retry_wait({"retry-after": "7"}, tpm) == 7.0
    assert retry_wait({"retry-after-ms": "9500"}, "") == 9.5
    assert retry_wait({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, "busy") is None
    assert not too_large(tpm)
    assert too_large("on tokens per minute (TPM): Limit 7000, Used 0, Requested ~12903.")
    assert too_large("Request too large for model `x` on tokens per minute (TPM): Limit 6000")


def test_cancel_ends_a_wait() -> None:
    cancel = threading.Event()
    clock = Clock()
    limits = RateLimiter(
        RateLimits(requests_per_minute=1),
        clock=clock,
        sleep=lambda s: (clock.sleep(s), cancel.set()),
        wall=clock.wall,
    )
    limits.acquire(1, cancel)
    with pytest.raises(Cancelled):
        limits.acquire(1, cancel)
    assert clock.slept == [60.0]  # stopped after the wait, before reserving or sending


def test_cancel_wakes_a_real_sleep_at_once() -> None:
    cancel = threading.Event()
    limits = RateLimiter(RateLimits(requests_per_minute=1))
    limits.acquire(1)
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(Cancelled):
        limits.acquire(1, cancel)  # would sleep ~60 s without the event


def test_budget_is_pure_arithmetic() -> None:
    budget = RateBudget(limit=3, window=10)
    for t in (0, 1, 2):
        budget.spend(1, t)
    assert budget.wait(1, 5) == 5  # the first expires at 10
    assert budget.wait(2, 5) == 6
    assert budget.wait(4, 5) == float("inf")
    assert budget.used(10.5) == 2


def test_max_wait_accepts_durations() -> None:
    assert RateLimits(max_wait="5m").max_wait == 300
    assert RateLimits(max_wait=0).max_wait == 0
    assert RateLimits().model_dump() == {
        "requests_per_minute": 30,
        "requests_per_day": 14_400,
        "tokens_per_minute": 6_000,
        "tokens_per_day": 500_000,
        "max_wait": 60.0,
    }
