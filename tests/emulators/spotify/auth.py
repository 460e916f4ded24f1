"""The accounts service: `GET /authorize` (auto-approving) and `POST /api/token`.

Not part of the Web API spec (the OpenAPI file only names these URLs), so nothing here is
validated against it. What it follows:

- Redirect URIs (Spotify's redirect-URI rules, enforced for new apps since 2025-04-09 and
  for all by November 2025): HTTPS, or plain HTTP on an explicit loopback address
  (`http://127.0.0.1:PORT/…`, `http://[::1]:PORT/…`); `localhost` is refused. The
  dashboard refuses to register such a URI ("This redirect URI is not secure"); the
  authorize page answers "INVALID_CLIENT: Insecure redirect URI" for one, and
  "INVALID_CLIENT: Invalid redirect URI" for one not registered (both quoted in many
  public issue threads, e.g. kraxarn/spotify-qt#286, ActivityWatch/aw-watcher-spotify#31).
- Grants: `authorization_code` with the client secret in `Authorization: Basic`, or PKCE
  (`client_id` + `code_verifier`, checked against the S256 `code_challenge`); `refresh_token`
  (Basic, or `client_id` alone for a PKCE grant); `client_credentials`. Answers are shaped as
  spotify-web-api-java's AuthorizationCode.json, AuthorizationCodeRefresh.json (a
  confidential refresh returns no new refresh token) and AuthorizationCodePKCERefresh.json
  (a PKCE refresh returns a new one; the old one then stops working: assumed, as RFC 9700
  recommends for public clients). Errors: HTTP 400 `{"error", "error_description"}`.
- Access tokens really expire here after `access_token_lifetime_s` (default 3600), while
  the answer's `expires_in` can say something else (`expires_in`), so a test can make the
  server reject a token the client still trusts: 401 "The access token expired".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from .replies import ApiError, OAuthError, Reply, html_reply, json_reply

# Every scope in the spec's oauth_2_0 security scheme.
SCOPES = frozenset(
    (
        "app-remote-control",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-public",
        "playlist-modify-private",
        "user-library-read",
        "user-library-modify",
        "user-read-private",
        "user-read-email",
        "user-follow-read",
        "user-follow-modify",
        "user-top-read",
        "user-read-playback-position",
        "user-read-playback-state",
        "user-read-recently-played",
        "user-read-currently-playing",
        "user-modify-playback-state",
        "ugc-image-upload",
        "streaming",
    )
)
_TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


def redirect_uri_problem(redirect_uri: str) -> str | None:
    """Why Spotify refuses this redirect URI as insecure, or None when it is acceptable."""
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    if not parts.scheme or not host:
        return "not an absolute URI"
    if host == "localhost":
        return "localhost is not allowed as redirect URI, use 127.0.0.1 or [::1]"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in ("127.0.0.1", "::1"):
        return None
    if parts.scheme == "http":
        return "HTTP is only allowed on a loopback address (127.0.0.1 or [::1])"
    return None  # custom schemes (mobile apps) are allowed


def code_challenge(verifier: str) -> str:
    """PKCE S256: BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass
class Client:
    """A registered app: its id, secret and exact redirect URIs (as in the dashboard)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    name: str = "genred tests"


@dataclass
class Grant:
    """One user's consent to one client: every token issued under it dies with it."""

    id: int
    client_id: str
    user_id: str | None  # None: client_credentials
    scope: tuple[str, ...]
    pkce: bool = False
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    grant: Grant
    redirect_uri: str
    expires_at: float
    challenge: str | None = None
    used: bool = False


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float

    @property
    def user_id(self) -> str | None:
        return self.grant.user_id

    @property
    def scope(self) -> tuple[str, ...]:
        return self.grant.scope


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    expires_at: float | None = None
    revoked: bool = False
    rotated: bool = False  # replaced by a newer one at a refresh


@dataclass
class TokenEvent:
    """What the token endpoint did (for tests): grant type, outcome, tokens handed out."""

    grant_type: str
    ok: bool
    error: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    at: float = field(default_factory=time.time)


class AuthServer:
    """Clients, codes, grants and tokens; thread-safe. The emulator owns one (`emu.auth`)."""

    def __init__(
        self,
        *,
        user_id: str,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        access_token_lifetime_s: float = 3600,
        expires_in: int | None = None,
        refresh_token_lifetime_s: float | None = None,
        code_lifetime_s: float = 600,
        rotate_confidential_refresh: bool = False,
    ) -> None:
        self.user_id = user_id  # who "logs in" at /authorize
        self.approve = True  # False: the user clicks Cancel (error=access_denied)
        self.clock = clock
        self.access_token_lifetime_s = access_token_lifetime_s
        self.expires_in = expires_in
        self.refresh_token_lifetime_s = refresh_token_lifetime_s
        self.code_lifetime_s = code_lifetime_s
        self.rotate_confidential_refresh = rotate_confidential_refresh
        self.clients: dict[str, Client] = {}
        self.events: list[TokenEvent] = []
        self._codes: dict[str, AuthCode] = {}
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._grants: list[Grant] = []
        self._rng = random.Random(seed)
        self._lock = threading.RLock()

    # -- set-up ------------------------------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str]
    ) -> Client:
        """Register an app. Raises ValueError for a URI the dashboard refuses as insecure."""
        uris = tuple(redirect_uris)
        for candidate in uris:
            problem = redirect_uri_problem(candidate)
            if problem:
                raise ValueError(f"This redirect URI is not secure: {candidate} ({problem})")
        client = Client(client_id, client_secret, uris)
        with self._lock:
            self.clients[client_id] = client
        return client

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        """Add a URI to a registered app (the dashboard's "Add" button; same checks)."""
        problem = redirect_uri_problem(redirect_uri)
        if problem:
            raise ValueError(f"This redirect URI is not secure: {redirect_uri} ({problem})")
        with self._lock:
            client = self.clients[client_id]
            client.redirect_uris = (*client.redirect_uris, redirect_uri)

    def _random(self, prefix: str, length: int) -> str:
        with self._lock:
            return prefix + "".join(self._rng.choice(_TOKEN_CHARS) for _ in range(length))

    def _new_grant(
        self, client_id: str, user_id: str | None, scope: tuple[str, ...], pkce: bool = False
    ) -> Grant:
        grant = Grant(len(self._grants) + 1, client_id, user_id, scope, pkce)
        self._grants.append(grant)
        return grant

    def issue_tokens(
        self, client_id: str, scope: Iterable[str] = (), user_id: str | None = None
    ) -> tuple[str, str]:
        """Skip the OAuth dance: a fresh (access token, refresh token) for a user."""
        with self._lock:
            grant = self._new_grant(client_id, user_id or self.user_id, tuple(scope))
            return self._mint(grant, with_refresh=True)

    def _mint(self, grant: Grant, with_refresh: bool) -> tuple[str, str]:
        access = AccessToken(
            self._random("BQ", 140), grant, self.clock() + self.access_token_lifetime_s
        )
        self._access[access.token] = access
        refresh = ""
        if with_refresh:
            expires = (
                self.clock() + self.refresh_token_lifetime_s
                if self.refresh_token_lifetime_s
                else None
            )
            token = RefreshToken(self._random("AQ", 120), grant, expires)
            self._refresh[token.token] = token
            refresh = token.token
        return access.token, refresh

    # -- what tests do to tokens -------------------------------------------------------------

    def expire_access_tokens(self) -> int:
        """Every live access token expires now (the client may still think it valid)."""
        with self._lock:
            now = self.clock()
            live = [t for t in self._access.values() if t.expires_at > now]
            for token in live:
                token.expires_at = now
            return len(live)

    def expire_refresh_tokens(self) -> None:
        with self._lock:
            for token in self._refresh.values():
                token.expires_at = self.clock()

    def revoke_refresh_token(self, token: str) -> None:
        with self._lock:
            self._refresh[token].revoked = True

    def revoke_grant_of(self, access_or_refresh_token: str) -> None:
        """The user removed the app: its grant's access and refresh tokens stop working."""
        with self._lock:
            held = self._access.get(access_or_refresh_token) or self._refresh.get(
                access_or_refresh_token
            )
            if held is None:
                raise KeyError("unknown token")
            held.grant.revoked = True

    def revoke_all(self) -> None:
        with self._lock:
            for grant in self._grants:
                grant.revoked = True

    @property
    def access_tokens(self) -> list[AccessToken]:
        with self._lock:
            return list(self._access.values())

    @property
    def refresh_tokens(self) -> list[RefreshToken]:
        with self._lock:
            return list(self._refresh.values())

    # -- the Web API's side: bearer tokens ---------------------------------------------------

    def bearer(self, authorization: str | None) -> AccessToken:
        """The access token an API request presents, or the 400/401 Spotify answers."""
        if not authorization:
            raise ApiError(401, "No token provided", _www_authenticate(None))
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(400, "Only valid bearer authentication supported")
        with self._lock:
            held = self._access.get(token.strip())
            if held is None or held.grant.revoked:
                raise ApiError(401, "Invalid access token", _www_authenticate("invalid_token"))
            if held.expires_at <= self.clock():
                raise ApiError(
                    401,
                    "The access token expired",
                    _www_authenticate("invalid_token", "The access token expired"),
                )
            return held

    # -- GET /authorize ----------------------------------------------------------------------

    def authorize(self, query: Mapping[str, str]) -> Reply:
        """Auto-approve as `self.user_id` and redirect (302) to the redirect URI."""
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return html_reply(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri_problem(redirect_uri):
            return html_reply(400, "INVALID_CLIENT: Insecure redirect URI")
        if redirect_uri not in client.redirect_uris:
            return html_reply(400, "INVALID_CLIENT: Invalid redirect URI")
        state = query.get("state")

        def back(**params: str) -> Reply:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return Reply(302, b"", {"Location": f"{redirect_uri}{sep}{urlencode(params)}"})

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scope = tuple(s for s in query.get("scope", "").replace(",", " ").split() if s)
        if any(s not in SCOPES for s in scope):
            return back(error="invalid_scope")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return back(error="invalid_request")
        if not self.approve:
            return back(error="access_denied")
        with self._lock:
            grant = self._new_grant(
                client.client_id, self.user_id, scope, pkce=challenge is not None
            )
            code = AuthCode(
                self._random("AQ", 100),
                grant,
                redirect_uri,
                self.clock() + self.code_lifetime_s,
                challenge,
            )
            self._codes[code.code] = code
        return back(code=code.code)

    # -- POST /api/token ---------------------------------------------------------------------

    def token(self, headers: Mapping[str, str], form: Mapping[str, str]) -> Reply:
        grant_type = form.get("grant_type", "")
        try:
            with self._lock:
                reply, event = self._token(headers, form, grant_type)
        except OAuthError as error:
            event = TokenEvent(grant_type, False, error.error, client_id=form.get("client_id"))
            reply = error.reply()
        with self._lock:
            self.events.append(event)
        return reply

    def _client_auth(self, headers: Mapping[str, str], form: Mapping[str, str]) -> tuple[str, bool]:
        """(client_id, authenticated with the secret)."""
        header = _header(headers, "authorization")
        if header and header.lower().startswith("basic "):
            try:
                raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "Invalid client") from None
            client_id, _, secret = raw.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "Invalid client")
        if secret:
            if secret != client.client_secret:
                raise OAuthError("invalid_client", "Invalid client secret")
            return client_id, True
        return client_id, False

    def _token(
        self, headers: Mapping[str, str], form: Mapping[str, str], grant_type: str
    ) -> tuple[Reply, TokenEvent]:
        if not grant_type:
            raise OAuthError("unsupported_grant_type", "grant_type parameter is missing")
        if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
            raise OAuthError(
                "unsupported_grant_type",
                "grant_type must be client_credentials, authorization_code or refresh_token",
            )
        client_id, confidential = self._client_auth(headers, form)
        if grant_type == "client_credentials":
            if not confidential:
                raise OAuthError("invalid_client", "Invalid client")
            grant = self._new_grant(client_id, None, ())
            access, _ = self._mint(grant, with_refresh=False)
            body = {"access_token": access, "token_type": "Bearer", "expires_in": self._exp()}
            return json_reply(200, body), TokenEvent(
                grant_type, True, None, access, None, client_id
            )
        if grant_type == "authorization_code":
            return self._code_grant(form, client_id, confidential)
        return self._refresh_grant(form, client_id, confidential)

    def _exp(self) -> int:
        return int(self.expires_in if self.expires_in is not None else self.access_token_lifetime_s)

    def _code_grant(
        self, form: Mapping[str, str], client_id: str, confidential: bool
    ) -> tuple[Reply, TokenEvent]:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "Invalid authorization code")
        if code.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "Authorization code expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "Invalid redirect URI")
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError("invalid_request", "code_verifier required")
            if code_challenge(verifier) != code.challenge:
                raise OAuthError("invalid_grant", "code_verifier was incorrect")
        elif not confidential:
            raise OAuthError("invalid_client", "Invalid client secret")
        code.used = True
        access, refresh = self._mint(code.grant, with_refresh=True)
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._exp(),
            "refresh_token": refresh,
            "scope": " ".join(code.grant.scope),
        }
        event = TokenEvent("authorization_code", True, None, access, refresh, client_id)
        return json_reply(200, body), event

    def _refresh_grant(
        self, form: Mapping[str, str], client_id: str, confidential: bool
    ) -> tuple[Reply, TokenEvent]:
        held = self._refresh.get(form.get("refresh_token", ""))
        if held is None or held.grant.client_id != client_id or held.rotated:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        if held.revoked or held.grant.revoked:
            raise OAuthError("invalid_grant", "Refresh token revoked")
        if held.expires_at is not None and held.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "Invalid refresh token")
        if not confidential and not held.grant.pkce:
            raise OAuthError("invalid_client", "Invalid client secret")
        rotate = held.grant.pkce or self.rotate_confidential_refresh
        access, refresh = self._mint(held.grant, with_refresh=rotate)
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._exp(),
            "scope": " ".join(held.grant.scope),
        }
        if rotate:
            held.rotated = True
            body["refresh_token"] = refresh
        event = TokenEvent("refresh_token", True, None, access, refresh or None, client_id)
        return json_reply(200, body), event


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _www_authenticate(error: str | None, description: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="spotify"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return {"WWW-Authenticate": value}
