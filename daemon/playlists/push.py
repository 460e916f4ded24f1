"""Pushing a playlist version to a target: match its tracks, then edit the remote playlist
in place, by diff, one recorded request at a time.

- The same genred playlist always maps to the same remote playlist (`playlist_remotes`);
  it is created once, and only recreated (said so) when it was deleted by hand.
- Nothing to change (the same items as last pushed in full, the same description): no
  request at all, not even a read.
- Otherwise the remote playlist is read first and the edits are planned from what is
  really there (`plan_edits`): removals, then inserts at their positions, or a replace
  when that takes fewer requests; each edit is one chunk of at most the target's
  `max_edit_items`, recorded before it is sent and marked once it landed. A push cut
  short (a crash, a revoked token, a long 429) leaves its record; the next push reads the
  remote again and plans from there, so nothing is added twice.
- Matches ("spotify:track:…", Plex ratingKeys, and "not there") are cached per target
  and track (`playlist_matches`), keyed by what they were found from; a "not there" is
  asked again after `recheck_missing`. Every unmatched track is in the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import GenredError, RetryLater, raise_if_cancelled
from ..hookspecs import LinksPlaylists, PlaylistTarget
from ..logs import get_logger
from ..progress import NullProgress, Progress
from ..records import PlaylistEdit, RemoteItem, TrackMatch, TrackRecord
from ..store import Store
from ..store import playlists as q
from .records import PushReport

log = get_logger("genred.playlists")

DESCRIPTION_CHARS = 300  # Spotify's limit for a playlist description
MATCH_BATCH = 20  # matches committed together (a deferral keeps what was found)


# --------------------------------------------------------------------------- planning


def plan_edits(
    current: Sequence[RemoteItem],
    wanted: Sequence[str],
    *,
    max_items: int,
    positional: bool,
) -> list[PlaylistEdit]:
    """The edits that turn `current` into `wanted` (unique items), fewest requests first.

    The items of `current` that are in `wanted`, once each and in an order consistent
    with it (the longest such run), stay; the rest go (every entry of them), then what is
    missing is inserted at its place. A target without positional inserts can only
    append, so unless what stays is the start of `wanted`, the playlist is replaced. A
    replace is also chosen when it saves at least two requests (scattered changes).
    """
    position = {item: i for i, item in enumerate(wanted)}
    first: dict[str, int] = {}
    for i, entry in enumerate(current):
        first.setdefault(entry.item, i)
    counts: dict[str, int] = {}
    for entry in current:
        counts[entry.item] = counts.get(entry.item, 0) + 1
    candidates = [
        entry.item
        for i, entry in enumerate(current)
        if entry.item in position and counts[entry.item] == 1 and first[entry.item] == i
    ]
    staying = set(_longest_increasing(candidates, position))
    entries_of: dict[str, list[RemoteItem]] = {}
    for entry in current:
        if entry.item not in staying:
            entries_of.setdefault(entry.item, []).append(entry)
    remaining = [item for item in wanted if item in staying]
    edits: list[PlaylistEdit] = []
    for chunk in _chunks(list(entries_of), max_items):  # every entry of an item in one edit
        entries = tuple(e for item in chunk for e in entries_of[item])
        edits.append(PlaylistEdit("remove", items=tuple(chunk), entries=entries))
    runs = _insert_runs(wanted, staying)
    appends_only = all(start >= len(remaining) for start, _ in runs) or not runs
    if positional:
        for start, items in runs:
            for offset, chunk in enumerate(_chunks(items, max_items)):
                edits.append(
                    PlaylistEdit("insert", items=tuple(chunk), position=start + offset * max_items)
                )
    elif appends_only:
        for _, items in runs:
            for chunk in _chunks(items, max_items):
                edits.append(PlaylistEdit("insert", items=tuple(chunk), position=None))
    else:
        return _replace(wanted, max_items)
    replace = _replace(wanted, max_items)
    if current and len(replace) + 1 < len(edits):  # a diff keeps when each track was added
        return replace
    return edits


def _replace(wanted: Sequence[str], max_items: int) -> list[PlaylistEdit]:
    chunks = _chunks(list(wanted), max_items) or [[]]
    edits = [PlaylistEdit("replace", items=tuple(chunks[0]))]
    edits += [PlaylistEdit("insert", items=tuple(c), position=None) for c in chunks[1:]]
    return edits


def _insert_runs(wanted: Sequence[str], staying: set[str]) -> list[tuple[int, list[str]]]:
    """(position, items) of each run of consecutive missing items, positions in `wanted`."""
    runs: list[tuple[int, list[str]]] = []
    for i, item in enumerate(wanted):
        if item in staying:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == i:
            runs[-1][1].append(item)
        else:
            runs.append((i, [item]))
    return runs


def _longest_increasing(items: Sequence[str], position: dict[str, int]) -> list[str]:
    """The longest subsequence of `items` whose positions in `wanted` increase."""
    import bisect

    tails: list[int] = []  # position values
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(items)
    for i, item in enumerate(items):
        p = position[item]
        k = bisect.bisect_left(tails, p)
        if k == len(tails):
            tails.append(p)
            tail_index.append(i)
        else:
            tails[k] = p
            tail_index[k] = i
        parent[i] = tail_index[k - 1] if k > 0 else -1
    out: list[str] = []
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        out.append(items[i])
        i = parent[i]
    return out[::-1]


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# --------------------------------------------------------------------------- matching


def fingerprint(record: TrackRecord) -> str:
    """What a match was found from: an edit of any of these asks the target again."""
    parts = [
        record.source,
        record.source_id,
        record.artist or record.album_artist or "",
        record.album or "",
        record.title or "",
        str((record.duration_ms or 0) // 1000),
        record.isrc or "",
    ]
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]


def resolve_matches(
    store: Store,
    target: PlaylistTarget,
    records: Sequence[TrackRecord],
    *,
    recheck_missing: timedelta,
    cancel: Any = None,
    progress: Progress | None = None,
) -> tuple[dict[int, TrackMatch], int]:
    """Every track's match at `target`, from the cache or asked now; and how many were asked."""
    ids = [r.id for r in records if r.id is not None]
    cached = q.matches(store, target.name, ids)
    cutoff = (datetime.now(UTC) - recheck_missing).isoformat()
    out: dict[int, TrackMatch] = {}
    todo: list[TrackRecord] = []
    prints: dict[int, str] = {}
    for record in records:
        assert record.id is not None
        prints[record.id] = fingerprint(record)
        hit = cached.get(record.id)
        fresh = hit is not None and hit.fingerprint == prints[record.id]
        if fresh and hit is not None and (hit.match.item is not None or hit.checked_at >= cutoff):
            out[record.id] = hit.match
        else:
            todo.append(record)
    if not todo:
        return out, 0
    progress = progress or NullProgress()
    progress.start(f"{target.name}: looking up tracks", len(todo))
    batch: list[tuple[TrackMatch, str]] = []
    try:
        for match in target.match(todo, cancel=cancel):
            out[match.track_id] = match
            batch.append((match, prints.get(match.track_id, "")))
            progress.advance()
            if len(batch) >= MATCH_BATCH:
                q.put_matches(store, target.name, batch)
                batch = []
    finally:
        if batch:
            q.put_matches(store, target.name, batch)
    found = sum(1 for r in todo if r.id is not None and out.get(r.id) and out[r.id].item)
    progress.finish(f"{target.name}: {found} of {len(todo)} tracks found")
    for record in todo:
        assert record.id is not None
        out.setdefault(
            record.id, TrackMatch(record.id, None, "none", 0.0, "the target did not say")
        )
    return out, len(todo)


# --------------------------------------------------------------------------- pushing


def description_of(prompt: str, summary: str) -> str:
    text = f"Made by genred from “{prompt}”: {summary}."
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


def push_version(
    store: Store,
    target: PlaylistTarget,
    *,
    playlist_id: int,
    version: int,
    title: str,
    description: str,
    records: Sequence[TrackRecord],
    recheck_missing: timedelta,
    verify: bool = False,
    cancel: Any = None,
    progress: Progress | None = None,
) -> PushReport:
    """Push `records` (the version's tracks, in order) to `target`; RetryLater goes up after
    what was sent is recorded, other GenredErrors become a failed report."""
    name = target.name
    try:
        matches, asked = resolve_matches(
            store,
            target,
            records,
            recheck_missing=recheck_missing,
            cancel=cancel,
            progress=progress,
        )
    except RetryLater:
        raise
    except GenredError as exc:
        return PushReport(name, "failed", message=f"matching tracks failed: {exc}")
    wanted: list[str] = []
    unmatched: list[tuple[int, str]] = []
    for record in records:
        assert record.id is not None
        match = matches[record.id]
        if match.item is None:
            unmatched.append((record.id, match.note or "not found"))
        elif match.item not in wanted:
            wanted.append(match.item)
    notes = [f"looked up {asked} tracks"] if asked else []
    remote = q.remote(store, playlist_id, name)
    last = q.last_push(store, playlist_id, name)
    if last is not None and last.status != "ok" and last.sent < last.chunks:
        notes.append(
            f"resuming a push that was cut short ({last.sent} of {last.chunks} requests had "
            "been sent): the remote playlist is read again first"
        )
        if last.status == "running":
            q.finish_push(store, last.id, "failed", "cut short; resumed by a later push")
    if remote is None and not wanted:
        return PushReport(
            name, "skipped", unmatched=unmatched,
            message=f"none of the playlist's tracks is at {name}: nothing pushed", notes=notes,
        )  # fmt: skip
    in_sync = remote is not None and remote.items == wanted and remote.description == description
    if in_sync and not verify and remote is not None:
        if remote.version != version:
            q.set_remote(store, playlist_id, name, remote.remote_id, items=wanted, version=version)
        return PushReport(
            name, "unchanged", remote.remote_id, _link(target, remote.remote_id),
            unmatched=unmatched, message="up to date: nothing sent", notes=notes,
        )  # fmt: skip
    return _Push(store, target, playlist_id, version, title, description, cancel).run(
        remote.remote_id if remote else None, wanted, unmatched, notes
    )


class _Push:
    def __init__(
        self,
        store: Store,
        target: PlaylistTarget,
        playlist_id: int,
        version: int,
        title: str,
        description: str,
        cancel: Any,
    ) -> None:
        self.store, self.target = store, target
        self.playlist_id, self.version = playlist_id, version
        self.title, self.description = title, description
        self.cancel = cancel
        self.sent = 0

    def run(
        self,
        remote_id: str | None,
        wanted: list[str],
        unmatched: list[tuple[int, str]],
        notes: list[str],
    ) -> PushReport:
        name = self.target.name
        status = "updated"
        current = None
        push_id: int | None = None
        try:
            if remote_id is not None:
                current = self.target.read(remote_id, cancel=self.cancel)
                if current is None:
                    notes.append(
                        f"the {name} playlist {remote_id} was deleted by hand: a new one is made"
                    )
                    status = "recreated"
            else:
                status = "created"
            if current is None:
                edits = plan_edits(
                    [], wanted, max_items=self.target.max_edit_items, positional=False
                )
                first = edits[0].items if edits else ()
                edits = [PlaylistEdit("create", items=first), *edits[1:]]
            else:
                edits = plan_edits(
                    current.items,
                    wanted,
                    max_items=self.target.max_edit_items,
                    positional=self.target.positional_inserts,
                )
            push_id = q.start_push(
                self.store, self.playlist_id, name, self.version, remote_id, edits
            )
            if remote_id is not None:  # unknown until it lands: a kill -9 makes the next push read
                q.set_remote(self.store, self.playlist_id, name, remote_id, items=None)
            added = removed = 0
            for seq, edit in enumerate(edits):
                raise_if_cancelled(self.cancel, f"pushing to {name}")
                if edit.kind == "create":
                    remote_id = self.target.create(
                        self.title, self.description, edit.items, cancel=self.cancel
                    )
                    q.set_push_remote(self.store, push_id, remote_id)
                    q.set_remote(
                        self.store,
                        self.playlist_id,
                        name,
                        remote_id,
                        items=None,
                        description=self.description,
                    )
                else:
                    assert remote_id is not None
                    self.target.apply(remote_id, edit, cancel=self.cancel)
                self.sent += 1
                q.chunk_sent(self.store, push_id, seq)
                if edit.kind == "remove":
                    removed += len(edit.entries) or len(edit.items)
                elif edit.kind == "replace" and current is not None:
                    removed += len(current.items)
                    added += len(edit.items)
                else:
                    added += len(edit.items)
            assert remote_id is not None
            if current is not None and (
                current.description != self.description or current.title != self.title
            ):
                self.target.describe(remote_id, self.title, self.description, cancel=self.cancel)
                self.sent += 1
            if current is not None and edits and edits[0].kind == "replace":
                kept = len(set(wanted) & {e.item for e in current.items})
                added, removed = added - kept, removed - kept
            q.set_remote(
                self.store, self.playlist_id, name, remote_id,
                items=wanted, description=self.description, version=self.version,
            )  # fmt: skip
            q.finish_push(self.store, push_id, "ok")
        except RetryLater as exc:
            self._broke_off(push_id, remote_id, f"{type(exc).__name__}: {exc}")
            raise
        except GenredError as exc:
            self._broke_off(push_id, remote_id, f"{type(exc).__name__}: {exc}")
            return PushReport(
                name, "failed", remote_id, _link(self.target, remote_id) if remote_id else None,
                edits=self.sent, unmatched=unmatched, message=str(exc), notes=notes,
            )  # fmt: skip
        except BaseException as exc:  # Cancelled, KeyboardInterrupt, a bug: recorded as cut short
            self._broke_off(push_id, remote_id, f"{type(exc).__name__}: {exc}")
            raise
        message = {
            "created": f"created with {len(wanted)} tracks",
            "recreated": f"recreated with {len(wanted)} tracks",
        }.get(status, f"+{max(added, 0)} −{max(removed, 0)} in {self.sent} requests")
        return PushReport(
            name, status, remote_id, _link(self.target, remote_id), edits=self.sent,
            added=max(added, 0), removed=max(removed, 0), unmatched=unmatched,
            message=message, notes=notes,
        )  # fmt: skip

    def _broke_off(self, push_id: int | None, remote_id: str | None, error: str) -> None:
        """What was sent stays recorded; the remote's content is unknown until read again."""
        if push_id is not None:
            q.finish_push(self.store, push_id, "failed", error)
        if remote_id is not None:
            q.set_remote(self.store, self.playlist_id, self.target.name, remote_id, items=None)
        log.warning("push broke off", target=self.target.name, sent=self.sent, error=error)


def _link(target: Any, remote_id: str | None) -> str | None:
    if remote_id is None:
        return None
    return target.link(remote_id) if isinstance(target, LinksPlaylists) else None
