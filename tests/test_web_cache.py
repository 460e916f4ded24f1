"""The dashboard's caches: a value is kept until another connection changes the store;
then the old one is served while a thread computes the new one."""

from __future__ import annotations

import threading
from pathlib import Path

from genred.store import Store, state
from genred.web.cache import Counts, Fresh
from genred.web.db import Database
from tests.waiting import wait_for


def test_fresh_serves_the_old_value_while_the_new_one_is_computed(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    Store.open(path).close()
    db = Database(path)
    computed: list[int] = []
    release = threading.Event()

    def compute() -> int:
        if computed:
            release.wait(10)  # the second computation takes its time
        computed.append(len(computed) + 1)
        return computed[-1]

    fresh = Fresh(db, compute, min_age=0.0)
    assert fresh.get() == 1 and fresh.get() == 1 and computed == [1]  # nothing changed
    with Store.open(path) as other:
        state.put(other, "something", 1)  # another connection commits
    assert fresh.get() == 1  # the old value at once; the new one is being computed
    release.set()
    wait_for(lambda: fresh.get() == 2, 10, "the recomputed value")
    assert computed == [1, 2]
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
