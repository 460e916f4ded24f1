"""Fault injection: latency, 5xx, 429, dropped connections and 504 on PUT, seeded."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from enum import Enum


class Fault(Enum):
    """What happens to one request instead of (or after) a normal answer."""

    NONE = "none"
    DROP = "drop"  # the socket is closed without any answer
    THROTTLE = "429"  # 429 Too Many Requests with Retry-After, nothing applied
    ERROR = "5xx"  # error_status, nothing applied
    GATEWAY_TIMEOUT = "504"  # PUT only: 504, applied or not per `put_504_after_apply`


@dataclass(frozen=True)
class Faults:
    """Fault settings; assign a new one to `PlexEmulator.faults` to change them at run time.

    Rates are probabilities per request, drawn from a `random.Random(seed)` that restarts
    whenever the settings are assigned, so the same request sequence meets the same faults.
    A 5xx, 429 or (by default) 504 means the request had no effect: an edit is never half
    applied. With `put_504_after_apply` the edit IS applied and the client still sees 504, as
    behind a proxy that gives up while PMS finishes the work.
    """

    latency_ms: float = 0.0
    error_5xx_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    put_504_rate: float = 0.0
    put_504_after_apply: bool = False
    throttle_429_rate: float = 0.0
    retry_after_s: int = 1
    path_prefix: str = ""  # only requests whose path starts with this meet faults
    methods: frozenset[str] = field(default_factory=frozenset)  # empty: every method
    max_faults: int | None = None  # stop injecting after this many (latency excluded)
    seed: int = 0


class FaultInjector:
    """Draws the fault for each request from one `Faults` setting (thread-safe)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.injected = 0
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def draw(self, method: str, path: str) -> Fault:
        f = self.faults
        if not path.startswith(f.path_prefix) or (f.methods and method not in f.methods):
            return Fault.NONE
        with self._lock:
            if f.max_faults is not None and self.injected >= f.max_faults:
                return Fault.NONE
            fault = Fault.NONE
            if f.drop_rate and self._rng.random() < f.drop_rate:
                fault = Fault.DROP
            elif f.throttle_429_rate and self._rng.random() < f.throttle_429_rate:
                fault = Fault.THROTTLE
            elif f.error_5xx_rate and self._rng.random() < f.error_5xx_rate:
                fault = Fault.ERROR
            elif method == "PUT" and f.put_504_rate and self._rng.random() < f.put_504_rate:
                fault = Fault.GATEWAY_TIMEOUT
            if fault is not Fault.NONE:
                self.injected += 1
            return fault
