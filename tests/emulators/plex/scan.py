"""Partial and full section scans: real files under a scan root become (or stop being) tracks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .library import PlexLibrary, dedupe_tags
from .model import Track

AUDIO_EXTENSIONS = {
    ".mp3": ("mp3", "mp3"),
    ".flac": ("flac", "flac"),
    ".ogg": ("ogg", "vorbis"),
    ".oga": ("ogg", "vorbis"),
    ".opus": ("ogg", "opus"),
    ".m4a": ("mp4", "aac"),
    ".aac": ("aac", "aac"),
    ".wav": ("wav", "pcm"),
}
_MUTAGEN_CODECS = {
    "MP3": ("mp3", "mp3"),
    "EasyMP3": ("mp3", "mp3"),
    "FLAC": ("flac", "flac"),
    "OggVorbis": ("ogg", "vorbis"),
    "OggOpus": ("ogg", "opus"),
    "OggFLAC": ("ogg", "flac"),
    "MP4": ("mp4", "aac"),
    "EasyMP4": ("mp4", "aac"),
    "WAVE": ("wav", "pcm"),
    "AAC": ("aac", "aac"),
}
UNKNOWN_ARTIST = "[Unknown Artist]"
UNKNOWN_ALBUM = "[Unknown Album]"


@dataclass
class AudioInfo:
    """What the PMS scanner learns from one file: tags when readable, else the path."""

    plex_path: str
    title: str
    album_artist: str
    album: str
    track_artist: str | None = None
    index: int = 1
    disc: int = 1
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    duration_ms: int = 0
    bitrate: int = 0
    channels: int = 2
    container: str = "mp3"
    codec: str = "mp3"
    size: int = 0


@dataclass
class ScanResult:
    """Rating keys the scan added and removed."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


def _first(tags: Mapping[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = tags.get(name)
        if values and str(values[0]).strip():
            return str(values[0]).strip()
    return None


def _leading_int(text: str | None) -> int | None:
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


def read_audio(local: Path, plex_path: str, root: str) -> AudioInfo:
    """Read `local` like PMS would: embedded tags via mutagen, the folder layout otherwise."""
    rel = PurePosixPath(plex_path).relative_to(root) if plex_path.startswith(root + "/") else None
    parents = rel.parent.parts if rel else ()
    stem = PurePosixPath(plex_path).stem
    name_match = re.match(r"(?:(\d{1,2})-)?(\d{1,3})(?:\s*[-.]\s*|\s+)(.+)", stem)
    info = AudioInfo(
        plex_path=plex_path,
        title=name_match.group(3) if name_match else stem,
        album_artist=parents[-2] if len(parents) >= 2 else UNKNOWN_ARTIST,
        album=parents[-1] if parents else UNKNOWN_ALBUM,
        index=int(name_match.group(2)) if name_match else 1,
        disc=int(name_match.group(1)) if name_match and name_match.group(1) else 1,
        size=local.stat().st_size,
    )
    info.container, info.codec = AUDIO_EXTENSIONS.get(local.suffix.lower(), ("mp3", "mp3"))
    try:
        import mutagen

        audio = mutagen.File(local, easy=True)
    except Exception:  # unreadable or half-written file, or no mutagen: the path is all we know
        audio = None
    if audio is None:
        return info
    info.container, info.codec = _MUTAGEN_CODECS.get(
        type(audio).__name__, (info.container, info.codec)
    )
    length = float(getattr(audio.info, "length", 0) or 0)
    info.duration_ms = round(length * 1000)
    bitrate = int(getattr(audio.info, "bitrate", 0) or 0)
    if not bitrate and length:
        bitrate = int(info.size * 8 / length)
    info.bitrate = bitrate // 1000
    info.channels = int(getattr(audio.info, "channels", 2) or 2)
    tags: Mapping[str, list[str]] = audio.tags or {}
    artist = _first(tags, "artist")
    album_artist = _first(tags, "albumartist") or artist
    info.title = _first(tags, "title") or info.title
    info.album = _first(tags, "album") or info.album
    info.album_artist = album_artist or info.album_artist
    info.track_artist = artist if artist and artist != info.album_artist else None
    info.index = _leading_int(_first(tags, "tracknumber")) or info.index
    info.disc = _leading_int(_first(tags, "discnumber")) or info.disc
    info.year = _leading_int(_first(tags, "date", "year", "originaldate"))
    genres = [part for value in tags.get("genre", []) for part in str(value).split(";")]
    info.genres = dedupe_tags(genres)
    return info


def add_audio_track(lib: PlexLibrary, info: AudioInfo, now: int, *, virtual: bool = False) -> Track:
    """Create the track (and its artist and album when new) that `info` describes."""
    artist = lib.add_artist(info.album_artist, added_at=now)
    album = lib.add_album(artist, info.album, added_at=now, year=info.year)
    track = lib.add_track(
        album,
        info.title,
        file=info.plex_path,
        added_at=now,
        index=info.index,
        disc=info.disc,
        duration_ms=info.duration_ms,
        size=info.size,
        container=info.container,
        codec=info.codec,
        bitrate=info.bitrate,
        channels=info.channels,
        original_title=info.track_artist,
        virtual=virtual,
    )
    if info.year and track.year is None:
        track.year = info.year
    if info.genres:
        track.tags["genre"] = list(info.genres)
        if not album.tags.get("genre"):
            album.tags["genre"] = list(info.genres)
            album.touch()
    return track


def local_file(lib: PlexLibrary, roots: Mapping[str, Path], plex_path: str) -> Path | None:
    """The real file behind a Plex path: the library's audio map first, then the scan roots."""
    mapped = lib.audio_files.get(plex_path)
    if mapped is not None:
        return mapped
    for prefix, directory in roots.items():
        prefix = prefix.rstrip("/")
        if plex_path.startswith(prefix + "/"):
            return Path(directory) / plex_path[len(prefix) + 1 :]
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def scan(
    lib: PlexLibrary, roots: Mapping[str, Path], plex_path: str | None, now: int
) -> ScanResult:
    """Scan `plex_path` (every root when None): add new audio files, drop tracks whose file went.

    Only paths under a scan root are looked at; a path outside all roots is a no-op, as PMS
    ignores a refresh of a folder that is not in the section. Tracks built from a spec
    (`virtual`) have no file on disk and are never removed by a scan.
    """
    result = ScanResult()
    norm = {prefix.rstrip("/"): Path(directory) for prefix, directory in roots.items()}
    targets: list[tuple[str, Path, str]] = []  # (root prefix, local folder or file, plex path)
    for prefix, directory in norm.items():
        if plex_path is None or _under(prefix, plex_path.rstrip("/")):
            targets.append((prefix, directory, prefix))
        elif _under(plex_path, prefix):
            rel = plex_path.rstrip("/")[len(prefix) + 1 :]
            targets.append((prefix, directory / rel, plex_path.rstrip("/")))
    for prefix, local, scanned in targets:
        if local.is_file():
            files = [local]
        else:
            files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else []
        for path in files:
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            plex_file = f"{prefix}/{path.relative_to(norm[prefix]).as_posix()}"
            if lib.track_by_file(plex_file) is not None:
                continue
            track = add_audio_track(lib, read_audio(path, plex_file, prefix), now)
            result.added.append(track.rating_key)
        for track in list(lib.tracks.values()):
            if track.removed or track.virtual or not _under(track.file, scanned):
                continue
            found = local_file(lib, norm, track.file)
            if found is None or not found.exists():
                lib.remove_track(track.rating_key)
                result.removed.append(track.rating_key)
    return result
