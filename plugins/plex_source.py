"""Source plugin `plex`: the tracks of the configured Plex music sections.

Listings come in large pages and are read straight from PMS's XML (ElementTree through
plexapi's `server.query`) instead of building plexapi objects, which is where most of the
time of `section.searchTracks()` goes. A listing truncates tags, so new or changed tracks
(their `updatedAt` differs from the store's) are fetched again in full through
`/library/metadata/{id,id,…}`, and so are the albums and artists they belong to, once per
scan. An incremental scan lists only `updatedAt>>=` the last sync minus `overlap`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

from plexapi.exceptions import NotFound
from plexapi.server import PlexServer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.config import PlexConfig, parse_duration
from genred.errors import GenredError
from genred.logs import get_logger
from genred.plugins import PluginContext
from genred.records import ScanRequest, SourcePage, TrackRecord

from .plex_common import RetrySettings, call, connect, music_sections

log = get_logger("genred.plex.source")

TRACK = 10
# PMS's generic includeFields/excludeElements (OpenAPI spec); a server ignoring them is fine.
LISTING_TRIM = (
    "includeFields=ratingKey,updatedAt"
    "&excludeElements=Media,Genre,Mood,Style,Label,Collection,Field,Guid,Image"
)
ANCHORS = 5  # last ids of a committed page, to find the resume point again after shifts


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

    @field_validator("overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class PlexSource:
    """Reads tracks (with full genres and moods, album and artist genres) from Plex."""

    Config = PlexSourceConfig

    def __init__(self, settings: PlexSourceConfig, context: PluginContext) -> None:
        if context.config.plex is None:
            raise GenredError(
                "the plex source needs a `plex:` section (url, token) in the config file"
            )
        self.settings = settings
        self.plex: PlexConfig = context.config.plex
        self._server: PlexServer | None = None

    # -- the SourcePlugin protocol -------------------------------------------------------

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        server = self._server = connect(self.plex, self.settings.retries)
        sections = music_sections(server, self.plex.sections, self.settings.retries)
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
        with _gc_paused():
            for n, section in enumerate(sections):
                extra = sum(totals.values()) if n == 0 else None
                yield from self._scan_section(
                    str(section.key), since, request, resume if n == 0 else None, extra, parents
                )

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        if self._server is None:
            self._server = connect(self.plex, self.settings.retries)
        present: set[str] = set()
        for found in self._metadata_many(list(source_ids), "checking tracks that went missing"):
            present.update(el.get("ratingKey", "") for el in found if el.get("type") == "track")
        return set(source_ids) - present

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
        found = call(lambda: server.query(key, headers=headers), what, self.settings.retries)
        return found if found is not None else Element("MediaContainer")

    def _metadata(self, server: PlexServer, ids: Sequence[str], what: str) -> Element:
        """`/library/metadata/{ids}`; a 404 (every id gone) is an empty answer."""

        def fetch() -> Element:
            try:
                found = server.query(f"/library/metadata/{','.join(ids)}")
            except NotFound:
                found = None
            return found if found is not None else Element("MediaContainer")

        return call(fetch, what, self.settings.retries)

    def _metadata_many(self, ids: list[str], what: str) -> Iterator[Element]:
        """`_metadata` over `ids` in batches, `parallel` requests at a time, in order."""
        server = self._server_now()
        batches = list(_chunks(ids, self.settings.detail_batch))
        if self.settings.parallel <= 1 or len(batches) <= 1:
            yield from (self._metadata(server, batch, what) for batch in batches)
            return
        with _threads(self.settings.parallel, "plex-details") as pool:
            yield from pool.map(lambda batch: self._metadata(server, batch, what), batches)


# --------------------------------------------------------------------------- XML → records


def _listing_key(section: str, since: int | None) -> str:
    """Track listing; only ids and updatedAt are read from it, so ask for little else."""
    key = f"/library/sections/{section}/all?type={TRACK}&{LISTING_TRIM}"
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
