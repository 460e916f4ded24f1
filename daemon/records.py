"""Plain records that cross the boundary between plugins, stages and the store."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

LIST_FIELDS = ("genres", "moods", "album_genres", "artist_genres")


@dataclass(frozen=True)
class TrackRecord:
    """A track as a source reports it. `id` is the store's id, None until stored."""

    source: str
    source_id: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    album_source_id: str | None = None
    artist_source_id: str | None = None
    path: str | None = None
    track_no: int | None = None
    disc_no: int | None = None
    year: int | None = None
    duration_ms: int | None = None
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    album_genres: tuple[str, ...] = ()
    artist_genres: tuple[str, ...] = ()
    source_added_at: str | None = None
    source_updated_at: str | None = None
    isrc: str | None = None  # the recording's ISRC, when the file or the source has one
    id: int | None = field(default=None, compare=False)

    def to_row(self) -> dict[str, Any]:
        """Columns of the tracks table (lists as JSON), without the store-managed ones."""
        row = asdict(self)
        row.pop("id")
        for name in LIST_FIELDS:
            row[name] = json.dumps(list(row[name]), ensure_ascii=False)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrackRecord:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        for name in LIST_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = tuple(json.loads(values[name]))
        return cls(**values)


TRACK_COLUMNS = tuple(f.name for f in fields(TrackRecord) if f.name != "id")


@dataclass(frozen=True)
class Prediction:
    """One classifier's answer for one track and label set: labels best first."""

    track_id: int
    label_set: str  # "genre", "mood", or a custom label's name
    labels: tuple[tuple[str, float], ...]


# --------------------------------------------------------------------------- source contract


@dataclass(frozen=True)
class ScanRequest:
    """What the sync stage asks of a source plugin's `scan`.

    `since` None asks for a full scan; else for tracks added or updated since then (the
    plugin widens it by its own overlap). `known(ids)` gives, for those of `ids` already
    stored, the `source_updated_at` stored, so a plugin fetches details only for new or
    changed tracks. `resume` is the `cursor` of the last page committed by an interrupted
    full scan (None: start at the beginning). `paths`, when not empty, asks only for the
    tracks at or under these local paths (files or directories); only plugins that set
    `supports_paths = True` get it (the folder watcher's rescans). `last_sync` is when the
    last finished sync of any kind began (None: never), so a full scan too can look for
    what changed since then besides tracks (an album's genres edited in Plex).
    """

    since: datetime | None
    known: Callable[[Sequence[str]], Mapping[str, str | None]]
    resume: Any = None
    paths: tuple[str, ...] = ()
    last_sync: datetime | None = None


@dataclass(frozen=True)
class SourcePage:
    """One page of a scan.

    `seen`: every source id listed on this page. `records`: complete records for those
    of them that are new or changed (the rest are only touched). `cursor`: JSON-able
    position after this page, handed back as `ScanRequest.resume`. `total`: how many ids
    the whole scan is expected to list, for progress (the first page's value is used).
    `album_genres` / `artist_genres`: the current genres of albums / artists (by their
    source ids) that changed at the source; every stored track of theirs takes them,
    whether or not the track itself is listed (an album edited in Plex changes no track).
    """

    seen: Sequence[str]
    records: Sequence[TrackRecord] = ()
    cursor: Any = None
    total: int | None = None
    album_genres: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    artist_genres: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------- classifier contract


@dataclass(frozen=True)
class Unclassified:
    """Yielded by a classifier instead of a prediction: no answer for this track this time
    (a failed request, an answer that left it out). The stage records the failure and asks
    again after a backoff, instead of storing "nothing to say"."""

    track_id: int
    error: Exception


LABEL_KINDS = ("genre", "mood", "label")


def custom_label_set(kind: str, target: str) -> str:
    """The label set of a user-defined label: `"mood:Happy Vocal"`, `"label:Focus"`."""
    return f"{kind}:{target}"


def split_label_set(value: str) -> tuple[str, str] | None:
    """`("mood", "Happy Vocal")` for a custom label's set; None for genre/mood/others."""
    kind, sep, target = value.partition(":")
    return (kind, target) if sep and kind in LABEL_KINDS and target else None


# --------------------------------------------------------------------------- writeback contract

Key = tuple[str, str, str]  # (item_kind, item_id, field): one field of one item at a target
Values = tuple[str, ...]


@dataclass(frozen=True)
class Edit:
    """One request's worth: the same change to `field` of every item in `ids`.

    Plex applies a multi-item edit as a change (add these tags, remove those) and a
    single-item edit as the new complete list, so an edit carries both: the delta
    (`add`, `remove`) shared by all its items, and each item's list before and after.
    """

    kind: str
    field: str
    ids: tuple[str, ...]
    add: Values
    remove: Values
    # `dataclasses.field` by its full name: the class's own `field` attribute shadows it
    before: Mapping[str, Values] = dataclasses.field(default_factory=dict)
    after: Mapping[str, Values] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class WrittenFile:
    """A local file a writeback replaced, and its stat right after the write: the folder
    watcher takes a file that still has exactly this size and mtime for genred's own
    write, and the store records `source_stamp` so the next sync does not read it again."""

    item_id: str  # the item (its source id) whose file it is
    paths: tuple[str, ...]  # the names it goes by: the source's, and the resolved one
    size: int
    mtime_ns: int
    source_stamp: str | None = None  # the item's `source_updated_at` as its source reads it now


# --------------------------------------------------------------------------- LLM contract


@dataclass(frozen=True)
class Usage:
    """Tokens one or more answers cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class ChatResult:
    """The validated answer. `usage` sums every answer this chat was given (retries
    included); `attempts` is the number of HTTP requests it sent."""

    data: Any
    usage: Usage
    model: str
    raw_text: str
    attempts: int


# --------------------------------------------------------------------------- playlist contract


@dataclass(frozen=True)
class TrackMatch:
    """Where one library track is at a playlist target, or that it is not there.

    `item` is the target's id for it (``spotify:track:…``, a Plex ratingKey); None: the
    target has no such track (`note` says why). `how`: isrc, search, source or none.
    """

    track_id: int
    item: str | None
    how: str
    score: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class RemoteItem:
    """One entry of a remote playlist: the item, and the target's id of the entry itself
    (Plex's playlistItemID; None where entries are addressed by position)."""

    item: str
    entry: str | None = None


@dataclass(frozen=True)
class RemotePlaylist:
    """A playlist as the target has it now."""

    remote_id: str
    items: tuple[RemoteItem, ...]
    title: str = ""
    description: str = ""


@dataclass(frozen=True)
class PlaylistEdit:
    """One request's worth of change to a remote playlist.

    `remove`: these entries (with their positions in the playlist as it is before this
    edit); `insert`: `items` at `position` (None: at the end); `replace`: the playlist
    becomes `items`. At most the target's `max_edit_items` items in one edit.
    """

    kind: str  # remove | insert | replace
    items: tuple[str, ...] = ()
    position: int | None = None
    entries: tuple[RemoteItem, ...] = ()
    positions: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "items": list(self.items),
            "position": self.position,
            "entries": [[e.item, e.entry] for e in self.entries],
            "positions": list(self.positions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlaylistEdit:
        return cls(
            kind=str(data["kind"]),
            items=tuple(data.get("items") or ()),
            position=data.get("position"),
            entries=tuple(RemoteItem(i, e) for i, e in data.get("entries") or ()),
            positions=tuple(data.get("positions") or ()),
        )


# --------------------------------------------------------------------------- file work


@dataclass(frozen=True)
class FileItem:
    """One file for an executor: the track it belongs to and what the file was when located.

    `hint`: what the plugin wants to know about the track where the file is worked on
    (small and picklable: the genres earlier steps proposed), for `FileWork.with_hint`.
    """

    track_id: int
    path: str
    size: int | None = None
    mtime: float | None = None
    hint: Any = None


@dataclass(frozen=True)
class FileWork:
    """What a plugin does with each file, named by its methods.

    `method(path) -> result` runs in a worker process (decoding, a small model); with
    `batch_method`, `batch_method([result, ...]) -> [outcome, ...]` runs where the plugin's
    model is (the stage's process for the local pool, a model worker on a cluster), on
    `batch_size` results at a time. `with_hint`: `method(path, hint)`, with the item's hint.
    """

    method: str
    batch_method: str | None = None
    batch_size: int = 1
    with_hint: bool = False


@dataclass(frozen=True)
class FileJob:
    """A plugin's file work over many files, as an executor gets it.

    `name` says whose work it is ("extract:handcrafted", "classify:tagger") and, with
    `version`, which model workers a cluster may keep for the next job of the same
    work. `plugin` is sent (pickled) to the workers. `timeout`: seconds one file may take
    in `work.method` before its worker is stopped (None: no limit); `workers`: processes
    (or CPUs) to use on this machine.
    """

    name: str
    version: str
    plugin: Any
    work: FileWork
    timeout: float | None
    workers: int
