"""Library builders: the freemusi.cc catalogue, a seeded generator, and the real fixture audio."""

from __future__ import annotations

import csv
import functools
import gzip
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .library import PlexLibrary, dedupe_tags, hex_id
from .model import Album, Artist
from .scan import AUDIO_EXTENSIONS, add_audio_track, read_audio

# The vendored fixtures (tests/fixtures, each folder with its SOURCES.md and licences).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FREEMUSICC_CSV = FIXTURES / "metadata" / "freemusi.cc" / "tracks_joined.csv.gz"
AUDIO_DIR = FIXTURES / "audio"

# Generated timestamps fall between these (2019-01-01 .. 2024-06-01), so any edit made now
# bumps updatedAt past every untouched item.
T_START, T_END = 1_546_300_800, 1_717_200_000
DAY = 86_400
# Mood names of the kind Plex's music agent assigns.
MOODS = (
    "Aggressive", "Atmospheric", "Bittersweet", "Brooding", "Calm/Peaceful", "Cerebral",
    "Cheerful", "Dreamy", "Energetic", "Hypnotic", "Intense", "Laid-Back/Mellow", "Melancholy",
    "Nostalgic", "Playful", "Reflective", "Romantic", "Sentimental", "Uplifting", "Warm",
)  # fmt: skip
BITRATES = (128, 160, 192, 256, 320)


def split_tags(value: str) -> list[str]:
    """freemusi.cc's comma-joined genre/style strings as separate tags (spelling kept)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _safe(name: str) -> str:
    """A path component PMS could have on disk."""
    return re.sub(r"[/\\\x00-\x1f]", "_", name).strip() or "_"


def _guid(kind: str, *parts: object, matched: bool) -> str | None:
    return f"plex://{kind}/{hex_id(kind, *parts)}" if matched else None


def _unique_file(lib: PlexLibrary, path: str) -> str:
    if lib.track_by_file(path) is None:
        return path
    stem, _, ext = path.rpartition(".")
    n = 2
    while lib.track_by_file(f"{stem} ({n}).{ext}") is not None:
        n += 1
    return f"{stem} ({n}).{ext}"


def _play_stats(rng: random.Random, added_at: int) -> tuple[int, int | None]:
    """About a third of tracks have been played, as in a lived-in library."""
    if rng.random() < 0.35:
        return rng.randint(1, 25), rng.randint(added_at, T_END)
    return 0, None


def _finish_parents(lib: PlexLibrary) -> None:
    """Artist genres/styles from their albums; album play counts from their tracks."""
    album_plays: dict[int, tuple[int, int]] = {}
    for track in lib.tracks.values():
        if track.view_count:
            count, last = album_plays.get(track.album_key, (0, 0))
            album_plays[track.album_key] = (
                count + track.view_count,
                max(last, track.last_viewed_at or 0),
            )
    for key, (count, last) in album_plays.items():
        lib.albums[key].view_count, lib.albums[key].last_viewed_at = count, last
    by_artist: dict[int, list[Album]] = {}
    for album in lib.albums.values():
        by_artist.setdefault(album.artist_key, []).append(album)
    for artist_key, albums in by_artist.items():
        artist = lib.artists[artist_key]
        for kind in ("genre", "style"):
            merged = dedupe_tags(tag for album in albums for tag in album.tags.get(kind, []))
            if merged:
                artist.tags[kind] = merged[:4]
        artist.touch()


@functools.lru_cache(maxsize=4)
def read_freemusicc(csv_path: Path = FREEMUSICC_CSV) -> tuple[dict[str, str], ...]:
    """The CSV rows (cached: every builder reads the same file)."""
    opener = gzip.open if str(csv_path).endswith(".gz") else open
    with opener(csv_path, "rt", newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def build_freemusicc(
    lib: PlexLibrary, csv_path: Path | str | None, limit: int | None, audio_map: bool
) -> PlexLibrary:
    """One track per CSV row (the first `limit` rows), grouped into releases as PMS would."""
    rows = read_freemusicc(Path(csv_path) if csv_path else FREEMUSICC_CSV)
    rows = rows[:limit] if limit is not None else rows
    rng = random.Random(0)
    releases: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        releases.setdefault(row["release_id"], []).append(row)
    for release_id, tracks in releases.items():
        first = tracks[0]
        added = rng.randint(T_START, T_END - 90 * DAY)
        artist_name = first["album_artist"]
        artist = lib.add_artist(
            artist_name,
            added_at=added,
            guid=_guid("artist", artist_name, matched=hash_fraction(artist_name) < 0.6),
        )
        year = int(first["year"]) if first["year"].isdigit() else None
        album = lib.add_album(
            artist,
            first["album"],
            added_at=added,
            year=year,
            studio=first["label"] or None,
            guid=_guid("album", release_id, matched=hash_fraction(release_id) < 0.6),
        )
        album.tags.setdefault("genre", split_tags(first["genre"]))
        album.tags.setdefault("style", split_tags(first["style"]))
        multi_disc = any(r["disc"] not in ("", "0", "1") for r in tracks)
        bitrate = rng.choice(BITRATES)
        for n, row in enumerate(tracks):
            index = int(row["track"]) if row["track"].isdigit() else n + 1
            disc = int(row["disc"]) if row["disc"].isdigit() and row["disc"] != "0" else 1
            seconds = int(row["duration_s"]) if row["duration_s"].isdigit() else 0
            prefix = f"{disc}-" if multi_disc else ""
            file = _unique_file(
                lib,
                f"{lib.root}/{_safe(artist_name)}/{_safe(first['album'])}/"
                f"{prefix}{index:02d} - {_safe(row['title'])}.mp3",
            )
            views, last_viewed = _play_stats(rng, added + n)
            track = lib.add_track(
                album,
                row["title"],
                file=file,
                added_at=added + n,
                updated_at=min(added + n + rng.randint(0, 60 * DAY), T_END),
                guid=_guid("track", release_id, n, matched=album.guid.startswith("plex://")),
                index=index,
                disc=disc,
                duration_ms=seconds * 1000,
                size=bitrate * 125 * seconds + 4096,
                bitrate=bitrate,
                original_title=row["track_artist"] if row["track_artist"] != artist_name else None,
                view_count=views,
                last_viewed_at=last_viewed,
            )
            track.tags["genre"] = dedupe_tags(split_tags(row["genre"]) + split_tags(row["style"]))
            if rng.random() < 0.3:
                track.tags["mood"] = rng.sample(MOODS, rng.randint(1, 3))
    _finish_parents(lib)
    if audio_map:
        add_fixture_audio(lib)
    return lib


def hash_fraction(text: str) -> float:
    """A stable pseudo-random number in [0, 1) for `text` (independent of PYTHONHASHSEED)."""
    return int(hex_id("fraction", text, length=8), 16) / 16**8


@dataclass(frozen=True)
class CatalogueStats:
    """Distributions the generator samples from, measured on the freemusi.cc catalogue."""

    release_sizes: tuple[int, ...]
    albums_per_artist: tuple[int, ...]
    compilation_share: float
    genre_styles: tuple[tuple[str, str], ...]
    years: tuple[int, ...]
    labels: tuple[str, ...]
    title_words: tuple[str, ...]
    name_words: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def catalogue_stats() -> CatalogueStats:
    rows = read_freemusicc()
    releases: dict[str, dict[str, str]] = {}
    sizes: Counter[str] = Counter()
    for row in rows:
        releases.setdefault(row["release_id"], row)
        sizes[row["release_id"]] += 1
    per_artist = Counter(
        r["album_artist"] for r in releases.values() if r["album_artist"] != "Various Artists"
    )
    words = sorted({w for r in rows for w in re.findall(r"[A-Za-z][a-z']{2,}", r["title"])})
    names = sorted(
        {w for r in releases.values() for w in re.findall(r"[A-Za-z][A-Za-z']+", r["album_artist"])}
    )
    return CatalogueStats(
        release_sizes=tuple(sizes[k] for k in releases),
        albums_per_artist=tuple(per_artist.values()),
        compilation_share=sum(r["album_artist"] == "Various Artists" for r in releases.values())
        / len(releases),
        genre_styles=tuple((r["genre"], r["style"]) for r in releases.values()),
        years=tuple(int(r["year"]) for r in releases.values() if r["year"].isdigit()),
        labels=tuple(r["label"] for r in releases.values() if r["label"]),
        title_words=tuple(words),
        name_words=tuple(names),
    )


def _messy(tag: str, rng: random.Random) -> str:
    """Now and then a genre spelled the way real tags spell it."""
    roll = rng.random()
    if roll < 0.03:
        return tag.lower()
    if roll < 0.05:
        return tag.replace(" ", "-")
    if roll < 0.06:
        return tag.upper()
    if roll < 0.07:
        return tag.replace(" & ", " and ").replace(" / ", "/")
    return tag


class _Namer:
    """Unique, pronounceable names for generated artists, albums and titles."""

    def __init__(self, stats: CatalogueStats, rng: random.Random) -> None:
        self.stats, self.rng, self.used = stats, rng, set[str]()

    def words(self, pool: tuple[str, ...], low: int, high: int) -> str:
        return " ".join(
            self.rng.choice(pool).capitalize() for _ in range(self.rng.randint(low, high))
        )

    def artist(self) -> str:
        name = self.words(self.stats.name_words, 1, 3)
        while name.casefold() in self.used:
            name = f"{name} {self.rng.choice(self.stats.name_words).capitalize()}"
        self.used.add(name.casefold())
        return name


def build_generated(lib: PlexLibrary, n_tracks: int, seed: int, audio_map: bool) -> PlexLibrary:
    """`n_tracks` tracks with the catalogue's album sizes, artist sizes, compilations and genres."""
    stats = catalogue_stats()
    rng = random.Random(seed)
    namer = _Namer(stats, rng)
    made = 0
    various: Artist | None = None
    while made < n_tracks:
        if rng.random() < stats.compilation_share:
            if various is None:
                various = lib.add_artist("Various Artists", added_at=T_START)
            artist, album_count, compilation = various, 1, True
        else:
            name = namer.artist()
            artist = lib.add_artist(
                name,
                added_at=rng.randint(T_START, T_END - 90 * DAY),
                guid=_guid("artist", seed, name, matched=rng.random() < 0.6),
            )
            album_count, compilation = rng.choice(stats.albums_per_artist), False
        for _ in range(album_count):
            if made >= n_tracks:
                break
            size = min(rng.choice(stats.release_sizes), n_tracks - made)
            made += _generate_album(lib, artist, size, compilation, stats, namer, rng)
    _finish_parents(lib)
    if audio_map:
        add_fixture_audio(lib)
    return lib


def _generate_album(
    lib: PlexLibrary,
    artist: Artist,
    size: int,
    compilation: bool,
    stats: CatalogueStats,
    namer: _Namer,
    rng: random.Random,
) -> int:
    added = rng.randint(T_START, T_END - 90 * DAY)
    title = namer.words(stats.title_words, 1, 4)
    album = lib.add_album(
        artist,
        title,
        added_at=added,
        year=rng.choice(stats.years),
        studio=rng.choice(stats.labels),
        guid=_guid("album", artist.rating_key, title, matched=rng.random() < 0.6),
    )
    if album.tags:  # an album of that name existed: generated names collide now and then
        return 0
    genre, style = rng.choice(stats.genre_styles)
    untagged_album = rng.random() < 0.02
    album.tags["genre"] = (
        [] if untagged_album else dedupe_tags(_messy(g, rng) for g in split_tags(genre))
    )
    album.tags["style"] = [] if untagged_album else split_tags(style)
    container, codec, bitrate = (
        ("flac", "flac", 900) if rng.random() < 0.15 else ("mp3", "mp3", rng.choice(BITRATES))
    )
    folder = f"{lib.root}/{_safe(artist.title)}/{_safe(title)}"
    for index in range(1, size + 1):
        track_title = namer.words(stats.title_words, 1, 4)
        seconds = rng.randint(90, 420)
        views, last_viewed = _play_stats(rng, added + index)
        track = lib.add_track(
            album,
            track_title,
            file=_unique_file(lib, f"{folder}/{index:02d} - {_safe(track_title)}.{container}"),
            added_at=added + index,
            updated_at=min(added + index + rng.randint(0, 60 * DAY), T_END),
            guid=_guid("track", album.rating_key, index, matched=album.guid.startswith("plex://")),
            index=index,
            duration_ms=seconds * 1000 + rng.randint(0, 999),
            size=bitrate * 125 * seconds + 4096,
            container=container,
            codec=codec,
            bitrate=bitrate,
            original_title=namer.words(stats.name_words, 1, 2) if compilation else None,
            view_count=views,
            last_viewed_at=last_viewed,
        )
        if not untagged_album and rng.random() >= 0.03:
            tags = [_messy(g, rng) for g in split_tags(genre) + split_tags(style)]
            if rng.random() < 0.05 and len(tags) > 1:  # a tagger that joined them into one
                tags = [rng.choice(("; ", "/", ", ")).join(tags[:2]), *tags[2:]]
            track.tags["genre"] = dedupe_tags(tags)
        if rng.random() < 0.3:
            track.tags["mood"] = rng.sample(MOODS, rng.randint(1, 3))
    return size


def fixture_audio_files(audio_dir: Path = AUDIO_DIR) -> list[Path]:
    """The real audio under tests/fixtures/audio: librosa-data/*.ogg (not .hq) and debian/*."""
    files = sorted((audio_dir / "librosa-data").glob("*.ogg"))
    files = [f for f in files if not f.name.endswith(".hq.ogg")]
    files += sorted(
        f for f in (audio_dir / "debian").glob("*") if f.suffix.lower() in AUDIO_EXTENSIONS
    )
    return files


def add_fixture_audio(lib: PlexLibrary, audio_dir: Path = AUDIO_DIR) -> None:
    """Add the fixture audio as tracks under `<root>/Fixtures/<folder>/<file>`, read like a scan.

    `lib.audio_files` maps each Plex path to its real file (a client's path_map target).
    """
    added = T_END - 30 * DAY
    for n, local in enumerate(fixture_audio_files(audio_dir)):
        plex_path = f"{lib.root}/Fixtures/{local.parent.name}/{local.name}"
        track = add_audio_track(lib, read_audio(local, plex_path, lib.root), added + n)
        track.updated_at = added + n
        lib.audio_files[plex_path] = local
