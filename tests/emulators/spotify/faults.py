"""Fault injection per path pattern and count: 429s (with and without Retry-After, empty
bodies), 5xx, dropped connections, and a token revoked in the middle of a session.

Rules are checked in the order they were added; the first live rule whose method and path
pattern match a request fires (a rule is live while it has `times` left, after skipping its
first `after` matches). Patterns are shell-style (`fnmatch`): `/v1/playlists/*/items`,
`/api/token`, `*` for everything. A faulted request changes no state, except `revoke`,
which revokes the caller's grant and then lets the request meet that (a 401).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field

# The recorded 429 body (tests/fixtures/spotify/spotifyaio/rate_limit.json).
RATE_LIMIT_BODY = (
    b'{\n  "error": {\n    "status": 429,\n    "message": "API rate limit exceeded"\n  }\n}'
)
KINDS = ("429", "5xx", "drop", "revoke")


@dataclass
class FaultRule:
    """One fault. Build them with the class methods; `FaultRule.throttle()` etc."""

    kind: str
    path: str = "*"
    methods: frozenset[str] = frozenset()  # empty: every method
    times: int | None = 1  # None: for ever
    after: int = 0  # let this many matching requests through first
    rate: float = 1.0  # probability per matching request (seeded, see Faults)
    status: int = 429
    retry_after: int | None = 1  # the Retry-After header in seconds; None: no header
    empty_body: bool = False  # Content-Length: 0, no JSON error body
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r} not in {KINDS}")
        self.methods = frozenset(m.upper() for m in self.methods)

    @classmethod
    def throttle(
        cls,
        path: str = "*",
        *,
        retry_after: int | None = 1,
        empty_body: bool = False,
        times: int | None = 1,
        methods: tuple[str, ...] = (),
        after: int = 0,
    ) -> FaultRule:
        """429 Too Many Requests. `retry_after=3600` for the long ban people report,
        `None` for no header, `empty_body=True` for the Content-Length: 0 answer."""
        return cls(
            "429",
            path,
            frozenset(methods),
            times,
            after,
            status=429,
            retry_after=retry_after,
            empty_body=empty_body,
        )

    @classmethod
    def server_error(
        cls,
        path: str = "*",
        *,
        status: int = 500,
        times: int | None = 1,
        methods: tuple[str, ...] = (),
        after: int = 0,
    ) -> FaultRule:
        """A 5xx with Spotify's error envelope (`{"error": {"status", "message"}}`)."""
        if not 500 <= status <= 599:
            raise ValueError("server_error needs a 5xx status")
        return cls("5xx", path, frozenset(methods), times, after, status=status)

    @classmethod
    def drop(
        cls,
        path: str = "*",
        *,
        times: int | None = 1,
        methods: tuple[str, ...] = (),
        after: int = 0,
    ) -> FaultRule:
        """The connection is shut without a byte of answer."""
        return cls("drop", path, frozenset(methods), times, after, status=0)

    @classmethod
    def revoke_token(
        cls,
        path: str = "*",
        *,
        times: int | None = 1,
        methods: tuple[str, ...] = (),
        after: int = 0,
    ) -> FaultRule:
        """The user revokes the app mid-session: the grant behind the request's token (its
        access and refresh tokens) is revoked, so this request gets 401 and a refresh 400."""
        return cls("revoke", path, frozenset(methods), times, after, status=401)

    def applies(self, method: str, path: str) -> bool:
        return (not self.methods or method.upper() in self.methods) and fnmatch.fnmatchcase(
            path, self.path
        )

    @property
    def live(self) -> bool:
        return self.times is None or self.fired < self.times


class Faults:
    """The emulator's fault rules (thread-safe). `emu.faults.add(FaultRule.throttle(...))`."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, *rules: FaultRule) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def draw(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (its counters move)."""
        with self._lock:
            for rule in self._rules:
                if not rule.live or not rule.applies(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
        return None
