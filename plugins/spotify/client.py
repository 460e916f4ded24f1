"""Every Web API request genred sends to Spotify, with one retry policy.

spotipy is built with `retries=0, status_retries=0` and, above all, a plain
`requests.Session()`: with its own session spotipy mounts urllib3's `Retry` anyway, which
turns every 429 *and* 5xx into `SpotifyException(429, "Max Retries")` with no headers
(Retry-After lost), and with retries left sleeps for the whole Retry-After (3600 s: an
hour, spotipy#766). Here instead:

- 429 with a Retry-After up to `max_wait`: waited out (interruptibly), then sent again;
  longer, or none, or an empty body: RemoteRateLimited with the moment to come back
  (the daemon defers the job; no thread waits for it).
- 5xx, dropped connections, timeouts: sent again with exponential backoff and jitter,
  `retries.attempts` requests in all, then RemoteUnavailable.
- 401: the token was expired or revoked by the server (spotipy only refreshes by its own
  clock): refreshed once and sent again; refused again → RemoteAuthFailed.
- other 4xx: RemoteRequestFailed with Spotify's message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import requests
import spotipy
from spotipy.exceptions import SpotifyException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from genred.api import (
    Cancelled,
    RemoteAuthFailed,
    RemoteRateLimited,
    RemoteRequestFailed,
    RemoteUnavailable,
    get_logger,
    raise_if_cancelled,
)

from .settings import SpotifySettings
from .tokens import LOGIN, Tokens

T = TypeVar("T")
log = get_logger("genred_plugins.spotify")


class _Again(Exception):
    """A failure worth sending the request again: after backoff, or at once (`now`: the
    token was refreshed, or the 429's wait is over)."""

    def __init__(self, message: str, *, now: bool = False) -> None:
        super().__init__(message)
        self.now = now


class SpotifyCalls:
    """A spotipy client with genred's handling of tokens, limits and failures."""

    def __init__(self, settings: SpotifySettings, tokens: Tokens) -> None:
        self.settings = settings
        self.tokens = tokens
        self.requests = 0  # sent, retries included
        self._client: spotipy.Spotify | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> spotipy.Spotify:
        if self._client is None:
            client = spotipy.Spotify(
                auth=self.tokens.access_token(),
                requests_session=requests.Session(),  # a plain session: real statuses, headers
                retries=0,
                status_retries=0,
                requests_timeout=self.settings.timeout,
            )
            client.prefix = str(self.settings.api_url).rstrip("/") + "/"
            self._client = client
        return self._client

    def close(self) -> None:
        if self._client is not None:
            session = getattr(self._client, "_session", None)
            if isinstance(session, requests.Session):
                session.close()
            self._client = None

    def call(
        self,
        send: Callable[[spotipy.Spotify], T],
        what: str,
        cancel: threading.Event | None = None,
    ) -> T:
        """`send(client)` with the policy above; `what` names it in errors and the log."""
        retries = self.settings.retries
        backoff = wait_exponential_jitter(
            multiplier=retries.backoff_initial,
            max=retries.backoff_max,
            jitter=retries.backoff_initial,
        )
        waiter = threading.Event() if cancel is None else cancel
        refreshed = [False]

        def attempt() -> T:
            raise_if_cancelled(cancel, f"spotify: {what}")
            client = self.client
            client.set_auth(self.tokens.access_token())
            self.requests += 1
            try:
                return send(client)
            except SpotifyException as exc:
                raise self._failure(exc, what, refreshed, waiter, cancel) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Again(f"{type(exc).__name__} while {what}") from None

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            return 0.0 if isinstance(failure, _Again) and failure.now else backoff(state)

        retrying = Retrying(
            retry=retry_if_exception_type(_Again),
            stop=stop_after_attempt(retries.attempts + 1),  # + the one after a refresh
            wait=wait,
            sleep=lambda seconds: _sleep(waiter, seconds, cancel, what),
            before_sleep=lambda state: log.warning(
                "spotify request failed, retrying",
                what=what,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Again as exc:
            raise RemoteUnavailable(
                f"Spotify kept failing ({retries.attempts} tries) while {what}: {exc}"
            ) from None

    def _failure(
        self,
        exc: SpotifyException,
        what: str,
        refreshed: list[bool],
        waiter: threading.Event,
        cancel: threading.Event | None,
    ) -> Exception:
        """The error to raise for an error answer (an _Again is sent again)."""
        status = int(exc.http_status or 0)
        message = _message(exc)
        if status == 401:
            if refreshed[0]:
                return RemoteAuthFailed(f"Spotify refused the token ({message}): {LOGIN}")
            refreshed[0] = True
            self.tokens.refresh()
            log.info("spotify token refreshed after a 401", what=what)
            return _Again("401: token refreshed", now=True)
        if status == 429:
            wait = _retry_after(exc)
            if wait is not None and wait <= self.settings.max_wait.total_seconds():
                log.info("spotify asks to wait", what=what, seconds=wait)
                _sleep(waiter, wait, cancel, what)
                return _Again(f"429 (waited {wait:g} s)", now=True)
            default = self.settings.defer_without_retry_after.total_seconds()
            seconds = wait if wait is not None else default
            when = datetime.now(UTC) + timedelta(seconds=seconds)
            said = f"Retry-After {wait:g} s" if wait is not None else "no Retry-After"
            return RemoteRateLimited(
                f"Spotify rate-limited genred while {what} ({said}): deferred until "
                f"{when:%Y-%m-%d %H:%M:%S} UTC",
                when,
            )
        if status >= 500 or status == 0:
            return _Again(f"{status} {message}")
        if status == 403 and "scope" in message.lower():
            return RemoteAuthFailed(f"Spotify refused {what} ({message}): {LOGIN} again")
        return RemoteRequestFailed(f"Spotify refused {what}: {status} {message}")


def _message(exc: SpotifyException) -> str:
    text = str(getattr(exc, "msg", "") or "")
    return text.split("\n", 1)[-1].strip() or f"HTTP {exc.http_status}"


def _retry_after(exc: SpotifyException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _following(client: Any, page: dict[str, Any]) -> Any:
    return client.next(page)


def _sleep(
    waiter: threading.Event, seconds: float, cancel: threading.Event | None, what: str
) -> None:
    """Wait `seconds`, unless the daemon is asked to stop (then Cancelled)."""
    if waiter.wait(seconds) and cancel is not None and cancel.is_set():
        raise Cancelled(f"spotify: {what}: stopped for shutdown; committed work is kept")


def paged(
    first: dict[str, Any] | None, calls: SpotifyCalls, what: str, cancel: Any
) -> list[dict[str, Any]]:
    """Every item of a paging object, following `next` through the same policy."""
    items: list[dict[str, Any]] = []
    page = first
    while page:
        items += [i for i in page.get("items") or [] if i is not None]
        if not page.get("next"):
            break
        page = calls.call(partial(_following, page=page), what, cancel)
    return items
