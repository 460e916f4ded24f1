"""The daemon's FastAPI app: `GET /health`, the routes enabled plugins register, and (given
a `WebContext`) the dashboard's pages and the REST API under `/api`.

Plugin routes (`ProvidesRoutes`: the Plex webhook) may carry a secret in their path, so
no request line is ever logged as received: uvicorn's access log is off (see server.py)
and `RequestLog` logs paths under `/webhooks/<name>/` with the rest cut out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genred import __version__
from genred.hookspecs import ProvidesRoutes
from genred.logs import get_logger
from genred.triggers import SyncRequester

log = get_logger("genred.web")

MAX_BODY = 10 * 1024 * 1024  # a webhook's JSON payload plus a small JPEG poster
SECRET_PATHS = "/webhooks/"  # /webhooks/<name>/<secret…>
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def create_app(
    plugins: Iterable[Any],
    requester: SyncRequester,
    status: Callable[[], dict[str, Any]] | None = None,
    *,
    web: Any = None,
    sections: Sequence[Any] | None = None,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The app: `/health`, the routes of each plugin in `plugins` that registers some, and
    with `web` (a `genred.web.context.WebContext`) the dashboard and the API."""
    app = FastAPI(
        title="genred",
        version=__version__,
        description="genred's REST API: the library, why each track got its genres, "
        "overrides, the review queue, runs and jobs. Writes need "
        "`Authorization: Bearer <web.api_token>`.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json" if web is not None else None,
    )
    # The body limit sits inside the app's middleware (FastAPI's own `max_body_size` sits
    # outside it), so its 413 can be answered as JSON like every other error.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body)
    app.add_middleware(TooLargeAsProblem, limit=max_body)
    app.add_middleware(RequestLog)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", **(status() if status is not None else {})}

    for plugin in plugins:
        if isinstance(plugin, ProvidesRoutes):
            router = APIRouter(include_in_schema=False)
            plugin.register_routes(router, requester)
            app.include_router(router)
    if web is not None:
        _add_dashboard(app, web, sections)
    return app


def _add_dashboard(app: FastAPI, web: Any, sections: Sequence[Any] | None) -> None:
    from .auth import AuthError
    from .render import Pages, route_path
    from .sections import core_sections

    chosen = list(sections) if sections is not None else core_sections()
    app.state.web = web
    app.state.pages = Pages(web.auth, [(s.name, s.title, s.path) for s in chosen if s.nav])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for section in chosen:
        if section.api is not None:
            app.include_router(section.api(web))
        if section.pages is not None:
            app.include_router(section.pages(web))
    app.add_middleware(SecurityHeaders)

    def wants_json(request: Request) -> bool:
        path = route_path(request)
        return path.startswith("/api/") or path == "/api"

    def problem(status: int, message: str, errors: list[str] | None = None) -> JSONResponse:
        return JSONResponse({"message": message, "errors": errors or []}, status_code=status)

    def page_error(request: Request, status: int, message: str) -> Response:
        pages: Pages = request.app.state.pages
        return pages.render(
            request, "error.html", status=status, status_code=status, message=message
        )

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> Response:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else {}
        if wants_json(request):
            response = problem(exc.status, exc.message)
            response.headers.update(headers)
            return response
        if exc.status == 401 and request.method == "GET":
            root = str(request.scope.get("root_path") or "")
            query = f"?{request.url.query}" if request.url.query else ""
            target = quote(route_path(request) + query)
            return RedirectResponse(f"{root}/login?next={target}", status_code=303)
        return page_error(request, exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
        if exc.status_code == 404 and message == "Not Found":
            message = "there is nothing at this address"
        elif exc.status_code == 405:
            message = f"{request.method} is not how this address is used"
        elif exc.status_code == 413:
            message = "the body is too large (10 MB at most)"
        if wants_json(request) or route_path(request).startswith("/webhooks/"):
            response = problem(exc.status_code, message)
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        return page_error(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [_where(e) for e in exc.errors()]
        message = "; ".join(errors[:3]) or "the request is not valid"
        if wants_json(request):
            return problem(422, message, errors)
        return page_error(request, 422, message)


def _where(error: Any) -> str:
    location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)) or "request"
    text = str(error.get("msg", "not valid")).removeprefix("Value error, ")
    return f"{location}: {text}"


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


class TooLargeAsProblem:
    """The body limit's plain-text 413 becomes a JSON problem with the limit in words."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.body = json.dumps(
            {
                "message": f"the body is too large ({limit // (1024 * 1024)} MB at most)",
                "errors": [],
            }
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def as_problem(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                replaced = True
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(self.body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": self.body})
            elif not replaced:
                await send(message)

        await self.app(scope, receive, as_problem)


class SecurityHeaders:
    """A strict Content-Security-Policy (no inline script or style) and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
