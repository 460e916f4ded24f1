"""Plex's websocket notifications (plexapi's `AlertListener`) as a trigger for a sync.

Which notifications mean the music changed (`change_reason`), from plexapi's AlertListener
documentation of timeline states and from clients of PMS's notification stream:

- ``timeline`` entries of the library (``identifier`` com.plexapp.plugins.library) for an
  artist (8), album (9) or track (10) in state 5, "the item processed". Earlier states
  (0 created … 4 processing metadata) come before the item is complete; state 9 is a
  deletion, which only the full sync looks for.
- ``activity`` notifications whose ``event`` is ``ended`` for ``library.update.section``
  (a scan) or ``library.refresh.items`` (a metadata refresh). A library without a metadata
  agent never reaches state 5 (its items stop at state 1), so the end of the scan is what
  announces them.

Either must name a watched section, or no section at all. One message makes at most one
`notify` call; the daemon delays and coalesces them.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any

from plexapi.server import PlexServer

from genred.api import GenredError, get_logger

log = get_logger("genred.plex.alerts")

LIBRARY = "com.plexapp.plugins.library"
MUSIC_TYPES = frozenset({8, 9, 10})  # artist, album, track
PROCESSED = 5
SCAN_ACTIVITIES = frozenset({"library.update.section", "library.refresh.items"})
INSTALL_HINT = "pip install 'genred[plex]' (or: pip install websocket-client)"


def websocket_missing() -> bool:
    """plexapi's AlertListener needs websocket-client; without it its thread just ends."""
    return importlib.util.find_spec("websocket") is None


def change_reason(container: Any, sections: Collection[str]) -> str | None:
    """Why this `NotificationContainer` means the watched music changed, or None."""
    if not isinstance(container, Mapping):
        return None
    kind = container.get("type")
    if kind == "timeline":
        done = [
            entry
            for entry in _list(container.get("TimelineEntry"))
            if entry.get("identifier") == LIBRARY
            and _int(entry.get("type")) in MUSIC_TYPES
            and _int(entry.get("state")) == PROCESSED
            and _watched(entry.get("sectionID"), sections)
        ]
        return f"plex alert: {len(done)} item(s) processed" if done else None
    if kind == "activity":
        for note in _list(container.get("ActivityNotification")):
            job = note.get("Activity")
            job = job if isinstance(job, Mapping) else {}
            context = job.get("Context")
            section = context.get("librarySectionID") if isinstance(context, Mapping) else None
            if (
                note.get("event") == "ended"
                and job.get("type") in SCAN_ACTIVITIES
                and _watched(section, sections)
            ):
                return f"plex alert: {job.get('type')} ended"
    return None


class PlexAlerts:
    """Keeps one AlertListener connected; reconnects with capped backoff, then gives up.

    `connect` returns the server and the keys of the watched sections; it runs again before
    every (re)connection. After `max_failures` connections in a row that lasted less than
    `healthy_after` seconds the listener stops and says so: the scheduled sync is the
    backstop.
    """

    def __init__(
        self,
        connect: Callable[[], tuple[PlexServer, Collection[str]]],
        notify: Callable[[str], None],
        *,
        backoff_initial: float = 2.0,
        backoff_max: float = 300.0,
        max_failures: int = 10,
        healthy_after: float = 60.0,
    ) -> None:
        self._connect, self._notify = connect, notify
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_failures, self.healthy_after = max_failures, healthy_after
        self._stopping = threading.Event()
        self._listener: Any = None
        self._thread: threading.Thread | None = None
        self.connections = 0  # listeners started so far

    @property
    def stopping(self) -> threading.Event:
        """Set by `stop()`: `connect`'s retry waits should end on it."""
        return self._stopping

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PlexAlerts:
        self._thread = threading.Thread(target=self._run, name="plex-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._close_listener()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the supervising thread ----------------------------------------------------------

    def _run(self) -> None:
        failures, delay = 0, self.backoff_initial
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                server, sections = self._connect()
                watched = frozenset(str(s) for s in sections)
                self._listener = server.startAlertListener(
                    callback=partial(self._on_message, sections=watched),
                    callbackError=self._on_error,
                )
                self.connections += 1
                log.info("listening to plex alerts", sections=sorted(watched))
                self._wait_for_listener()
            except GenredError as exc:
                log.warning("plex alerts: cannot connect", error=str(exc))
            except Exception:  # a thread's boundary: report, back off, try again
                log.exception("plex alerts: listener failed")
            if self._stopping.is_set():
                break
            if time.monotonic() - began >= self.healthy_after:
                failures, delay = 0, self.backoff_initial
            failures += 1
            if failures >= self.max_failures:
                log.warning(
                    "plex alerts: giving up after repeated failures; scheduled syncs go on",
                    failures=failures,
                )
                break
            log.warning("plex alerts: reconnecting", in_seconds=delay, failures=failures)
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max)
        self._close_listener()

    def _wait_for_listener(self) -> None:
        listener = self._listener
        while listener.is_alive():
            listener.join(0.2)
            if self._stopping.is_set():
                self._close_listener()  # again, in case it connected after stop() tried

    def _close_listener(self) -> None:
        # The listener's WebSocketApp exists once its thread runs (stop() fails before).
        app = getattr(self._listener, "_ws", None)
        if app is None:
            return
        # AlertListener.stop() closes the socket under the thread that waits on it in a
        # select() with a 10 s timeout, which may then sleep on. Shutting the socket down
        # (without closing it) wakes that thread, which then closes it itself.
        app.keep_running = False
        if app.sock is not None:
            app.sock.abort()
            self._listener.join(1.0)
        if self._listener.is_alive():
            self._listener.stop()

    # -- AlertListener callbacks (its thread) --------------------------------------------

    def _on_message(self, data: Any, sections: Collection[str]) -> None:
        reason = change_reason(data, sections)
        if reason is None:
            return
        log.debug("plex alert", reason=reason)
        try:
            self._notify(reason)
        except Exception:
            log.exception("plex alerts: the sync request failed")

    def _on_error(self, error: Any) -> None:
        if self._stopping.is_set():
            return
        log.warning("plex alerts: connection lost or refused", error=str(error))


def _list(value: Any) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Mapping)]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _watched(section: Any, sections: Collection[str]) -> bool:
    return section is None or section == "" or str(section) in sections
