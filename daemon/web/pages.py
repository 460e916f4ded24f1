"""The dashboard's HTML pages, server-rendered; every form works without JavaScript.

Reads need a login only with `web.auth: all`; every form that changes something needs a
login (the session cookie) and carries a CSRF token. After a change the page redirects
(POST → 303 → GET) with a fixed `note`, so a reload never sends the form again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from genred.corrections import Correction, accept, apply
from genred.errors import GenredError, StageBusy
from genred.store import library, review, story
from genred.store.library import SORTS, CursorError, LibraryQuery
from genred.store.overrides import FIELDS, OverrideError
from genred.taxonomy import taxonomy_from_config

from .auth import AuthError, safe_next
from .context import WebContext
from .render import Pages
from .views import STARTABLE, overview_data, settings_data

PAGE_SIZE = 50
COUNT_CAP = 10_000  # the library page says "more than 10,000" rather than count on
TRUE = ("1", "true", "on", "yes")


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def can_read(ctx: WebContext, request: Request) -> None:
    if not ctx.auth.can_read(request):
        raise AuthError(401, "log in to see the dashboard")


def redirect(request: Request, path: str, **query: str) -> RedirectResponse:
    root = str(request.scope.get("root_path") or "")
    suffix = ("&" if "?" in path else "?") + urlencode(query) if query else ""
    return RedirectResponse(root + path + suffix, status_code=303)


def split_values(text: str) -> list[str]:
    """`Rock, Indie Pop; Jazz` → the values (commas or semicolons between them)."""
    return [v.strip() for v in re.split(r"[,;]", text) if v.strip()]


# --------------------------------------------------------------------------- overview


def overview_routes(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def overview(request: Request) -> Response:
        can_read(ctx, request)
        data = overview_data(ctx)
        return pages_of(request).render(request, "overview.html", section="overview", data=data)

    @router.post("/jobs/{stage}")
    def start_job(request: Request, stage: str, csrf: str = Form("")) -> Response:
        ctx.auth.check_csrf(request, csrf)
        ctx.auth.writer(request)
        if stage not in STARTABLE or ctx.jobs is None:
            raise HTTPException(404, f"no job {stage!r} to start here")
        try:
            ctx.jobs.start(stage, "web")
        except StageBusy:
            return redirect(request, "/", note="busy")
        except GenredError as exc:
            raise HTTPException(409, str(exc)) from None
        return redirect(request, "/", note="started")

    return router


# --------------------------------------------------------------------------- library


def parse_query(params: Any) -> tuple[LibraryQuery, list[str]]:
    """The library filters of a query string, leniently (an empty field is no filter);
    problems are said on the page instead of refusing it."""
    problems: list[str] = []

    def text(name: str, limit: int = 200) -> str:
        value = str(params.get(name) or "").strip()
        if len(value) > limit:
            problems.append(f"{name}: at most {limit} characters are used")
        return value[:limit]

    below: float | None = None
    if text("below"):
        try:
            below = float(text("below"))
            if not 0 <= below <= 1:
                raise ValueError
        except ValueError:
            problems.append("confidence below: a number between 0 and 1, like 0.5")
            below = None
    status = text("status") or None
    if status not in (None, *library.STATUSES):
        problems.append(f"status: one of {', '.join(library.STATUSES)}")
        status = None
    sort = text("sort") or "artist"
    if sort not in SORTS:
        problems.append(f"sort: one of {', '.join(SORTS)}")
        sort = "artist"
    album = text("album") or None
    if album is not None and ":" not in album:
        problems.append("album: a key like plex:12345")
        album = None
    query = LibraryQuery(
        q=text("q"),
        genre=text("genre", 100) or None,
        below=below,
        status=status,
        by=text("by", 100) or None,
        changed=text("changed").lower() in TRUE,
        overridden=text("overridden").lower() in TRUE,
        album=album,
        sort=sort,
        descending=text("order") == "desc",
    )
    return query, problems


def query_params(query: LibraryQuery) -> dict[str, str]:
    """The query string of a library view (for links: the next page, the CSV, a sort)."""
    out = {
        "q": query.q,
        "genre": query.genre or "",
        "below": "" if query.below is None else f"{query.below:g}",
        "status": query.status or "",
        "by": query.by or "",
        "changed": "1" if query.changed else "",
        "overridden": "1" if query.overridden else "",
        "album": query.album or "",
        "sort": "" if query.sort == "artist" else query.sort,
        "order": "desc" if query.descending else "",
    }
    return {k: v for k, v in out.items() if v}


def library_page(
    ctx: WebContext, query: LibraryQuery, cursor: str | None, limit: int = PAGE_SIZE
) -> library.Page:
    with ctx.db.reading() as store:
        found = library.page(store, query, cursor=cursor, limit=limit, with_total=False)
        if cursor is None and found.next_cursor is None:
            total = len(found.rows)
        else:
            total = ctx.counts.get(
                ("page", query), lambda: library.count(store, query, cap=COUNT_CAP)
            )
    return library.Page(found.rows, found.next_cursor, total, query)


EXPORT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_filename(name: str | None) -> str:
    """A safe download name: letters, digits, `.`, `_`, `-`; no path; ends in .csv."""
    cleaned = EXPORT_NAME.sub("-", (name or "").replace("\\", "/").split("/")[-1])
    cleaned = cleaned.strip(".-_")[:60].removesuffix(".csv") or "genred-library"
    return f"{cleaned}.csv"


def csv_stream(ctx: WebContext, query: LibraryQuery) -> Iterator[str]:
    """The CSV, a thousand rows at a time (flat memory); it ends early when the server
    stops."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(library.CSV_HEADER)
    with ctx.db.reading() as store:
        for rows in library.csv_rows(store, query):
            writer.writerows(rows)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if ctx.stop.is_set():
                return
    yield buffer.getvalue()


def library_routes(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/library")
    def library_view(request: Request) -> Response:
        can_read(ctx, request)
        query, problems = parse_query(request.query_params)
        cursor = request.query_params.get("cursor") or None
        try:
            found = library_page(ctx, query, cursor)
        except CursorError as exc:
            problems.append(str(exc))
            found = library_page(ctx, query, None)
            cursor = None
        config = ctx.config()
        deciders = [e.name for e in config.plugins.enabled("classifiers")] + ["album", "override"]
        params = query_params(query)
        return pages_of(request).render(
            request,
            "library.html",
            section="library",
            page=found,
            query=query,
            problems=problems,
            first=cursor is None,
            params=params,
            next_link=urlencode({**params, "cursor": found.next_cursor})
            if found.next_cursor
            else None,
            export_link=urlencode(params),
            sort_link=lambda name: urlencode(
                {
                    **{k: v for k, v in params.items() if k not in ("sort", "order")},
                    **({"sort": name} if name != "artist" else {}),
                    **({"order": "desc"} if query.sort == name and not query.descending else {}),
                }
            ),
            sorts=SORTS,
            cap=COUNT_CAP,
            statuses=library.STATUSES,
            deciders=deciders,
        )

    @router.get("/export.csv")
    def export(request: Request) -> Response:
        can_read(ctx, request)
        query, _ = parse_query(request.query_params)
        name = export_filename(request.query_params.get("name"))
        return StreamingResponse(
            csv_stream(ctx, query),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @router.get("/tracks/{track_id}")
    def track_view(request: Request, track_id: int) -> Response:
        can_read(ctx, request)
        with ctx.db.reading() as store:
            found = story.load(store, track_id)
        if found is None:
            raise HTTPException(404, f"there is no track {track_id}")
        return pages_of(request).render(
            request,
            "track.html",
            section="library",
            story=found,
            why=story.why(found),
            fields=FIELDS,
        )

    @router.post("/tracks/{track_id}/override")
    def override(
        request: Request, track_id: int, form: Annotated[OverrideForm, Depends()]
    ) -> Response:
        ctx.auth.check_csrf(request, form.csrf)
        who = ctx.auth.writer(request)
        correction = form.correction()
        _apply(ctx, [track_id], correction, who)
        return redirect(request, f"/tracks/{track_id}", note="cleared" if form.clear else "saved")

    return router


class OverrideForm:
    """The track page's override form: per field its values, or "keep genred's"."""

    def __init__(
        self,
        csrf: str = Form(""),
        genres: str = Form("", max_length=2000),
        moods: str = Form("", max_length=2000),
        labels: str = Form("", max_length=2000),
        keep_genre: str = Form(""),
        keep_mood: str = Form(""),
        keep_label: str = Form(""),
        clear: str = Form(""),
    ) -> None:
        self.csrf = csrf
        self.values = {"genre": genres, "mood": moods, "label": labels}
        self.keep = {
            "genre": keep_genre.lower() in TRUE,
            "mood": keep_mood.lower() in TRUE,
            "label": keep_label.lower() in TRUE,
        }
        self.clear = clear.lower() in TRUE

    def correction(self) -> Correction:
        given = {f: None if self.keep[f] else split_values(v) for f, v in self.values.items()}
        return Correction(
            genres=given["genre"],
            moods=given["mood"],
            labels=given["label"],
            keep=[f for f, keep in self.keep.items() if keep],
            clear=self.clear,
        )


def _apply(ctx: WebContext, track_ids: list[int], correction: Correction, who: str) -> None:
    taxonomy = taxonomy_from_config(ctx.config().taxonomy)
    with ctx.db.writing() as store:
        known = {
            row[0]
            for row in store.conn.execute(
                f"SELECT id FROM tracks WHERE id IN ({','.join('?' * len(track_ids))})",
                track_ids,
            )
        }
        missing = [i for i in track_ids if i not in known]
        if missing:
            raise HTTPException(404, f"there is no track {missing[0]}")
        try:
            apply(store, taxonomy, track_ids, correction, origin="web", who=who)
        except OverrideError as exc:
            raise HTTPException(422, str(exc)) from None
    if ctx.corrections is not None:
        ctx.corrections()


# --------------------------------------------------------------------------- review


def review_routes(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/review")
    def review_view(request: Request) -> Response:
        can_read(ctx, request)
        after = request.query_params.get("after") or None
        problems: list[str] = []
        with ctx.db.reading() as store:
            try:
                album = review.next_album(store, after)
            except CursorError as exc:
                problems.append(str(exc))
                album = review.next_album(store)
            waiting = review.waiting(store)
        return pages_of(request).render(
            request,
            "review.html",
            section="review",
            album=album,
            waiting=waiting,
            problems=problems,
        )

    @router.post("/review/answer")
    def answer(
        request: Request,
        csrf: str = Form(""),
        track: Annotated[list[int] | None, Form()] = None,
        action: str = Form("accept"),
        genres: str = Form("", max_length=2000),
        after: str = Form(""),
    ) -> Response:
        ctx.auth.check_csrf(request, csrf)
        who = ctx.auth.writer(request)
        track = track or []
        if not track or len(track) > 500:
            raise HTTPException(422, "pick between 1 and 500 tracks to answer for")
        if action == "accept":
            with ctx.db.writing() as store:
                accept(store, track, origin="web", who=who)
            if ctx.corrections is not None:
                ctx.corrections()
        elif action == "correct":
            values = split_values(genres)
            if not values:
                raise HTTPException(422, "type the genres (comma-separated) to correct them")
            _apply(ctx, track, Correction(genres=values), who)
        else:
            raise HTTPException(422, "action: accept or correct")
        return redirect(request, "/review", note="accepted")

    return router


# --------------------------------------------------------------------------- settings


def settings_routes(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/settings")
    def settings(request: Request) -> Response:
        can_read(ctx, request)
        return pages_of(request).render(
            request, "settings.html", section="settings", data=settings_data(ctx)
        )

    return router


# --------------------------------------------------------------------------- log in and out


def session_routes(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_form(request: Request) -> Response:
        return pages_of(request).render(
            request,
            "login.html",
            section="session",
            next=safe_next(request.query_params.get("next")),
            problem=None,
        )

    @router.post("/login")
    def login(
        request: Request,
        csrf: str = Form(""),
        token: str = Form("", max_length=1000),
        name: str = Form("", max_length=40),
        next: str = Form("/", max_length=2000),
    ) -> Response:
        ctx.auth.check_csrf(request, csrf)
        address = request.client.host if request.client else "?"
        target = safe_next(next)
        problem = None
        if not ctx.auth.writable:
            problem = "there is no web.api_token in the config: nothing to log in with"
        elif not ctx.auth.may_try(address):
            problem = "too many wrong tokens: wait a minute and try again"
        elif not ctx.auth.token_matches(token.strip()):
            ctx.auth.failed(address)
            problem = "that is not the token (web.api_token in the config)"
        if problem is not None:
            return pages_of(request).render(
                request, "login.html", section="session", next=target, problem=problem, status=401
            )
        who = name.strip() if name.strip().isprintable() and name.strip() else "web"
        response = redirect(request, target, note="logged-in")
        ctx.auth.set_session(request, response, ctx.auth.issue(who))
        return response

    @router.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        ctx.auth.check_csrf(request, csrf)
        found = ctx.auth.session(request)
        if found is not None:
            ctx.auth.revoke(found)
        response = redirect(request, "/login", note="logged-out")
        ctx.auth.end_session(request, response)
        return response

    return router
