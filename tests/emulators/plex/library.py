"""PlexLibrary: the state behind the emulator (one music section, or more), with its mutations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genred.records import TrackRecord

from .model import ALBUM, ARTIST, TRACK, Album, Artist, Item, Playlist, Track

MUSIC_ROOT = "/data/music"


def hex_id(*parts: object, length: int = 24) -> str:
    """A deterministic hex id (plex:// guids, uuids) from the given parts."""
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:length]


class PlexLibrary:
    """One music library section: artists, albums, tracks, playlists and the real audio map.

    Build it with `from_freemusicc()` or `generate()`; the emulator serves it and applies edits.
    """

    def __init__(
        self, *, root: str = MUSIC_ROOT, section_id: int = 3, name: str = "library"
    ) -> None:
        self.root = root.rstrip("/")
        self.section_id = section_id
        self.section_title = "Music"
        self.section_uuid = _uuid(hex_id("section", name, length=32))
        self.artists: dict[int, Artist] = {}
        self.albums: dict[int, Album] = {}
        self.tracks: dict[int, Track] = {}
        self.playlists: dict[int, Playlist] = {}
        self.audio_files: dict[str, Path] = {}  # Plex-side file path -> real local file
        self.tag_ids: dict[tuple[str, str], int] = {}  # (kind, casefolded tag) -> tag id
        self._next_key = 1000
        self._next_media = 100_000
        self._next_part = 200_000
        self._next_playlist_item = 1
        self._order: dict[int, list[int]] = {}
        self._artist_by_name: dict[str, int] = {}
        self._album_by_name: dict[tuple[int, str], int] = {}
        self._track_by_file: dict[str, int] = {}
        self._tracks_by_album: dict[int, list[int]] = {}
        self._albums_by_artist: dict[int, list[int]] = {}
        # More music sections: id → (title, uuid, root), and the artists moved into them.
        self.other_sections: dict[int, tuple[str, str, str]] = {}
        self._section_of_artist: dict[int, int] = {}

    # -- builders ---------------------------------------------------------------------------

    @classmethod
    def from_freemusicc(
        cls, csv_path: Path | str | None = None, limit: int | None = None, audio_map: bool = True
    ) -> PlexLibrary:
        """The freemusi.cc catalogue (21.5k tracks, messy genres); `limit` caps the CSV rows."""
        from .sources import build_freemusicc

        return build_freemusicc(cls(name="freemusicc"), csv_path, limit, audio_map)

    @classmethod
    def generate(
        cls, n_tracks: int = 100_000, seed: int = 1, audio_map: bool = False
    ) -> PlexLibrary:
        """A synthetic library of `n_tracks` (plus the fixture audio when `audio_map`)."""
        from .sources import build_generated

        return build_generated(cls(name=f"generated-{seed}"), n_tracks, seed, audio_map)

    # -- sections ---------------------------------------------------------------------------

    def add_section(
        self, section_id: int, title: str, artist_keys: Iterable[int], *, root: str | None = None
    ) -> None:
        """Another music section, holding these artists with their albums and tracks (as a
        second library in PMS; its items leave the first one)."""
        if section_id in (1, 2, self.section_id):
            raise ValueError(f"section id {section_id} is taken")
        root = (root or f"{self.root}-{section_id}").rstrip("/")
        uuid = _uuid(hex_id("section", self.section_uuid, section_id, length=32))
        self.other_sections[section_id] = (title, uuid, root)
        for key in artist_keys:
            self._section_of_artist[key] = section_id
            artist = self.artists[key]
            for item in [artist, *self.albums_of(key), *self.tracks_of_artist(key)]:
                item.touch()

    def section_ids(self) -> list[int]:
        return [self.section_id, *self.other_sections]

    def section_of(self, item: Item) -> int:
        """The music section an artist, album or track belongs to."""
        key = item.artist_key if isinstance(item, Album | Track) else item.rating_key
        return self._section_of_artist.get(key, self.section_id)

    def section_title_of(self, section_id: int) -> str:
        other = self.other_sections.get(section_id)
        return other[0] if other else self.section_title

    # -- lookups ----------------------------------------------------------------------------

    def item(self, rating_key: int) -> Item:
        """Any live artist, album or track; KeyError when unknown or removed."""
        found = (
            self.tracks.get(rating_key)
            or self.albums.get(rating_key)
            or self.artists.get(rating_key)
        )
        if found is None or found.removed:
            raise KeyError(rating_key)
        return found

    def track(self, rating_key: int) -> Track:
        found = self.tracks[rating_key]
        if found.removed:
            raise KeyError(rating_key)
        return found

    def album(self, rating_key: int) -> Album:
        found = self.albums[rating_key]
        if found.removed:
            raise KeyError(rating_key)
        return found

    def artist(self, rating_key: int) -> Artist:
        found = self.artists[rating_key]
        if found.removed:
            raise KeyError(rating_key)
        return found

    def track_by_file(self, plex_path: str) -> Track | None:
        key = self._track_by_file.get(plex_path)
        return self.tracks[key] if key is not None else None

    def __len__(self) -> int:
        """Number of live tracks."""
        return len(self.ordered(TRACK))

    def ordered(self, type_code: int) -> list[int]:
        """Live ratingKeys of one type, in PMS's default order (cached until the set changes)."""
        cached = self._order.get(type_code)
        if cached is not None:
            return cached
        result: list[int] = []
        if type_code == ARTIST:
            artists = sorted(
                (a for a in self.artists.values() if not a.removed),
                key=lambda a: (a.title_sort, a.rating_key),
            )
            result = [a.rating_key for a in artists]
        elif type_code == ALBUM:
            albums = sorted(
                (a for a in self.albums.values() if not a.removed),
                key=lambda a: (self.artists[a.artist_key].title_sort, a.title_sort, a.rating_key),
            )
            result = [a.rating_key for a in albums]
        elif type_code == TRACK:
            tracks = sorted(
                (t for t in self.tracks.values() if not t.removed),
                key=lambda t: (
                    self.artists[t.artist_key].title_sort,
                    self.albums[t.album_key].title_sort,
                    self.albums[t.album_key].year or 0,
                    t.disc,
                    t.index,
                    t.title_sort,
                    t.rating_key,
                ),
            )
            result = [t.rating_key for t in tracks]
        self._order[type_code] = result
        return result

    def invalidate_order(self) -> None:
        """Forget the cached default orders (after a title change)."""
        self._order.clear()

    def albums_of(self, artist_key: int) -> list[Album]:
        """The artist's live albums, by title."""
        albums = [self.albums[k] for k in self._albums_by_artist.get(artist_key, [])]
        return sorted(
            (a for a in albums if not a.removed), key=lambda a: (a.title_sort, a.rating_key)
        )

    def tracks_of_album(self, album_key: int) -> list[Track]:
        """The album's live tracks, by disc and track number."""
        tracks = [self.tracks[k] for k in self._tracks_by_album.get(album_key, [])]
        return sorted(
            (t for t in tracks if not t.removed), key=lambda t: (t.disc, t.index, t.rating_key)
        )

    def tracks_of_artist(self, artist_key: int) -> list[Track]:
        out: list[Track] = []
        for album in self.albums_of(artist_key):
            out.extend(self.tracks_of_album(album.rating_key))
        return out

    def tag_id(self, kind: str, tag: str) -> int:
        """The server-wide id of a tag (created on first use), as PMS's tags table has."""
        key = (kind, tag.casefold())
        found = self.tag_ids.get(key)
        if found is None:
            found = self.tag_ids[key] = len(self.tag_ids) + 1
        return found

    # -- mutations --------------------------------------------------------------------------

    def new_key(self) -> int:
        self._next_key += 1
        return self._next_key

    def new_playlist_item_id(self) -> int:
        self._next_playlist_item += 1
        return self._next_playlist_item

    def add_artist(self, title: str, *, added_at: int, guid: str | None = None) -> Artist:
        """The artist named `title`, created when missing (names match case-insensitively)."""
        existing = self._artist_by_name.get(title.casefold())
        if existing is not None and not self.artists[existing].removed:
            return self.artists[existing]
        key = self.new_key()
        artist = Artist(key, title, added_at, added_at, guid or f"local://{key}")
        self.artists[key] = artist
        self._artist_by_name[title.casefold()] = key
        self._order.pop(ARTIST, None)
        return artist

    def add_album(
        self,
        artist: Artist,
        title: str,
        *,
        added_at: int,
        year: int | None = None,
        studio: str | None = None,
        guid: str | None = None,
    ) -> Album:
        """The album `title` of `artist`, created when missing."""
        name_key = (artist.rating_key, title.casefold())
        existing = self._album_by_name.get(name_key)
        if existing is not None and not self.albums[existing].removed:
            return self.albums[existing]
        key = self.new_key()
        album = Album(
            key,
            title,
            added_at,
            added_at,
            guid or f"local://{key}",
            artist_key=artist.rating_key,
            year=year,
            studio=studio,
            originally_available_at=f"{year}-01-01" if year else None,
        )
        self.albums[key] = album
        self._album_by_name[name_key] = key
        self._albums_by_artist.setdefault(artist.rating_key, []).append(key)
        self._order.pop(ALBUM, None)
        artist.touch()
        return album

    def add_track(
        self,
        album: Album,
        title: str,
        *,
        file: str,
        added_at: int,
        updated_at: int | None = None,
        guid: str | None = None,
        **fields: object,
    ) -> Track:
        """A new track on `album`; `fields` are further Track attributes (index, tags, size…)."""
        key = self.new_key()
        self._next_media += 1
        self._next_part += 1
        track = Track(
            key,
            title,
            added_at,
            updated_at if updated_at is not None else added_at,
            guid or f"local://{key}",
            album_key=album.rating_key,
            artist_key=album.artist_key,
            file=file,
            media_id=self._next_media,
            part_id=self._next_part,
            year=album.year,
        )
        for name, value in fields.items():
            if not hasattr(track, name):
                raise TypeError(f"Track has no field {name!r}")
            setattr(track, name, value)
        self.tracks[key] = track
        self._track_by_file[file] = key
        self._tracks_by_album.setdefault(album.rating_key, []).append(key)
        self._order.pop(TRACK, None)
        album.touch()
        return track

    def remove_track(self, rating_key: int) -> None:
        """Take a track out of the library; an album or artist left empty goes with it."""
        track = self.tracks[rating_key]
        if track.removed:
            return
        track.removed = True
        self._track_by_file.pop(track.file, None)
        self._order.pop(TRACK, None)
        album = self.albums[track.album_key]
        album.touch()
        if not self.tracks_of_album(album.rating_key):
            album.removed = True
            self._order.pop(ALBUM, None)
            artist = self.artists[album.artist_key]
            if not self.albums_of(artist.rating_key):
                artist.removed = True
                self._order.pop(ARTIST, None)

    def track_records(self) -> list[TrackRecord]:
        """Every track as genred's plex source reports it (full tag lists), by rating key.

        For tests and benchmarks that fill a store without going through a sync.
        """
        from genred.records import TrackRecord

        out = []
        for key in sorted(self.tracks):
            track = self.tracks[key]
            album, artist = self.albums[track.album_key], self.artists[track.artist_key]
            out.append(
                TrackRecord(
                    source="plex",
                    source_id=str(key),
                    title=track.title,
                    artist=track.original_title or artist.title,
                    album=album.title,
                    album_artist=artist.title,
                    album_source_id=str(album.rating_key),
                    artist_source_id=str(artist.rating_key),
                    path=track.file,
                    track_no=track.index,
                    disc_no=track.disc,
                    year=track.year or album.year,
                    duration_ms=track.duration_ms,
                    genres=tuple(track.genres),
                    moods=tuple(track.moods),
                    album_genres=tuple(album.genres),
                    artist_genres=tuple(artist.genres),
                    source_added_at=_iso(track.added_at),
                    source_updated_at=_iso(track.updated_at),
                )
            )
        return out

    def audio_path_map(self) -> dict[str, Path]:
        """Folder-level {Plex prefix: local folder} for the real audio (a client's path_map)."""
        folders: dict[str, Path] = {}
        for plex_path, local in self.audio_files.items():
            folders[plex_path.rsplit("/", 1)[0]] = local.parent
        return folders

    def set_tags(self, items: Iterable[Item], kind: str, tags: list[str]) -> None:
        """Replace the `kind` tags of `items` (no timestamp change: a builder's tool)."""
        for item in items:
            item.tags[kind] = dedupe_tags(tags)
            item.touch()


def dedupe_tags(tags: Iterable[str]) -> list[str]:
    """Tags in order, blanks dropped, case-insensitive duplicates dropped (first spelling wins)."""
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return out


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def _iso(epoch: int | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None
