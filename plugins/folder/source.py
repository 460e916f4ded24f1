"""Source plugin `folder`: the music files under the config's `folders:`, tags read by mutagen.

A track's source id is its absolute path (normalized, symlinks not resolved), and its
`source_updated_at` is the file's mtime and size, so a tag edit or a new file of the same
name reads as changed. A scan walks first (cheap: `os.scandir`, one stat per file) and
reads tags only for the files the store does not know in that version.

What is listed, and what is not:
- files with one of `extensions` (case-insensitive); names starting with "." (files and
  folders: AppleDouble `._x.mp3`, `.Trash-1000`) are skipped;
- zero-length files are skipped, not listed: they are files being written or junk. A stored
  track whose file is truncated to zero is left as it was (not removed) until it has content;
- a file mutagen cannot read (corrupt, truncated, not audio despite its extension) is
  listed all the same with a warning, its record built from the path: title from the file
  name, album and artist from the folders between the configured folder and the file;
- an unreadable folder is logged and skipped, and its tracks are not removed (`gone` only
  confirms files that are really not there, never ones it may not look at);
- symbolic links, to files and to folders, are skipped unless `follow_symlinks` (loops are
  detected then).

An incremental scan lists files whose mtime or ctime (a rename sets the ctime) is after the
last sync minus `OVERLAP`, and every file under a folder below a configured one that
changed since (a folder moved in keeps its files' times). A full scan is listed in path
order; its cursor is the last path of a committed page.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import mutagen
from mutagen.apev2 import APETextValue, APEv2
from mutagen.asf import ASFTags
from mutagen.easymp4 import EasyMP4Tags
from mutagen.id3 import ID3
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genred.api import GenredError, PluginContext, ScanRequest, SourcePage, TrackRecord, get_logger

log = get_logger("genred.folder.source")

SOURCE = "folder"
OVERLAP = timedelta(minutes=5)  # how far an incremental scan looks back before the last sync
DEFAULT_EXTENSIONS = (
    *(".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac"),
    *(".wav", ".aif", ".aiff", ".wma", ".ape", ".wv"),
)

# The fields read, by mutagen's "easy" names (MP3, MP4, Vorbis, FLAC, Opus), and what the
# other tag families call them: ID3 frames in WAV/AIFF, ASF (WMA), APEv2 (Monkey's, WavPack).
ID3_FRAMES = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "albumartist": "TPE2",
    "tracknumber": "TRCK",
    "discnumber": "TPOS",
    "date": "TDRC",
    "genre": "TCON",
    "mood": "TMOO",
    "isrc": "TSRC",
}
ASF_NAMES = {
    "title": "Title",
    "artist": "Author",
    "album": "WM/AlbumTitle",
    "albumartist": "WM/AlbumArtist",
    "tracknumber": "WM/TrackNumber",
    "discnumber": "WM/PartOfSet",
    "date": "WM/Year",
    "genre": "WM/Genre",
    "mood": "WM/Mood",
    "isrc": "WM/ISRC",
}
APE_NAMES = {
    "title": "Title",
    "artist": "Artist",
    "album": "Album",
    "albumartist": "Album Artist",
    "tracknumber": "Track",
    "discnumber": "Disc",
    "date": "Year",
    "genre": "Genre",
    "mood": "Mood",
    "isrc": "ISRC",
}
EasyMP4Tags.RegisterFreeformKey("mood", "MOOD")  # iTunes' freeform ----:com.apple.iTunes:MOOD
EasyMP4Tags.RegisterFreeformKey("isrc", "ISRC")

_LEADING_INT = re.compile(r"\s*(\d+)")
_YEAR = re.compile(r"\s*(\d{4})")


class FolderSourceConfig(BaseModel):
    """Settings of the `folder` source (the folders themselves are the top-level `folders:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extensions: tuple[str, ...] = Field(
        DEFAULT_EXTENSIONS, min_length=1, description="file name endings read as music"
    )
    page_size: int = Field(500, ge=1, le=50_000, description="files per committed page")
    follow_symlinks: bool = Field(False, description="follow symbolic links (else skip them)")

    @field_validator("extensions")
    @classmethod
    def _dotted_lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys("." + e.strip().lstrip(".").lower() for e in value))
        if "." in cleaned:
            raise ValueError("an extension must not be empty")
        return cleaned


@dataclass(frozen=True)
class MusicFolder:
    """One configured folder, its path absolute and normalized."""

    path: str
    recursive: bool

    def covers(self, path: str, is_dir: bool) -> bool:
        """Whether a scan of this folder lists `path` (a file, or a folder to walk)."""
        if path == self.path:
            return is_dir
        prefix = self.path.rstrip("/") + "/"
        if not path.startswith(prefix):
            return False
        parts = path[len(prefix) :].split("/")
        if any(part.startswith(".") for part in parts):
            return False
        return self.recursive or (not is_dir and len(parts) == 1)


Listing = dict[str, os.stat_result]  # path → its stat, for the files a scan lists


class FolderSource:
    """Reads music files (tags via mutagen) from the configured folders."""

    Config = FolderSourceConfig
    uses_config = ("folders",)  # rebuilt on reload only when these sections change
    supports_paths: ClassVar[bool] = True

    def __init__(self, settings: FolderSourceConfig, context: PluginContext) -> None:
        if not context.config.folders:
            raise GenredError(
                "the folder source needs `folders:` in the config (the music folders to read)"
            )
        self.settings = settings
        self.folders = [
            MusicFolder(_normal(str(f.path)), f.recursive) for f in context.config.folders
        ]
        self.extensions = frozenset(settings.extensions)

    # -- the SourcePlugin protocol -------------------------------------------------------

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        if request.paths:
            listing = self._list_paths(request.paths)
        else:
            cutoff = None
            if request.since is not None:
                cutoff = (request.since - OVERLAP).timestamp()
            listing = self._list_folders(cutoff)
        files = sorted(listing.items())
        full = not request.paths and request.since is None
        if full and isinstance(request.resume, str):
            files = [f for f in files if f[0] > request.resume]
        size = self.settings.page_size
        for start in range(0, len(files), size):
            total = len(files) if start == 0 else None
            yield self._page(files[start : start + size], request, total, full)

    def scope(self) -> Any:
        """HasScope: the configured folders. A folder taken out of `folders:` makes the
        next sync full, and its tracks are then removed (no folder covers them)."""
        return sorted([f.path, f.recursive] for f in self.folders)

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        """Files that are not there, or no configured folder covers any more.

        A file under a configured folder that is missing itself (an unmounted disk) is
        not gone, and neither is one that cannot be looked at (permissions).
        """
        mounted = {f.path for f in self.folders if os.path.isdir(f.path)}
        found: set[str] = set()
        for sid in source_ids:
            folder = self._folder_for(sid, is_dir=False)
            if folder is None or (folder.path in mounted and _missing(sid)):
                found.add(sid)
        return found

    # -- listing -------------------------------------------------------------------------

    def _list_folders(self, cutoff: float | None) -> Listing:
        listing: Listing = {}
        for folder in self.folders:
            if not os.path.isdir(folder.path):
                log.warning("music folder not found, skipped (not mounted?)", path=folder.path)
                continue
            self._walk(folder.path, folder.recursive, cutoff, listing)
        return listing

    def _list_paths(self, paths: Sequence[str]) -> Listing:
        """The files at or under `paths`; a path no configured folder covers is ignored."""
        listing: Listing = {}
        for raw in paths:
            path = _normal(raw)
            try:
                info = os.stat(path) if self.settings.follow_symlinks else os.lstat(path)
            except FileNotFoundError:
                continue  # deleted: the sync marks what it had stored there
            except OSError as exc:
                log.warning("cannot look at path, skipped", path=path, reason=_reason(exc))
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            folder = self._folder_for(path, is_dir)
            if folder is None:
                log.warning("path is outside every configured folder, ignored", path=path)
            elif is_dir:
                self._walk(path, folder.recursive, None, listing)
            elif os.path.splitext(path)[1].lower() in self.extensions and self._wanted(info):
                listing[path] = info
        return listing

    def _walk(self, top: str, recursive: bool, cutoff: float | None, listing: Listing) -> None:
        """Add the music files under `top` (changed since `cutoff`, when given) to `listing`."""
        follow = self.settings.follow_symlinks
        visited: set[tuple[int, int]] = set()
        pending = [(top, False)]  # (folder, changed since cutoff: list all beneath)
        while pending:
            directory, fresh = pending.pop()
            if follow and not _first_visit(directory, visited):
                log.warning("symlink loop, folder skipped", path=directory)
                continue
            try:
                with os.scandir(directory) as scan:
                    entries = list(scan)
            except OSError as exc:  # permission denied, a folder that vanished mid-walk
                log.warning("cannot read folder, skipped", path=directory, reason=_reason(exc))
                continue
            for entry in entries:
                if entry.name.startswith(".") or (not follow and entry.is_symlink()):
                    continue
                if not _encodable(entry.path):
                    log.warning("name is not valid UTF-8, skipped", path=repr(entry.path))
                    continue
                try:
                    if entry.is_dir():
                        if recursive:
                            changed = fresh or _changed_since(entry.stat(), cutoff)
                            pending.append((entry.path, changed))
                    elif os.path.splitext(entry.name)[1].lower() in self.extensions:
                        info = entry.stat()
                        if self._wanted(info) and (
                            cutoff is None or fresh or _changed_since(info, cutoff)
                        ):
                            listing[entry.path] = info
                except OSError as exc:  # gone since the folder was read
                    log.debug("cannot look at entry, skipped", path=entry.path, reason=_reason(exc))

    @staticmethod
    def _wanted(info: os.stat_result) -> bool:
        """A regular file with content (zero-length files are being written, or junk)."""
        return stat.S_ISREG(info.st_mode) and info.st_size > 0

    def _folder_for(self, path: str, is_dir: bool) -> MusicFolder | None:
        """The configured folder whose scan lists `path`, preferring recursive ones."""
        covering = [f for f in self.folders if f.covers(path, is_dir)]
        return next((f for f in covering if f.recursive), covering[0] if covering else None)

    # -- pages and records ---------------------------------------------------------------

    def _page(
        self,
        files: list[tuple[str, os.stat_result]],
        request: ScanRequest,
        total: int | None,
        full: bool,
    ) -> SourcePage:
        """Seen paths of the page, and full records for the new or changed files."""
        stamps = {path: stamp_of(info) for path, info in files}
        known = request.known(list(stamps))
        records: list[TrackRecord] = []
        vanished: set[str] = set()
        for path, stamp in stamps.items():
            if path in known and known[path] == stamp:
                continue
            record = self._record(path, stamp)
            if record is None:
                vanished.add(path)
            else:
                records.append(record)
        seen = [path for path in stamps if path not in vanished]
        cursor = files[-1][0] if full else None
        return SourcePage(seen=seen, records=records, cursor=cursor, total=total)

    def _record(self, path: str, stamp: str) -> TrackRecord | None:
        """The file's record from its tags; from its path when they cannot be read; None
        when the file went away since it was listed."""
        try:
            audio = mutagen.File(path, easy=True)
            reason = None if audio is not None else "not a recognised audio format"
        except Exception as exc:  # untrusted bytes: mutagen raises many kinds of errors
            if not os.path.lexists(path):
                return None
            audio, reason = None, f"{type(exc).__name__}: {exc}"
        if audio is None:
            log.warning("cannot read tags, listed by its path", path=path, reason=reason)
            return self._path_record(path, stamp)
        tags = audio.tags

        def first(name: str) -> str | None:
            return next(iter(_values(tags, name)), None)

        artist, album = first("artist"), first("album")
        album_artist = first("albumartist")
        length = getattr(audio.info, "length", None)
        return TrackRecord(
            source=SOURCE,
            source_id=path,
            path=path,
            title=first("title") or _stem(path),
            artist=artist,
            album=album,
            album_artist=album_artist,
            album_source_id=_album_id(album_artist or artist, album),
            artist_source_id=_artist_id(album_artist or artist),
            track_no=_leading_int(first("tracknumber")),
            disc_no=_leading_int(first("discnumber")),
            year=_year(first("date") or first("year")),
            duration_ms=round(length * 1000) if length else None,
            genres=_values(tags, "genre"),
            moods=_values(tags, "mood"),
            source_updated_at=stamp,
            isrc=_isrc(first("isrc")),
        )

    def _path_record(self, path: str, stamp: str) -> TrackRecord:
        """What the path says: <folder>/…/artist/album/title.ext."""
        folder = self._folder_for(path, is_dir=False)
        below = path[len(folder.path.rstrip("/")) + 1 :] if folder else os.path.basename(path)
        parents = below.split("/")[:-1]
        album = parents[-1] if parents else None
        artist = parents[-2] if len(parents) >= 2 else None
        return TrackRecord(
            source=SOURCE,
            source_id=path,
            path=path,
            title=_stem(path),
            artist=artist,
            album=album,
            album_source_id=_album_id(artist, album),
            artist_source_id=_artist_id(artist),
            source_updated_at=stamp,
        )


# --------------------------------------------------------------------------- helpers


def _normal(path: str) -> str:
    """Absolute and normalized, `~` expanded, symlinks kept: the form of a source id."""
    return os.path.abspath(os.path.expanduser(path))


def stamp_of(info: os.stat_result) -> str:
    """mtime (ISO 8601 UTC, microseconds) and size: a change of either is a changed file."""
    seconds, nanos = divmod(info.st_mtime_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)
    return f"{moment.isoformat(timespec='microseconds')}|{info.st_size}"


def _changed_since(info: os.stat_result, cutoff: float | None) -> bool:
    return cutoff is not None and max(info.st_mtime, info.st_ctime) >= cutoff


def _missing(path: str) -> bool:
    """True only when the file is known not to be there (not when it cannot be looked at)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _first_visit(directory: str, visited: set[tuple[int, int]]) -> bool:
    try:
        info = os.stat(directory)
    except OSError:
        return True  # scandir will report it
    key = (info.st_dev, info.st_ino)
    if key in visited:
        return False
    visited.add(key)
    return True


def _encodable(path: str) -> bool:
    """Undecodable bytes in a name come back as lone surrogates, which SQLite cannot store."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _values(tags: Any, name: str) -> tuple[str, ...]:
    """Every non-empty value of one field, whatever the tag family, in order, once each."""
    if tags is None:
        return ()
    if isinstance(tags, ID3):
        frames = tags.getall(ID3_FRAMES[name]) if name in ID3_FRAMES else []
        raw: list[Any] = [v for f in frames for v in (f.genres if name == "genre" else f.text)]
    else:
        names = (
            ASF_NAMES
            if isinstance(tags, ASFTags)
            else APE_NAMES
            if isinstance(tags, APEv2)
            else None
        )
        key = names.get(name) if names is not None else name
        try:
            found = tags.get(key) if key else None
        except (KeyError, ValueError):  # a name this tag family cannot hold
            found = None
        if found is None:
            raw = []
        elif isinstance(found, list | APETextValue):
            raw = list(found)
        else:
            raw = [found]
    cleaned = (str(getattr(v, "value", v)).strip() for v in raw)
    return tuple(dict.fromkeys(v for v in cleaned if v))


_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def _isrc(text: str | None) -> str | None:
    """An ISRC as the tag holds it ("GB-EMI-76-00001" or "gbemi7600001"), or None."""
    code = re.sub(r"[\s-]", "", text or "").upper()
    return code if _ISRC.match(code) else None


def _leading_int(text: str | None) -> int | None:
    """ "3/12" → 3, "03" → 3, "A1" → None."""
    match = _LEADING_INT.match(text or "")
    return int(match.group(1)) if match else None


def _year(text: str | None) -> int | None:
    match = _YEAR.match(text or "")
    return int(match.group(1)) if match else None


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _album_id(artist: str | None, album: str | None) -> str | None:
    """A stable id for (album artist, album), the same whatever the case or spacing."""
    if not album:
        return None
    key = f"{_folded(artist or '')}\x00{_folded(album)}"
    return "album:" + hashlib.sha1(key.encode()).hexdigest()[:16]


def _artist_id(artist: str | None) -> str | None:
    if not artist:
        return None
    return "artist:" + hashlib.sha1(_folded(artist).encode()).hexdigest()[:16]
