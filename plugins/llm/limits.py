"""Rate budgets of one provider+model: requests and tokens per minute and per day.

A per-minute budget is a sliding-window log (`RateBudget`): every request leaves an entry
(1 request, or its tokens) that counts until it is `window` seconds old, and a new request
goes out only when the sum over the window leaves room for it; it never lets more than
`limit` into ANY minute. A per-day budget is a bucket (`RefillBudget`) of `limit` units
refilling continuously at limit/day, as Groq counts its daily limits (a 14,400 RPD limit
regains a request every 6 s; tests/fixtures/groq/NOTES.md): a sliding 24 h window would
wait a whole day for the first requests to expire, where the provider already allows
more. `RateLimiter(daily="window")` keeps the sliding window for providers that count so.

Before a request, its tokens are estimated as prompt characters / 4 (the usual rule of
thumb for English text with BPE tokenizers) plus the `max_tokens` it may generate: that is
what a provider such as Groq counts against the token limits before it answers. The
reservation is settled with the actual `usage.total_tokens` when the answer arrives.

After every response the provider's `x-ratelimit-remaining-*` / `x-ratelimit-reset-*`
headers correct the budgets: when the provider says less is left than our log does (other
clients share the key, or genred restarted), the difference is logged as spent until the
provider's reset time. A 429's wait pauses every request of this limiter.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.api import (
    LLMBudgetExhausted,
    LLMRequestTooLarge,
    get_logger,
    parse_duration,
    raise_if_cancelled,
)

log = get_logger("genred_plugins.llm")

MINUTE = 60.0
DAY = 86_400.0

# --------------------------------------------------------------------------- Go durations

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go `time.Duration` string: "300ms", "7.66s", "1m30s", "1h23m31s".

    The grammar is Go's: an optional sign, then one or more decimal numbers each followed by
    a unit (ns, us/µs, ms, s, m, h); "0" alone is zero. Anything else is a ValueError.
    """
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"{text!r} is not a Go duration")
    total, pos = 0.0, 0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a Go duration")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def estimate_tokens(messages: Sequence[Mapping[str, Any]], max_tokens: int) -> int:
    """What a request may count against the token budgets: prompt chars / 4 + `max_tokens`."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return math.ceil(chars / 4) + max_tokens


# --------------------------------------------------------------------------- settings


class RateLimits(BaseModel):
    """Budgets of one provider+model; null = no limit of that kind.

    The defaults are Groq's free tier for llama-3.1-8b-instant as published on
    https://console.groq.com/docs/rate-limits: 30 RPM, 14,400 RPD, 6,000 TPM, 500,000 TPD.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(30, ge=1)
    requests_per_day: int | None = Field(14_400, ge=1)
    tokens_per_minute: int | None = Field(6_000, ge=1)
    tokens_per_day: int | None = Field(500_000, ge=1)
    max_wait: float = Field(
        60.0,
        ge=0,
        description="longest wait for a budget (seconds or 30s/5m); beyond it the job stops "
        "and is rescheduled for when the budget returns",
    )

    @field_validator("max_wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value in (0, "0"):
            return 0.0
        return parse_duration(value).total_seconds()


# --------------------------------------------------------------------------- one budget


@dataclass
class Spend:
    """Units (1 request, or tokens) that count against a budget until `expires`."""

    expires: float
    amount: float


@dataclass
class RateBudget:
    """At most `limit` units in any `window` seconds (a sliding-window log; None = unlimited)."""

    limit: float | None
    window: float
    entries: list[Spend] = field(default_factory=list)  # sorted by expiry

    def _prune(self, now: float) -> None:
        while self.entries and self.entries[0].expires <= now:
            self.entries.pop(0)

    def used(self, now: float) -> float:
        self._prune(now)
        return sum(e.amount for e in self.entries)

    def fits(self, amount: float) -> bool:
        return self.limit is None or amount <= self.limit

    def wait(self, amount: float, now: float) -> float:
        """Seconds until `amount` more fits (0: now; inf: never, it exceeds the limit)."""
        if self.limit is None:
            return 0.0
        if amount > self.limit:
            return math.inf
        excess = self.used(now) + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0.0
        for entry in self.entries:
            freed += entry.amount
            if freed >= excess:
                return entry.expires - now
        return math.inf  # unreachable: the entries sum to more than excess

    def spend(self, amount: float, now: float, expires: float | None = None) -> Spend:
        entry = Spend(now + self.window if expires is None else expires, amount)
        bisect.insort(self.entries, entry, key=lambda e: e.expires)
        return entry

    def correct(
        self, remaining: float, reset: float | None, now: float, limit: float | None = None
    ) -> float:
        """Take the provider's word: `remaining` units left, all back in `reset` seconds.

        A lower reported `limit` replaces ours. Returns the units added as spent (0 when
        our log already left no more than the provider said).
        """
        if limit is not None and (self.limit is None or limit < self.limit):
            self.limit = limit
        if self.limit is None:
            return 0.0
        deficit = (self.limit - self.used(now)) - remaining
        if deficit <= 0:
            return 0.0
        reset = self.window if reset is None else min(max(reset, 0.0), self.window)
        self.spend(deficit, now, expires=now + reset)
        return deficit


class Drawn:
    """Units taken from a `RefillBudget`; setting `amount` (a settled or released
    reservation) gives back or takes the difference."""

    def __init__(self, bucket: RefillBudget, amount: float) -> None:
        self._bucket, self._amount = bucket, amount

    @property
    def amount(self) -> float:
        return self._amount

    @amount.setter
    def amount(self, value: float) -> None:
        self._bucket.spent = max(0.0, self._bucket.spent + value - self._amount)
        self._amount = value


@dataclass
class RefillBudget:
    """At most `limit` units spent at once, refilling continuously at limit/window per
    second (a token bucket; None = unlimited)."""

    limit: float | None
    window: float
    spent: float = 0.0  # as of `at`
    at: float | None = None

    def _refill(self, now: float) -> None:
        if self.limit is not None and self.at is not None and now > self.at:
            self.spent = max(0.0, self.spent - (now - self.at) * self.limit / self.window)
        self.at = now if self.at is None else max(self.at, now)

    def used(self, now: float) -> float:
        self._refill(now)
        return self.spent

    def fits(self, amount: float) -> bool:
        return self.limit is None or amount <= self.limit

    def wait(self, amount: float, now: float) -> float:
        """Seconds until `amount` more fits (0: now; inf: never, it exceeds the limit)."""
        if self.limit is None:
            return 0.0
        if amount > self.limit:
            return math.inf
        excess = self.used(now) + amount - self.limit
        if excess <= 1e-9 * self.limit:  # float dust: it fits
            return 0.0
        # At least a millisecond: a shorter sleep may not move a clock at 1.7e9 s at all.
        return max(excess * self.window / self.limit, 1e-3)

    def spend(self, amount: float, now: float, expires: float | None = None) -> Drawn:
        self._refill(now)
        self.spent += amount
        return Drawn(self, amount)

    def correct(
        self, remaining: float, reset: float | None, now: float, limit: float | None = None
    ) -> float:
        """Take the provider's word: `remaining` units left (it refills them at its own
        pace, which `reset` says and our rate already follows). A lower `limit` replaces
        ours. Returns the units added as spent."""
        if limit is not None and (self.limit is None or limit < self.limit):
            self.limit = limit
        if self.limit is None:
            return 0.0
        deficit = (self.limit - self.used(now)) - remaining
        if deficit <= 0:
            return 0.0
        self.spent += deficit
        return deficit


Budget = RateBudget | RefillBudget


# --------------------------------------------------------------------------- the limiter


@dataclass
class Reservation:
    """What one request holds of the budgets, until settled with its real usage."""

    requests: list[Spend | Drawn]
    tokens: list[Spend | Drawn]


Clock = Callable[[], float]


class RateLimiter:
    """The four budgets of one provider+model, thread-safe, on an injectable clock.

    `clock` is monotonic seconds and `sleep` waits (both from `time` by default), `wall`
    gives the datetime that `LLMBudgetExhausted.retry_at` is computed from; tests pass fakes
    and run an hour of traffic in a second.
    """

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        name: str = "llm",
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        daily: Literal["refill", "window"] = "refill",
    ) -> None:
        limits = limits or RateLimits()
        self.name = name
        self.max_wait = limits.max_wait
        day: type[Budget] = RefillBudget if daily == "refill" else RateBudget
        self.budgets: dict[tuple[str, str], Budget] = {
            ("requests", "minute"): RateBudget(limits.requests_per_minute, MINUTE),
            ("requests", "day"): day(limits.requests_per_day, DAY),
            ("tokens", "minute"): RateBudget(limits.tokens_per_minute, MINUTE),
            ("tokens", "day"): day(limits.tokens_per_day, DAY),
        }
        self.paused_until = -math.inf
        self.clock, self._sleep, self.wall = clock, sleep, wall
        self._lock = threading.Lock()

    def _of(self, kind: str) -> list[Budget]:
        return [b for (k, _), b in self.budgets.items() if k == kind]

    # -- before a request ---------------------------------------------------------------

    def acquire(self, tokens: int, cancel: threading.Event | None = None) -> Reservation:
        """Wait until one request of `tokens` fits every budget, and reserve it.

        Raises LLMRequestTooLarge when it can never fit, LLMBudgetExhausted when the wait
        would be longer than `max_wait`, Cancelled when `cancel` is set.
        """
        while True:
            raise_if_cancelled(cancel, f"{self.name}: waiting for the rate limit")
            with self._lock:
                for (kind, window), budget in self.budgets.items():
                    if kind == "tokens" and not budget.fits(tokens):
                        raise LLMRequestTooLarge(
                            f"{self.name}: a request of about {tokens} tokens can never fit the "
                            f"limit of {budget.limit:.0f} tokens per {window}; "
                            "send less text (or a smaller max_tokens)"
                        )
                now = self.clock()
                wait = max(
                    self.paused_until - now,
                    *(b.wait(1, now) for b in self._of("requests")),
                    *(b.wait(tokens, now) for b in self._of("tokens")),
                )
                if wait <= 0:
                    return Reservation(
                        [b.spend(1, now) for b in self._of("requests")],
                        [b.spend(tokens, now) for b in self._of("tokens")],
                    )
            if wait > self.max_wait:
                raise self.exhausted(wait, "the rate budget is spent")
            log.debug("waiting for the rate limit", llm=self.name, seconds=round(wait, 3))
            self.sleep(wait, cancel)

    # -- after a response ---------------------------------------------------------------

    def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace the estimate by the tokens the provider says the request used."""
        with self._lock:
            for entry in reservation.tokens:
                entry.amount = tokens

    def release(self, reservation: Reservation) -> None:
        """The request was refused before it counted (a 429): give its reservation back."""
        with self._lock:
            for entry in (*reservation.requests, *reservation.tokens):
                entry.amount = 0

    def observe(self, headers: Mapping[str, str], windows: Mapping[str, str]) -> None:
        """Correct the budgets from `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.

        `windows` says which budget each header family describes for this provider (Groq:
        requests → day, tokens → minute; OpenAI: both per minute).
        """
        with self._lock:
            now = self.clock()
            for kind, window in windows.items():
                remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
                if remaining is None:
                    continue
                reset = _seconds(headers.get(f"x-ratelimit-reset-{kind}"))
                limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
                added = self.budgets[(kind, window)].correct(remaining, reset, now, limit)
                if added:
                    log.debug(
                        "rate budget corrected from headers",
                        llm=self.name,
                        budget=f"{kind}/{window}",
                        remaining=remaining,
                        reset=reset,
                    )

    def rate_limited(self, wait: float) -> None:
        """A 429 said to wait `wait` seconds: pause every request; beyond max_wait, stop."""
        with self._lock:
            self.paused_until = max(self.paused_until, self.clock() + wait)
        if wait > self.max_wait:
            raise self.exhausted(wait, "the provider's rate limit was reached")

    # -- waiting ------------------------------------------------------------------------

    def exhausted(self, wait: float, why: str) -> LLMBudgetExhausted:
        retry_at = self.wall() + timedelta(seconds=wait)
        return LLMBudgetExhausted(
            f"{self.name}: {why}; it returns in {_human(wait)} "
            f"(at {retry_at:%Y-%m-%d %H:%M:%S} UTC), longer than max_wait {_human(self.max_wait)}",
            retry_at=retry_at,
        )

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> None:
        """Sleep on the limiter's clock; a set `cancel` ends the wait with Cancelled."""
        raise_if_cancelled(cancel, f"{self.name}: waiting")
        if seconds <= 0:
            return
        if cancel is not None and self._sleep is time.sleep:
            cancel.wait(seconds)  # wakes up at once on shutdown
        else:
            self._sleep(seconds)
        raise_if_cancelled(cancel, f"{self.name}: waiting")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds(value: str | None) -> float | None:
    """A reset header: a Go duration ("7.66s", "2m59.56s") or plain seconds."""
    if value is None:
        return None
    plain = _number(value)
    if plain is not None:
        return plain
    try:
        return parse_go_duration(value)
    except ValueError:
        return None


def _human(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + f"{secs}s"
