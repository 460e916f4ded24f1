"""How long a run of requests takes under a `RateLimiter` on a fake clock: the daily
budgets as a refilling bucket (genred's, as Groq counts) or as a sliding 24 h window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from genred_plugins.llm.limits import RateLimiter, RateLimits
from tests.emulators.llm import FakeClock


def run_seconds(
    tokens: Sequence[int], limits: RateLimits, daily: Literal["refill", "window"]
) -> float:
    """Seconds from the first request to the last one going out, each request reserving
    (and using) its `tokens`, waiting as long as the budgets say."""
    clock = FakeClock()
    limiter = RateLimiter(
        limits.model_copy(update={"max_wait": 10 * 86_400.0}),
        clock=clock,
        sleep=clock.advance,
        daily=daily,
    )
    start = clock()
    for amount in tokens:
        limiter.settle(limiter.acquire(amount), amount)
    return clock() - start
