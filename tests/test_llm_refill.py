"""The daily LLM budgets refill continuously, as Groq's do: a run past the daily limit
takes hours, not the day a sliding 24 h window would wait (issue 13 item 9)."""

from __future__ import annotations

import pytest

from genred_plugins.llm.limits import RateLimiter, RateLimits
from tests.emulators.llm import FakeClock
from tests.emulators.llm.ratelimits import Limits, ModelBudget
from tests.rate_runs import run_seconds

NO_LIMITS = RateLimits(
    requests_per_minute=None, requests_per_day=None, tokens_per_minute=None, tokens_per_day=None
)


def test_requests_past_the_daily_limit_wait_for_the_refill_not_a_day() -> None:
    limits = NO_LIMITS.model_copy(update={"requests_per_day": 1_440})
    tokens = [10] * 2_000
    # 1,440 at once, then one every 86,400 / 1,440 = 60 s for the other 560.
    assert run_seconds(tokens, limits, "refill") == pytest.approx(560 * 60.0)
    # A sliding window waits until the first requests are a day old.
    assert run_seconds(tokens, limits, "window") == pytest.approx(86_400.0)


def test_under_the_daily_limit_both_ways_agree() -> None:
    limits = RateLimits()  # Groq's free tier: 30 RPM, 6,000 TPM bind first
    tokens = [1_000] * 120
    refill, window = run_seconds(tokens, limits, "refill"), run_seconds(tokens, limits, "window")
    assert refill == window == pytest.approx(19 * 60.0)  # 6 a minute (TPM), 20 minutes


def test_the_limiter_never_asks_more_than_the_providers_bucket_allows() -> None:
    """The emulator's buckets are Groq's: every request the limiter lets out fits them."""
    clock = FakeClock()
    start = clock()
    limits = RateLimits(requests_per_minute=None, tokens_per_minute=None, max_wait=86_400.0)
    provider = ModelBudget(Limits(rpm=None, rpd=14_400, tpm=None, tpd=500_000))
    limiter = RateLimiter(limits, clock=clock, sleep=clock.advance)
    for _ in range(200):
        held = limiter.acquire(5_000)
        verdict = provider.check(clock(), 5_000)
        assert verdict.ok, verdict
        provider.take_request(clock())
        provider.take_tokens(clock(), 5_000)
        limiter.settle(held, 5_000)
    # 100 requests' tokens at once, the other 100 at 5,000 / (500,000 / 86,400) s each.
    assert clock() - start == pytest.approx(100 * 5_000 * 86_400 / 500_000, rel=1e-6)
