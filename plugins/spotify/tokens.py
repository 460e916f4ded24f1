"""Spotify tokens for a daemon with no browser.

`genred spotify login` runs the authorization-code flow once (PKCE when no client secret
is configured): it prints the authorize URL, the person approves in any browser and pastes
back the URL they were redirected to (or its code). The tokens go to
`<data_dir>/spotify/token.json` through `TokenFile`, a spotipy `CacheHandler` that writes a
0600 temporary file beside it and renames it into place (spotipy's own file cache
truncates first and chmods after: a failure mid-write loses the refresh token, and it is
readable for a moment).

After that, `Tokens.access_token()` hands out the access token and refreshes it when it is
about to expire (spotipy would only refresh by its own clock, and on a missing scope or an
empty cache fall back to `input()`, which a daemon must never reach: it is never asked).
A refresh the accounts service refuses (`invalid_grant`: revoked, or expired six months
after the first consent) is RemoteAuthFailed with the way out: `genred spotify login`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from spotipy.cache_handler import CacheHandler
from spotipy.exceptions import SpotifyOauthError
from spotipy.oauth2 import SpotifyOAuth, SpotifyPKCE

from genred.api import RemoteAuthFailed, RemoteUnavailable, get_logger

from .settings import SCOPES, SpotifySettings

log = get_logger("genred_plugins.spotify")

LOGIN = "run `genred spotify login`"
REFRESH_BEFORE_S = 60  # refresh an access token with less than this left


def token_path(data_dir: Path) -> Path:
    return data_dir / "spotify" / "token.json"


class TokenFile(CacheHandler):
    """spotipy's cache interface over one JSON file, written atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_cached_token(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the Spotify token file", path=str(self.path), error=str(exc))
            return None
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("the Spotify token file is damaged", path=str(self.path))
            return None
        return data if isinstance(data, dict) else None

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.path.parent, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=".token-", dir=self.path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(token_info, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def auth_manager(settings: SpotifySettings, cache: CacheHandler) -> Any:
    """spotipy's SpotifyOAuth (client secret) or SpotifyPKCE for the configured app, with a
    timeout on token requests (spotipy's default is none) and no browser."""
    common: dict[str, Any] = {
        "client_id": settings.client_id,
        "redirect_uri": settings.redirect_uri,
        "scope": " ".join(SCOPES),
        "cache_handler": cache,
        "requests_timeout": settings.timeout,
        "open_browser": False,
    }
    manager: Any
    if settings.client_secret is None:
        manager = SpotifyPKCE(**common)
    else:
        manager = SpotifyOAuth(client_secret=settings.client_secret.get_secret_value(), **common)
    accounts = str(settings.accounts_url).rstrip("/")
    manager.OAUTH_AUTHORIZE_URL = f"{accounts}/authorize"  # instance attributes: nothing global
    manager.OAUTH_TOKEN_URL = f"{accounts}/api/token"
    return manager


class Tokens:
    """The current access token, refreshed when due; one refresh at a time."""

    def __init__(self, settings: SpotifySettings, data_dir: Path) -> None:
        self.cache = TokenFile(token_path(data_dir))
        self.manager = auth_manager(settings, self.cache)
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The cached token info; RemoteAuthFailed when there is none usable."""
        cached = self.cache.get_cached_token()
        if not cached or not cached.get("refresh_token"):
            raise RemoteAuthFailed(f"genred is not logged in to Spotify: {LOGIN}")
        granted = set(str(cached.get("scope") or "").split())
        missing = sorted(set(SCOPES) - granted)
        if missing:
            raise RemoteAuthFailed(
                f"the Spotify login lacks the scopes {', '.join(missing)}: {LOGIN} again"
            )
        return cached

    def access_token(self) -> str:
        with self._lock:
            cached = self.info()
            if int(cached.get("expires_at") or 0) - time.time() < REFRESH_BEFORE_S:
                cached = self._refresh(cached)
            return str(cached["access_token"])

    def refresh(self) -> str:
        """A new access token now (the server refused the one we had)."""
        with self._lock:
            return str(self._refresh(self.info())["access_token"])

    def _refresh(self, cached: dict[str, Any]) -> dict[str, Any]:
        try:
            fresh = self.manager.refresh_access_token(cached["refresh_token"])
        except SpotifyOauthError as exc:
            reason = exc.error_description or exc.error or str(exc)
            raise RemoteAuthFailed(f"Spotify refused the token ({reason}): {LOGIN}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RemoteUnavailable(
                f"the Spotify accounts service did not answer: {type(exc).__name__}"
            ) from None
        if not isinstance(fresh, dict) or "access_token" not in fresh:
            raise RemoteAuthFailed(f"Spotify gave no access token: {LOGIN}")
        return fresh

    # ------------------------------------------------------------------ login

    def authorize_url(self, state: str | None = None) -> str:
        return str(self.manager.get_authorize_url(state))

    def log_in(self, redirected: str) -> dict[str, Any]:
        """Swap the code in the redirected URL (or the bare code) for tokens, and keep them."""
        text = redirected.strip()
        try:
            code = (
                self.manager.parse_response_code(text)
                if "code=" in text or "error=" in text
                else text
            )
            if isinstance(self.manager, SpotifyPKCE):
                self.manager.get_access_token(code, check_cache=False)
            else:
                self.manager.get_access_token(code, as_dict=False, check_cache=False)
        except SpotifyOauthError as exc:
            reason = exc.error_description or exc.error or str(exc)
            raise RemoteAuthFailed(f"Spotify refused the login ({reason})") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RemoteUnavailable(
                f"the Spotify accounts service did not answer: {type(exc).__name__}"
            ) from None
        cached = self.cache.get_cached_token()
        if not cached:
            raise RemoteAuthFailed("Spotify answered the login without tokens")
        return cached
