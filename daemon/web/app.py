"""The daemon's FastAPI app: `GET /health`, and the routes enabled plugins register.

Plugin routes (`ProvidesRoutes`: the Plex webhook) may carry a secret in their path, so
no request line is ever logged as received: uvicorn's access log is off (see server.py)
and `RequestLog` logs paths under `/webhooks/<name>/` with the rest cut out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genred import __version__
from genred.hookspecs import ProvidesRoutes
from genred.logs import get_logger
from genred.triggers import SyncRequester

log = get_logger("genred.web")

MAX_BODY = 10 * 1024 * 1024  # a webhook's JSON payload plus a small JPEG poster
SECRET_PATHS = "/webhooks/"  # /webhooks/<name>/<secret…>


def create_app(
    plugins: Iterable[Any],
    requester: SyncRequester,
    status: Callable[[], dict[str, Any]] | None = None,
    *,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The app: `/health`, plus the routes of each plugin in `plugins` that registers some."""
    app = FastAPI(
        title="genred",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        max_body_size=max_body,
    )
    app.add_middleware(RequestLog)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **(status() if status is not None else {})}

    for plugin in plugins:
        if isinstance(plugin, ProvidesRoutes):
            router = APIRouter()
            plugin.register_routes(router, requester)
            app.include_router(router)
    return app


def redact_path(path: str) -> str:
    """The request path as it may be logged: what follows `/webhooks/<name>/` is cut."""
    if path.startswith(SECRET_PATHS):
        name = path[len(SECRET_PATHS) :].split("/", 1)[0]
        return f"{SECRET_PATHS}{name}/***"
    return path


class RequestLog:
    """Logs each request (method, redacted path, status, duration) at debug level."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            log.debug(
                "http request",
                method=scope["method"],
                path=redact_path(scope["path"]),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
