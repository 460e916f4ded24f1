"""Sync stage: a source plugin's pages of tracks → the `tracks` table.

The plugin only reads its source; this stage does every store write. Each page is applied
in one transaction (inserts, real changes, `synced_at` touches, restores, and for a full
scan the resume cursor), so a killed sync leaves whole pages and a restarted full scan
continues after the last committed one. Tracks are never deleted: a full scan that ran to
its end marks the tracks it did not see (and the source confirms gone) as removed, unless
the same track was added elsewhere in the same run: then it moved, and keeps its id
(`moves.adopt_offline_moves`).

A sync limited to `paths` (the folder watcher's, for plugins with `supports_paths`) lists
only what is at or under them and marks removed what it stored there and did not see; it
leaves the incremental and full-scan state alone. `cancel` stops a sync between pages.

A page may carry the current genres of albums and artists that changed at the source
(`SourcePage.album_genres`, `artist_genres`): every stored track of theirs takes them, as
a change, though the track itself was not listed.

State per source (table `state`): ``sync.<source>.last`` (start of the last finished sync,
the next incremental asks for changes since then), ``sync.<source>.last_full`` (start of
the last finished full scan), ``sync.<source>.pending_full`` (the full scan in progress)
and ``sync.<source>.scope`` (what the last full scan listed, for sources with a `scope`:
when it changes, e.g. a section left out of `plex.sections`, the next sync is full, and
marks removed what is no longer listed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from threading import Event
from typing import TYPE_CHECKING, Any

from ..errors import raise_if_cancelled
from ..hookspecs import HasScope, RequestsScans, ScansPaths, SourcePlugin
from ..logs import get_logger
from ..progress import NullProgress, Progress
from ..records import LIST_FIELDS, TRACK_COLUMNS, ScanRequest, SourcePage, TrackRecord
from ..store import Store, state
from . import moves

if TYPE_CHECKING:
    from ..triggers import TakenRequests

log = get_logger("genred.sync")

FULL_EVERY = timedelta(days=1)  # full=None: a full scan when the last one is older than this
WRITE_BATCH = 5000  # rows per statement group; a page is committed as a whole anyway
IDS = "SELECT value FROM json_each(?)"  # one bound JSON list instead of N placeholders

# Columns that make a track "changed" (changed_at bumps, downstream stages redo it).
# source_updated_at alone does not: Plex bumps it for edits genred does not store.
CONTENT_COLUMNS = tuple(c for c in TRACK_COLUMNS if c not in ("source", "source_id"))
UPDATED_AT = CONTENT_COLUMNS.index("source_updated_at")
COMPARED = tuple(i for i in range(len(CONTENT_COLUMNS)) if i != UPDATED_AT)
_CONTENT_OF = attrgetter(*CONTENT_COLUMNS)
_LIST_POSITIONS = tuple(CONTENT_COLUMNS.index(c) for c in LIST_FIELDS)
_JSON = json.JSONEncoder(ensure_ascii=False).encode  # the same text as json.dumps in to_row
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what json.dumps(ensure_ascii=False) escapes

Clock = Callable[[], datetime]


# --------------------------------------------------------------------------- contract


# ScanRequest and SourcePage (the source contract) live in genred.records.


@dataclass
class SyncResult:
    """What one sync did. `changed_track_ids`: store ids of added, changed and restored tracks."""

    source: str
    full: bool
    seen: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    restored: int = 0
    moved: int = 0
    seconds: float = 0.0
    changed_track_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The counts recorded with the job run."""
        keys = ("seen", "added", "changed", "unchanged", "removed", "restored", "moved")
        return {"full": int(self.full), **{k: getattr(self, k) for k in keys}}

    def summary(self) -> str:
        parts = [f"{self.added:,} added", f"{self.changed:,} changed", f"{self.removed:,} removed"]
        if self.restored:
            parts.append(f"{self.restored:,} restored")
        if self.moved:
            parts.append(f"{self.moved:,} moved")
        return f"synced {self.seen:,} tracks: {', '.join(parts)} in {self.seconds:.1f} s"


# --------------------------------------------------------------------------- the stage


def state_key(source: str, name: str) -> str:
    return f"sync.{source}.{name}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def wants_full(store: Store, source: str, now: datetime) -> bool:
    """Full when there never was one, the last is older than FULL_EVERY, or one is pending."""
    if state.get(store, state_key(source, "pending_full")):
        return True
    last_full = state.get(store, state_key(source, "last_full"))
    return last_full is None or now - datetime.fromisoformat(last_full) > FULL_EVERY


def sync(
    store: Store,
    source_name: str,
    source: SourcePlugin,
    *,
    full: bool | None = None,
    progress: Progress | None = None,
    clock: Clock = lambda: datetime.now(UTC),
    paths: Sequence[str] = (),
    cancel: Event | None = None,
) -> SyncResult:
    """Bring the store's tracks of `source_name` up to date with what `source` lists.

    `paths`: only what is at or under these local paths, when the plugin supports it (else
    an incremental sync). `cancel` is checked after each committed page; a cancelled full
    scan keeps its resume cursor.
    """
    progress = progress or NullProgress()
    began = time.monotonic()
    now = clock()
    last = state.get(store, state_key(source_name, "last"))
    limited = tuple(os.path.abspath(p) for p in paths) if _supports_paths(source) else ()
    scope = source.scope() if isinstance(source, HasScope) else None
    if paths:
        full = False
    elif full is None:
        full = wants_full(store, source_name, now) or _scope_changed(store, source_name, scope)
    if last is None and not limited:
        full = True  # nothing to be incremental from
    result = SyncResult(source_name, full)

    known = _known(store, source_name)
    since_last = datetime.fromisoformat(last) if last is not None else None
    if limited:
        request = ScanRequest(None, known, paths=limited)
        scan_start = _iso(now)
    elif full:
        pending = _pending_full(store, source_name, now)
        request = ScanRequest(None, known, pending["cursor"], last_sync=since_last)
        scan_start = pending["started_at"]
    else:
        request = ScanRequest(since_last, known, last_sync=since_last)
        scan_start = _iso(now)

    kind = "paths" if limited else "full" if full else "incremental"
    label = f"sync {source_name} ({kind})"
    seen: set[str] = set()  # only kept for a sync limited to paths
    started = False
    for page in source.scan(request):
        if not started:
            progress.start(label, page.total)
            started = True
        with store.transaction():
            listed = _apply_page(store, source_name, page, _iso(clock()), result)
            if full:
                pending["cursor"] = page.cursor
                state.put(store, state_key(source_name, "pending_full"), pending)
        if limited:
            seen.update(listed)
        progress.advance(len(page.seen))
        raise_if_cancelled(cancel, "sync")
    if not started:
        progress.start(label, 0)

    if limited:
        unseen = [sid for sid in _stored_under(store, source_name, limited) if sid not in seen]
        _remove(store, source_name, source, unseen, scan_start, _iso(clock()), result)
    elif full:
        unseen = _unseen_since(store, source_name, scan_start)
        _remove(store, source_name, source, unseen, scan_start, _iso(clock()), result)
    if not limited:
        with store.transaction():
            state.put(store, state_key(source_name, "last"), scan_start)
            if full:
                state.put(store, state_key(source_name, "last_full"), scan_start)
                state.put(store, state_key(source_name, "pending_full"), None)
                if scope is not None:
                    state.put(store, state_key(source_name, "scope"), scope)
    result.seconds = time.monotonic() - began
    progress.finish(result.summary())
    log.info("sync finished", source=source_name, **result.counts())
    return result


def _scope_changed(store: Store, source: str, scope: Any) -> bool:
    """The source lists something else than at its last full scan (a section left out)."""
    if scope is None:
        return False
    before = state.get(store, state_key(source, "scope"))
    if before is None or before == scope:
        return False  # (none stored yet: the scope of the first full scan is kept)
    log.info("what the source lists changed: a full sync", source=source, before=before, now=scope)
    return True


def _pending_full(store: Store, source: str, now: datetime) -> dict[str, Any]:
    """The interrupted full scan to continue, or a new one (recorded before the first page)."""
    pending = state.get(store, state_key(source, "pending_full"))
    if pending and now - datetime.fromisoformat(pending["started_at"]) <= FULL_EVERY:
        log.info("resuming full sync", source=source, scan_id=pending["scan_id"])
        return dict(pending)
    pending = {"scan_id": secrets.token_hex(6), "started_at": _iso(now), "cursor": None}
    state.put(store, state_key(source, "pending_full"), pending)
    return pending


def _known(store: Store, source: str) -> Callable[[Sequence[str]], dict[str, str | None]]:
    def known(ids: Sequence[str]) -> dict[str, str | None]:
        rows = store.conn.execute(
            f"SELECT source_id, source_updated_at FROM tracks "
            f"WHERE source = ? AND source_id IN ({IDS})",
            (source, json.dumps(list(ids))),
        )
        return dict(rows.fetchall())

    return known


@dataclass
class _PageWrites:
    """What one page changes in the store, sorted by kind of write."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)  # a synced field changed
    refreshes: list[tuple[Any, ...]] = field(default_factory=list)  # only source_updated_at
    touched: list[str] = field(default_factory=list)  # seen, nothing else to write


def _supports_paths(source: Any) -> bool:
    return isinstance(source, ScansPaths) and bool(source.supports_paths)


def _apply_page(
    store: Store, source: str, page: SourcePage, now: str, result: SyncResult
) -> list[str]:
    """Insert new tracks, update changed ones, touch the rest; returns the ids listed."""
    records = {r.source_id: r for r in page.records}
    seen = list(dict.fromkeys([*page.seen, *records]))
    existing = {
        row[1]: row
        for row in store.conn.execute(
            f"SELECT id, source_id, removed, {', '.join(CONTENT_COLUMNS)} FROM tracks "
            f"WHERE source = ? AND source_id IN ({IDS})",
            (source, json.dumps(seen)),
        )
    }
    writes = _PageWrites()
    for sid in seen:
        _sort_one(source, sid, records.get(sid), existing.get(sid), now, writes, result)
    result.seen += len(seen)
    result.added += len(writes.inserts)
    _write(store, source, writes, now, result)
    _apply_parents(store, source, page, now, result)
    return seen


def _apply_parents(
    store: Store, source: str, page: SourcePage, now: str, result: SyncResult
) -> None:
    """Albums' and artists' genres the page reports go to every stored track of theirs
    whose copy differs (a change: downstream stages redo those tracks)."""
    changed: set[int] = set()
    for column, id_column, genres in (
        ("album_genres", "album_source_id", page.album_genres),
        ("artist_genres", "artist_source_id", page.artist_genres),
    ):
        if not genres:
            continue
        wanted = {pid: _json_list(values) for pid, values in genres.items()}
        rows = store.conn.execute(
            f"SELECT id, {id_column}, {column} FROM tracks "
            f"WHERE source = ? AND removed = 0 AND {id_column} IN ({IDS})",
            (source, json.dumps(list(wanted))),
        ).fetchall()
        updates = [
            (wanted[pid], now, track_id)
            for track_id, pid, stored in rows
            if stored != wanted[pid] and _folded(stored) != _folded(wanted[pid])
        ]
        for batch in _batches(updates):
            store.conn.executemany(
                f"UPDATE tracks SET {column} = ?, changed_at = ? WHERE id = ?", batch
            )
        changed.update(track_id for _, _, track_id in updates)
    if not changed:
        return
    counted = set(result.changed_track_ids)
    fresh = sorted(changed - counted)
    result.changed += len(fresh)
    result.changed_track_ids.extend(fresh)


def _sort_one(
    source: str,
    sid: str,
    record: TrackRecord | None,
    old: tuple[Any, ...] | None,
    now: str,
    writes: _PageWrites,
    result: SyncResult,
) -> None:
    """Decide the write for one listed id; `old` is its stored (id, source_id, removed, …)."""
    if old is None:
        if record is None:
            log.warning("source listed an unknown track without its record", source_id=sid)
        else:
            writes.inserts.append((source, sid, *_content(record), now, now, now))
        return
    track_id, was_removed = old[0], bool(old[2])
    if was_removed:
        result.restored += 1
        result.changed_track_ids.append(track_id)
    values = _content(record) if record is not None else None
    if values is not None and _differs(old, values):
        writes.changes.append((*values, now, now, track_id))
        result.changed += 1
        if not was_removed:
            result.changed_track_ids.append(track_id)
        return
    if values is not None and values[UPDATED_AT] != old[UPDATED_AT + 3]:
        writes.refreshes.append((values[UPDATED_AT], track_id))
    writes.touched.append(sid)
    result.unchanged += 1


def _differs(old: tuple[Any, ...], values: tuple[Any, ...]) -> bool:
    """Content changed? Tag lists compare as case-insensitive multisets: Plex keeps neither
    the order in which genred (or anyone) wrote tags nor their case when the tag already
    exists ("Synth-Pop" written reads back "Synth-pop"), and neither is a change."""
    for i in COMPARED:
        before, after = old[i + 3], values[i]
        if before == after:
            continue
        reordered = (
            i in _LIST_POSITIONS
            and before is not None
            and after is not None
            and _folded(before) == _folded(after)
        )
        if not reordered:
            return True
    return False


def _folded(tags_json: str) -> list[str]:
    return sorted(tag.casefold() for tag in json.loads(tags_json))


def _write(store: Store, source: str, writes: _PageWrites, now: str, result: SyncResult) -> None:
    conn = store.conn
    cols = ", ".join(CONTENT_COLUMNS)
    assignments = ", ".join(f"{c} = ?" for c in CONTENT_COLUMNS)
    for batch in _batches(writes.changes):
        conn.executemany(
            f"UPDATE tracks SET {assignments}, changed_at = ?, synced_at = ?, "
            f"removed = 0, removed_at = NULL WHERE id = ?",
            batch,
        )
    for batch in _batches(writes.refreshes):
        conn.executemany("UPDATE tracks SET source_updated_at = ? WHERE id = ?", batch)
    for batch in _batches(writes.touched):
        conn.execute(
            f"UPDATE tracks SET synced_at = ?, removed = 0, removed_at = NULL "
            f"WHERE source = ? AND source_id IN ({IDS})",
            (now, source, json.dumps(batch)),
        )
    if not writes.inserts:
        return
    marks = ", ".join("?" * (len(CONTENT_COLUMNS) + 5))
    for batch in _batches(writes.inserts):
        conn.executemany(
            f"INSERT INTO tracks (source, source_id, {cols}, first_seen_at, changed_at, "
            f"synced_at) VALUES ({marks})",
            batch,
        )
    new_ids = json.dumps([row[1] for row in writes.inserts])
    result.changed_track_ids.extend(
        r[0]
        for r in conn.execute(
            f"SELECT id FROM tracks WHERE source = ? AND source_id IN ({IDS})", (source, new_ids)
        )
    )


def _content(record: TrackRecord) -> tuple[Any, ...]:
    """CONTENT_COLUMNS of a record as stored (lists as JSON text, as `TrackRecord.to_row`)."""
    values = list(_CONTENT_OF(record))
    for i in _LIST_POSITIONS:
        values[i] = _json_list(values[i])
    return tuple(values)


def _json_list(items: Sequence[str]) -> str:
    """`json.dumps(list(items), ensure_ascii=False)`, without the encoder for plain tags."""
    if not all(isinstance(i, str) for i in items) or _NEEDS_ESCAPE.search("".join(items)):
        return _JSON(list(items))
    return '["' + '", "'.join(items) + '"]' if items else "[]"


def _unseen_since(store: Store, source_name: str, scan_start: str) -> list[str]:
    """Active tracks the full scan that began at `scan_start` did not list."""
    rows = store.conn.execute(
        "SELECT source_id FROM tracks WHERE source = ? AND removed = 0 AND synced_at < ?",
        (source_name, scan_start),
    )
    return [r[0] for r in rows]


def _stored_under(store: Store, source_name: str, paths: Sequence[str]) -> list[str]:
    """Active tracks whose `path` is one of `paths` or under one of them."""
    found: dict[str, None] = {}
    for path in paths:
        prefix = path if path.endswith("/") else path + "/"
        rows = store.conn.execute(
            "SELECT source_id FROM tracks WHERE source = ? AND removed = 0 "
            "AND (path = ? OR (path >= ? AND path < ?))",
            (source_name, path, prefix, prefix[:-1] + "0"),  # "0" sorts right after "/"
        )
        found.update((r[0], None) for r in rows)
    return list(found)


def _remove(
    store: Store,
    source_name: str,
    source: SourcePlugin,
    unseen: Sequence[str],
    scan_start: str,
    now: str,
    result: SyncResult,
) -> None:
    """Mark removed what the scan did not list and the source confirms gone, unless moved.

    Offset paging over a library that changes while it is listed can skip an item; asking
    the source about the unseen ones keeps such a skip from becoming a false removal. A gone
    track that reappeared elsewhere in this run (`moves.adopt_offline_moves`) moved instead.
    """
    if not unseen:
        return
    gone = sorted(source.gone(unseen))
    if len(gone) < len(unseen):
        log.info("unseen tracks still exist at the source", count=len(unseen) - len(gone))
    found = moves.adopt_offline_moves(store, source_name, gone, scan_start, now)
    for move in found:
        if move.replaced_id in result.changed_track_ids:  # added in this run, now merged
            result.changed_track_ids.remove(move.replaced_id)
            result.added -= 1
        if move.content_changed:
            result.changed_track_ids.append(move.track_id)
    result.moved += len(found)
    moved_away = {m.old_source_id for m in found}
    gone = [sid for sid in gone if sid not in moved_away]
    for batch in _batches(gone):
        with store.transaction() as conn:
            cur = conn.execute(
                f"UPDATE tracks SET removed = 1, removed_at = ? "
                f"WHERE source = ? AND removed = 0 AND source_id IN ({IDS})",
                (now, source_name, json.dumps(batch)),
            )
            result.removed += cur.rowcount


def _batches(items: Sequence[Any], size: int = WRITE_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sync_requested(
    store: Store,
    name: str,
    plugin: SourcePlugin,
    taken: TakenRequests,
    progress: Progress | None = None,
    cancel: Event | None = None,
) -> dict[str, int]:
    """Serve what triggers asked of source `name`: by path where the plugin can, else ask
    it to rescan those paths (Plex) and sync incrementally. Nothing asked: nothing done."""
    mine, everyone = taken.get(name), taken.get(None)
    if mine is None and everyone is None:
        return {}
    paths = sorted((everyone.paths if everyone else set()) | (mine.paths if mine else set()))
    moved = (everyone.moved if everyone else []) + (mine.moved if mine else [])
    totals: dict[str, int] = {}
    if isinstance(plugin, ScansPaths) and plugin.supports_paths and (paths or moved):
        for old, new in moved:
            count = moves.move(store, name, old, new)
            totals["moved"] = totals.get("moved", 0) + count
            log.info("moved", source=name, old=old, new=new, tracks=count)
        targets = sorted({*paths, *(new for _old, new in moved)})
        result = sync(store, name, plugin, paths=targets, progress=progress, cancel=cancel)
    else:
        if paths and isinstance(plugin, RequestsScans):
            plugin.request_scan(paths, cancel=cancel)
        result = sync(store, name, plugin, full=False, progress=progress, cancel=cancel)
    for key, value in result.counts().items():
        totals[key] = totals.get(key, 0) + value
    return totals
