"""What a trigger (a Plex webhook, a Plex alert, the folder watcher) may ask of the daemon."""

from __future__ import annotations

from collections.abc import Sequence
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
