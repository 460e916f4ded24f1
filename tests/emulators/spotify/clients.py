"""The real spotipy pointed at the emulator, and the OAuth dance done without a browser.

spotipy reads its URLs from attributes, so nothing global is patched: `Spotify.prefix`
(set in `__init__`, "https://api.spotify.com/v1/") and the auth managers' class attributes
`OAUTH_AUTHORIZE_URL` / `OAUTH_TOKEN_URL`, shadowed here on the instance.

spotipy is the `spotify` extra; this module imports it, the emulator itself does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import CacheHandler, MemoryCacheHandler
from spotipy.oauth2 import SpotifyOAuth, SpotifyPKCE

from .server import SpotifyEmulator

DEFAULT_SCOPE = (
    "playlist-read-private",
    "playlist-modify-private",
    "playlist-modify-public",
    "user-read-private",
)


def oauth(
    emu: SpotifyEmulator,
    *,
    pkce: bool = False,
    scope: Iterable[str] = DEFAULT_SCOPE,
    redirect_uri: str | None = None,
    cache_handler: CacheHandler | None = None,
    state: str | None = None,
    requests_timeout: float = 5,
) -> SpotifyOAuth | SpotifyPKCE:
    """A SpotifyOAuth (client secret) or SpotifyPKCE manager for the emulator's client.

    `open_browser=False` and an in-memory cache; note spotipy would still fall back to
    `input()` if it ever needed a new authorization (see README, "spotipy traps").
    """
    redirect = redirect_uri or emu.auth.clients[emu.client_id].redirect_uris[0]
    common: dict[str, Any] = {
        "client_id": emu.client_id,
        "redirect_uri": redirect,
        "scope": " ".join(scope),
        "cache_handler": cache_handler or MemoryCacheHandler(),
        "state": state,
        "requests_timeout": requests_timeout,
        "open_browser": False,
    }
    manager: SpotifyOAuth | SpotifyPKCE
    if pkce:
        manager = SpotifyPKCE(**common)
    else:
        manager = SpotifyOAuth(client_secret=emu.client_secret, **common)
    manager.OAUTH_AUTHORIZE_URL = emu.authorize_url
    manager.OAUTH_TOKEN_URL = emu.token_url
    return manager


def authorization_code(manager: SpotifyOAuth | SpotifyPKCE, timeout: float = 5) -> str:
    """Open the manager's authorize URL as a browser would and read the code off the
    redirect (the emulator approves at once). spotipy raises SpotifyOauthError for an
    `error=` redirect; a non-redirect (bad client or redirect URI) raises RuntimeError."""
    answer = requests.get(manager.get_authorize_url(), allow_redirects=False, timeout=timeout)
    if answer.status_code != 302:
        raise RuntimeError(f"authorize answered {answer.status_code}: {answer.text[:200]}")
    return manager.parse_response_code(answer.headers["Location"])


def log_in(manager: SpotifyOAuth | SpotifyPKCE) -> dict[str, Any]:
    """The whole authorization-code flow; returns the token_info spotipy cached."""
    code = authorization_code(manager)
    if isinstance(manager, SpotifyPKCE):
        manager.get_access_token(code, check_cache=False)
    else:
        manager.get_access_token(code, as_dict=False, check_cache=False)
    token_info = manager.cache_handler.get_cached_token()
    if token_info is None:
        raise RuntimeError("spotipy cached no token")
    return token_info


def spotify(
    emu: SpotifyEmulator,
    auth_manager: Any,
    *,
    retries: int = 0,
    status_retries: int = 0,
    requests_timeout: float = 5,
    **kwargs: Any,
) -> spotipy.Spotify:
    """A spotipy.Spotify on the emulator's /v1 (no retries unless asked)."""
    client = spotipy.Spotify(
        auth_manager=auth_manager,
        retries=retries,
        status_retries=status_retries,
        requests_timeout=requests_timeout,
        **kwargs,
    )
    client.prefix = emu.api_url + "/"
    return client
