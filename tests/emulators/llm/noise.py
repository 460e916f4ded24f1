"""Noise: the ways a real LLM answer goes wrong, each with its own rate, from a seeded RNG."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields

# Per item of an oracle answer.
ITEM_KINDS = ("wrong_genre", "unknown_genre", "missing_id")
# Per answer (request), in the order they are drawn; the first that hits wins.
REQUEST_KINDS = ("drop", "error_5xx", "json_validate_failed", "non_json", "truncated")
KINDS = (*ITEM_KINDS, "extra_id", *REQUEST_KINDS)


@dataclass(frozen=True)
class Noise:
    """Noise settings; assign a new one to `LLMEmulator.noise` to change them at run time.

    Rates are probabilities, drawn from `random.Random(seed)`, which restarts whenever the
    settings are assigned: the same request sequence meets the same noise.

    Per item of an oracle answer: `wrong_genre` (its genres replaced by one other real
    genre; a label answer's `match` flipped), `unknown_genre` (a name outside the taxonomy,
    such as "N/A", put first), `missing_id` (left out). Per oracle answer: `extra_id` (an
    item nobody asked for). Per chat completion: `drop` (connection closed, no answer),
    `error_5xx` (`error_status`), `json_validate_failed` (Groq's 400; only in JSON mode, the
    only mode Groq validates), `non_json` (prose instead of JSON), `truncated` (JSON cut,
    finish_reason "length"). `max_faults` caps the per-request kinds (latency aside).
    """

    wrong_genre_rate: float = 0.0
    unknown_genre_rate: float = 0.0
    missing_id_rate: float = 0.0
    extra_id_rate: float = 0.0
    drop_rate: float = 0.0
    error_5xx_rate: float = 0.0
    error_status: int = 500
    json_validate_failed_rate: float = 0.0
    non_json_rate: float = 0.0
    truncated_rate: float = 0.0
    latency_ms: float = 0.0
    max_faults: int | None = None
    seed: int = 0

    def rate(self, kind: str) -> float:
        return float(getattr(self, f"{kind}_rate"))

    @classmethod
    def of(cls, rates: dict[str, float] | None = None, **settings: float) -> Noise:
        """`Noise.of({"wrong_genre": 0.1}, seed=3)`: rates by kind name."""
        values: dict[str, float] = dict(settings)
        for kind, rate in (rates or {}).items():
            if kind not in KINDS:
                raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(KINDS)}")
            values[f"{kind}_rate"] = float(rate)
        return cls(**values)

    @classmethod
    def parse(cls, text: str, **settings: float) -> Noise:
        """`"wrong_genre=0.1,drop=0.05"` (the command line's --noise)."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"noise wants KIND=RATE, not {part!r}")
            rates[kind.strip()] = float(value)
        return cls.of(rates, **settings)

    def active(self) -> dict[str, float]:
        """{kind: rate} of the kinds switched on."""
        rates = {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith("_rate")}
        return {name.removesuffix("_rate"): rate for name, rate in rates.items() if rate}


class NoiseInjector:
    """Draws noise from one `Noise` setting. The emulator calls it under its lock."""

    def __init__(self, noise: Noise) -> None:
        self.noise = noise
        self.faults = 0
        self.rng = random.Random(noise.seed)
        self._lock = threading.Lock()

    def hit(self, kind: str) -> bool:
        rate = self.noise.rate(kind)
        return bool(rate) and self.rng.random() < rate

    def request_fault(self, *, json_mode: bool) -> str | None:
        """The per-request kind for this answer, if any."""
        with self._lock:
            n = self.noise
            if n.max_faults is not None and self.faults >= n.max_faults:
                return None
            for kind in REQUEST_KINDS:
                if kind == "json_validate_failed" and not json_mode:
                    continue
                if self.hit(kind):
                    self.faults += 1
                    return kind
            return None
