"""Who may do what: `web.api_token` for every change (and with `web.auth: all`, every read).

- The API takes the token as ``Authorization: Bearer <token>``.
- The pages take it once, in the login form, and then a session cookie (HttpOnly,
  SameSite=Strict, Secure over https, signed with a key kept in the data dir, 0600). A
  new token ends every session; logging out ends that one.
- Every form carries a CSRF token: an HMAC of a random per-browser cookie, checked on
  each POST together with the Origin header when the browser sends one.
- Without a token configured the dashboard and API are read-only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from genred.config import WebConfig

SESSION_COOKIE = "genred_session"
CSRF_COOKIE = "genred_csrf"
CSRF_FIELD = "csrf"
KEY_FILE = "web.key"
LOGIN_ATTEMPTS = 5  # failed logins per address and minute before it must wait


class AuthError(Exception):
    """A request without the right to do what it asks (status 401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def load_key(data_dir: Path) -> bytes:
    """The signing key (32 random bytes), made on first use and kept 0600 in the data dir."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    temporary = path.with_name(f".{KEY_FILE}-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    os.replace(temporary, path)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    nonce: str
    issued: float
    who: str


class Auth:
    """Checks requests against the running config's `web` section."""

    def __init__(self, web: Callable[[], WebConfig], key: bytes) -> None:
        self.web = web
        self.key = key
        self._revoked: dict[str, float] = {}  # nonce → when its session would have ended
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the token

    @property
    def token(self) -> str | None:
        secret = self.web().api_token
        return secret.get_secret_value() if secret else None

    @property
    def writable(self) -> bool:
        return self.token is not None

    @property
    def reads_need_login(self) -> bool:
        return self.web().auth == "all"

    def token_matches(self, given: str) -> bool:
        token = self.token
        return token is not None and hmac.compare_digest(given.encode(), token.encode())

    def bearer(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    # ------------------------------------------------------------------ sessions

    def _mac(self, payload: str) -> str:
        token = self.token or ""
        bound = hashlib.sha256(token.encode()).hexdigest()  # a new token ends every session
        return _b64(hmac.new(self.key, f"{payload}|{bound}".encode(), hashlib.sha256).digest())

    def issue(self, who: str) -> str:
        payload = _b64(
            json.dumps(
                {"n": secrets.token_urlsafe(16), "i": time.time(), "w": who[:40]},
                separators=(",", ":"),
            ).encode()
        )
        return f"{payload}.{self._mac(payload)}"

    def session(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or self.token is None or "." not in cookie:
            return None
        payload, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            found = Session(str(data["n"]), float(data["i"]), str(data["w"]))
        except (ValueError, KeyError, TypeError):
            return None
        lifetime = self.web().session_lifetime.total_seconds()
        if time.time() - found.issued > lifetime or found.nonce in self._revoked:
            return None
        return found

    def revoke(self, session: Session) -> None:
        lifetime = self.web().session_lifetime.total_seconds()
        with self._lock:
            now = time.time()
            self._revoked = {n: t for n, t in self._revoked.items() if t > now}
            self._revoked[session.nonce] = session.issued + lifetime

    def set_session(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(self.web().session_lifetime.total_seconds()),
            path=_cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def end_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE,
            path=_cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    # ------------------------------------------------------------------ login attempts

    def may_try(self, address: str) -> bool:
        with self._lock:
            recent = self._failures.setdefault(address, deque())
            while recent and recent[0] < time.monotonic() - 60:
                recent.popleft()
            if not recent:
                self._failures.pop(address, None)
            return len(recent) < LOGIN_ATTEMPTS

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, deque()).append(time.monotonic())
            if len(self._failures) > 10_000:  # a flood of addresses: forget the oldest
                self._failures.pop(next(iter(self._failures)))

    # ------------------------------------------------------------------ CSRF

    def csrf_cookie(self, request: Request) -> tuple[str, bool]:
        """This browser's CSRF cookie value, and whether it is new (to be set)."""
        value = request.cookies.get(CSRF_COOKIE, "")
        if len(value) == 32 and value.isalnum():
            return value, False
        return secrets.token_hex(16), True

    def csrf_token(self, cookie: str) -> str:
        return _b64(hmac.new(self.key, f"csrf|{cookie}".encode(), hashlib.sha256).digest())

    def set_csrf_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            path=_cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def check_csrf(self, request: Request, given: str | None) -> None:
        """AuthError 403 unless the form's token belongs to this browser's cookie and the
        request comes from this site."""
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
            if urlsplit(origin).netloc != host:
                raise AuthError(403, "this form was sent from another site; reload the page")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not given or not hmac.compare_digest(given, self.csrf_token(cookie)):
            raise AuthError(403, "the form has expired or was not sent from this page: reload it")

    # ------------------------------------------------------------------ checks

    def can_read(self, request: Request) -> bool:
        return (
            not self.reads_need_login or self.session(request) is not None or self.bearer(request)
        )

    def writer(self, request: Request) -> str:
        """Who changes something through a page (their session), else AuthError."""
        if self.token is None:
            raise AuthError(403, READ_ONLY)
        found = self.session(request)
        if found is None:
            raise AuthError(401, "log in to make changes")
        return found.who

    def api_writer(self, request: Request) -> str:
        """Who changes something through the API (the Bearer token), else AuthError."""
        if self.token is None:
            raise AuthError(403, READ_ONLY)
        if not self.bearer(request):
            raise AuthError(401, "send the token as `Authorization: Bearer <web.api_token>`")
        name = request.headers.get("x-genred-user", "").strip()
        return name[:40] if name.isprintable() and name else "api"


READ_ONLY = (
    "genred's web side is read-only: set web.api_token in the config (at least 16 "
    "characters, e.g. `openssl rand -hex 24`) to make changes"
)


def _cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path") or "") or "/"


def safe_next(target: str | None) -> str:
    """A path on this site to go to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
