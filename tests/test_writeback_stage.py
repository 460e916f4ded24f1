"""Writeback and revert bookkeeping against an in-memory target (the Plex round trip is in
test_plex_roundtrip.py). Every test checks both the target's state and the store's."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from genred.config import WritebackConfig
from genred.errors import GenredError, PlexUnreachable
from genred.pipeline import writeback as wb
from genred.pipeline.writeplan import Edit, Key, Values
from genred.store import Store, utcnow


class MemoryTarget:
    name = "plex"
    source = "plex"

    def __init__(self, items: dict[Key, Values]) -> None:
        self.items = dict(items)
        self.applied: list[Edit] = []
        self.fail_next = 0
        self.crash_after_apply = False

    def read(self, keys: Sequence[Key]) -> dict[Key, Values]:
        return {k: self.items[k] for k in keys if k in self.items}

    def apply(self, edit: Edit, *, lock: bool) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise PlexUnreachable("Plex kept failing: (503)")
        self.applied.append(edit)
        for i in edit.ids:  # as Plex: one item takes the complete list, several take the change
            key = (edit.kind, i, edit.field)
            if len(edit.ids) == 1:
                self.items[key] = edit.after[i]
            else:
                gone = {r.casefold() for r in edit.remove}
                kept = tuple(v for v in self.items[key] if v.casefold() not in gone)
                self.items[key] = kept + tuple(a for a in edit.add if a not in kept)
        if self.crash_after_apply:
            raise KeyboardInterrupt  # the process dies before it can record the write


def make_store(tracks: list[tuple[str, str, list[str], list[str]]]) -> Store:
    """tracks: (ratingKey, album ratingKey, genres at the source, decided genres)."""
    store = Store.memory()
    with store.transaction() as conn:
        for rk, album, genres, decided in tracks:
            now = utcnow()
            cur = conn.execute(
                "INSERT INTO tracks (source, source_id, album_source_id, genres, album_genres, "
                "first_seen_at, changed_at, synced_at) VALUES ('plex', ?, ?, ?, '[]', ?, ?, ?)",
                (rk, album, json.dumps(genres), now, now, now),
            )
            conn.execute(
                "INSERT INTO decisions (track_id, genres, status, decided_at) VALUES (?, ?, ?, ?)",
                (cur.lastrowid, json.dumps(decided), "decided" if decided else "review", now),
            )
    return store


LIB = [
    ("1", "10", ["electronica", "chill"], ["Electronic"]),
    ("2", "10", ["Electronic"], ["Electronic"]),
    ("3", "10", ["techno"], ["Electronic", "Techno"]),
    ("4", "20", [], ["Jazz"]),
    ("5", "20", ["jazz"], []),  # undecided: never written
]


def target_for(store: Store) -> MemoryTarget:
    items: dict[Key, Values] = {}
    for rk, album, genres in store.conn.execute(
        "SELECT source_id, album_source_id, genres FROM tracks"
    ):
        items[("track", rk, "genre")] = tuple(json.loads(genres))
        items[("album", album, "genre")] = ()
    return MemoryTarget(items)


def test_append_writes_grouped_then_second_run_writes_nothing() -> None:
    store = make_store(LIB)
    target = target_for(store)
    report = wb.writeback(store, target, WritebackConfig(mode="append", levels=["track", "album"]))
    assert target.items[("track", "1", "genre")] == ("electronica", "chill", "Electronic")
    assert target.items[("track", "2", "genre")] == ("Electronic",)  # already right: untouched
    assert target.items[("track", "4", "genre")] == ("Jazz",)
    assert target.items[("album", "10", "genre")] == ("Electronic",)
    assert target.items[("album", "20", "genre")] == ("Jazz",)
    assert report.counts["written"] == 5 and report.counts["failed"] == 0
    first = len(target.applied)
    originals = dict(
        store.conn.execute("SELECT item_id, original FROM writebacks WHERE item_kind='track'")
    )
    assert json.loads(originals["1"]) == ["electronica", "chill"]

    again = wb.writeback(store, target, WritebackConfig(mode="append", levels=["track", "album"]))
    assert len(target.applied) == first
    assert again.counts["written"] == 0 and again.counts["checked"] == 0


def test_replace_and_fill_modes() -> None:
    store = make_store(LIB)
    target = target_for(store)
    wb.writeback(store, target, WritebackConfig(mode="fill"))
    assert target.items[("track", "1", "genre")] == ("electronica", "chill")
    assert target.items[("track", "4", "genre")] == ("Jazz",)
    store2 = make_store(LIB)
    target2 = target_for(store2)
    wb.writeback(store2, target2, WritebackConfig(mode="replace"))
    assert target2.items[("track", "1", "genre")] == ("Electronic",)
    assert target2.items[("track", "3", "genre")] == ("techno", "Electronic")  # tags ignore case
    assert [(e.add, e.remove, e.ids) for e in target2.applied] == [
        (("Electronic",), ("electronica", "chill"), ("3", "1")),  # removals merged
        (("Jazz",), (), ("4",)),
    ]


def test_dry_run_changes_nothing() -> None:
    store = make_store(LIB)
    target = target_for(store)
    report = wb.writeback(store, target, WritebackConfig(mode="replace"), dry_run=True)
    assert target.applied == []
    assert store.conn.execute("SELECT COUNT(*) FROM writebacks").fetchone()[0] == 0
    assert {e.ids for e in report.planned} == {("3", "1"), ("4",)}


def test_failed_request_is_recorded_and_not_marked_written() -> None:
    store = make_store(LIB)
    target = target_for(store)
    target.fail_next = 1
    report = wb.writeback(store, target, WritebackConfig(mode="replace"))
    assert report.counts["failed"] == 2 and report.counts["written"] == 1  # one 2-item request
    failed = [r[0] for r in store.conn.execute("SELECT item FROM failures WHERE stage='writeback'")]
    assert sorted(failed) == ["track:1", "track:3"]
    for item in ("1", "3"):
        row = store.conn.execute(
            "SELECT written, pending FROM writebacks WHERE item_id = ?", (item,)
        ).fetchone()
        assert row[0] is None and row[1] is not None  # intent only: Plex does not have it
        assert target.items[("track", item, "genre")] != ("Electronic",)
    wb.writeback(store, target, WritebackConfig(mode="replace"))  # the retry completes it
    assert (
        store.conn.execute("SELECT COUNT(*) FROM writebacks WHERE written IS NULL").fetchone()[0]
        == 0
    )
    assert store.conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0


def test_crash_between_write_and_record_never_writes_twice() -> None:
    store = make_store(LIB)
    target = target_for(store)
    target.crash_after_apply = True
    with pytest.raises(KeyboardInterrupt):
        wb.writeback(store, target, WritebackConfig(mode="replace"))
    assert len(target.applied) == 1
    target.crash_after_apply = False
    wb.writeback(store, target, WritebackConfig(mode="replace"))
    landed = target.applied[0].ids
    later = [i for e in target.applied[1:] for i in e.ids]
    assert not set(landed) & set(later)  # the interrupted write was confirmed, not repeated
    assert (
        store.conn.execute("SELECT COUNT(*) FROM writebacks WHERE written IS NULL").fetchone()[0]
        == 0
    )


def test_manual_edit_becomes_override_and_is_left_alone() -> None:
    store = make_store(LIB)
    target = target_for(store)
    wb.writeback(store, target, WritebackConfig(mode="replace"))
    target.items[("track", "1", "genre")] = ("Trip-Hop",)  # a person edits it in Plex
    with store.transaction() as conn:  # ... and the next sync sees it
        conn.execute("UPDATE tracks SET genres = '[\"Trip-Hop\"]' WHERE source_id = '1'")
    before = len(target.applied)
    report = wb.writeback(store, target, WritebackConfig(mode="replace"))
    assert report.counts["manual"] == 1 and len(target.applied) == before
    assert target.items[("track", "1", "genre")] == ("Trip-Hop",)
    override = store.conn.execute("SELECT value, origin FROM overrides").fetchone()
    assert override == ('["Trip-Hop"]', "plex-edit")
    wb.writeback(store, target, WritebackConfig(mode="replace"))
    assert target.items[("track", "1", "genre")] == ("Trip-Hop",)


def test_revert_restores_originals_exactly_and_pauses() -> None:
    store = make_store(LIB)
    target = target_for(store)
    originals = dict(target.items)
    wb.writeback(store, target, WritebackConfig(mode="replace", levels=["track", "album"]))
    assert target.items != originals
    report = wb.revert(store, target)
    assert target.items == originals
    assert report.counts["reverted"] == 5
    assert store.conn.execute(
        "SELECT COUNT(*) FROM writebacks WHERE reverted_at IS NULL"
    ).fetchone() == (0,)
    with pytest.raises(GenredError, match="paused"):
        wb.writeback(store, target, WritebackConfig(mode="replace"))
    assert wb.resume(store, "plex") == 5
    wb.writeback(store, target, WritebackConfig(mode="replace", levels=["track", "album"]))
    assert target.items[("track", "1", "genre")] == ("Electronic",)
    wb.revert(store, target)  # the originals survive a second round
    assert target.items == originals


def test_revert_one_track_and_skip_later_hand_edits() -> None:
    store = make_store(LIB)
    target = target_for(store)
    wb.writeback(store, target, WritebackConfig(mode="replace"))
    target.items[("track", "3", "genre")] = ("Hand Edited",)
    report = wb.revert(store, target, items=["1", "3"])
    assert target.items[("track", "1", "genre")] == ("electronica", "chill")
    assert target.items[("track", "3", "genre")] == ("Hand Edited",)
    assert target.items[("track", "4", "genre")] == ("Jazz",)  # not asked for
    assert report.counts == {
        "items": 1,
        "edits": 1,
        "already": 0,
        "changed_since": 1,
        "reverted": 1,
        "failed": 0,
    }
    assert wb.paused(store) is None  # a partial revert does not pause writeback
