"""The emulator's state: catalogue objects (artists, albums, tracks), users and playlists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ids import snapshot_id, uri


@dataclass
class Artist:
    id: str
    name: str

    @property
    def uri(self) -> str:
        return uri("artist", self.id)


@dataclass
class Album:
    id: str
    name: str
    artist_ids: tuple[str, ...]
    release_date: str  # "2013", as release_date_precision "year" (freemusi.cc has years only)
    album_type: str  # "album", "single" or "compilation"
    total_tracks: int
    label: str = ""

    @property
    def uri(self) -> str:
        return uri("album", self.id)

    @property
    def year(self) -> int | None:
        head = self.release_date[:4]
        return int(head) if head.isdigit() else None


@dataclass
class Track:
    id: str
    name: str
    album_id: str
    artist_ids: tuple[str, ...]
    duration_ms: int
    track_number: int = 1
    disc_number: int = 1
    isrc: str | None = None
    explicit: bool = False
    popularity: int = 0
    genres: tuple[str, ...] = ()  # freemusi.cc genre + style; only the `genre:` filter reads it
    source: tuple[str, int] | None = None  # (freemusi.cc release_id, row index in the release)

    @property
    def uri(self) -> str:
        return uri("track", self.id)


@dataclass
class User:
    """A Spotify account. `profile` is the `GET /me` body (the recorded current_user.json for
    the default user); `id` and `display_name` are kept in step with it."""

    id: str
    display_name: str | None
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return uri("user", self.id)


@dataclass
class PlaylistEntry:
    track_id: str
    added_at: str  # "2025-07-29T21:11:55Z", as recorded
    added_by: str  # user id


@dataclass
class Playlist:
    id: str
    owner_id: str
    name: str
    description: str = ""
    public: bool = True
    collaborative: bool = False
    entries: list[PlaylistEntry] = field(default_factory=list)
    version: int = 1
    created_at: float = 0.0
    followers: set[str] = field(default_factory=set)  # users whose /me/playlists list it
    snapshots: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.snapshots.add(self.snapshot_id)

    @property
    def uri(self) -> str:
        return uri("playlist", self.id)

    @property
    def snapshot_id(self) -> str:
        return snapshot_id(self.id, self.version)

    def bump(self) -> str:
        """A change was applied: a new snapshot (every accepted write makes one)."""
        self.version += 1
        self.snapshots.add(self.snapshot_id)
        return self.snapshot_id

    @property
    def track_ids(self) -> list[str]:
        return [entry.track_id for entry in self.entries]
