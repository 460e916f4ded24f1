"""The daemon's FastAPI app: `POST /webhooks/plex/{secret}` and `GET /health`.

The webhook URL carries the secret in its path, so no request line is ever logged as
received: uvicorn's access log is off (see server.py) and `RequestLog` logs the path with
the secret cut out.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genred import __version__
from genred.config import Config
from genred.logs import get_logger
from genred.triggers import SyncRequester

from .webhooks import PlexWebhook, WebhookError, read_webhook

log = get_logger("genred.web")

WEBHOOK_PREFIX = "/webhooks/plex/"
MAX_BODY = 10 * 1024 * 1024  # the JSON payload plus a small JPEG poster
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(
    config: Config,
    requester: SyncRequester,
    status: Callable[[], dict[str, Any]] | None = None,
    *,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The app for `config.web`; Plex webhooks become `requester.request_sync("plex", …)`.

    Plex posts one library.new per added item (an album is a burst of them), so each asks
    for a sync `web.webhook_delay` later and the daemon coalesces the burst into one.
    """
    secret = config.web.webhook_secret
    webhook_delay = config.web.webhook_delay.total_seconds()
    expected = secret.get_secret_value().encode() if secret is not None else None
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

    # Every method is routed here so that a wrong secret is a 404 whatever the method
    # (a 405 would tell that the path exists).
    @app.api_route(WEBHOOK_PREFIX + "{secret}", methods=ALL_METHODS, include_in_schema=False)
    async def plex_webhook(secret: str, request: Request) -> JSONResponse:
        # Wrong or unset secret: the same 404 as any unknown path, and nothing read.
        if expected is None or not hmac.compare_digest(secret.encode(), expected):
            raise HTTPException(status_code=404)
        if request.method != "POST":
            raise HTTPException(status_code=405, headers={"Allow": "POST"})
        try:
            hook = await read_webhook(request)
        except WebhookError as exc:
            log.warning("plex webhook refused", reason=str(exc))
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if not hook.adds_music:
            log.debug("plex webhook ignored", plex_event=hook.event, section=hook.section_type)
            return JSONResponse({"status": "ignored", "event": hook.event})
        await run_in_threadpool(_request_sync, requester, hook, webhook_delay)
        return JSONResponse({"status": "sync requested", "event": hook.event})

    return app


def _request_sync(requester: SyncRequester, hook: PlexWebhook, delay: float) -> None:
    log.info(
        "plex webhook: new media, sync requested",
        plex_event=hook.event,
        section=hook.section_id,
        item_type=hook.item_type,
        title=hook.title,
    )
    requester.request_sync("plex", reason=f"webhook: plex {hook.event}", delay=delay)


def redact_path(path: str) -> str:
    """The request path as it may be logged: the webhook secret is replaced."""
    return WEBHOOK_PREFIX + "***" if path.startswith(WEBHOOK_PREFIX) else path


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
