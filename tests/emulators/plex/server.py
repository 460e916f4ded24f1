"""PlexEmulator: the Plex Media Server HTTP API over one PlexLibrary, on 127.0.0.1."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, parse_qsl, urlsplit

from ..http import EmulatorServer, ThreadedEmulator, send_reply
from .edits import EditError, apply_edit, check_values, parse_edit
from .faults import Fault, FaultInjector, Faults
from .library import PlexLibrary, hex_id
from .model import ALBUM, ARTIST, TRACK, Album, Artist, Item, Playlist, Track
from .notifications import NOTIFICATIONS_PATH, NotificationHub, accept_key, scan_notifications
from .query import Paging, QueryError, select
from .render import Renderer, container, esc
from .scan import ScanResult, local_file, scan

TagEditMode = Literal["replace-single", "add", "replace"]
XML = "text/xml;charset=utf-8"
_UNAUTHORIZED = (
    b"<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>"
)
_PLAYLIST_URI = re.compile(
    r"server://([^/]+)/com\.plexapp\.plugins\.library/library/metadata/([\d,]+)"
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as it crossed the wire (status 0: the connection was dropped)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    at: float
    raw_query: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # the X-Plex-* request headers
    fault: str = "none"


class HttpError(Exception):
    """An error answer (status and a plain-text reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK hold
    # the body back ~40 ms per small answer, which would make every client look slow.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the emulator keeps its own request log."""

    def _serve(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.close_connection = True
            self.server.emulator.upgrade(self)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        reply = self.server.emulator.respond(self.command, self.path, dict(self.headers.items()))
        send_reply(self, reply)  # None: a dropped connection

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


class PlexEmulator(ThreadedEmulator):
    """A Plex Media Server for tests: plexapi talks to it as to a real one.

    `scan_roots` maps Plex-side folders to local ones for `section.update(path=…)`;
    `listing_tag_limit` truncates tags in listings as PMS does (full lists in
    `/library/metadata/{id}`); `tag_edit_mode` picks what indexed tag edits do (see README).
    """

    handler = _Handler
    thread_name = "plex-emulator"

    def __init__(
        self,
        library: PlexLibrary,
        *,
        token: str = "test-token",
        faults: Faults | None = None,
        scan_roots: Mapping[str, Path | str] | None = None,
        listing_tag_limit: int | None = 2,
        tag_edit_mode: TagEditMode = "replace-single",
        scan_delay_s: float = 0.0,
        machine_identifier: str | None = None,
        friendly_name: str = "genred-plex-emulator",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.library = library
        self.token = token
        self.scan_roots: dict[str, Path] = {k: Path(v) for k, v in (scan_roots or {}).items()}
        self.tag_edit_mode = tag_edit_mode
        self.scan_delay_s = scan_delay_s
        self.machine_identifier = machine_identifier or hex_id(
            "machine", library.section_uuid, length=40
        )
        self.clock = clock
        self.renderer = Renderer(
            library,
            machine_identifier=self.machine_identifier,
            friendly_name=friendly_name,
            tag_limit=listing_tag_limit,
        )
        self.scans: list[ScanResult] = []
        self.notifications = NotificationHub()
        self._init_http(host, port)
        self._injector = FaultInjector(faults or Faults())
        self._lock = threading.RLock()
        self._log: list[RequestRecord] = []
        self._pending_scans = 0
        self._scanned_at: int | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def _before_stop(self) -> None:
        self.notifications.disconnect_all()

    @property
    def section_id(self) -> int:
        return self.library.section_id

    # -- faults and the request log ---------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector = FaultInjector(faults)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def puts(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.method == "PUT"]

    def scan(self, path: str | None = None) -> ScanResult:
        """Run a scan now, as `GET /library/sections/{id}/refresh[?path=…]` does."""
        with self._lock:
            result = scan(self.library, self.scan_roots, path, int(self.clock()))
            self.scans.append(result)
            self._scanned_at = int(self.clock())
            messages = scan_notifications(self.library, result, int(self.clock()))
        for message in messages:
            self.notifications.publish(message)
        return result

    def upgrade(self, handler: BaseHTTPRequestHandler) -> None:
        """A websocket upgrade: `/:/websockets/notifications` (token needed) or 404."""
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        token = query.get("X-Plex-Token", [handler.headers.get("X-Plex-Token")])[-1]
        key = handler.headers.get("Sec-WebSocket-Key")
        if parts.path != NOTIFICATIONS_PATH:
            status = 404
        elif token != self.token:
            status = 401
        else:
            status = 101 if key else 400
        record = RequestRecord(
            method=handler.command,
            path=parts.path,
            query=query,
            status=status,
            at=time.time(),
            raw_query=parts.query,
            headers={k: v for k, v in handler.headers.items() if k.lower().startswith("x-plex-")},
        )
        with self._lock:
            self._log.append(record)
        if status != 101:
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept_key(str(key)))
        handler.end_headers()
        self.notifications.serve(handler.connection, handler.rfile.read1)

    # -- request handling -------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> Reply | None:
        """Answer one request (None: drop the connection). Thread-safe; logs the request."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        latency = self.faults.latency_ms
        if latency:
            time.sleep(latency / 1000)
        fault = self._injector.draw(method, parts.path)
        reply: Reply | None
        if fault is Fault.DROP:
            reply = None
        elif fault is Fault.THROTTLE:
            retry = str(self.faults.retry_after_s)
            reply = Reply(
                429, b"Too Many Requests", {"Retry-After": retry, "Content-Type": "text/plain"}
            )
        elif fault is Fault.ERROR:
            reply = Reply(
                self.faults.error_status, b"Internal Server Error", {"Content-Type": "text/plain"}
            )
        elif fault is Fault.GATEWAY_TIMEOUT and not self.faults.put_504_after_apply:
            reply = Reply(504, b"Gateway Timeout", {"Content-Type": "text/plain"})
        else:
            reply = self._answer(method, parts.path, parts.query, query, headers)
            if fault is Fault.GATEWAY_TIMEOUT:
                reply = Reply(504, b"Gateway Timeout", {"Content-Type": "text/plain"})
        record = RequestRecord(
            method=method,
            path=parts.path,
            query=query,
            status=0 if reply is None else reply.status,
            at=time.time(),
            raw_query=parts.query,
            headers={k: v for k, v in headers.items() if k.lower().startswith("x-plex-")},
            fault=fault.value,
        )
        with self._lock:
            self._log.append(record)
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        raw_query: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
    ) -> Reply:
        lower = {name.lower(): value for name, value in headers.items()}
        if path != "/identity":
            token = query.get("X-Plex-Token", [lower.get("x-plex-token")])[-1]
            if token != self.token:
                return Reply(401, _UNAUTHORIZED, {"Content-Type": "text/html"})
        pairs = parse_qsl(raw_query, keep_blank_values=True)
        request = _Request(method, path, pairs, query, lower)
        try:
            with self._lock:
                reply = _Router(self, request).route()
        except HttpError as exc:
            reply = Reply(exc.status, str(exc).encode(), {"Content-Type": "text/plain"})
        except (EditError, QueryError) as exc:
            reply = Reply(400, str(exc).encode(), {"Content-Type": "text/plain"})
        reply.headers.setdefault("Content-Type", XML)
        reply.headers.setdefault("X-Plex-Protocol", "1.0")
        return reply

    def _schedule_scan(self, path: str | None) -> None:
        if self.scan_delay_s <= 0:
            self.scan(path)
            return
        self._pending_scans += 1

        def later() -> None:
            try:
                self.scan(path)
            finally:
                with self._lock:
                    self._pending_scans -= 1

        timer = threading.Timer(self.scan_delay_s, later)
        timer.daemon = True
        timer.start()


@dataclass
class _Request:
    method: str
    path: str
    pairs: list[tuple[str, str]]
    query: dict[str, list[str]]
    headers: Mapping[str, str]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


class _Router:
    """Maps one request to its answer; runs under the emulator's lock."""

    def __init__(self, emu: PlexEmulator, request: _Request) -> None:
        self.emu, self.req = emu, request
        self.lib, self.render = emu.library, emu.renderer
        self.now = int(emu.clock())

    def route(self) -> Reply:
        method, path = self.req.method, self.req.path.rstrip("/") or "/"
        routes: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"/", lambda: Reply(body=self.render.root())),
            ("GET", r"/identity", lambda: Reply(body=self.render.identity())),
            ("GET", r"/library", lambda: Reply(body=self.render.library())),
            ("GET", r"/library/sections", self.sections),
            ("GET", r"/library/sections/(\d+)/all", self.section_all),
            ("PUT", r"/library/sections/(\d+)/all", self.section_edit),
            ("GET", r"/library/sections/(\d+)/albums", lambda sid: self.section_all(sid, ALBUM)),
            ("GET", r"/library/sections/(\d+)/sorts", lambda sid: Reply(body=self.render.sorts())),
            ("GET", r"/library/sections/(\d+)/collections", self.empty_listing),
            (
                "GET",
                r"/library/sections/(\d+)/(genre|mood|style|label|collection)",
                self.tag_choices,
            ),
            ("GET", r"/library/sections/(\d+)/refresh", self.refresh),
            ("DELETE", r"/library/sections/(\d+)/refresh", lambda sid: Reply()),
            ("GET", r"/library/metadata/([\d,]+)", self.metadata),
            ("PUT", r"/library/metadata/([\d,]+)", self.metadata_edit),
            ("GET", r"/library/metadata/(\d+)/(children|allLeaves)", self.children),
            ("GET", r"/library/parts/(\d+)/\d+/file\.\w+", self.part_file),
            ("GET", r"/playlists", self.playlists),
            ("POST", r"/playlists", self.playlist_create),
            ("GET", r"/playlists/(\d+)", self.playlist_get),
            ("PUT", r"/playlists/(\d+)", self.playlist_edit),
            ("DELETE", r"/playlists/(\d+)", self.playlist_delete),
            ("GET", r"/playlists/(\d+)/items", self.playlist_items),
            ("PUT", r"/playlists/(\d+)/items", self.playlist_add),
            ("DELETE", r"/playlists/(\d+)/items", self.playlist_clear),
            ("DELETE", r"/playlists/(\d+)/items/(\d+)", self.playlist_remove_item),
        ]
        path_known = False
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            path_known = True
            if verb == method:
                return handler(*match.groups())
        if path_known:
            raise HttpError(405, f"{method} is not allowed on {path}")
        raise HttpError(404, f"no such endpoint: {path}")

    # -- helpers ----------------------------------------------------------------------------

    @property
    def paging(self) -> Paging:
        return Paging.read(self.req.query, self.req.headers)

    def _section(self, sid: str) -> bool:
        """True for a music section, False for the recorded (empty) movie/TV sections."""
        if int(sid) in self.lib.section_ids():
            return True
        if int(sid) in (1, 2):
            return False
        raise HttpError(404, f"no library section {sid}")

    def _paged(
        self,
        keys: list[int],
        pairs: Callable[[int, int | None, int | None], list[tuple[str, object]]],
        render: Callable[[int], bytes],
    ) -> Reply:
        paging = self.paging
        page = paging.page(keys)
        total, offset = (len(keys), paging.start) if paging.requested else (None, None)
        body = [render(k) for k in page]
        excluded = set(filter(None, (self.req.arg("excludeElements") or "").split(",")))
        if excluded:
            body = [Renderer.strip_elements(text, excluded) for text in body]
        reply = Reply(body=container(pairs(len(page), total, offset), body))
        if paging.requested:
            reply.headers["X-Plex-Container-Start"] = str(paging.start)
            reply.headers["X-Plex-Container-Total-Size"] = str(len(keys))
        return reply

    def _type(self, default: int = ARTIST) -> int:
        raw = self.req.arg("type")
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise HttpError(400, f"bad type {raw!r}")
        return int(raw)

    def _items(self, raw_ids: str) -> list[Item]:
        found = []
        for raw in raw_ids.split(","):
            try:
                found.append(self.lib.item(int(raw)))
            except (KeyError, ValueError):
                continue
        return found

    # -- library ----------------------------------------------------------------------------

    def sections(self) -> Reply:
        refreshing = self.emu._pending_scans > 0
        return Reply(
            body=self.render.sections(refreshing=refreshing, scanned_at=self.emu._scanned_at)
        )

    def section_all(self, sid: str, type_code: int | None = None) -> Reply:
        type_code = type_code or self._type()
        if not self._section(sid) or type_code not in (ARTIST, ALBUM, TRACK):
            keys: list[int] = []
        else:
            keys = select(self.lib, type_code, self.req.pairs, self.now)
            if self.lib.other_sections:  # only this section's items
                keys = [k for k in keys if self.lib.section_of(self.lib.item(k)) == int(sid)]
        reply = self._paged(
            keys,
            lambda size, total, offset: self.render.section_container(
                type_code, size, total, offset, int(sid)
            ),
            lambda key: self.render.item(self.lib.item(key)),
        )
        if self.req.arg("includeMeta") == "1":
            at = reply.body.rindex(b"</MediaContainer>")
            reply.body = reply.body[:at] + self.render.meta().encode() + b"\n" + reply.body[at:]
        return reply

    def empty_listing(self, sid: str) -> Reply:
        self._section(sid)
        return self._paged([], _bare_container, lambda key: b"")

    def tag_choices(self, sid: str, kind: str) -> Reply:
        """`/library/sections/{id}/genre?type=N` (not recorded; the fields plexapi's FilterChoice reads)."""
        type_code = self._type()
        names: dict[str, str] = {}
        if self._section(sid):
            for key in self.lib.ordered(type_code):
                for tag in self.lib.item(key).tags.get(kind, []):
                    names.setdefault(tag.casefold(), tag)
        body = []
        for tag in sorted(names.values(), key=str.casefold):
            tag_id = self.lib.tag_id(kind, tag)
            fast = f"/library/sections/{sid}/all?type={type_code}&amp;{kind}={tag_id}"
            body.append(
                f'<Directory fastKey="{fast}" key="{tag_id}" title="{esc(tag)}" type="{kind}" />'.encode()
            )
        pairs = [
            ("size", len(body)),
            ("allowSync", 0),
            ("content", "secondary"),
            ("identifier", "com.plexapp.plugins.library"),
            ("title1", self.lib.section_title),
            ("viewGroup", "secondary"),
        ]
        return Reply(body=container(pairs, body))

    def refresh(self, sid: str) -> Reply:
        if self._section(sid) and self.req.arg("force") != "1":
            self.emu._schedule_scan(self.req.arg("path"))
        return Reply()

    def metadata(self, raw_ids: str) -> Reply:
        items = self._items(raw_ids)
        if not items:
            raise HttpError(404, f"no metadata item {raw_ids}")
        by_key = {item.rating_key: item for item in items}

        def pairs(size: int, total: int | None, offset: int | None) -> list[tuple[str, object]]:
            base = self.render.metadata_container(size)
            return [*base, ("totalSize", total), ("offset", offset)]

        return self._paged(
            list(by_key), pairs, lambda key: self.render.item(by_key[key], full=True)
        )

    def children(self, raw_id: str, which: str) -> Reply:
        try:
            parent = self.lib.item(int(raw_id))
        except KeyError:
            raise HttpError(404, f"no metadata item {raw_id}") from None
        head: Callable[[int], list[tuple[str, object]]]
        if isinstance(parent, Artist) and which == "children":
            keys = [a.rating_key for a in self.lib.albums_of(parent.rating_key)]
            head = lambda size: self.render.artist_children_container(parent, size)  # noqa: E731
        elif isinstance(parent, Artist):
            keys = [t.rating_key for t in self.lib.tracks_of_artist(parent.rating_key)]
            head = lambda size: self.render.artist_leaves_container(parent, size)  # noqa: E731
        elif isinstance(parent, Album):
            keys = [t.rating_key for t in self.lib.tracks_of_album(parent.rating_key)]
            head = lambda size: self.render.album_children_container(parent, size)  # noqa: E731
        else:
            keys, head = [], self.render.metadata_container
        return self._paged(
            keys,
            lambda size, total, offset: [*head(size), ("totalSize", total), ("offset", offset)],
            lambda key: self.render.item(self.lib.item(key)),
        )

    def part_file(self, part_id: str) -> Reply:
        track = next(
            (t for t in self.lib.tracks.values() if t.part_id == int(part_id) and not t.removed),
            None,
        )
        local = local_file(self.lib, self.emu.scan_roots, track.file) if track else None
        if local is None or not local.is_file():
            raise HttpError(404, f"no file for part {part_id}")
        return Reply(body=local.read_bytes(), headers={"Content-Type": "application/octet-stream"})

    # -- edits ------------------------------------------------------------------------------

    def _edit(self, items: list[Item], *, single_target: bool) -> Reply:
        edit = parse_edit(self.req.pairs)
        check_values(edit, items)
        mode = self.emu.tag_edit_mode
        additive = mode == "add" or (mode == "replace-single" and not single_target)
        apply_edit(items, edit, self.now, additive=additive)
        if "title" in edit.values:
            self.lib.invalidate_order()
        return Reply()

    def metadata_edit(self, raw_ids: str) -> Reply:
        keys = raw_ids.split(",")
        items = self._items(raw_ids)
        if len(items) != len(keys):
            raise HttpError(404, f"no metadata item among {raw_ids}")
        return self._edit(items, single_target=len(items) == 1)

    def section_edit(self, sid: str) -> Reply:
        if not self._section(sid):
            raise HttpError(404, f"section {sid} has no music")
        type_code = self._type(default=0)
        if type_code not in (ARTIST, ALBUM, TRACK):
            raise HttpError(400, "a section edit needs type=8, 9 or 10")
        raw_ids = self.req.arg("id")
        if raw_ids:
            keys = raw_ids.split(",")
            items = self._items(raw_ids)
            if len(items) != len(keys):
                raise HttpError(404, f"no metadata item among {raw_ids}")
            if any(type_code != item.TYPE for item in items):
                raise HttpError(400, f"id={raw_ids} are not all of type {type_code}")
        else:  # no id: PMS edits every item of the type (OpenAPI updateItems)
            items = [self.lib.item(k) for k in self.lib.ordered(type_code)]
        return self._edit(items, single_target=len(items) == 1)

    # -- playlists --------------------------------------------------------------------------

    def _playlist(self, raw_id: str) -> Playlist:
        found = self.lib.playlists.get(int(raw_id))
        if found is None:
            raise HttpError(404, f"no playlist {raw_id}")
        return found

    def _tracks_from_uri(self, uri: str | None) -> list[int]:
        match = _PLAYLIST_URI.fullmatch(uri or "")
        if match is None:
            raise HttpError(
                400, f"unsupported playlist uri {uri!r} (want server://…/library/metadata/ids)"
            )
        if match[1] != self.emu.machine_identifier:
            raise HttpError(
                400, f"uri names server {match[1]}, this is {self.emu.machine_identifier}"
            )
        keys: list[int] = []
        for item in self._items(match[2]):
            if isinstance(item, Track):
                keys.append(item.rating_key)
            elif isinstance(item, Album):
                keys += [t.rating_key for t in self.lib.tracks_of_album(item.rating_key)]
            elif isinstance(item, Artist):
                keys += [t.rating_key for t in self.lib.tracks_of_artist(item.rating_key)]
        if not keys:
            raise HttpError(400, f"no items found for {uri}")
        return keys

    def _playlist_reply(self, playlist: Playlist) -> Reply:
        return Reply(body=container([("size", 1)], [self.render.playlist(playlist)]))

    def playlists(self) -> Reply:
        wanted = self.req.arg("playlistType")
        title = (self.req.arg("title") or "").casefold()
        keys = [
            p.rating_key
            for p in self.lib.playlists.values()
            if wanted in (None, "audio") and title in p.title.casefold()
        ]
        return self._paged(
            keys, _bare_container, lambda key: self.render.playlist(self.lib.playlists[key])
        )

    def playlist_create(self) -> Reply:
        if self.req.arg("smart", "0") != "0":
            raise HttpError(400, "smart playlists are not emulated")
        if self.req.arg("type") != "audio":
            raise HttpError(400, f"only audio playlists are emulated, not {self.req.arg('type')!r}")
        title = self.req.arg("title") or ""
        if not title:
            raise HttpError(400, "a playlist needs a title")
        keys = self._tracks_from_uri(self.req.arg("uri"))
        rating_key = self.lib.new_key()
        playlist = Playlist(
            rating_key,
            title,
            f"com.plexapp.agents.none://{hex_id('playlist', rating_key, title, length=32)}",
            self.now,
            self.now,
            items=[(self.lib.new_playlist_item_id(), k) for k in keys],
        )
        self.lib.playlists[rating_key] = playlist
        return self._playlist_reply(playlist)

    def playlist_get(self, raw_id: str) -> Reply:
        return self._playlist_reply(self._playlist(raw_id))

    def playlist_edit(self, raw_id: str) -> Reply:
        playlist = self._playlist(raw_id)
        if (title := self.req.arg("title")) is not None:
            playlist.title = title
        if (summary := self.req.arg("summary")) is not None:
            playlist.summary = summary
        playlist.updated_at = self.now
        return Reply()

    def playlist_delete(self, raw_id: str) -> Reply:
        del self.lib.playlists[self._playlist(raw_id).rating_key]
        return Reply()

    def playlist_items(self, raw_id: str) -> Reply:
        playlist = self._playlist(raw_id)
        live = [
            (item_id, key) for item_id, key in playlist.items if not self.lib.tracks[key].removed
        ]
        by_item = dict(live)
        return self._paged(
            [item_id for item_id, _ in live],
            lambda size, total, offset: [
                *self.render.playlist_container(playlist, size),
                ("totalSize", total),
                ("offset", offset),
            ],
            lambda item_id: self.render.playlist_item(item_id, self.lib.tracks[by_item[item_id]]),
        )

    def playlist_add(self, raw_id: str) -> Reply:
        playlist = self._playlist(raw_id)
        keys = self._tracks_from_uri(self.req.arg("uri"))
        playlist.items += [(self.lib.new_playlist_item_id(), k) for k in keys]
        playlist.updated_at = self.now
        return self._playlist_reply(playlist)

    def playlist_clear(self, raw_id: str) -> Reply:
        playlist = self._playlist(raw_id)
        playlist.items.clear()
        playlist.updated_at = self.now
        return self._playlist_reply(playlist)

    def playlist_remove_item(self, raw_id: str, raw_item: str) -> Reply:
        playlist = self._playlist(raw_id)
        before = len(playlist.items)
        playlist.items = [(i, k) for i, k in playlist.items if i != int(raw_item)]
        if len(playlist.items) == before:
            raise HttpError(404, f"no item {raw_item} in playlist {raw_id}")
        playlist.updated_at = self.now
        return self._playlist_reply(playlist)


def _bare_container(size: int, total: int | None, offset: int | None) -> list[tuple[str, object]]:
    """playlists.xml's container: just `size` (plus totalSize/offset when paged)."""
    return [("size", size), ("totalSize", total), ("offset", offset)]
