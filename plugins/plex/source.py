"""Source plugin `plex`: the tracks of the configured Plex music sections.

Listings come in large pages and are read straight from PMS's XML (ElementTree through
plexapi's `server.query`) instead of building plexapi objects, which is where most of the
time of `section.searchTracks()` goes. A listing truncates tags, so new or changed tracks
(their `updatedAt` differs from the store's) are fetched again in full through
`/library/metadata/{id,id,…}`, and so are the albums and artists they belong to, once per
scan. An incremental scan lists only `updatedAt>>=` the last sync minus `overlap`. Every
scan after the first also lists the albums and artists updated since the last sync and
reports their genres (`SourcePage.album_genres`): an album edited in Plex changes none
of its tracks' `updatedAt`. Only tracks of the configured sections exist for genred: one
in a section left out of `plex.sections` is gone (the scope changed: the next sync is
full and marks it removed).

Two optional hooks serve the daemon: `request_scan` asks Plex to scan only the folders
that changed and waits for it, `listen` turns Plex's websocket alerts into sync requests.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from plexapi.exceptions import NotFound
from plexapi.server import PlexServer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.api import (
    GenredError,
    PlexConfig,
    PluginContext,
    ScanRequest,
    SourcePage,
    SyncRequester,
    TrackRecord,
    get_logger,
    parse_duration,
)

from .connection import RetrySettings, call, connect, music_sections
from .paths import map_path, reverse_map_path

if TYPE_CHECKING:
    from fastapi import APIRouter

log = get_logger("genred.plex.source")

ARTIST, ALBUM, TRACK = 8, 9, 10
# PMS's generic includeFields/excludeElements (OpenAPI spec); a server ignoring them is fine.
LISTING_TRIM = (
    "includeFields=ratingKey,updatedAt"
    "&excludeElements=Media,Genre,Mood,Style,Label,Collection,Field,Guid,Image"
)
ANCHORS = 5  # last ids of a committed page, to find the resume point again after shifts
SCAN_POLL_INTERVAL = 1.0  # seconds between two looks at a section's `refreshing` flag
# A refresh request returns before PMS flags the section as refreshing; a section that
# neither showed the flag nor a new `scannedAt` by then is taken as already done.
SCAN_START_GRACE = 3.0


class PlexSourceConfig(BaseModel):
    """Settings of the `plex` source (the server itself is the top-level `plex:` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: int = Field(5000, ge=1, le=50_000, description="tracks per listing request")
    detail_batch: int = Field(
        200, ge=1, le=1000, description="ids per /library/metadata/{ids} request"
    )
    overlap: timedelta = Field(
        timedelta(minutes=5), description="how far an incremental scan looks back"
    )
    parallel: int = Field(
        2, ge=1, le=8, description="detail requests in flight at once (parsing overlaps waiting)"
    )
    retries: RetrySettings = RetrySettings()
    scan_wait: timedelta = Field(
        timedelta(minutes=10), description="longest wait for a folder scan asked of Plex"
    )
    alerts: bool = Field(
        False, description="listen to Plex's websocket alerts and sync when items are added"
    )

    @field_validator("overlap", "scan_wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class PlexSource:
    """Reads tracks (with full genres and moods, album and artist genres) from Plex."""

    Config = PlexSourceConfig
    uses_config = ("plex", "web")  # rebuilt on reload only when these sections change
    path_setting = "plex.path_map"  # LocatesFiles: what maps Plex's paths to this machine

    def __init__(self, settings: PlexSourceConfig, context: PluginContext) -> None:
        if context.config.plex is None:
            raise GenredError(
                "the plex source needs a `plex:` section (url, token) in the config file"
            )
        self.settings = settings
        self.plex: PlexConfig = context.config.plex
        self.web = context.config.web
        self.cancel = context.cancel  # the daemon's stop: every retry wait ends on it
        self._server: PlexServer | None = None

    # -- the SourcePlugin protocol -------------------------------------------------------

    def scope(self) -> Any:
        """HasScope: what a full scan lists, the configured sections."""
        return {"sections": sorted(str(s) for s in self.plex.sections)}

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        server = self._server = connect(self.plex, self.settings.retries, self.cancel)
        sections = music_sections(server, self.plex.sections, self.settings.retries, self.cancel)
        configured = [str(s.key) for s in sections]
        since = None
        if request.since is not None:
            since = int((request.since - self.settings.overlap).timestamp())
        resume = request.resume if since is None else None
        if resume and not any(str(s.key) == str(resume.get("section")) for s in sections):
            log.info("resume point's section is gone, starting over", section=resume["section"])
            resume = None
        if resume:
            keys = [str(s.key) for s in sections]
            sections = sections[keys.index(str(resume["section"])) :]
        totals = {str(s.key): self._count(str(s.key), since) for s in sections[1:]}
        parents: dict[str, tuple[str, ...]] = {}  # album/artist ratingKey → genres, per scan
        cursor: Any = None
        with _gc_paused():
            for n, section in enumerate(sections):
                extra = sum(totals.values()) if n == 0 else None
                for page in self._scan_section(
                    str(section.key), since, request, resume if n == 0 else None, extra, parents
                ):
                    cursor = page.cursor
                    yield page
            if request.last_sync is not None:
                after = int((request.last_sync - self.settings.overlap).timestamp())
                yield self._parents_page(configured, after, parents, cursor)

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        """Those of `source_ids` Plex no longer has in the configured sections."""
        if self._server is None:
            self._server = connect(self.plex, self.settings.retries, self.cancel)
        retries = self.settings.retries
        sections = music_sections(self._server, self.plex.sections, retries, self.cancel)
        watched = {str(s.key) for s in sections}
        present: set[str] = set()
        for found in self._metadata_many(list(source_ids), "checking tracks that went missing"):
            for el in found:
                section = el.get("librarySectionID") or found.get("librarySectionID")
                if el.get("type") == "track" and (section is None or section in watched):
                    present.add(el.get("ratingKey", ""))
        return set(source_ids) - present

    def _parents_page(
        self,
        sections: Sequence[str],
        after: int,
        parents: dict[str, tuple[str, ...]],
        cursor: Any,
    ) -> SourcePage:
        """The genres of the albums and artists updated in Plex since `after` (epoch s)."""
        found: dict[int, list[str]] = {ALBUM: [], ARTIST: []}
        for section in sections:
            for kind in found:
                key = _listing_key(section, after, kind)
                offset, size = 0, self.settings.page_size
                while True:
                    what = f"listing updated {'albums' if kind == ALBUM else 'artists'}"
                    container = self._get(key, offset, size, what)
                    keys = [el.get("ratingKey", "") for el in container if el.get("ratingKey")]
                    found[kind] += keys
                    offset += len(keys)
                    total = _int(container.get("totalSize"))
                    if not keys or (offset >= total if total is not None else len(keys) < size):
                        break
        unread = sorted({k for keys in found.values() for k in keys if k not in parents})
        for container in self._metadata_many(unread, "reading album/artist genres"):
            for el in container:
                parents[el.get("ratingKey", "")] = _tags(el, "Genre")
        genres = {
            kind: {k: parents[k] for k in keys if k in parents} for kind, keys in found.items()
        }
        if any(genres.values()):
            log.info(
                "albums and artists updated in Plex",
                albums=len(genres[ALBUM]),
                artists=len(genres[ARTIST]),
            )
        return SourcePage(
            seen=[], cursor=cursor, album_genres=genres[ALBUM], artist_genres=genres[ARTIST]
        )

    # -- optional hooks ------------------------------------------------------------------

    def local_path(self, track: TrackRecord) -> Path | None:
        """Where Plex's file is on this machine: its path through `plex.path_map`."""
        if not track.path:
            return None
        return Path(map_path(track.path, self.plex.path_map) or track.path)

    def register_routes(self, router: APIRouter, requester: SyncRequester) -> None:
        """The Plex webhook (`/webhooks/plex/<web.webhook_secret>`), when a secret is set."""
        from .webhook import add_webhook_route

        add_webhook_route(router, self.web, requester)

    def request_scan(
        self,
        paths: Sequence[str],
        *,
        wait: float | None = None,
        cancel: threading.Event | None = None,
    ) -> list[str]:
        """Ask Plex to scan the folders of `paths`, wait until it is done (at most
        `wait` seconds, default `scan_wait`, or until `cancel` is set), and return the Plex
        folders asked for."""
        retries = self.settings.retries
        cancel = cancel or self.cancel
        server = connect(self.plex, retries, cancel)
        sections = music_sections(server, self.plex.sections, retries, cancel)
        locations = {str(s.key): list(s.locations) for s in sections}
        plan, outside = scan_plan(paths, self.plex.path_map, locations)
        for path in outside:
            log.info("not in a music library, Plex is not asked to scan it", path=path)
        if not plan:
            return []
        timeout = self.settings.scan_wait.total_seconds() if wait is None else wait
        before = self._section_states(server, cancel) if timeout > 0 else {}
        asked: list[str] = []
        for section in sections:
            for folder in plan.get(str(section.key), []):
                call(
                    partial(section.update, path=folder),
                    f"asking Plex to scan {folder}",
                    retries,
                    cancel,
                )
                asked.append(folder)
        log.info("asked Plex to scan", folders=asked)
        if timeout > 0:
            self._wait_for_scans(server, set(plan), before, timeout, cancel)
        return asked

    def listen(self, notify: Callable[[str], None]) -> Callable[[], None] | None:
        """With `alerts` on, call `notify(reason)` when Plex says music was added or
        scanned; returns the function that stops listening (None: not listening)."""
        if not self.settings.alerts:
            return None
        from .alerts import INSTALL_HINT, PlexAlerts, websocket_missing

        if websocket_missing():
            log.warning("plex alerts need websocket-client; not listening", install=INSTALL_HINT)
            return None

        def watched() -> tuple[PlexServer, list[str]]:
            retries = self.settings.retries
            server = connect(self.plex, retries, alerts.stopping)
            sections = music_sections(server, self.plex.sections, retries, alerts.stopping)
            return server, [str(s.key) for s in sections]

        alerts = PlexAlerts(watched, notify)
        return alerts.start().stop

    def _section_states(
        self, server: PlexServer, cancel: threading.Event | None = None
    ) -> dict[str, tuple[bool, str | None]]:
        """Section key → (refreshing, scannedAt), read afresh (plexapi caches sections)."""
        found = call(
            lambda: server.query("/library/sections"),
            "reading scan states",
            self.settings.retries,
            cancel or self.cancel,
        )
        return {
            el.get("key", ""): (el.get("refreshing") == "1", el.get("scannedAt"))
            for el in (found if found is not None else [])
        }

    def _wait_for_scans(
        self,
        server: PlexServer,
        keys: set[str],
        before: dict[str, tuple[bool, str | None]],
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> bool:
        started = time.monotonic()
        seen_refreshing = False
        while True:
            states = self._section_states(server, cancel)
            busy = any(states.get(k, (False, None))[0] for k in keys)
            seen_refreshing = seen_refreshing or busy
            rescanned = all(
                states.get(k, (False, None))[1] != before.get(k, (False, None))[1] for k in keys
            )
            waited = time.monotonic() - started
            if not busy and (seen_refreshing or rescanned or waited >= SCAN_START_GRACE):
                log.info("Plex finished scanning", seconds=round(waited, 1))
                return True
            if waited >= timeout:
                log.warning(
                    "Plex is still scanning; syncing what it has so far",
                    waited_seconds=round(waited, 1),
                )
                return False
            pause = min(SCAN_POLL_INTERVAL, max(0.0, timeout - waited))
            if cancel is not None and cancel.wait(pause):
                return False  # shutting down; the next start syncs anyway
            if cancel is None:
                time.sleep(pause)

    # -- listing -------------------------------------------------------------------------

    def _scan_section(
        self,
        section: str,
        since: int | None,
        request: ScanRequest,
        resume: dict[str, Any] | None,
        other_sections: int | None,
        parents: dict[str, tuple[str, ...]],
    ) -> Iterator[SourcePage]:
        key = _listing_key(section, since)
        size = self.settings.page_size
        what = f"listing tracks of section {section}"
        anchors: list[str] = list(resume.get("anchors") or []) if resume else []
        offset = max(0, int(resume["offset"]) - max(1, size // 10)) if resume else 0
        first = True
        # The next listing page is fetched while this one's details are read and stored.
        with _threads(1, "plex-listing") as ahead:
            pending = ahead.submit(self._get, key, offset, size, what)
            while True:
                container = pending.result()
                listed = [el for el in container if el.tag == "Track"]
                total = _int(container.get("totalSize"))
                fresh = listed
                if anchors:
                    after = _after_anchor(listed, anchors)
                    if after is None:
                        log.info("resume point not found again, listing the section anew")
                        offset, anchors = 0, []
                        pending = ahead.submit(self._get, key, offset, size, what)
                        continue
                    fresh, anchors = listed[after:], []
                offset += len(listed)
                more = bool(listed) and (
                    offset < total if total is not None else len(listed) == size
                )
                if more:
                    pending = ahead.submit(self._get, key, offset, size, what)
                page_total = None
                if first and total is not None:
                    page_total = total - (offset - len(fresh)) + (other_sections or 0)
                first = False
                yield self._page(section, fresh, listed, offset, page_total, request, parents)
                if not more:
                    return

    def _page(
        self,
        section: str,
        fresh: list[Element],
        listed: list[Element],
        offset: int,
        total: int | None,
        request: ScanRequest,
        parents: dict[str, tuple[str, ...]],
    ) -> SourcePage:
        """Seen ids of the page, and full records for the new or changed ones."""
        stamps = {el.get("ratingKey", ""): el.get("updatedAt") for el in fresh}
        stamps.pop("", None)
        known = request.known(list(stamps))
        wanted = [rk for rk, at in stamps.items() if rk not in known or known[rk] != _iso(at)]
        tracks = [
            el
            for found in self._metadata_many(wanted, "reading track details")
            for el in found
            if el.get("type") == "track"
        ]
        new_parents = {
            key
            for el in tracks
            for key in (el.get("parentRatingKey"), el.get("grandparentRatingKey"))
            if key and key not in parents
        }
        for found in self._metadata_many(sorted(new_parents), "reading album/artist genres"):
            for el in found:
                parents[el.get("ratingKey", "")] = _tags(el, "Genre")
        records = [_track_record(el, parents) for el in tracks]
        vanished = set(wanted) - {r.source_id for r in records}
        cursor = {
            "section": section,
            "offset": offset,
            "anchors": [el.get("ratingKey") for el in listed[-ANCHORS:]],
        }
        seen = [rk for rk in stamps if rk not in vanished]
        return SourcePage(seen=seen, records=records, cursor=cursor, total=total)

    def _count(self, section: str, since: int | None) -> int:
        container = self._get(_listing_key(section, since), 0, 0, f"counting section {section}")
        return int(container.get("totalSize") or container.get("size") or 0)

    # -- requests ------------------------------------------------------------------------

    def _server_now(self) -> PlexServer:
        assert self._server is not None, "scan() connects first"
        return self._server

    def _get(self, key: str, start: int, size: int, what: str) -> Element:
        headers = {"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)}
        server = self._server_now()
        found = call(
            lambda: server.query(key, headers=headers), what, self.settings.retries, self.cancel
        )
        return found if found is not None else Element("MediaContainer")

    def _metadata(self, server: PlexServer, ids: Sequence[str], what: str) -> Element:
        """`/library/metadata/{ids}`; a 404 (every id gone) is an empty answer."""

        def fetch() -> Element:
            try:
                found = server.query(f"/library/metadata/{','.join(ids)}")
            except NotFound:
                found = None
            return found if found is not None else Element("MediaContainer")

        return call(fetch, what, self.settings.retries, self.cancel)

    def _metadata_many(self, ids: list[str], what: str) -> Iterator[Element]:
        """`_metadata` over `ids` in batches, `parallel` requests at a time, in order."""
        server = self._server_now()
        batches = list(_chunks(ids, self.settings.detail_batch))
        if self.settings.parallel <= 1 or len(batches) <= 1:
            yield from (self._metadata(server, batch, what) for batch in batches)
            return
        with _threads(self.settings.parallel, "plex-details") as pool:
            yield from pool.map(lambda batch: self._metadata(server, batch, what), batches)


# --------------------------------------------------------------------------- folder scans


def scan_plan(
    local_paths: Sequence[str], path_map: dict[str, str], locations: dict[str, list[str]]
) -> tuple[dict[str, list[str]], list[str]]:
    """Plex folders to scan per section key, and the local paths outside every section.

    A file (or a path that is gone) stands for its folder; a folder inside another one
    asked for the same section is left out, as scanning the outer one covers it.
    """
    plan: dict[str, list[str]] = {}
    outside: list[str] = []
    for local in local_paths:
        folder = local if Path(local).is_dir() else str(Path(local).parent)
        plex_folder = str(PurePosixPath(reverse_map_path(folder, path_map)))
        targets = [
            (key, target)
            for key, roots in locations.items()
            for root in roots
            for target in _scan_targets(plex_folder, root)
        ]
        if not targets:
            outside.append(local)
        for key, target in targets:
            plan.setdefault(key, []).append(target)
    return {key: _outermost(folders) for key, folders in plan.items()}, outside


def _scan_targets(folder: str, root: str) -> list[str]:
    """`folder` itself when it is inside `root`; `root` when `folder` holds all of it."""
    root = root.rstrip("/") or "/"
    if _inside(folder, root):
        return [folder]
    return [root] if _inside(root, folder) else []


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(folders: list[str]) -> list[str]:
    unique = list(dict.fromkeys(folders))
    return [f for f in unique if not any(o != f and _inside(f, o) for o in unique)]


# --------------------------------------------------------------------------- XML → records


def _listing_key(section: str, since: int | None, kind: int = TRACK) -> str:
    """A listing (tracks by default); only ids and updatedAt are read from it, so ask for
    little else."""
    key = f"/library/sections/{section}/all?type={kind}&{LISTING_TRIM}"
    return key if since is None else f"{key}&updatedAt>>={since}"


def _after_anchor(listed: list[Element], anchors: list[str]) -> int | None:
    """Index just after the latest anchor found in `listed`, or None."""
    positions = {el.get("ratingKey"): i for i, el in enumerate(listed)}
    for anchor in reversed(anchors):
        if anchor in positions:
            return positions[anchor] + 1
    return None


def _track_record(el: Element, parents: dict[str, tuple[str, ...]]) -> TrackRecord:
    get = el.attrib.get
    album_key, artist_key = get("parentRatingKey"), get("grandparentRatingKey")
    path = None
    for media in el.iter("Media"):
        part = media.find("Part")
        if part is not None:
            path = part.get("file")
            break
    return TrackRecord(
        source="plex",
        source_id=get("ratingKey", ""),
        title=get("title"),
        artist=get("originalTitle") or get("grandparentTitle"),
        album=get("parentTitle"),
        album_artist=get("grandparentTitle"),
        album_source_id=album_key,
        artist_source_id=artist_key,
        path=path,
        track_no=_int(get("index")),
        disc_no=_int(get("parentIndex")),
        year=_int(get("year")) or _int(get("parentYear")),
        duration_ms=_int(get("duration")),
        genres=_tags(el, "Genre"),
        moods=_tags(el, "Mood"),
        album_genres=parents.get(album_key or "", ()),
        artist_genres=parents.get(artist_key or "", ()),
        source_added_at=_iso(get("addedAt")),
        source_updated_at=_iso(get("updatedAt")),
    )


def _tags(el: Element, kind: str) -> tuple[str, ...]:
    return tuple(t.get("tag", "") for t in el.findall(kind))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _iso(epoch: str | None) -> str | None:
    """Plex's epoch seconds as ISO 8601 UTC text, the store's timestamp form."""
    seconds = _int(epoch)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: parsed XML and records hold no reference cycles (refcounting frees
    them), yet with it running a 100k-track scan spends ~10% of its time rescanning them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _threads(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """A thread pool whose queued requests are dropped, not run, when the caller stops early."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
