"""What a trigger (a Plex webhook, a Plex alert, the folder watcher) may ask of the daemon."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class SyncRequester(Protocol):
    """The daemon's side of every trigger: it decides when the sync really runs."""

    def request_sync(
        self,
        source: str | None,
        *,
        reason: str,
        paths: Sequence[str] = (),
        delay: float = 0.0,
    ) -> None:
        """Ask for an incremental sync of `source` (None: every source) soon: after `delay`
        seconds, coalesced with other requests."""


@dataclass
class SourceRequest:
    """What was asked of one source since the last requested sync."""

    reasons: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    moved: list[tuple[str, str]] = field(default_factory=list)


# Requests per source name; None: asked of every source.
TakenRequests = dict[str | None, SourceRequest]


class SyncRequests:
    """Sync requests from triggers, per source (None: every source); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: TakenRequests = {}

    def add(
        self,
        source: str | None,
        reason: str,
        paths: Sequence[str] = (),
        moved: Sequence[tuple[str, str]] = (),
    ) -> None:
        with self._lock:
            request = self._by_source.setdefault(source, SourceRequest())
            request.reasons.add(reason)
            request.paths.update(paths)
            request.moved.extend(moved)

    def take(self) -> TakenRequests:
        with self._lock:
            taken, self._by_source = self._by_source, {}
        return taken

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._by_source)
