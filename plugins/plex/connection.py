"""Connection to Plex shared by the plex source and writeback plugins.

One place decides what is retried (connection errors, timeouts, 5xx, 429) and what is
not (401, other 4xx), and turns plexapi/requests exceptions into genred's own errors.
The waits between attempts end on `cancel` (the daemon's stop event), after which no
new attempt starts: a stop never waits out a retry series against a server that is down.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from plexapi.exceptions import BadRequest, NotFound, Unauthorized
from plexapi.server import PlexServer
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from genred.api import (
    Cancelled,
    PlexAuthFailed,
    PlexConfig,
    PlexRequestFailed,
    PlexUnreachable,
    RetrySettings,
    get_logger,
)

T = TypeVar("T")
log = get_logger("genred.plex")

_STATUS = re.compile(r"^\((\d{3})\)")


def status_of(exc: BaseException) -> int | None:
    """plexapi puts the HTTP status first in BadRequest's message: '(503) service_unavailable'."""
    match = _STATUS.match(str(exc))
    return int(match.group(1)) if match else None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, BadRequest) and not isinstance(exc, Unauthorized | NotFound):
        status = status_of(exc)
        return status is not None and (status >= 500 or status == 429)
    return False


def call(
    fn: Callable[[], T],
    what: str,
    settings: RetrySettings,
    cancel: threading.Event | None = None,
) -> T:
    """Run one Plex request with retries; translate failures into genred errors.

    Once `cancel` is set, the wait before the next attempt ends and Cancelled is raised
    instead of trying again (a request already in flight finishes or times out).
    """

    def attempt() -> T:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"plex: stopped while {what}")
        return fn()

    retrying = retry(
        retry=retry_if_exception(is_transient),
        sleep=_sleeper(cancel),
        stop=stop_after_attempt(settings.attempts),
        wait=wait_exponential_jitter(
            multiplier=settings.backoff_initial,
            max=settings.backoff_max,
            jitter=settings.backoff_initial,
        ),
        reraise=True,
        before_sleep=lambda rs: log.warning(
            "plex request failed, retrying",
            what=what,
            attempt=rs.attempt_number,
            error=str(rs.outcome.exception()) if rs.outcome else None,
        ),
    )
    try:
        return retrying(attempt)()
    except Unauthorized:
        raise PlexAuthFailed(f"Plex refused the token while {what}: check plex.token") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise PlexUnreachable(f"Plex did not answer while {what}: {type(exc).__name__}") from None
    except NotFound as exc:
        raise PlexRequestFailed(f"Plex has no such item while {what}: {exc}") from None
    except BadRequest as exc:
        if is_transient(exc):
            raise PlexUnreachable(f"Plex kept failing while {what}: {exc}") from None
        raise PlexRequestFailed(f"Plex refused a request while {what}: {exc}") from None


def _sleeper(cancel: threading.Event | None) -> Callable[[float], None]:
    """tenacity's wait between attempts: ends at once when `cancel` is set."""
    if cancel is None:
        return time.sleep

    def sleep(seconds: float) -> None:
        cancel.wait(seconds)

    return sleep


def connect(
    plex: PlexConfig, retries: RetrySettings, cancel: threading.Event | None = None
) -> PlexServer:
    """A PlexServer for the configured URL and token, with the configured timeout."""
    session = requests.Session()
    session.verify = plex.verify_ssl
    url = str(plex.url).rstrip("/")
    token = plex.token.get_secret_value()
    return call(
        lambda: PlexServer(url, token, session=session, timeout=int(plex.timeout)),
        "connecting",
        retries,
        cancel,
    )


def music_sections(
    server: PlexServer,
    wanted: list[str | int],
    retries: RetrySettings,
    cancel: threading.Event | None = None,
) -> list[Any]:
    """The configured music sections (by title or id), or all of them when none are named."""
    sections = call(lambda: server.library.sections(), "listing library sections", retries, cancel)
    music = [s for s in sections if s.type == "artist"]
    if not wanted:
        return music
    chosen = []
    for want in wanted:
        match = [s for s in music if str(s.key) == str(want) or s.title == str(want)]
        if not match:
            names = ", ".join(f"{s.title} ({s.key})" for s in music) or "none"
            raise PlexRequestFailed(f"no music library {want!r} on this server (found: {names})")
        chosen.extend(match)
    return chosen
