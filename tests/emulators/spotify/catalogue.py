"""The searchable catalogue: freemusi.cc tracks as Spotify tracks, albums and artists.

Built from `tests/fixtures/metadata/freemusi.cc/tracks_joined.csv.gz` (21,502 tracks, CC BY-SA
4.0, "freemusi.cc database by ojdo"; read with the Plex emulator's cached reader). Every id
is a stable base62 hash of the row, so the same row has the same Spotify id in every run.
About `isrc_fraction` of the tracks (default 70 %) carry an ISRC (a deterministic
`CCXXXYYNNNNN`; a track that reappears on a compilation, same artist and title, shares its
first release's ISRC, as re-releases of one recording do). Tests add and remove tracks,
and mark some absent: an absent track is in no search result and `GET /tracks/{id}` answers
404, which is how "this track is not on Spotify" looks from outside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..plex.sources import FREEMUSICC_CSV, read_freemusicc, split_tags
from .ids import ISRC_PATTERN, hash_fraction, make_isrc, spotify_id
from .model import Album, Artist, Track
from .search import (
    TrackIndex,
    compile_query,
    fold,
    matches,
    parse_query,
    rank_key,
)

VARIOUS_ARTISTS = ("0LyfQWJT6nXafLPZqxe9Of", "Various Artists")  # Spotify's own id for it
_ISRC_COUNTRIES = ("QZ", "QM", "GB", "US", "DE", "FR", "NL", "SE")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _registrant(label: str) -> tuple[str, str]:
    """An ISRC country code and 3-character registrant derived from the label."""
    f = hash_fraction("registrant", label or "-")
    n = int(f * 36**3)
    reg = _BASE36[n // 1296 % 36] + _BASE36[n // 36 % 36] + _BASE36[n % 36]
    return _ISRC_COUNTRIES[int(hash_fraction("country", label) * len(_ISRC_COUNTRIES))], reg


class Catalogue:
    """Artists, albums and tracks by id, the set of absent tracks, and the search index.

    `copy()` is cheap (the objects are shared, the dicts are not): the pytest fixture builds
    the freemusi.cc catalogue once per session and gives each emulator its own copy. Treat
    the Track/Album/Artist objects as read-only; change the catalogue through its methods.
    """

    def __init__(self) -> None:
        self.artists: dict[str, Artist] = {}
        self.albums: dict[str, Album] = {}
        self.tracks: dict[str, Track] = {}
        self.absent: set[str] = set()
        self._index: dict[str, TrackIndex] = {}
        self._by_isrc: dict[str, list[str]] = {}

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_freemusicc(
        cls,
        limit: int | None = None,
        *,
        isrc_fraction: float = 0.7,
        absent_fraction: float = 0.0,
        csv_path: Path | str | None = None,
    ) -> Catalogue:
        """One track per CSV row (the first `limit` rows), one album per release.

        `absent_fraction` marks that share of tracks absent (deterministically by row).
        """
        cat = cls()
        rows = read_freemusicc(Path(csv_path) if csv_path else FREEMUSICC_CSV)
        rows = rows[:limit] if limit is not None else rows
        releases: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            releases.setdefault(row["release_id"], []).append(row)
        serials: dict[tuple[str, str, int], int] = {}
        first_isrc: dict[tuple[str, str], str] = {}
        for release_id, tracks in releases.items():
            first = tracks[0]
            year = int(first["year"]) if first["year"].isdigit() else None
            compilation = first["album_artist"] == "Various Artists"
            album_artist = cat._various() if compilation else cat._artist(first["album_artist"])
            total = len(tracks)
            album = Album(
                id=spotify_id("album", release_id),
                name=first["album"],
                artist_ids=(album_artist.id,),
                release_date=str(year) if year else "0000",
                album_type="compilation" if compilation else ("single" if total <= 3 else "album"),
                total_tracks=total,
                label=first["label"],
            )
            cat.albums[album.id] = album
            for n, row in enumerate(tracks):
                key = (fold(row["track_artist"]), fold(row["title"]))
                isrc = first_isrc.get(key)
                if isrc is None and hash_fraction("isrc", release_id, n) < isrc_fraction:
                    country, registrant = _registrant(first["label"])
                    serial_key = (country, registrant, year or 0)
                    serials[serial_key] = serials.get(serial_key, 0) + 1
                    isrc = make_isrc(country, registrant, year or 0, serials[serial_key])
                    first_isrc[key] = isrc
                artist = cat._artist(row["track_artist"])
                seconds = int(row["duration_s"]) if row["duration_s"].isdigit() else 0
                track = Track(
                    id=spotify_id("track", release_id, n),
                    name=row["title"],
                    album_id=album.id,
                    artist_ids=(artist.id,),
                    duration_ms=seconds * 1000 + int(hash_fraction("ms", release_id, n) * 1000),
                    track_number=int(row["track"]) if row["track"].isdigit() else n + 1,
                    disc_number=int(row["disc"]) if row["disc"].isdigit() else 1,
                    isrc=isrc,
                    popularity=int(hash_fraction("popularity", release_id, n) * 60),
                    genres=tuple(split_tags(row["genre"]) + split_tags(row["style"])),
                    source=(release_id, n),
                )
                cat._put(track)
                if absent_fraction and hash_fraction("absent", release_id, n) < absent_fraction:
                    cat.absent.add(track.id)
        return cat

    def _artist(self, name: str) -> Artist:
        ident = spotify_id("artist", fold(name) or name)
        artist = self.artists.get(ident)
        if artist is None:
            artist = self.artists[ident] = Artist(ident, name)
        return artist

    def _various(self) -> Artist:
        ident, name = VARIOUS_ARTISTS
        return self.artists.setdefault(ident, Artist(ident, name))

    def _put(self, track: Track) -> None:
        album = self.albums[track.album_id]
        names = [self.artists[a].name for a in track.artist_ids]
        entry = TrackIndex(
            track_id=track.id,
            name=fold(track.name),
            artists="\n".join(fold(n) for n in names),
            album=fold(album.name),
            year=album.year,
            isrc=(track.isrc or "").upper(),
            genres="\n".join(fold(g) for g in track.genres),
            text="\n".join([fold(track.name), *(fold(n) for n in names), fold(album.name)]),
        )
        self.tracks[track.id] = track
        self._index[track.id] = entry
        if track.isrc:
            self._by_isrc.setdefault(track.isrc.upper(), []).append(track.id)

    def copy(self) -> Catalogue:
        other = Catalogue()
        other.artists = dict(self.artists)
        other.albums = dict(self.albums)
        other.tracks = dict(self.tracks)
        other.absent = set(self.absent)
        other._index = dict(self._index)
        other._by_isrc = {k: list(v) for k, v in self._by_isrc.items()}
        return other

    # -- changes tests make -------------------------------------------------------------------

    def add_track(
        self,
        name: str,
        artists: str | Sequence[str],
        album: str,
        *,
        year: int | None = None,
        duration_ms: int = 200_000,
        isrc: str | None = None,
        track_number: int = 1,
        album_artist: str | None = None,
        album_type: str = "album",
        genres: Iterable[str] = (),
        explicit: bool = False,
        popularity: int = 50,
        track_id: str | None = None,
    ) -> Track:
        """A new track (its album and artists are created or reused by name); returns it."""
        names = [artists] if isinstance(artists, str) else list(artists)
        if not names:
            raise ValueError("a track needs at least one artist")
        if isrc is not None and not ISRC_PATTERN.fullmatch(isrc.upper()):
            raise ValueError(f"not an ISRC (CCXXXYYNNNNN): {isrc!r}")
        artist_objs = [self._artist(n) for n in names]
        owner = self._artist(album_artist) if album_artist else artist_objs[0]
        album_id = spotify_id("album", fold(owner.name), fold(album), year)
        album_obj = self.albums.get(album_id)
        if album_obj is None:
            album_obj = self.albums[album_id] = Album(
                id=album_id,
                name=album,
                artist_ids=(owner.id,),
                release_date=str(year) if year else "0000",
                album_type=album_type,
                total_tracks=0,
            )
        album_obj.total_tracks += 1
        ident = track_id or spotify_id("added-track", album_id, fold(name), track_number)
        if ident in self.tracks:
            raise ValueError(f"track {ident} exists")
        track = Track(
            id=ident,
            name=name,
            album_id=album_id,
            artist_ids=tuple(a.id for a in artist_objs),
            duration_ms=duration_ms,
            track_number=track_number,
            isrc=isrc.upper() if isrc else None,
            explicit=explicit,
            popularity=popularity,
            genres=tuple(genres),
        )
        self._put(track)
        return track

    def remove_track(self, track_id: str) -> None:
        """Gone from the catalogue: 404, no search hit; playlists holding it show `null`."""
        track = self.tracks.pop(track_id)
        self._index.pop(track_id, None)
        self.absent.discard(track_id)
        if track.isrc:
            self._by_isrc[track.isrc.upper()].remove(track_id)

    def mark_absent(self, *track_ids: str) -> None:
        """Not available on Spotify: no search hit, `GET /tracks/{id}` 404, not addable."""
        for ident in track_ids:
            if ident not in self.tracks:
                raise KeyError(ident)
            self.absent.add(ident)

    def mark_present(self, *track_ids: str) -> None:
        self.absent.difference_update(track_ids)

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.tracks)

    def available(self, track_id: str) -> bool:
        return track_id in self.tracks and track_id not in self.absent

    def track(self, track_id: str) -> Track | None:
        """The track whether absent or not (None: not in the catalogue)."""
        return self.tracks.get(track_id)

    def by_isrc(self, isrc: str) -> list[Track]:
        return [self.tracks[t] for t in self._by_isrc.get(isrc.upper(), [])]

    def by_source(self, release_id: str, n: int = 0) -> Track:
        """The track built from freemusi.cc release `release_id`, row `n` of that release."""
        return self.tracks[spotify_id("track", release_id, n)]

    def find(self, name: str | None = None, artist: str | None = None) -> list[Track]:
        """Test helper: tracks whose folded title/artist contain these (absent ones too)."""
        want_name, want_artist = fold(name or ""), fold(artist or "")
        found = []
        for ident, entry in self._index.items():
            if want_name in entry.name and want_artist in entry.artists:
                found.append(self.tracks[ident])
        return found

    def artist_names(self, track: Track) -> list[str]:
        return [self.artists[a].name for a in track.artist_ids]

    def search(self, q: str) -> list[Track]:
        """Every available track matching `q`, best first (see search.py)."""
        compiled = compile_query(parse_query(q))
        hits = [
            entry
            for ident, entry in self._index.items()
            if ident not in self.absent and matches(compiled, entry)
        ]
        hits.sort(key=lambda e: rank_key(compiled, e, self.tracks[e.track_id].popularity))
        return [self.tracks[e.track_id] for e in hits]
