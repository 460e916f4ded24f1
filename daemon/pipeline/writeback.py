"""Writeback stage and revert: decisions → the target (Plex, file tags), idempotent and
undoable.

Order of work for one edit, so a kill at any moment loses nothing and never writes twice:
1. record the intent (the value found before the first write, and the value being written);
2. send the edit;
3. record the write as confirmed.
A restart that finds an unconfirmed intent reads the target: if the value landed it is
confirmed, if not it is written again, if it is something else a person edited it.

An edit may land for some of its items only (`EditPartlyFailed`: files are written one by
one); those are recorded as written and the others as failed. A target that replaces
local files (`WritesFiles`) reports each file's stat after the write: it is recorded in
`file_writes` (the folder watcher skips it) and as the track's `source_updated_at` (the
next sync does not read it again), so genred's own writes never come back as changes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from threading import Event
from typing import Any

from ..config import WritebackConfig
from ..errors import EditPartlyFailed, GenredError, raise_if_cancelled
from ..hookspecs import WritebackPlugin, WritesFiles
from ..logs import get_logger
from ..progress import NullProgress, Progress
from ..records import WrittenFile
from ..store import Store, failures, file_writes, state, utcnow
from .writeplan import (
    Edit,
    Key,
    PastWrite,
    Plan,
    Target,
    Values,
    final_value,
    majority,
    plan_reverts,
    plan_writes,
    same,
)

log = get_logger("genred.writeback")
STAGE = "writeback"
REVERT_STAGE = "revert"
PAUSE_KEY = "writeback.paused"
# Where the store keeps its view of each (kind, field) at the source: column, id column.
VIEW_COLUMN = {
    ("track", "genre"): ("genres", "source_id"),
    ("track", "mood"): ("moods", "source_id"),
    ("album", "genre"): ("album_genres", "album_source_id"),
    ("artist", "genre"): ("artist_genres", "artist_source_id"),
}


def _update_view(
    conn: Any, source: str, kind: str, fld: str, item_ids: Iterable[str], value: str
) -> None:
    """Keep the store's view of the source in step with what it now holds."""
    if (kind, fld) in VIEW_COLUMN:
        column, id_column = VIEW_COLUMN[(kind, fld)]
        conn.executemany(
            f"UPDATE tracks SET {column} = ? WHERE source = ? AND {id_column} = ?",
            [(value, source, i) for i in item_ids],
        )


@dataclass
class WritebackReport:
    planned: list[Edit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _loads(value: str | None) -> Values | None:
    return None if value is None else tuple(json.loads(value))


def build_targets(
    store: Store,
    source: str,
    levels: Sequence[str],
    max_values: int,
    labels_as: str = "label",
) -> list[Target]:
    """What every item should carry, from the decisions: tracks directly, albums and artists
    by the majority of their decided tracks. Decided custom labels go to the tracks'
    `labels_as` field ("label", or "mood" beside the decided moods)."""
    rows = store.conn.execute(
        """
        SELECT t.id, t.source_id, t.album_source_id, t.artist_source_id, d.genres, d.moods,
               d.labels, d.status
        FROM decisions d JOIN tracks t ON t.id = d.track_id
        WHERE t.removed = 0 AND t.source = ?
        ORDER BY t.id
        """,
        (source,),
    ).fetchall()
    targets: list[Target] = []
    by_album: dict[str, list[Values]] = defaultdict(list)
    by_artist: dict[str, list[Values]] = defaultdict(list)
    for row in rows:
        track_id, source_id, album_id, artist_id, genres_json, moods_json, labels_json = row[:7]
        # Genres under review are not written; moods and labels are decided on their own.
        genres = tuple(json.loads(genres_json)) if row[7] == "decided" else ()
        moods = tuple(json.loads(moods_json))
        labels = tuple(json.loads(labels_json or "[]"))
        if labels and labels_as == "mood":
            moods, labels = moods + tuple(v for v in labels if v not in moods), ()
        if "track" in levels:
            targets.append(Target("track", source_id, "genre", genres, track_id))
            if moods:
                targets.append(Target("track", source_id, "mood", moods, track_id))
            if labels:
                targets.append(Target("track", source_id, "label", labels, track_id))
        if album_id:
            by_album[album_id].append(genres)
        if artist_id:
            by_artist[artist_id].append(genres)
    if "album" in levels:
        targets += [
            Target("album", a, "genre", majority(g, max_values)) for a, g in by_album.items()
        ]
    if "artist" in levels:
        targets += [
            Target("artist", a, "genre", majority(g, max_values)) for a, g in by_artist.items()
        ]
    return [t for t in targets if t.desired]


def store_view(store: Store, source: str) -> dict[Key, Values]:
    """What the last sync saw at the source, per item: a cheap guess of its current value."""
    view: dict[Key, Values] = {}
    for (
        source_id,
        album_id,
        artist_id,
        genres,
        moods,
        album_genres,
        artist_genres,
    ) in store.conn.execute(
        "SELECT source_id, album_source_id, artist_source_id, genres, moods, album_genres, "
        "artist_genres FROM tracks WHERE source = ? AND removed = 0",
        (source,),
    ):
        view[("track", source_id, "genre")] = tuple(json.loads(genres))
        view[("track", source_id, "mood")] = tuple(json.loads(moods))
        if album_id:
            view.setdefault(("album", album_id, "genre"), tuple(json.loads(album_genres)))
        if artist_id:
            view.setdefault(("artist", artist_id, "genre"), tuple(json.loads(artist_genres)))
    return view


def load_past(store: Store, target: str) -> dict[Key, PastWrite]:
    rows = store.conn.execute(
        "SELECT item_kind, item_id, field, original, written, pending, manual_at, reverted_at "
        "FROM writebacks WHERE target = ?",
        (target,),
    )
    return {
        (kind, item, fld): PastWrite(
            tuple(json.loads(original)),
            _loads(written),
            _loads(pending),
            manual_at is not None,
            reverted_at is not None,
        )
        for kind, item, fld, original, written, pending, manual_at, reverted_at in rows
    }


def _needs_look(target: Target, seen: Values, past: PastWrite | None, mode: str) -> bool:
    """False when the store alone shows there is nothing to do, so Plex is not asked."""
    if past and (past.manual or past.reverted):
        return False
    final = final_value(mode, seen, target.desired)
    nothing_to_write = final is None or same(final, seen)
    if past is None:
        return not nothing_to_write
    in_sync = past.pending is None and same(past.written, seen)
    return not (in_sync and nothing_to_write)


def paused(store: Store) -> dict[str, Any] | None:
    return state.get(store, PAUSE_KEY)


def writeback(
    store: Store,
    plugin: WritebackPlugin,
    config: WritebackConfig,
    *,
    max_values: int = 3,
    dry_run: bool | None = None,
    progress: Progress | None = None,
    cancel: Event | None = None,
) -> WritebackReport:
    """Write every decided track (and album/artist, per `levels`) that needs it.

    `cancel` is checked between requests: the request in flight finishes and is recorded.
    """
    progress = progress or NullProgress()
    dry_run = config.dry_run if dry_run is None else dry_run
    report = WritebackReport()
    pause = paused(store)
    if pause and not dry_run:
        raise GenredError(
            f"writeback is paused since `genred revert` at {pause['at'][:19]}; "
            "run `genred writeback --resume` to write again"
        )
    targets = build_targets(store, plugin.source, config.levels, max_values, config.labels_as)
    past = load_past(store, plugin.name)
    seen = store_view(store, plugin.source)
    candidates = [
        t for t in targets if _needs_look(t, seen.get(t.key, ()), past.get(t.key), config.mode)
    ]
    progress.start("writeback: reading current values", total=None)
    current = plugin.read([t.key for t in candidates]) if candidates else {}
    plan = plan_writes(
        candidates, current, past, config.mode, _batch_size(plugin, config.batch_size)
    )
    report.planned = plan.edits
    counts = {
        "targets": len(targets),
        "checked": len(candidates),
        "edits": len(plan.edits),
        "items": sum(len(e.ids) for e in plan.edits),
        "unchanged": len(targets) - len(candidates) + plan.unchanged,
        "manual": len(plan.manual),
        "held": plan.held,
        "written": 0,
        "failed": 0,
    }
    report.counts = counts
    if dry_run:
        progress.finish(
            f"dry run: {counts['items']} items would change in {counts['edits']} requests"
        )
        return report
    _record_observations(store, plugin.name, plugin.source, plan)
    _clear_settled_failures(store, targets, plan)
    progress.start("writeback", total=counts["items"])
    for edit in plan.edits:
        _record_intent(store, plugin.name, edit)
        landed, failed = _apply(plugin, edit, lock=config.lock)
        files = _taken(plugin)
        for item_id, exc in failed.items():
            log.error(
                "write failed",
                target=plugin.name,
                kind=edit.kind,
                item=item_id,
                error_type=type(exc).__name__,
                error=str(exc),
            )
            failures.record(store, STAGE, f"{edit.kind}:{item_id}", exc)
        counts["failed"] += len(failed)
        if landed or files:
            _record_written(store, plugin.name, plugin.source, edit, landed, files)
        counts["written"] += len(landed)
        progress.advance(len(edit.ids))
        raise_if_cancelled(cancel, "writeback")
    progress.finish(
        f"wrote {counts['written']} items in {counts['edits']} requests; "
        f"{counts['unchanged']} already right, {counts['manual']} edited by hand (left alone)"
        + (f", {counts['failed']} failed" if counts["failed"] else "")
    )
    return report


def _clear_settled_failures(store: Store, targets: Sequence[Target], plan: Plan) -> None:
    """Failures of items this run does not write again are over: the item is right now
    (an earlier write landed after all: a 504 after Plex applied it), held or unchanged."""
    writing = {f"{edit.kind}:{item_id}" for edit in plan.edits for item_id in edit.ids}
    settled = {f"{t.kind}:{t.item_id}" for t in targets} - writing
    if settled:
        failures.clear(store, STAGE, sorted(settled))


def _record_observations(store: Store, target: str, source: str, plan: Plan) -> None:
    """Hand edits become overrides (and genred keeps its hands off); landed writes are
    confirmed, and the store's view of the source takes the value just read."""
    now = utcnow()
    with store.transaction() as conn:
        for item, value in plan.manual:
            conn.execute(
                "UPDATE writebacks SET manual_at = ?, pending = NULL WHERE target = ? AND "
                "item_kind = ? AND item_id = ? AND field = ?",
                (now, target, item.kind, item.item_id, item.field),
            )
            if item.track_id is not None:
                conn.execute(
                    "INSERT INTO overrides (track_id, field, value, origin, created_at) "
                    "VALUES (?, ?, ?, 'plex-edit', ?) ON CONFLICT (track_id, field) DO UPDATE "
                    "SET value = excluded.value, origin = excluded.origin, created_at = excluded.created_at",
                    (item.track_id, item.field, json.dumps(list(value)), now),
                )
            log.info("edited by hand in the target; left alone", kind=item.kind, item=item.item_id)
        for item, value in plan.confirmed:
            conn.execute(
                "UPDATE writebacks SET written = ?, pending = NULL, written_at = ? WHERE target = ? "
                "AND item_kind = ? AND item_id = ? AND field = ?",
                (json.dumps(list(value)), now, target, item.kind, item.item_id, item.field),
            )
            _update_view(conn, source, item.kind, item.field, [item.item_id], _dump(value))


def _dump(values: Values) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _record_intent(store: Store, target: str, edit: Edit) -> None:
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            """
            INSERT INTO writebacks (target, item_kind, item_id, field, original, pending,
                                    first_written_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (target, item_kind, item_id, field) DO UPDATE SET pending = excluded.pending
            """,
            [
                (
                    target,
                    edit.kind,
                    item_id,
                    edit.field,
                    _dump(edit.before.get(item_id, ())),
                    _dump(edit.after[item_id]),
                    now,
                )
                for item_id in edit.ids
            ],
        )


def _batch_size(plugin: WritebackPlugin, configured: int) -> int:
    """`writeback.batch_size`, or less where the plugin says so (its `batch_size`)."""
    return max(1, min(configured, int(getattr(plugin, "batch_size", None) or configured)))


def _apply(
    plugin: WritebackPlugin, edit: Edit, *, lock: bool
) -> tuple[list[str], dict[str, GenredError]]:
    """Send one edit: the ids that landed, and why each other one did not."""
    try:
        plugin.apply(edit, lock=lock)
    except EditPartlyFailed as exc:
        failed = {i: exc.failed[i] for i in edit.ids if i in exc.failed}
        return [i for i in edit.ids if i not in failed], failed
    except GenredError as exc:
        return [], dict.fromkeys(edit.ids, exc)
    return list(edit.ids), {}


def _taken(plugin: WritebackPlugin) -> list[WrittenFile]:
    return plugin.take_written() if isinstance(plugin, WritesFiles) else []


def _record_files(conn: Any, source: str, files: Sequence[WrittenFile]) -> None:
    """The stat genred's writes left (the watcher skips those files) and each track's new
    `source_updated_at` (the next sync sees the file as already known)."""
    file_writes.record(conn, files)
    conn.executemany(
        "UPDATE tracks SET source_updated_at = ? WHERE source = ? AND source_id = ?",
        [(f.source_stamp, source, f.item_id) for f in files if f.source_stamp is not None],
    )


def _record_written(
    store: Store,
    target: str,
    source: str,
    edit: Edit,
    ids: Sequence[str],
    files: Sequence[WrittenFile] = (),
) -> None:
    now = utcnow()
    with store.transaction() as conn:
        for item_id in ids:
            value = _dump(edit.after[item_id])
            conn.execute(
                "UPDATE writebacks SET written = ?, pending = NULL, written_at = ?, reverted_at = NULL "
                "WHERE target = ? AND item_kind = ? AND item_id = ? AND field = ?",
                (value, now, target, edit.kind, item_id, edit.field),
            )
            _update_view(conn, source, edit.kind, edit.field, [item_id], value)
        _record_files(conn, source, files)
        failures.clear(store, STAGE, [f"{edit.kind}:{i}" for i in ids])


# --------------------------------------------------------------------------- revert


def revert(
    store: Store,
    plugin: WritebackPlugin,
    *,
    since: str | None = None,
    items: Iterable[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    batch_size: int = 100,
    progress: Progress | None = None,
) -> WritebackReport:
    """Put back the values genred found before its first write. With no filter, every item,
    and writeback pauses until `genred writeback --resume`."""
    progress = progress or NullProgress()
    wanted = set(items) if items is not None else None
    rows = {
        key: row
        for key, row in load_past(store, plugin.name).items()
        if not row.reverted
        and (row.written is not None or row.pending is not None)
        and (wanted is None or key[1] in wanted)
    }
    if since is not None:
        recent = {
            (k, i, f)
            for k, i, f in store.conn.execute(
                "SELECT item_kind, item_id, field FROM writebacks WHERE target = ? AND "
                "(written_at >= ? OR first_written_at >= ?)",
                (plugin.name, since, since),
            )
        }
        rows = {k: v for k, v in rows.items() if k in recent}
    progress.start("revert: reading current values", total=None)
    current = plugin.read(list(rows)) if rows else {}
    edits, already, changed = plan_reverts(
        rows, current, _batch_size(plugin, batch_size), force=force
    )
    report = WritebackReport(
        edits,
        {
            "items": sum(len(e.ids) for e in edits),
            "edits": len(edits),
            "already": len(already),
            "changed_since": len(changed),
            "reverted": 0,
            "failed": 0,
        },
    )
    for kind, item_id, _ in changed:
        log.warning(
            "changed since genred wrote it; not reverted (use --force)", kind=kind, item=item_id
        )
    if dry_run:
        return report
    if wanted is None and since is None:
        state.put(store, PAUSE_KEY, {"at": utcnow(), "reason": "genred revert"})
    progress.start("revert", total=report.counts["items"])
    for edit in edits:
        landed, failed = _apply(plugin, edit, lock=False)
        files = _taken(plugin)
        for item_id, exc in failed.items():
            log.error(
                "revert failed",
                kind=edit.kind,
                item=item_id,
                error_type=type(exc).__name__,
                error=str(exc),
            )
            failures.record(store, REVERT_STAGE, f"{edit.kind}:{item_id}", exc)
        report.counts["failed"] += len(failed)
        with store.transaction() as conn:
            for item_id in landed:
                key = (edit.kind, item_id, edit.field)
                _record_reverted(store, plugin, [key], edit.after[item_id])
            _record_files(conn, plugin.source, files)
        failures.clear(store, REVERT_STAGE, [f"{edit.kind}:{i}" for i in landed])
        report.counts["reverted"] += len(landed)
        progress.advance(len(edit.ids))
    for key in already:
        _record_reverted(store, plugin, [key], rows[key].original)
    progress.finish(
        f"reverted {report.counts['reverted']} items; {report.counts['already']} were already as "
        f"before; {report.counts['changed_since']} changed by hand since (left alone)"
        + (f", {report.counts['failed']} failed" if report.counts["failed"] else "")
    )
    return report


def _record_reverted(
    store: Store, plugin: WritebackPlugin, keys: list[Key], original: Values
) -> None:
    now = utcnow()
    value = json.dumps(list(original), ensure_ascii=False)
    with store.transaction() as conn:
        for kind, item_id, fld in keys:
            conn.execute(
                "UPDATE writebacks SET reverted_at = ?, pending = NULL WHERE target = ? AND "
                "item_kind = ? AND item_id = ? AND field = ?",
                (now, plugin.name, kind, item_id, fld),
            )
            _update_view(conn, plugin.source, kind, fld, [item_id], value)


def resume(store: Store, target: str) -> int:
    """Lift the pause after a revert; reverted items become eligible again."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM state WHERE key = ?", (PAUSE_KEY,))
        cur = conn.execute(
            "UPDATE writebacks SET reverted_at = NULL, written = NULL "
            "WHERE target = ? AND reverted_at IS NOT NULL",
            (target,),
        )
    return cur.rowcount
