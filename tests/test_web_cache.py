"""The dashboard's caches: a value is kept until another connection changes the store;
then the old one is served while a thread computes the new one."""

from __future__ import annotations

import threading
from pathlib import Path

from genred.store import Store, state
from genred.web.cache import Counts, Fresh, Refresher
from genred.web.db import Database
from tests.waiting import wait_for


def test_figures_are_computed_again_once_the_store_changed(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    Store.open(path).close()
    db = Database(path)
    computed: list[int] = []

    def compute() -> int:
        computed.append(len(computed) + 1)
        return computed[-1]

    fresh = Fresh(db, compute)
    assert fresh.get() == 1 and fresh.get() == 1 and not fresh.stale
    fresh.refresh()
    assert computed == [1]  # nothing changed: nothing computed
    with Store.open(path) as other:
        state.put(other, "something", 1)  # another connection commits
    assert fresh.stale and fresh.get() == 1  # a request never waits for the new figures
    busy = threading.Event()
    busy.set()  # a job runs: the figures wait (up to busy_every)
    refresher = Refresher(fresh, threading.Event(), busy.is_set, busy_every=3600)
    assert refresher.tick() is False and fresh.get() == 1
    busy.clear()  # the job ended
    assert refresher.tick() is True and fresh.get() == 2
    assert refresher.tick() is False  # up to date
    with Store.open(path) as other:
        state.put(other, "something", 2)
    stop = threading.Event()
    Refresher(fresh, stop, every=0.05).start()  # the thread does the same
    try:
        wait_for(lambda: fresh.get() == 3, 10, "the figures computed again")
    finally:
        stop.set()
    assert computed == [1, 2, 3]
    db.close()


def test_counts_are_kept_per_key_until_the_store_changes(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    Store.open(path).close()
    db = Database(path)
    counts = Counts(db, size=2)
    calls: list[str] = []

    def count(key: str) -> int:
        calls.append(key)
        return len(calls)

    assert counts.get("a", lambda: count("a")) == 1
    assert counts.get("a", lambda: count("a")) == 1
    assert counts.get("b", lambda: count("b")) == 2
    with Store.open(path) as other:
        state.put(other, "x", 1)
    assert counts.get("a", lambda: count("a")) == 3  # the store changed: counted again
    counts.get("b", lambda: count("b"))
    counts.get("c", lambda: count("c"))  # the oldest of three goes
    assert counts.get("a", lambda: count("a")) == 6 and calls == ["a", "b", "a", "b", "c", "a"]
    with db.reading() as store:
        assert store.conn.execute("PRAGMA query_only").fetchone()[0] == 1
    db.close()
