"""The Playlists section: its pages (list, create from a prompt with a preview, a playlist
with refine, pin, remove and push) and its part of the API under `/api/playlists`.

Every action calls one function of `genred.playlists.operations` (through `playlist_work`).
An LLM call or a push runs in the request; what goes wrong (no LLM, a target not logged
in, a 429) is said on the page, or as a `Problem` (409, 422) by the API.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Query
from starlette.requests import Request
from starlette.responses import Response

import genred.web.playlist_work as pw
import genred.web.schemas as schemas
from genred.errors import GenredError, PlaylistError, StageBusy
from genred.playlists import operations as ops
from genred.playlists.intent import IntentPatch
from genred.playlists.records import Outcome, PlaylistView, PushReport, TrackEntry
from genred.store import Store
from genred.store import playlists as q

from .api import api_router, reader, writer
from .pages import can_read, pages_of, redirect, split_values

PlaylistId = Annotated[int, Path(ge=1, le=pw.MAX_ID)]
TrackId = Annotated[int, Path(ge=1, le=pw.MAX_ID)]
LIST_FIELDS = ("genres", "exclude_genres", "moods", "exclude_artists")
NUMBER_FIELDS = ("year_min", "year_max", "size")
ENERGIES = ("", "low", "medium", "high")


# --------------------------------------------------------------------------- shared


def problem_status(exc: GenredError) -> int:
    """409 for what a retry or a config change fixes, 422 for what the request asks."""
    return 422 if isinstance(exc, PlaylistError) and not isinstance(exc, StageBusy) else 409


def summaries(store: Store) -> list[dict[str, Any]]:
    rows = {r.name: r for r in q.all_playlists(store)}
    out = []
    for s in ops.list_playlists(store):
        row = rows[s.name]
        pushed = [r.target for r in q.remotes(store, row.id) if r.pushed_at]
        out.append({"id": row.id, "summary": s, "pushed": pushed})
    return out


def unmatched(tracks: list[TrackEntry]) -> dict[str, list[TrackEntry]]:
    out: dict[str, list[TrackEntry]] = {}
    for t in tracks:
        for target, item in t.matches.items():
            if item.startswith("not found"):
                out.setdefault(target, []).append(t)
    return out


def view_of(web: Any, playlist_id: int) -> PlaylistView:
    with web.db.reading() as store:
        name = pw.named(store, playlist_id)
        return ops.show(pw.context(web, store), name)


def form_intent(values: dict[str, str]) -> dict[str, Any]:
    """The intent fields of the create form, as `IntentPatch.set` values."""
    out: dict[str, Any] = {f: split_values(values.get(f, "")) for f in LIST_FIELDS}
    for f in NUMBER_FIELDS:
        text = values.get(f, "").strip()
        if text and not text.isdigit():
            raise HTTPException(422, f"{f.replace('_', ' ')}: a whole number, like 1990")
        out[f] = int(text) if text else None
    energy = values.get("energy", "")
    if energy not in ENERGIES:
        raise HTTPException(422, "energy: low, medium or high (or any)")
    out["energy"] = energy or None
    return out


# --------------------------------------------------------------------------- pages


def page_routes(web: Any) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def detail(
        request: Request,
        playlist_id: int,
        *,
        problem: str = "",
        status: int = 200,
        pushes: list[PushReport] | None = None,
        outcome: Outcome | None = None,
    ) -> Response:
        view = view_of(web, playlist_id)
        return pages_of(request).render(
            request, "playlist.html", section="playlists", status=status, id=playlist_id,
            view=view, unmatched=unmatched(view.tracks), problem=problem, pushes=pushes or [],
            outcome=outcome, targets=_targets(web),
        )  # fmt: skip

    def change(request: Request, playlist_id: int, csrf: str, job: Any, note: str) -> Response:
        web.auth.check_csrf(request, csrf)
        web.auth.writer(request)
        try:
            outcome = job()
        except GenredError as exc:
            return detail(request, playlist_id, problem=str(exc), status=problem_status(exc))
        return (
            detail(request, playlist_id, outcome=outcome, problem="")
            if note == ""
            else (redirect(request, f"/playlists/{playlist_id}", note=note))
        )

    @router.get("/playlists")
    def playlist_list(request: Request) -> Response:
        can_read(web, request)
        with web.db.reading() as store:
            found = summaries(store)
        return pages_of(request).render(
            request, "playlists.html", section="playlists", playlists=found, problem="",
            prompt="", llm=_llm_note(web),
        )  # fmt: skip

    @router.post("/playlists/preview")
    def preview(
        request: Request,
        csrf: str = Form(""),
        prompt: str = Form("", max_length=2000),
    ) -> Response:
        web.auth.check_csrf(request, csrf)
        web.auth.writer(request)
        try:
            outcome = pw.unrecorded(web, lambda ctx: ops.create(ctx, prompt, dry_run=True))
        except GenredError as exc:
            with web.db.reading() as store:
                found = summaries(store)
            return pages_of(request).render(
                request, "playlists.html", section="playlists", playlists=found,
                problem=str(exc), prompt=prompt, llm=_llm_note(web), status=problem_status(exc),
            )  # fmt: skip
        return pages_of(request).render(
            request, "playlist_new.html", section="playlists", prompt=prompt, outcome=outcome,
            intent=outcome.intent, energies=ENERGIES,
        )  # fmt: skip

    @router.post("/playlists")
    def save(
        request: Request,
        csrf: str = Form(""),
        prompt: str = Form("", max_length=2000),
        name: str = Form("", max_length=100),
        genres: str = Form("", max_length=2000),
        exclude_genres: str = Form("", max_length=2000),
        moods: str = Form("", max_length=2000),
        exclude_artists: str = Form("", max_length=2000),
        energy: str = Form("", max_length=10),
        year_min: str = Form("", max_length=10),
        year_max: str = Form("", max_length=10),
        size: str = Form("", max_length=10),
    ) -> Response:
        web.auth.check_csrf(request, csrf)
        web.auth.writer(request)
        wanted = form_intent(
            {"genres": genres, "exclude_genres": exclude_genres, "moods": moods,
             "exclude_artists": exclude_artists, "energy": energy, "year_min": year_min,
             "year_max": year_max, "size": size}
        )  # fmt: skip

        def create(ctx: Any) -> int:
            outcome = ops.create(ctx, prompt, name=name.strip() or None, push=False)
            assert outcome.playlist is not None
            patch = pw.intent_patch(outcome.intent, wanted)
            if not patch.is_empty():
                ops.edit(ctx, outcome.playlist.name, patch, push=False)
            row = q.find(ctx.store, outcome.playlist.name)
            assert row is not None
            return row.id

        try:
            playlist_id = pw.work(web, "playlists:new", create)
        except (GenredError, ValueError) as exc:
            with web.db.reading() as store:
                found = summaries(store)
            status = problem_status(exc) if isinstance(exc, GenredError) else 422
            return pages_of(request).render(
                request, "playlists.html", section="playlists", playlists=found,
                problem=str(exc), prompt=prompt, llm=_llm_note(web), status=status,
            )  # fmt: skip
        return redirect(request, f"/playlists/{playlist_id}", note="playlist-saved")

    @router.get("/playlists/{playlist_id}")
    def playlist(request: Request, playlist_id: PlaylistId) -> Response:
        can_read(web, request)
        return detail(request, playlist_id)

    @router.post("/playlists/{playlist_id}/refine")
    def refine(
        request: Request,
        playlist_id: PlaylistId,
        csrf: str = Form(""),
        change_: Annotated[str, Form(alias="change", max_length=500)] = "",
    ) -> Response:
        name = _name(web, playlist_id)
        return change(
            request, playlist_id, csrf,
            lambda: pw.work(web, f"playlists:{name}", lambda c: ops.refine(c, name, change_, push=False)),
            "",
        )  # fmt: skip

    @router.post("/playlists/{playlist_id}/tracks/{track_id}/{action}")
    def track_action(
        request: Request,
        playlist_id: PlaylistId,
        track_id: TrackId,
        action: str,
        csrf: str = Form(""),
    ) -> Response:
        if action not in ("pin", "unpin", "remove"):
            raise HTTPException(404, f"no track action {action!r}: pin, unpin or remove")
        name = _name(web, playlist_id)
        with web.db.reading() as store:
            position = pw.position_of(store, playlist_id, track_id)
        return change(
            request, playlist_id, csrf,
            lambda: pw.work(web, f"playlists:{name}", lambda c: _track_op(c, name, position, action)),
            {"pin": "pinned", "unpin": "unpinned", "remove": "removed"}[action],
        )  # fmt: skip

    @router.post("/playlists/{playlist_id}/push")
    def push(request: Request, playlist_id: PlaylistId, csrf: str = Form("")) -> Response:
        web.auth.check_csrf(request, csrf)
        web.auth.writer(request)
        name = _name(web, playlist_id)
        try:
            reports = pw.work(web, f"playlists:{name}", lambda c: ops.push_playlist(c, name))
        except GenredError as exc:
            return detail(request, playlist_id, problem=str(exc), status=problem_status(exc))
        if not reports:
            return detail(
                request,
                playlist_id,
                problem="no playlist target (Spotify, Plex) is set up for it",
                status=409,
            )
        return detail(request, playlist_id, pushes=reports)

    return router


def _name(web: Any, playlist_id: int) -> str:
    with web.db.reading() as store:
        return pw.named(store, playlist_id)


def _track_op(ctx: Any, name: str, position: int, action: str) -> Outcome:
    if action == "remove":
        return ops.drop(ctx, name, [position], push=False)
    return ops.pin(ctx, name, [position], pinned=action == "pin", push=False)


def _targets(web: Any) -> list[str]:
    return list(web.plugins().of("playlists")) if web.plugins is not None else []


def _llm_note(web: Any) -> str:
    if web.plugins is None or web.plugins().of("llm") or web.config().playlists.llm:
        return ""
    return "No LLM is configured (plugins.llm): genred's rules read the prompt, which know genres, decades, moods and energy words."


# --------------------------------------------------------------------------- API


def track_out(t: TrackEntry) -> schemas.PlaylistTrack:
    return schemas.PlaylistTrack(
        position=t.position, track_id=t.track_id, artist=t.artist, title=t.title, album=t.album,
        year=t.year, duration_ms=t.duration_ms, why=t.why, pinned=t.pinned, matches=t.matches,
    )  # fmt: skip


def playlist_out(
    playlist_id: int | None, view: PlaylistView | None, outcome: Outcome | None = None
) -> schemas.PlaylistOut:
    if view is None:
        assert outcome is not None
        tracks, intent, notes = outcome.preview, outcome.intent, outcome.notes
        return schemas.PlaylistOut(
            id=None, name=intent.title, prompt="", version=None, summary=intent.summary(),
            intent=intent.to_json(), tracks=[track_out(t) for t in tracks], unmatched={},
            remotes=[], notes=notes,
        )  # fmt: skip
    return schemas.PlaylistOut(
        id=playlist_id, name=view.name, prompt=view.prompt, version=view.version,
        summary=view.intent.summary(), intent=view.intent.to_json(),
        tracks=[track_out(t) for t in view.tracks],
        unmatched={k: [track_out(t) for t in v] for k, v in unmatched(view.tracks).items()},
        remotes=[schemas.PlaylistRemote(**r.__dict__) for r in view.remotes],
        notes=list(outcome.notes if outcome else view.report.notes),
    )  # fmt: skip


def api_routes(web: Any) -> APIRouter:
    router = api_router()
    read = reader(web)

    def run(playlist_id: int, do: Any) -> schemas.PlaylistOut:
        name = _name(web, playlist_id)
        try:
            outcome = pw.work(web, f"playlists:{name}", lambda c: do(c, name))
        except GenredError as exc:
            raise HTTPException(problem_status(exc), str(exc)) from None
        return playlist_out(playlist_id, view_of(web, playlist_id), outcome)

    @router.get("/playlists", dependencies=[read])
    def playlist_list(
        cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> schemas.PlaylistPage:
        """The playlists, in the order they were made."""
        with web.db.reading() as store:
            found = sorted(summaries(store), key=lambda p: p["id"])
        after = min(int(cursor), pw.MAX_ID) if cursor else 0
        found = [p for p in found if p["id"] > after]
        page = found[:limit]
        items = [
            schemas.PlaylistItem(
                id=p["id"],
                name=s.name,
                prompt=s.prompt,
                tracks=s.tracks,
                minutes=s.minutes,
                version=s.version,
                targets=list(s.targets),
                pushed=p["pushed"],
                saved=s.saved,
                updated_at=s.updated_at,
            )
            for p in page
            for s in [p["summary"]]
        ]
        more = len(found) > limit
        return schemas.PlaylistPage(items=items, next_cursor=str(page[-1]["id"]) if more else None)

    @router.get("/playlists/{playlist_id}", dependencies=[read])
    def one(playlist_id: PlaylistId) -> schemas.PlaylistOut:
        """A playlist: its intent, tracks with their whys, where it is pushed."""
        try:
            return playlist_out(playlist_id, view_of(web, playlist_id))
        except GenredError as exc:
            raise HTTPException(problem_status(exc), str(exc)) from None

    @router.post("/playlists", status_code=201)
    def create(
        body: schemas.PlaylistCreate, who: Annotated[str, writer(web)]
    ) -> schemas.PlaylistOut:
        """A playlist from a prompt (one LLM request; without an LLM, genred's rules read
        it and a note says so). `preview` stores nothing."""
        try:
            if body.preview:
                outcome = pw.unrecorded(
                    web, lambda c: ops.create(c, body.prompt, size=body.size, dry_run=True)
                )
                return playlist_out(None, None, outcome)

            def make(c: Any) -> tuple[int, Outcome]:
                made = ops.create(c, body.prompt, name=body.name, size=body.size, push=False)
                assert made.playlist is not None
                row = q.find(c.store, made.playlist.name)
                assert row is not None
                return row.id, made

            playlist_id, outcome = pw.work(web, "playlists:new", make)
        except GenredError as exc:
            raise HTTPException(problem_status(exc), str(exc)) from None
        return playlist_out(playlist_id, view_of(web, playlist_id), outcome)

    @router.post("/playlists/{playlist_id}/refine")
    def refine(
        playlist_id: PlaylistId, body: schemas.PlaylistRefine, who: Annotated[str, writer(web)]
    ) -> schemas.PlaylistOut:
        """A change in words (one LLM request): pinned tracks stay, removed ones stay out."""
        return run(playlist_id, lambda c, n: ops.refine(c, n, body.change, push=False))

    @router.put("/playlists/{playlist_id}/tracks/{track_id}/pin")
    def pin(
        playlist_id: PlaylistId, track_id: TrackId, who: Annotated[str, writer(web)]
    ) -> schemas.PlaylistOut:
        """Pin a track: it stays through refines and refreshes."""
        position = _position(web, playlist_id, track_id)
        return run(playlist_id, lambda c, n: ops.pin(c, n, [position], push=False))

    @router.delete("/playlists/{playlist_id}/tracks/{track_id}/pin")
    def unpin(
        playlist_id: PlaylistId, track_id: TrackId, who: Annotated[str, writer(web)]
    ) -> schemas.PlaylistOut:
        position = _position(web, playlist_id, track_id)
        return run(playlist_id, lambda c, n: ops.pin(c, n, [position], pinned=False, push=False))

    @router.delete("/playlists/{playlist_id}/tracks/{track_id}")
    def remove(
        playlist_id: PlaylistId, track_id: TrackId, who: Annotated[str, writer(web)]
    ) -> schemas.PlaylistOut:
        """Remove a track: it never comes back; another fills its place."""
        position = _position(web, playlist_id, track_id)
        return run(playlist_id, lambda c, n: ops.drop(c, n, [position], push=False))

    @router.post("/playlists/{playlist_id}/push")
    def push(
        playlist_id: PlaylistId, body: schemas.PlaylistPush, who: Annotated[str, writer(web)]
    ) -> schemas.PushResult:
        """Push the playlist to its targets (or `targets`): one report each; a target that
        failed or asks to wait says why in `message`."""
        name = _name(web, playlist_id)
        try:
            reports = pw.work(
                web, f"playlists:{name}", lambda c: ops.push_playlist(c, name, targets=body.targets)
            )
        except GenredError as exc:
            raise HTTPException(problem_status(exc), str(exc)) from None
        return schemas.PushResult(
            pushes=[
                schemas.PushOut(
                    target=r.target,
                    status=r.status,
                    link=r.link,
                    added=r.added,
                    removed=r.removed,
                    unmatched=len(r.unmatched),
                    message=r.message,
                )
                for r in reports
            ]
        )

    return router


def _position(web: Any, playlist_id: int, track_id: int) -> int:
    with web.db.reading() as store:
        pw.named(store, playlist_id)
        return pw.position_of(store, playlist_id, track_id)


__all__ = ["IntentPatch", "api_routes", "page_routes"]
