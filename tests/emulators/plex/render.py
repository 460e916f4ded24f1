"""XML rendering in the shapes of the recorded PMS answers (see README.md for each source).

Item fragments are cached on the item (`Item.xml_cache`) and dropped on every change, so a
10k-track page is one join of cached strings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from .library import PlexLibrary, hex_id
from .model import ALBUM, ARTIST, TAG_ELEMENTS, Album, Artist, Item, Playlist, Track

RECORDED = Path(__file__).parent / "recorded"
PMS_VERSION = "1.20.4.3517-ab5e1197c"  # plex_server_base.xml
MEDIA_TAG_VERSION = "1603922053"  # children_300.xml, media_100.xml, library_sections.xml
IDENTIFIER = "com.plexapp.plugins.library"
TAG_PREFIX = "/system/bundle/media/flags/"

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;"}
_ESCAPE_TABLE = str.maketrans(
    {**_ESCAPES, "\t": "&#9;", **{chr(c): None for c in range(32) if c not in (9, 10, 13)}}
)
_NEEDS_ESCAPE = re.compile(r'[&<>"\x00-\x1f]').search


def esc(value: object) -> str:
    """An XML attribute value (control characters XML 1.0 forbids are dropped)."""
    text = str(value)
    return text.translate(_ESCAPE_TABLE) if _NEEDS_ESCAPE(text) else text


def attrs(pairs: Iterable[tuple[str, object]]) -> str:
    """`k="v"` pairs joined by spaces; None values are left out, as PMS leaves them out."""
    return " ".join(f'{key}="{esc(value)}"' for key, value in pairs if value is not None)


@functools.cache
def recorded(name: str) -> str:
    """A recorded PMS answer, vendored unchanged from tests/fixtures/plex/home-assistant."""
    return (RECORDED / name).read_text(encoding="utf-8")


def container(pairs: Iterable[tuple[str, object]], body: Iterable[bytes] = ()) -> bytes:
    """A complete `<MediaContainer>` document around rendered items."""
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer {attrs(pairs)}>'
    return b"\n".join([head.encode(), *body, b"</MediaContainer>\n"])


class Renderer:
    """Renders one library's items and containers; `tag_limit` truncates tags in listings."""

    def __init__(
        self,
        lib: PlexLibrary,
        *,
        machine_identifier: str,
        friendly_name: str,
        tag_limit: int | None,
    ) -> None:
        self.lib = lib
        self.machine_identifier = machine_identifier
        self.friendly_name = friendly_name
        self.tag_limit = tag_limit

    # -- fixed answers ----------------------------------------------------------------------

    def root(self) -> bytes:
        """`GET /`: plex_server_base.xml with its two placeholders filled."""
        text = recorded("plex_server_base.xml")
        text = text.replace("{name}", esc(self.friendly_name))
        return text.replace("{machine_identifier}", esc(self.machine_identifier)).encode()

    def identity(self) -> bytes:
        """`GET /identity` (not recorded; fields from the OpenAPI spec's getIdentity)."""
        pairs = [
            ("size", 0),
            ("claimed", 1),
            ("machineIdentifier", self.machine_identifier),
            ("version", PMS_VERSION),
        ]
        return container(pairs)

    def library(self) -> bytes:
        """`GET /library` (not recorded; plexapi only reads identifier/title1/title2)."""
        pairs = [
            ("size", 3),
            ("allowSync", 0),
            ("art", "/:/resources/library-art.png"),
            ("content", ""),
            ("identifier", IDENTIFIER),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("title1", "Plex Library"),
            ("title2", ""),
        ]
        body = [
            b'<Directory key="sections" title="Library Sections" />',
            b'<Directory key="recentlyAdded" title="Recently Added Content" />',
            b'<Directory key="onDeck" title="On Deck Content" />',
        ]
        return container(pairs, body)

    def sections(self, *, refreshing: bool = False, scanned_at: int | None = None) -> bytes:
        """`GET /library/sections`: library_sections.xml, the Music section pointed at our root."""
        lib = self.lib
        lines = recorded("library_sections.xml").split("\n")
        music: list[str] = []  # the recorded Music directory, for more music sections
        for n, line in enumerate(lines):
            if 'type="artist"' in line:
                music = lines[n : n + 3]
                line = line.replace('key="3"', f'key="{lib.section_id}"')
                line = line.replace("/library/sections/3/", f"/library/sections/{lib.section_id}/")
                line = line.replace("1eeace5d-4839-45e8-90b0-8d03b3375744", lib.section_uuid)
                line = line.replace('hidden="1"', 'hidden="0"')
                if refreshing:
                    line = line.replace('refreshing="0"', 'refreshing="1"')
                if scanned_at is not None:
                    line = re.sub(r'scannedAt="\d+"', f'scannedAt="{scanned_at}"', line)
                lines[n] = line
            elif 'path="/storage/music"' in line:
                lines[n] = line.replace('path="/storage/music"', f'path="{esc(lib.root)}"')
        more = []
        for sid, (title, uuid, root) in lib.other_sections.items():
            head, location, end = music
            head = head.replace('key="3"', f'key="{sid}"').replace(
                'title="Music"', f'title="{esc(title)}"'
            )
            head = head.replace("/library/sections/3/", f"/library/sections/{sid}/")
            head = head.replace("1eeace5d-4839-45e8-90b0-8d03b3375744", uuid)
            head = head.replace('hidden="1"', 'hidden="0"')
            location = location.replace('id="3"', f'id="{sid}"')
            more += [head, location.replace('path="/storage/music"', f'path="{esc(root)}"'), end]
        if more:
            at = lines.index("</MediaContainer>")
            lines[at:at] = more
            lines[0] = re.sub(
                r'size="\d+"', f'size="{3 + len(lib.other_sections)}"', lines[0], count=1
            )
        return "\n".join(lines).encode()

    def sorts(self) -> bytes:
        """`GET /library/sections/{id}/sorts`: library_music_sort.xml."""
        return (
            recorded("library_music_sort.xml")
            .replace("/library/sections/3/", f"/library/sections/{self.lib.section_id}/")
            .encode()
        )

    def meta(self) -> str:
        """The `<Meta>` block of library_music_metadata.xml (plexapi's filter/sort definitions)."""
        text = recorded("library_music_metadata.xml")
        block = text[text.index("<Meta>") : text.index("</Meta>") + len("</Meta>")]
        block = block.replace("/library/sections/3/", f"/library/sections/{self.lib.section_id}/")
        return block

    # -- common container attributes --------------------------------------------------------

    def section_container(
        self,
        type_code: int,
        size: int,
        total: int | None,
        offset: int | None,
        section_id: int | None = None,
    ) -> list[tuple[str, object]]:
        """Attributes of `/library/sections/{id}/all` (library_music_metadata.xml)."""
        view = {ARTIST: ("All Artists", "artist", 131124), ALBUM: ("All Albums", "album", 65592)}
        title2, group, mode = view.get(type_code, ("All Tracks", "track", 65593))
        lib = self.lib
        sid = lib.section_id if section_id is None else section_id
        uuid = lib.other_sections[sid][1] if sid in lib.other_sections else lib.section_uuid
        return [
            ("size", size),
            ("totalSize", total),
            ("allowSync", 1),
            ("art", "/:/resources/artist-fanart.jpg"),
            ("identifier", IDENTIFIER),
            ("librarySectionID", sid),
            ("librarySectionTitle", lib.section_title_of(sid)),
            ("librarySectionUUID", uuid),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("nocache", 1),
            ("offset", offset),
            ("sortAsc", 1),
            ("thumb", "/:/resources/artist.png"),
            ("title1", lib.section_title_of(sid)),
            ("title2", title2),
            ("viewGroup", group),
            ("viewMode", mode),
        ]

    def metadata_container(self, size: int) -> list[tuple[str, object]]:
        """Attributes of `/library/metadata/{ids}` (media_100.xml)."""
        lib = self.lib
        return [
            ("allowSync", 1),
            ("identifier", IDENTIFIER),
            ("librarySectionID", lib.section_id),
            ("librarySectionTitle", lib.section_title),
            ("librarySectionUUID", lib.section_uuid),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("size", size),
        ]

    def artist_children_container(self, artist: Artist, size: int) -> list[tuple[str, object]]:
        """Attributes of an artist's `/children` (children_300.xml)."""
        lib = self.lib
        return [
            ("size", size),
            ("allowSync", 1),
            ("art", f"/library/metadata/{artist.rating_key}/art/{artist.added_at}"),
            ("identifier", IDENTIFIER),
            ("key", artist.rating_key),
            ("librarySectionID", lib.section_id),
            ("librarySectionTitle", lib.section_title),
            ("librarySectionUUID", lib.section_uuid),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("nocache", 1),
            ("parentIndex", 1),
            ("parentTitle", artist.title),
            ("summary", artist.summary),
            ("thumb", f"/library/metadata/{artist.rating_key}/thumb/{artist.added_at}"),
            ("title1", lib.section_title),
            ("title2", artist.title),
            ("viewGroup", "album"),
            ("viewMode", 65592),
        ]

    def artist_leaves_container(self, artist: Artist, size: int) -> list[tuple[str, object]]:
        """Attributes of an artist's `/allLeaves` (grandchildren_300.xml)."""
        lib = self.lib
        return [
            ("allowSync", 1),
            ("art", f"/library/metadata/{artist.rating_key}/art/{artist.added_at}"),
            ("identifier", IDENTIFIER),
            ("key", artist.rating_key),
            ("librarySectionID", lib.section_id),
            ("librarySectionTitle", lib.section_title),
            ("librarySectionUUID", lib.section_uuid),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("mixedParents", 1),
            ("nocache", 1),
            ("parentIndex", 1),
            ("parentTitle", artist.title),
            ("size", size),
            ("title1", lib.section_title),
            ("title2", artist.title),
            ("viewGroup", "track"),
            ("viewMode", 65593),
        ]

    def album_children_container(self, album: Album, size: int) -> list[tuple[str, object]]:
        """Attributes of an album's `/children` (plex-api-rs server_media_music_tracks.json)."""
        lib = self.lib
        artist = lib.artists[album.artist_key]
        return [
            ("size", size),
            ("allowSync", 1),
            ("art", f"/library/metadata/{artist.rating_key}/art/{artist.added_at}"),
            ("grandparentRatingKey", artist.rating_key),
            ("grandparentThumb", f"/library/metadata/{artist.rating_key}/thumb/{artist.added_at}"),
            ("grandparentTitle", artist.title),
            ("identifier", IDENTIFIER),
            ("key", album.rating_key),
            ("librarySectionID", lib.section_id),
            ("librarySectionTitle", lib.section_title),
            ("librarySectionUUID", lib.section_uuid),
            ("mediaTagPrefix", TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("nocache", 1),
            ("parentIndex", 1),
            ("parentTitle", album.title),
            ("thumb", f"/library/metadata/{album.rating_key}/thumb/{album.added_at}"),
            ("title1", artist.title),
            ("title2", album.title),
            ("viewGroup", "track"),
            ("viewMode", 65593),
        ]

    # -- items ------------------------------------------------------------------------------

    def item(self, item: Item, *, full: bool = False) -> bytes:
        if isinstance(item, Track):
            return self.track(item, full=full)
        if isinstance(item, Album):
            return self.album(item, full=full)
        return self.artist(item, full=full)

    def _tags(self, item: Item, full: bool) -> list[str]:
        out: list[str] = []
        limit = None if full else self.tag_limit
        for kind, element in TAG_ELEMENTS.items():
            values = item.tags.get(kind)
            if not values:
                continue
            if limit is not None:
                values = values[:limit]
            for tag in values:
                if full:
                    tag_id = self.lib.tag_id(kind, tag)
                    out.append(
                        f'<{element} id="{tag_id}" filter="{kind}={tag_id}" tag="{esc(tag)}" />'
                    )
                else:
                    out.append(f'<{element} tag="{esc(tag)}" />')
        for name in sorted(item.locked_fields):
            out.append(f'<Field locked="1" name="{esc(name)}" />')
        return out

    def track(self, t: Track, *, full: bool = False) -> bytes:
        """A `<Track>` (grandchildren_300.xml / media_100.xml) with Media, Part and tags."""
        cache_key = ("full",) if full else ("list", self.tag_limit)
        cached = t.xml_cache.get(cache_key)
        if cached is not None:
            return cached
        lib = self.lib
        album = lib.albums[t.album_key]
        artist = lib.artists[t.artist_key]
        ak, bk, sid = artist.rating_key, album.rating_key, lib.section_of(t)
        art = f"/library/metadata/{ak}/art/{artist.added_at}"
        album_thumb = f"/library/metadata/{bk}/thumb/{album.added_at}"
        viewed = f' lastViewedAt="{t.last_viewed_at}"' if t.last_viewed_at is not None else ""
        original = f' originalTitle="{esc(t.original_title)}"' if t.original_title else ""
        year = f' parentYear="{t.year}"' if t.year else ""
        views = f' viewCount="{t.view_count}"' if t.view_count else ""
        # Attribute order as in grandchildren_300.xml / media_100.xml.
        head = (
            f'addedAt="{t.added_at}" art="{art}" duration="{t.duration_ms}" grandparentArt="{art}" '
            f'grandparentGuid="{esc(artist.guid)}" grandparentKey="/library/metadata/{ak}" '
            f'grandparentRatingKey="{ak}" '
            f'grandparentThumb="/library/metadata/{ak}/thumb/{artist.added_at}" '
            f'grandparentTitle="{esc(artist.title)}" guid="{esc(t.guid)}" index="{t.index}" '
            f'key="/library/metadata/{t.rating_key}"{viewed} librarySectionID="{sid}" '
            f'librarySectionKey="/library/sections/{sid}" '
            f'librarySectionTitle="{esc(lib.section_title_of(sid))}"{original} '
            f'parentGuid="{esc(album.guid)}" parentIndex="{t.disc}" '
            f'parentKey="/library/metadata/{bk}" parentRatingKey="{bk}" '
            f'parentThumb="{album_thumb}" parentTitle="{esc(album.title)}"{year} '
            f'ratingKey="{t.rating_key}" summary="{esc(t.summary)}" thumb="{album_thumb}" '
            f'title="{esc(t.title)}" type="track" updatedAt="{t.updated_at}"{views}'
        )
        ext = t.extension
        media = (
            f'<Media audioChannels="{t.channels}" audioCodec="{t.codec}" bitrate="{t.bitrate}" '
            f'container="{t.container}" duration="{t.duration_ms}" id="{t.media_id}">'
            f'<Part container="{t.container}" duration="{t.duration_ms}" file="{esc(t.file)}" '
            f'id="{t.part_id}" key="/library/parts/{t.part_id}/{t.added_at}/file.{esc(ext)}" '
            f'size="{t.size}">'
        )
        if full:
            media += self._stream(t)
        parts = [f"<Track {head}>", media + "</Part></Media>", *self._tags(t, full), "</Track>"]
        text = "\n".join(parts).encode()
        t.xml_cache[cache_key] = text
        return text

    def _stream(self, t: Track) -> str:
        """The audio `<Stream>` of media_100.xml, with loudness values derived from the key."""
        seed = int(hex_id("stream", t.rating_key, length=6), 16) / 16**6
        gain = round(-4 - 10 * seed, 2)
        layout = "stereo" if t.channels >= 2 else "mono"
        label = f"Unknown ({t.codec.upper()} {'Stereo' if t.channels >= 2 else 'Mono'})"
        return (
            "<Stream "
            + attrs(
                [
                    ("albumGain", gain),
                    ("albumPeak", "1.000000"),
                    ("albumRange", f"{4 + 6 * seed:.6f}"),
                    ("audioChannelLayout", layout),
                    ("bitrate", t.bitrate),
                    ("channels", t.channels),
                    ("codec", t.codec),
                    ("displayTitle", label),
                    ("extendedDisplayTitle", label),
                    ("gain", gain),
                    ("id", t.part_id + 500_000),
                    ("index", 0),
                    ("loudness", round(gain - 1.04, 2)),
                    ("lra", f"{3 + 6 * seed:.2f}"),
                    ("peak", f"{0.7 + 0.3 * seed:.6f}"),
                    ("samplingRate", 44100),
                    ("selected", 1),
                    ("streamType", 2),
                ]
            )
            + " />"
        )

    def album(self, a: Album, *, full: bool = False) -> bytes:
        """An album `<Directory>` (children_300.xml; album.xml when `full`)."""
        cache_key = ("full",) if full else ("list", self.tag_limit)
        cached = a.xml_cache.get(cache_key)
        if cached is not None:
            return cached
        lib = self.lib
        artist = lib.artists[a.artist_key]
        section = full or None  # attributes album.xml has and children_300.xml has not
        leaves = lib.tracks_of_album(a.rating_key) if full else []
        head = attrs(
            [
                ("ratingKey", a.rating_key),
                ("key", f"/library/metadata/{a.rating_key}/children"),
                ("parentRatingKey", artist.rating_key),
                ("guid", a.guid),
                ("parentGuid", artist.guid),
                ("studio", a.studio),
                ("type", "album"),
                ("title", a.title),
                ("parentKey", f"/library/metadata/{artist.rating_key}"),
                ("librarySectionTitle", section and lib.section_title_of(lib.section_of(a))),
                ("librarySectionID", section and lib.section_of(a)),
                ("librarySectionKey", section and f"/library/sections/{lib.section_of(a)}"),
                ("parentTitle", artist.title),
                ("summary", a.summary),
                ("index", 1),
                ("viewCount", a.view_count or None),
                ("lastViewedAt", a.last_viewed_at),
                ("year", a.year),
                ("thumb", f"/library/metadata/{a.rating_key}/thumb/{a.added_at}"),
                ("art", f"/library/metadata/{artist.rating_key}/art/{artist.added_at}"),
                ("parentThumb", f"/library/metadata/{artist.rating_key}/thumb/{artist.added_at}"),
                ("originallyAvailableAt", a.originally_available_at),
                ("leafCount", section and len(leaves)),
                ("viewedLeafCount", section and sum(1 for t in leaves if t.view_count)),
                ("addedAt", a.added_at),
                ("updatedAt", a.updated_at),
                ("loudnessAnalysisVersion", 2),
            ]
        )
        text = "\n".join([f"<Directory {head}>", *self._tags(a, full), "</Directory>"]).encode()
        a.xml_cache[cache_key] = text
        return text

    def artist(self, a: Artist, *, full: bool = False) -> bytes:
        """An artist `<Directory>` (plex-api-rs server_media_music_library.json fields)."""
        cache_key = ("full",) if full else ("list", self.tag_limit)
        cached = a.xml_cache.get(cache_key)
        if cached is not None:
            return cached
        lib = self.lib
        section = full or None
        head = attrs(
            [
                ("ratingKey", a.rating_key),
                ("key", f"/library/metadata/{a.rating_key}/children"),
                ("guid", a.guid),
                ("type", "artist"),
                ("title", a.title),
                ("librarySectionTitle", section and lib.section_title_of(lib.section_of(a))),
                ("librarySectionID", section and lib.section_of(a)),
                ("librarySectionKey", section and f"/library/sections/{lib.section_of(a)}"),
                ("summary", a.summary),
                ("index", 1),
                ("thumb", f"/library/metadata/{a.rating_key}/thumb/{a.added_at}"),
                ("addedAt", a.added_at),
                ("updatedAt", a.updated_at),
            ]
        )
        text = "\n".join([f"<Directory {head}>", *self._tags(a, full), "</Directory>"]).encode()
        a.xml_cache[cache_key] = text
        return text

    def playlist(self, p: Playlist) -> bytes:
        """A `<Playlist>` (playlists.xml; never-played playlists carry no viewCount)."""
        live = [self.lib.tracks[k] for _, k in p.items if not self.lib.tracks[k].removed]
        head = attrs(
            [
                ("ratingKey", p.rating_key),
                ("key", f"/playlists/{p.rating_key}/items"),
                ("guid", p.guid),
                ("type", "playlist"),
                ("title", p.title),
                ("summary", p.summary),
                ("smart", 0),
                ("playlistType", "audio"),
                ("composite", f"/playlists/{p.rating_key}/composite/{p.updated_at}"),
                ("duration", sum(t.duration_ms for t in live)),
                ("leafCount", len(live)),
                ("addedAt", p.added_at),
                ("updatedAt", p.updated_at),
            ]
        )
        return f"<Playlist {head}>\n</Playlist>".encode()

    def playlist_container(self, p: Playlist, size: int) -> list[tuple[str, object]]:
        """Attributes of `/playlists/{id}/items` (not recorded; the Playlist fields PMS hoists)."""
        live = [self.lib.tracks[k] for _, k in p.items if not self.lib.tracks[k].removed]
        return [
            ("size", size),
            ("composite", f"/playlists/{p.rating_key}/composite/{p.updated_at}"),
            ("duration", sum(t.duration_ms for t in live) // 1000),
            ("leafCount", len(live)),
            ("playlistType", "audio"),
            ("ratingKey", p.rating_key),
            ("smart", 0),
            ("title", p.title),
        ]

    def playlist_item(self, item_id: int, t: Track) -> bytes:
        """A track inside a playlist: the listing `<Track>` plus its playlistItemID."""
        return b'<Track playlistItemID="%d" %s' % (item_id, self.track(t)[len(b"<Track ") :])

    @staticmethod
    def strip_elements(text: bytes, names: set[str]) -> bytes:
        """Drop child elements named in `excludeElements` from a rendered item."""
        prefixes = tuple(f"<{name} ".encode() for name in names)
        return b"\n".join(line for line in text.split(b"\n") if not line.startswith(prefixes))
