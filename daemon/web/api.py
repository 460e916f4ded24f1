"""The REST API under `/api` (schema at `/api/openapi.json`): the dashboard's facts as JSON.

Reads need the token only with `web.auth: all` (Bearer, or the dashboard's session
cookie); every write needs ``Authorization: Bearer <web.api_token>``. Lists are cursor
pages (`next_cursor` → `?cursor=`). Every error is a `Problem` ({"message", "errors"}).
The two progress streams (server-sent events) are not in the schema: they do not end.
"""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

import genred.web.schemas as schemas
from genred.corrections import Correction, accept, apply
from genred.errors import GenredError, StageBusy
from genred.store import Store, library, review, story
from genred.store.library import SORTS, CursorError, LibraryQuery
from genred.store.overrides import OverrideError
from genred.store.runs import Run
from genred.taxonomy import normalize_key, taxonomy_from_config
from genred.training.auto import labels_since_current

from .auth import AuthError
from .context import WebContext
from .views import STARTABLE, masked_config, progress_item

MAX_ID = 2**62  # ids beyond SQLite's integers are no track
Problem = {"model": schemas.Problem}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**Problem, "description": "the request cannot be read"},
    401: {**Problem, "description": "the token is missing or wrong"},
    403: {**Problem, "description": "not allowed (read-only without web.api_token)"},
    404: {**Problem, "description": "no such thing"},
    409: {**Problem, "description": "it is running already"},
    413: {**Problem, "description": "the body is too large"},
    422: {**Problem, "description": "a parameter or the body is not valid"},
}
TrackId = Annotated[int, Path(ge=1, le=MAX_ID)]
AlbumKey = Annotated[str, Path(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9_.-]+:[^/]+$")]


def api_router() -> APIRouter:
    return APIRouter(prefix="/api", responses=ERRORS)


# In the schema: writes need it; reads too with `web.auth: all`. Checked by `Auth`.
bearer = HTTPBearer(auto_error=False, description="web.api_token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def reader(ctx: WebContext) -> Any:
    def check(request: Request, _token: Credentials) -> None:
        if not ctx.auth.can_read(request):
            raise AuthError(401, "send the token as `Authorization: Bearer <web.api_token>`")

    return Depends(check)


def writer(ctx: WebContext) -> Any:
    def check(request: Request, _token: Credentials) -> str:
        return ctx.auth.api_writer(request)

    return Depends(check)


def _run(run: Run) -> schemas.RunOut:
    return schemas.RunOut(
        id=run.id,
        job=run.job,
        trigger=run.trigger,
        started_at=run.started_at,
        ended_at=run.ended_at,
        status=run.status,
        counts=run.counts,
        error=run.error,
    )


RUN_COLUMNS = "id, job, trigger, started_at, ended_at, status, counts, error"


def _run_row(row: Any) -> Run:
    return Run(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7])


def _run_by_id(store: Store, run_id: int) -> Run | None:
    row = store.conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _run_row(row)


# --------------------------------------------------------------------------- overview


def overview_routes(ctx: WebContext) -> APIRouter:
    router = api_router()
    read = reader(ctx)

    @router.get("/stats", dependencies=[read])
    def stats() -> schemas.Stats:
        """The library in figures (as the overview shows them)."""
        figures = ctx.stats.get()
        with ctx.db.reading() as store:
            labels = labels_since_current(store, ctx.config())
            waiting = review.waiting(store)
        return schemas.Stats(
            tracks=figures.tracks,
            removed=figures.removed,
            classified=figures.classified,
            decided=figures.decided,
            review=figures.review,
            undecided=figures.undecided,
            written=figures.written,
            failed=figures.failed,
            overridden=figures.overridden,
            genres_before=figures.genres_before,
            genres_now=figures.genres_now,
            top_genres=[schemas.ValueCount(name=n, count=c) for n, c in figures.top_now],
            top_genres_before=[schemas.ValueCount(name=n, count=c) for n, c in figures.top_before],
            confidence_histogram=figures.confidence,
            new_labels=labels.new,
            model=labels.model,
            review_waiting=waiting,
        )

    @router.get("/progress", dependencies=[read])
    def progress() -> schemas.ProgressOut:
        """What runs now, step by step, and when each job runs next."""
        return _progress(ctx)

    @router.get("/runs", dependencies=[read])
    def run_list(
        job: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z-]+$")] = None,
        cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> schemas.RunPage:
        """Recorded runs, newest first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if job:
            where.append("job = ?")
            params.append(job)
        if cursor:
            where.append("id < ?")
            params.append(min(int(cursor), MAX_ID))
        with ctx.db.reading() as store:
            rows = store.conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
                "ORDER BY id DESC LIMIT ?",
                [*params, limit + 1],
            ).fetchall()
        found = [_run_row(r) for r in rows]
        more = len(found) > limit
        found = found[:limit]
        return schemas.RunPage(
            items=[_run(r) for r in found],
            next_cursor=str(found[-1].id) if more and found else None,
        )

    @router.get("/runs/{run_id}", dependencies=[read])
    def one_run(run_id: TrackId) -> schemas.RunOut:
        with ctx.db.reading() as store:
            found = _run_by_id(store, run_id)
        if found is None:
            raise HTTPException(404, f"there is no run {run_id}")
        return _run(found)

    @router.post("/jobs/{stage}", status_code=202, responses={202: {"model": schemas.JobStarted}})
    def start_job(
        stage: Literal["sync", "extract", "classify", "decide", "writeback"],
        who: Annotated[str, writer(ctx)],
    ) -> JSONResponse:
        """Start a job now: 202 with its run id, 409 when it is running already."""
        if ctx.jobs is None:
            raise HTTPException(409, "jobs run only in the daemon (`genred run`)")
        assert stage in STARTABLE
        try:
            run_id = ctx.jobs.start(stage, "api")
        except StageBusy as exc:
            raise HTTPException(409, str(exc)) from None
        except GenredError as exc:
            raise HTTPException(409, str(exc)) from None
        body = schemas.JobStarted(
            job=stage, run_id=run_id, run=f"/api/runs/{run_id}", events=f"/api/runs/{run_id}/events"
        )
        return JSONResponse(body.model_dump(), status_code=202)

    @router.get(
        "/progress/events",
        response_class=EventSourceResponse,
        include_in_schema=False,
        dependencies=[read],
    )
    async def progress_events() -> AsyncIterator[ServerSentEvent]:
        """`progress` events whenever a running job moves; `bye` when the server stops."""
        seen = -1
        while not ctx.stop.is_set():
            version = ctx.live.version if ctx.live is not None else 0
            if version != seen:
                seen = version
                data = await run_in_threadpool(_progress, ctx)
                yield ServerSentEvent(data=data.model_dump(), event="progress")
            await anyio.sleep(0.25)
        yield ServerSentEvent(data={"reason": "the server is stopping"}, event="bye")

    @router.get(
        "/runs/{run_id}/events",
        response_class=EventSourceResponse,
        include_in_schema=False,
        dependencies=[read],
    )
    async def run_events(run_id: TrackId) -> AsyncIterator[ServerSentEvent]:
        """One run's `progress` until it ends, then `done` with its record."""
        last: dict[str, Any] | None = None
        while not ctx.stop.is_set():
            found = await run_in_threadpool(_read_run, ctx, run_id)
            if found is None:
                yield ServerSentEvent(data={"message": f"there is no run {run_id}"}, event="done")
                return
            if found.status != "running":
                yield ServerSentEvent(data=_run(found).model_dump(), event="done")
                return
            running = ctx.live.snapshot()[1] if ctx.live is not None else []
            mine = next((progress_item(j) for j in running if j.run_id == run_id), None)
            if mine is not None and mine != last:
                last = mine
                yield ServerSentEvent(data=mine, event="progress")
            await anyio.sleep(0.25)
        yield ServerSentEvent(data={"reason": "the server is stopping"}, event="bye")

    return router


def _read_run(ctx: WebContext, run_id: int) -> Run | None:
    with ctx.db.reading() as store:
        return _run_by_id(store, run_id)


def _progress(ctx: WebContext) -> schemas.ProgressOut:
    running = ctx.live.snapshot()[1] if ctx.live is not None else []
    status = ctx.status() if ctx.status is not None else {}
    return schemas.ProgressOut(
        running=[schemas.ProgressItem(**progress_item(j)) for j in running],
        next_runs=dict(status.get("next_runs") or {}),
    )


# --------------------------------------------------------------------------- library


def track_item(row: library.LibraryRow) -> schemas.TrackItem:
    return schemas.TrackItem(
        id=row.id,
        title=row.title,
        artist=row.artist,
        album=row.album,
        year=row.year,
        source=row.source,
        source_id=row.source_id,
        album_key=row.album_key,
        genres_before=list(row.original),
        genres=list(row.genres),
        moods=list(row.moods),
        labels=list(row.labels),
        confidence=row.confidence,
        status=row.status,
        decided_by=row.decided_by,
        overridden=row.overridden,
        written=row.changed,
    )


def story_out(found: story.TrackStory) -> schemas.TrackStoryOut:
    decision = found.decision
    return schemas.TrackStoryOut(
        track={k: list(v) if isinstance(v, tuple) else v for k, v in found.track.items()},
        album_key=found.album_key,
        predictions=[
            schemas.Said(
                classifier=p.classifier,
                label_set=p.label_set,
                version=p.version,
                labels=list(p.labels),
                created_at=p.created_at,
            )
            for p in found.predictions
        ],
        decision=None
        if decision is None
        else schemas.DecisionOut(
            genres=list(decision.genres),
            moods=list(decision.moods),
            labels=list(decision.labels),
            confidence=decision.confidence,
            status=decision.status,
            decided_at=decision.decided_at,
            decided_by=decision.decided_by,
            step=decision.step,
            genre_voters=decision.genre_voters,
            album_smoothing=decision.album,
            provenance=decision.provenance,
        ),
        overrides=[
            schemas.OverrideOut(
                field=o.field,
                values=list(o.values),
                origin=o.origin,
                created_by=o.created_by,
                created_at=o.created_at,
            )
            for o in found.overrides.values()
        ],
        writes=[
            schemas.WriteOut(
                target=w.target,
                kind=w.kind,
                item_id=w.item_id,
                field=w.field,
                original=list(w.original),
                written=None if w.written is None else list(w.written),
                pending=None if w.pending is None else list(w.pending),
                written_at=w.written_at,
                manual_at=w.manual_at,
                reverted_at=w.reverted_at,
            )
            for w in found.writes
        ],
        failures=[
            schemas.FailureOut(
                stage=f.stage,
                error_type=f.error_type,
                message=f.message,
                attempts=f.attempts,
                last_failed_at=f.last_failed_at,
                next_retry_at=f.next_retry_at,
            )
            for f in found.failures
        ],
        why=story.why(found),
    )


def library_routes(ctx: WebContext) -> APIRouter:
    router = api_router()
    read = reader(ctx)
    Text = Annotated[str | None, Query(max_length=100)]

    @router.get("/tracks", dependencies=[read])
    def tracks(
        q: Annotated[
            str,
            Query(
                max_length=200, description="words in title, artist, album, genres, moods, labels"
            ),
        ] = "",
        genre: Text = None,
        below: Annotated[float | None, Query(ge=0, le=1, description="confidence below")] = None,
        status: Literal["decided", "review", "undecided"] | None = None,
        by: Annotated[
            str | None,
            Query(max_length=100, description="decided by this classifier (or override, album)"),
        ] = None,
        changed: Annotated[bool, Query(description="genred wrote it")] = False,
        overridden: bool = False,
        album: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_.-]+:.+$")] = None,
        sort: Literal["artist", "title", "album", "year", "confidence", "decided"] = "artist",
        order: Literal["asc", "desc"] = "asc",
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> schemas.TrackPage:
        """The library with the dashboard's filters, a cursor page at a time."""
        assert sort in SORTS
        query = LibraryQuery(
            q=q,
            genre=genre or None,
            below=below,
            status=status,
            by=by or None,
            changed=changed,
            overridden=overridden,
            album=album,
            sort=sort,
            descending=order == "desc",
        )
        with ctx.db.reading() as store:
            try:
                found = library.page(store, query, cursor=cursor, limit=limit, with_total=False)
            except CursorError as exc:
                raise HTTPException(422, str(exc)) from None
            total = ctx.counts.get(query, lambda: library.count(store, query))
        return schemas.TrackPage(
            items=[track_item(r) for r in found.rows], next_cursor=found.next_cursor, total=total
        )

    @router.get("/tracks/{track_id}", dependencies=[read])
    def track(track_id: TrackId) -> schemas.TrackStoryOut:
        """One track's whole story: tags, predictions, the decision and why, writes."""
        with ctx.db.reading() as store:
            found = story.load(store, track_id)
        if found is None:
            raise HTTPException(404, f"there is no track {track_id}")
        return story_out(found)

    @router.put("/tracks/{track_id}/override")
    def put_override(
        track_id: TrackId, body: schemas.OverrideIn, who: Annotated[str, writer(ctx)]
    ) -> schemas.OverrideResult:
        """Set (or give back to genred, `keep`) a track's genres, moods, labels."""
        return _correct(ctx, [track_id], _correction(body), who)

    @router.delete("/tracks/{track_id}/override")
    def delete_override(
        track_id: TrackId, who: Annotated[str, writer(ctx)]
    ) -> schemas.OverrideResult:
        """Drop every override of a track: genred decides it again."""
        return _correct(ctx, [track_id], Correction(clear=True), who)

    @router.put("/albums/{key}/override")
    def put_album_override(
        key: AlbumKey, body: schemas.OverrideIn, who: Annotated[str, writer(ctx)]
    ) -> schemas.OverrideResult:
        """The same override for every track of an album (`source:album id`)."""
        return _correct(ctx, _album_tracks(ctx, key), _correction(body), who)

    @router.delete("/albums/{key}/override")
    def delete_album_override(
        key: AlbumKey, who: Annotated[str, writer(ctx)]
    ) -> schemas.OverrideResult:
        return _correct(ctx, _album_tracks(ctx, key), Correction(clear=True), who)

    @router.get("/genres", dependencies=[read])
    def genres(
        q: Annotated[str, Query(max_length=100)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[schemas.GenreItem]:
        """The taxonomy's genres (and genres decided outside it) with how many tracks have
        them; `q` filters by name (for a typeahead: names starting with it come first)."""
        taxonomy = taxonomy_from_config(ctx.config().taxonomy)
        counts = ctx.stats.get().genre_counts
        names = set(taxonomy.names) | set(counts)
        found = _matching(names, q, counts)[:limit]
        return [
            schemas.GenreItem(
                name=name,
                parent=taxonomy.parent(name) if taxonomy.is_known(name) else None,
                count=counts.get(name, 0),
            )
            for name in found
        ]

    @router.get("/moods", dependencies=[read])
    def moods(
        q: Annotated[str, Query(max_length=100)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[schemas.ValueCount]:
        """Decided moods with their counts."""
        counts = ctx.stats.get().mood_counts
        return [
            schemas.ValueCount(name=n, count=counts[n])
            for n in _matching(set(counts), q, counts)[:limit]
        ]

    @router.get("/labels", dependencies=[read])
    def labels(
        q: Annotated[str, Query(max_length=100)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[schemas.ValueCount]:
        """Decided custom labels with their counts."""
        counts = ctx.stats.get().label_counts
        return [
            schemas.ValueCount(name=n, count=counts[n])
            for n in _matching(set(counts), q, counts)[:limit]
        ]

    return router


def _matching(names: set[str], q: str, counts: dict[str, int]) -> list[str]:
    """Names holding `q` as the taxonomy folds names ("drum and" finds "Drum & Bass",
    "hip h" "Hip-Hop"): those starting with it first, then the most used."""
    wanted = normalize_key(q) if q.strip() else ""
    keyed = {n: normalize_key(n) for n in names}
    hits = [n for n, key in keyed.items() if wanted in key]
    return sorted(
        hits, key=lambda n: (not keyed[n].startswith(wanted), -counts.get(n, 0), n.casefold())
    )


def _correction(body: schemas.OverrideIn) -> Correction:
    return Correction(genres=body.genres, moods=body.moods, labels=body.labels, keep=body.keep)


def _album_tracks(ctx: WebContext, key: str) -> list[int]:
    source, _, album_id = key.partition(":")
    with ctx.db.reading() as store:
        ids = [
            row[0]
            for row in store.conn.execute(
                "SELECT id FROM tracks WHERE source = ? AND album_source_id = ? AND removed = 0",
                (source, album_id),
            )
        ]
    if not ids:
        raise HTTPException(404, f"there is no album {key}")
    return ids


def _correct(
    ctx: WebContext, track_ids: list[int], correction: Correction, who: str
) -> schemas.OverrideResult:
    taxonomy = taxonomy_from_config(ctx.config().taxonomy)
    with ctx.db.writing() as store:
        marks = ",".join("?" * len(track_ids))
        known = {
            r[0]
            for r in store.conn.execute(f"SELECT id FROM tracks WHERE id IN ({marks})", track_ids)
        }
        missing = [i for i in track_ids if i not in known]
        if missing:
            raise HTTPException(404, f"there is no track {missing[0]}")
        try:
            done = apply(store, taxonomy, track_ids, correction, origin="api", who=who)
        except OverrideError as exc:
            raise HTTPException(422, str(exc)) from None
    if ctx.corrections is not None and (done.set or done.dropped):
        ctx.corrections()
    return schemas.OverrideResult(tracks=len(track_ids), set=done.set, dropped=done.dropped)


# --------------------------------------------------------------------------- review


def review_routes(ctx: WebContext) -> APIRouter:
    router = api_router()
    read = reader(ctx)

    @router.get("/review", dependencies=[read])
    def queue(
        cursor: Annotated[str | None, Query(max_length=100)] = None,
    ) -> schemas.ReviewQueue:
        """The album to review next (under review first, then the least confident)."""
        with ctx.db.reading() as store:
            try:
                album = review.next_album(store, cursor)
            except CursorError as exc:
                raise HTTPException(422, str(exc)) from None
            waiting = review.waiting(store)
        return schemas.ReviewQueue(
            waiting=waiting,
            album=None
            if album is None
            else schemas.ReviewAlbumOut(
                key=album.key,
                album=album.album,
                artist=album.artist,
                tracks=[
                    schemas.ReviewTrackOut(
                        id=t.id,
                        title=t.title,
                        artist=t.artist,
                        status=t.status,
                        confidence=t.confidence,
                        genres=list(t.genres),
                        candidates=list(t.candidates),
                        answered=t.overridden,
                    )
                    for t in album.tracks
                ],
                next_cursor=album.position,
            ),
        )

    @router.post("/review/answers")
    def answer(
        body: schemas.ReviewAnswer, who: Annotated[str, writer(ctx)]
    ) -> schemas.OverrideResult:
        """Accept genred's genres for these tracks, or correct them (`genres`)."""
        if body.action == "correct":
            if not body.genres:
                raise HTTPException(422, "a correction needs `genres`")
            return _correct(ctx, list(body.tracks), Correction(genres=body.genres), who)
        with ctx.db.writing() as store:
            marks = ",".join("?" * len(body.tracks))
            known = {
                r[0]
                for r in store.conn.execute(
                    f"SELECT id FROM tracks WHERE id IN ({marks})", body.tracks
                )
            }
            missing = [i for i in body.tracks if i not in known]
            if missing:
                raise HTTPException(404, f"there is no track {missing[0]}")
            done = accept(store, list(body.tracks), origin="api", who=who)
        if ctx.corrections is not None and done.set:
            ctx.corrections()
        return schemas.OverrideResult(tracks=len(body.tracks), set=done.set, dropped=0)

    return router


# --------------------------------------------------------------------------- settings


def settings_routes(ctx: WebContext) -> APIRouter:
    router = api_router()

    @router.get("/config", dependencies=[reader(ctx)])
    def config() -> dict[str, Any]:
        """The running config, every secret masked."""
        return masked_config(ctx.config())

    return router
