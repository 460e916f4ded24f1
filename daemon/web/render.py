"""HTML out: the Jinja2 templates (auto-escaped), the nav, the CSRF token of each form."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from genred import __version__

from .auth import CSRF_FIELD, Auth

HERE = Path(__file__).parent
NOTES = {  # ?note=… after a change: a fixed message, never text from the URL
    "saved": "Saved. genred decides the track again and writes it back.",
    "cleared": "Override cleared: genred decides the track again from its predictions.",
    "accepted": "Answer saved.",
    "started": "Started.",
    "busy": "That job is running already.",
    "playlist-saved": "Playlist saved. Push it to Spotify or Plex below when it is right.",
    "pinned": "Pinned: the track stays through refines and refreshes.",
    "unpinned": "Unpinned.",
    "removed": "Removed: the track will not come back; another took its place.",
    "logged-in": "Logged in.",
    "logged-out": "Logged out.",
}


def when(value: str | None) -> str:
    """An ISO time as `2026-12-02 06:18 UTC` (empty for none)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value[:19]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value[:19]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            text = f"{math.floor(seconds / size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def number(value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


ENVIRONMENT = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(when=when, ago=ago, number=number)
ENVIRONMENT.globals.update(duration=duration, version=__version__)


def route_path(request: Request) -> str:
    """The request's path inside the app: without `web.root_path`, which uvicorn puts
    in front of it (links and redirects put it back)."""
    root = str(request.scope.get("root_path") or "")
    path = str(request.scope.get("path") or "/")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


class Pages:
    """Renders templates for one app (its nav and auth)."""

    def __init__(self, auth: Auth, nav: list[tuple[str, str, str]]) -> None:
        self.auth = auth
        self.nav = nav  # (name, title, path) in order

    def render(
        self,
        request: Request,
        template: str,
        *,
        section: str = "",
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        root = str(request.scope.get("root_path") or "")
        cookie, new = self.auth.csrf_cookie(request)
        session = self.auth.session(request)
        note = NOTES.get(request.query_params.get("note", ""))
        html = ENVIRONMENT.get_template(template).render(
            request=request,
            root=root,
            url=lambda path: root + path,
            here=route_path(request),
            nav=self.nav,
            section=section,
            session=session,
            writable=self.auth.writable,
            logged_in=session is not None,
            needs_login=self.auth.reads_need_login,
            csrf_field=CSRF_FIELD,
            csrf=self.auth.csrf_token(cookie),
            note=note,
            json=lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["cache-control"] = "no-store"
        if new:
            self.auth.set_csrf_cookie(request, response, cookie)
        return response
