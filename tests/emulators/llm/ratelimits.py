"""Groq's per-model rate limits: token buckets over an injected clock, headers, 429/413 bodies.

Every limit (RPM, RPD, TPM, TPD) is a bucket of `limit` units that refills continuously at
`limit / period` per second (the daily ones too: NOTES.md's field report has a 1000 RPD
bucket regain one request every 86.4 s). The recorded 429 bodies fit this exactly:
"Limit 6000, Used 3513, Requested 3166. Please try again in 6.780999999s" is
(3513 + 3166 - 6000) / (6000 / 60 s) = 6.781 s.

Pure arithmetic over plain data: nothing here reads a clock or sleeps; callers pass `now`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PER_MINUTE, PER_DAY = 60.0, 86_400.0
RATE_LIMIT_DOCS = "https://console.groq.com/docs/rate-limits"
BILLING = "https://console.groq.com/settings/billing"
# What Groq calls each limit in a 429 message, and the error `type` it puts beside it.
LIMIT_NAMES = {
    "RPM": ("requests per minute", "requests"),
    "RPD": ("requests per day", "requests"),
    "TPM": ("tokens per minute", "tokens"),
    "TPD": ("tokens per day", "tokens"),
}


@dataclass(frozen=True)
class Limits:
    """Per-model limits; None switches one off. Defaults: Groq's free plan for
    llama-3.1-8b-instant (console.groq.com/docs/rate-limits: 30 RPM, 14.4K RPD, 6K TPM,
    500K TPD)."""

    rpm: int | None = 30
    rpd: int | None = 14_400
    tpm: int | None = 6_000
    tpd: int | None = 500_000

    def items(self) -> list[tuple[str, int, float]]:
        """(name, limit, period in seconds) for each limit that is set."""
        pairs = (
            ("RPM", self.rpm, PER_MINUTE),
            ("RPD", self.rpd, PER_DAY),
            ("TPM", self.tpm, PER_MINUTE),
            ("TPD", self.tpd, PER_DAY),
        )
        return [(name, limit, period) for name, limit, period in pairs if limit is not None]


UNLIMITED = Limits(rpm=None, rpd=None, tpm=None, tpd=None)


class Bucket:
    """`limit` units refilling continuously over `period` seconds; `used` drains at that rate."""

    def __init__(self, limit: int, period: float) -> None:
        if limit <= 0:
            raise ValueError(f"a limit must be > 0, not {limit}")
        self.limit = limit
        self.rate = limit / period
        self._used = 0.0
        self._at: float | None = None

    def used(self, now: float) -> float:
        if self._at is not None and now > self._at:
            self._used = max(0.0, self._used - (now - self._at) * self.rate)
            self._at = now
        elif self._at is None:
            self._at = now
        return self._used

    def wait(self, now: float, cost: float) -> float:
        """Seconds until `cost` more units fit (0: they fit now)."""
        over = self.used(now) + cost - self.limit
        return max(0.0, over / self.rate)

    def take(self, now: float, cost: float) -> None:
        self._used = self.used(now) + cost

    def remaining(self, now: float) -> int:
        return max(0, math.floor(self.limit - self.used(now) + 1e-9))

    def reset_in(self, now: float) -> float:
        """Seconds until the bucket is full again."""
        return self.used(now) / self.rate


@dataclass(frozen=True)
class Verdict:
    """The answer of a limit check: admitted, over a limit (429) or never admissible (413)."""

    ok: bool
    limit_name: str | None = None  # "RPM", "RPD", "TPM", "TPD"
    limit: int = 0
    used: int = 0
    requested: int = 0
    wait_s: float = 0.0
    too_large: bool = False


class ModelBudget:
    """The buckets of one model. Not thread-safe: the emulator holds its lock around use."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.buckets = {name: Bucket(limit, period) for name, limit, period in limits.items()}

    def check(self, now: float, requested_tokens: int) -> Verdict:
        """Would one request of `requested_tokens` fit now? Takes nothing.

        A request whose tokens exceed the TPM limit can never fit: 413. Otherwise the
        limit that makes it wait longest is reported, so its retry-after is enough for all.
        """
        tpm = self.buckets.get("TPM")
        if tpm is not None and requested_tokens > tpm.limit:
            return Verdict(False, "TPM", tpm.limit, 0, requested_tokens, math.inf, too_large=True)
        worst: Verdict | None = None
        for name, bucket in self.buckets.items():
            cost = 1 if name in ("RPM", "RPD") else requested_tokens
            wait = bucket.wait(now, cost)
            if wait > 0 and (worst is None or wait > worst.wait_s):
                used = round(bucket.used(now))
                worst = Verdict(False, name, bucket.limit, used, cost, wait)
        return worst or Verdict(True)

    def take_request(self, now: float) -> None:
        for name in ("RPM", "RPD"):
            if name in self.buckets:
                self.buckets[name].take(now, 1)

    def take_tokens(self, now: float, tokens: int) -> None:
        for name in ("TPM", "TPD"):
            if name in self.buckets:
                self.buckets[name].take(now, tokens)

    def headers(self, now: float) -> dict[str, str]:
        """Groq's x-ratelimit-* headers: `requests` is always RPD, `tokens` always TPM."""
        out: dict[str, str] = {}
        for suffix, name in (("requests", "RPD"), ("tokens", "TPM")):
            bucket = self.buckets.get(name)
            if bucket is None:
                continue
            out[f"x-ratelimit-limit-{suffix}"] = str(bucket.limit)
            out[f"x-ratelimit-remaining-{suffix}"] = str(bucket.remaining(now))
            out[f"x-ratelimit-reset-{suffix}"] = go_duration(round(bucket.reset_in(now), 3))
        return out


# -- Go durations --------------------------------------------------------------------------


def _fraction(value: int, scale: int) -> str:
    """value/scale with the fraction's trailing zeros dropped (Go's fmtFrac)."""
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()`: "300ms", "7.66s", "2m59.56s", "1h23m31s", "0s"."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = f"{_fraction(rest, 10**9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (the grammar the headers use; for tests and clients)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number, i = 0.0, "", 0
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == "0":
        return 0.0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next(
            (u for u in ("ms", "us", "µs", "ns", "h", "m", "s") if text.startswith(u, i)), None
        )
        if unit is None or not number:
            raise ValueError(f"not a Go duration: {text!r}")
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    if number:
        raise ValueError(f"not a Go duration (a number without unit): {text!r}")
    return sign * total


# -- token estimates -----------------------------------------------------------------------

MESSAGE_OVERHEAD = 4  # role and separators of one chat message
REPLY_PRIMING = 3  # the assistant header the reply starts with


def estimate_tokens(text: str) -> int:
    """About four characters a token, rounded up: deterministic, no tokenizer needed."""
    return (len(text) + 3) // 4


def message_text(message: Mapping[str, Any]) -> str:
    """A message's text: a string content, or the text parts of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def prompt_tokens(messages: Iterable[Mapping[str, Any]], extra_texts: Iterable[str] = ()) -> int:
    """The prompt's token estimate: each message's text plus its overhead, plus any
    schema/tool JSON sent with it, plus the reply priming."""
    total = REPLY_PRIMING + sum(estimate_tokens(t) for t in extra_texts)
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_tokens(message_text(message))
    return total


# -- error bodies --------------------------------------------------------------------------


def rate_limit_body(model: str, organization: str, verdict: Verdict) -> dict[str, Any]:
    """The 429 (or 413) body for a failed check, shaped as the recorded ones."""
    name = verdict.limit_name or "TPM"
    what, kind = LIMIT_NAMES[name]
    where = f"for model `{model}` in organization `{organization}` service tier `on_demand`"
    if verdict.too_large:
        message = (
            f"Request too large {where} on {what} ({name}): Limit {verdict.limit}, "
            f"Requested {verdict.requested}, please reduce your message size and try again. "
            f"Visit {RATE_LIMIT_DOCS} for more information."
        )
    else:
        tail = (
            f"Need more tokens? Upgrade to Dev Tier today at {BILLING}"
            if name == "TPD"
            else f"Visit {RATE_LIMIT_DOCS} for more information."
        )
        message = (
            f"Rate limit reached {where} on {what} ({name}): Limit {verdict.limit}, "
            f"Used {verdict.used}, Requested {verdict.requested}. "
            f"Please try again in {go_duration(verdict.wait_s)}. {tail}"
        )
    return {"error": {"message": message, "type": kind, "code": "rate_limit_exceeded"}}


def retry_after(wait_s: float) -> str:
    """The `retry-after` header: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_s - 1e-9)))
