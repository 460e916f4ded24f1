"""What the playlist operations return: plain records a CLI prints and a REST API serialises."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .intent import Intent
from .selection import SelectionReport


@dataclass(frozen=True)
class TrackEntry:
    """One track of a playlist version, with why it is there and where it was matched."""

    position: int  # 1-based
    track_id: int
    artist: str
    title: str
    album: str
    year: int | None
    duration_ms: int | None
    why: str
    pinned: bool = False
    matches: dict[str, str] = field(default_factory=dict)  # target → its item, or "not found: …"


@dataclass(frozen=True)
class VersionSummary:
    number: int
    parent: int | None
    reason: str
    created_at: str
    tracks: int
    llm_requests: int
    head: bool


@dataclass(frozen=True)
class RemoteView:
    """Where a playlist lives at one target."""

    target: str
    remote_id: str
    link: str | None
    pushed_version: int | None
    pushed_at: str | None
    in_sync: bool  # the head version is what was last pushed in full


@dataclass(frozen=True)
class PlaylistView:
    """A playlist at its head version (or the version asked for)."""

    name: str
    prompt: str
    targets: tuple[str, ...]
    saved: bool
    version: int
    intent: Intent
    report: SelectionReport
    tracks: list[TrackEntry]
    versions: list[VersionSummary]
    remotes: list[RemoteView]
    created_at: str
    updated_at: str

    @property
    def minutes(self) -> int:
        return sum(t.duration_ms or 0 for t in self.tracks) // 60_000

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["intent"] = self.intent.to_json()
        data["report"] = self.report.to_json()
        return data


@dataclass(frozen=True)
class PlaylistSummary:
    """One line of `genred playlist list`."""

    name: str
    prompt: str
    tracks: int
    minutes: int
    version: int | None
    versions: int
    targets: tuple[str, ...]
    saved: bool
    updated_at: str


@dataclass(frozen=True)
class PushReport:
    """What pushing one playlist to one target did."""

    target: str
    status: str  # unchanged | created | updated | recreated | failed | deferred | skipped
    remote_id: str | None = None
    link: str | None = None
    edits: int = 0  # write requests sent (create and describe included)
    added: int = 0
    removed: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (track id, why)
    message: str = ""
    notes: list[str] = field(default_factory=list)
    retry_at: str | None = None  # deferred: when the target may be asked again (ISO time)

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "deferred")


@dataclass(frozen=True)
class Outcome:
    """What create, refine, undo, refresh, edit, pin and drop did."""

    playlist: PlaylistView | None  # None: a dry run stores nothing (see `preview`)
    preview: list[TrackEntry]
    added: list[TrackEntry]
    removed: list[TrackEntry]
    intent_changes: list[str]
    notes: list[str]
    report: SelectionReport
    intent: Intent
    pushes: list[PushReport] = field(default_factory=list)
    dry_run: bool = False
    llm_requests: int = 0
