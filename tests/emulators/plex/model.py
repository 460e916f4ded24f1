"""The emulated library's records: artists, albums, tracks and playlists, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

# Plex metadata types (plexapi.utils.SEARCHTYPES).
ARTIST, ALBUM, TRACK = 8, 9, 10
TYPE_NAMES = {ARTIST: "artist", ALBUM: "album", TRACK: "track"}
TYPE_CODES = {name: code for code, name in TYPE_NAMES.items()}

# Tag kinds the emulator stores and edits, and the XML element each one is rendered as.
TAG_ELEMENTS = {
    "genre": "Genre",
    "mood": "Mood",
    "style": "Style",
    "label": "Label",
    "collection": "Collection",
}


@dataclass(eq=False)
class Item:
    """What artists, albums and tracks share: identity, timestamps, tags and field locks."""

    rating_key: int
    title: str
    added_at: int
    updated_at: int
    guid: str
    tags: dict[str, list[str]] = field(default_factory=dict)
    locked_fields: set[str] = field(default_factory=set)
    view_count: int = 0
    last_viewed_at: int | None = None
    summary: str = ""
    removed: bool = False
    # Rendered XML fragments, keyed by variant; cleared by `touch()`.
    xml_cache: dict[object, bytes] = field(default_factory=dict, repr=False)

    TYPE = 0

    @property
    def genres(self) -> list[str]:
        """The full genre list (never truncated)."""
        return list(self.tags.get("genre", []))

    @property
    def moods(self) -> list[str]:
        return list(self.tags.get("mood", []))

    @property
    def styles(self) -> list[str]:
        return list(self.tags.get("style", []))

    @property
    def labels(self) -> list[str]:
        return list(self.tags.get("label", []))

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.TYPE]

    @property
    def title_sort(self) -> str:
        """Sort key like PMS's titleSort: case-folded, a leading article dropped."""
        low = self.title.casefold()
        for article in ("the ", "a ", "an "):
            if low.startswith(article):
                return low[len(article) :]
        return low

    def touch(self, now: int | None = None) -> None:
        """Forget rendered XML; with `now`, also bump updatedAt (PMS does on every edit)."""
        if now is not None:
            self.updated_at = now
        self.xml_cache.clear()


@dataclass(eq=False)
class Artist(Item):
    """An album artist (PMS `<Directory type="artist">`)."""

    TYPE = ARTIST


@dataclass(eq=False)
class Album(Item):
    """An album (PMS `<Directory type="album">`)."""

    artist_key: int = 0
    year: int | None = None
    studio: str | None = None
    originally_available_at: str | None = None

    TYPE = ALBUM


@dataclass(eq=False)
class Track(Item):
    """A track with one Media/Part (PMS `<Track type="track">`)."""

    album_key: int = 0
    artist_key: int = 0
    index: int = 1
    disc: int = 1
    duration_ms: int = 0
    file: str = ""
    size: int = 0
    container: str = "mp3"
    codec: str = "mp3"
    bitrate: int = 192
    channels: int = 2
    original_title: str | None = None  # the track artist, when it differs from the album artist
    year: int | None = None  # the release year (rendered as parentYear, as PMS does)
    media_id: int = 0
    part_id: int = 0
    virtual: bool = True  # True: no real file behind it, a scan never removes it

    TYPE = TRACK

    @property
    def extension(self) -> str:
        name = self.file.rpartition("/")[2]
        return name.rpartition(".")[2] if "." in name else self.container


@dataclass(eq=False)
class Playlist:
    """A regular (dumb) audio playlist; `items` holds (playlistItemID, track ratingKey)."""

    rating_key: int
    title: str
    guid: str
    added_at: int
    updated_at: int
    summary: str = ""
    items: list[tuple[int, int]] = field(default_factory=list)
