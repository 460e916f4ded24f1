"""Running a playlist operation for a page or an API call, as `genred playlist …` does.

Each change runs under the `playlists` stage lock (a busy lock is a `StageBusy`, never a
wait) and is recorded in `runs` as `playlists:NAME`, on a store of its own. Playlists are
addressed by id on the web and by name in `genred.playlists`; `named` maps one to the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException

from genred.errors import GenredError, PlaylistError
from genred.pipeline.jobs import run_job
from genred.playlists import PlaylistContext
from genred.playlists.intent import Intent, IntentPatch
from genred.store import Store
from genred.store import playlists as q

from .context import WebContext

T = TypeVar("T")
MAX_ID = 2**62


def named(store: Store, playlist_id: int) -> str:
    """The playlist's name; 404 when there is no playlist `playlist_id`."""
    try:
        return q.get(store, min(playlist_id, MAX_ID)).name
    except KeyError:
        raise HTTPException(404, f"there is no playlist {playlist_id}") from None


def position_of(store: Store, playlist_id: int, track_id: int) -> int:
    """Where `track_id` is in the playlist's head version (1-based); 404 when not in it."""
    row = q.get(store, playlist_id)
    head = q.version(store, playlist_id, row.head) if row.head is not None else None
    ids = head.track_ids if head else []
    if track_id not in ids:
        raise HTTPException(404, f"track {track_id} is not in the playlist {row.name!r}")
    return ids.index(track_id) + 1


def context(web: WebContext, store: Store) -> PlaylistContext:
    if web.plugins is None:
        raise PlaylistError(
            "playlists are made by the daemon (`genred run`): it has no plugins here"
        )
    return PlaylistContext(store, web.config(), web.plugins())


def work(web: WebContext, job: str, do: Callable[[PlaylistContext], T]) -> T:
    """`do(ctx)` under the playlists lock, recorded as `job`; GenredError passes through."""
    result: list[T] = []
    with web.db.writing() as store:
        ctx = context(web, store)

        def run() -> dict[str, object]:
            result.append(do(ctx))
            return {}

        run_job(
            store, job, "web", run, lock="playlists", data_dir=web.config().data_dir, wait=False
        )
    return result[0]


def unrecorded(web: WebContext, do: Callable[[PlaylistContext], T]) -> T:
    """`do(ctx)` without the lock or a run (a preview: it stores no playlist, though the
    library may cache its vocabulary, so on a store that may write)."""
    with web.db.writing() as store:
        return do(context(web, store))


def intent_patch(before: Intent, wanted: dict[str, object]) -> IntentPatch:
    """The patch that turns `before` into the fields a person set (`wanted`)."""
    changed = {k: v for k, v in wanted.items() if _comparable(getattr(before, k)) != v}
    return IntentPatch(set=changed)


def _comparable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


__all__ = ["GenredError", "context", "intent_patch", "named", "position_of", "unrecorded", "work"]
