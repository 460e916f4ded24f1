from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from genred.store import Store, StoreError, failures, runs, schema, state, tracks, utcnow


def insert(store: Store, table: str, rows: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Plain INSERTs, one per row (the test's own SQL, not the stages')."""
    for row in [rows] if isinstance(rows, dict) else rows:
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        store.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


def count(store: Store, table: str) -> int:
    return int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def add_track(store: Store, source_id: str = "1", **extra: object) -> int:
    row = {
        "source": "plex",
        "source_id": source_id,
        "title": "T",
        "first_seen_at": utcnow(),
        "changed_at": utcnow(),
        "synced_at": utcnow(),
        **extra,
    }
    with store.transaction():
        insert(store, "tracks", row)
    return int(
        store.conn.execute("SELECT id FROM tracks WHERE source_id=?", (source_id,)).fetchone()[0]
    )


def test_fresh_database_is_migrated_wal_fk_and_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "genred.db"
    with Store.open(path) as store:
        assert store.version == schema.LATEST
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        names = set(store.table_names())
    expected = {
        "tracks",
        "features",
        "predictions",
        "decisions",
        "overrides",
        "writebacks",
        "failures",
        "runs",
        "llm_cache",
        "playlists",
        "state",
    }
    assert expected <= names
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_migration_from_previous_version_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    conn = sqlite3.connect(path, isolation_level=None)
    old = Store(conn, path)
    assert old.migrate(target=schema.LATEST - 1) == schema.LATEST - 1
    track_id = add_track(old, "42", title="Kept")
    old.close()

    with Store.open(path) as store:
        assert store.version == schema.LATEST
        assert store.conn.execute(
            "SELECT title FROM tracks WHERE id=?", (track_id,)
        ).fetchone() == ("Kept",)
        state.put(store, "sync.plex.cursor", {"at": "2026-01-01"})  # a table of the new version
        assert state.get(store, "sync.plex.cursor") == {"at": "2026-01-01"}
        assert store.migrate() == 0  # idempotent


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this genred understands"):
        Store.open(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store.open(path)


def test_failed_migration_leaves_previous_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: object) -> None:
        schema.run_script(db, "CREATE TABLE half_done (x);")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    store = Store(sqlite3.connect(":memory:", isolation_level=None), None)
    with pytest.raises(RuntimeError):
        store.migrate(target=len(schema.MIGRATIONS))
    assert store.version == schema.LATEST
    assert "half_done" not in store.table_names()


def test_transaction_is_all_or_nothing_and_nests() -> None:
    store = Store.memory()
    with pytest.raises(ValueError), store.transaction():
        insert(
            store,
            "tracks",
            [
                {
                    "source": "plex",
                    "source_id": str(i),
                    "first_seen_at": "x",
                    "changed_at": "x",
                    "synced_at": "x",
                }
                for i in range(100)
            ],
        )
        raise ValueError("interrupted mid-batch")
    assert count(store, "tracks") == 0

    with store.transaction():
        add_track(store, "outer")
        with pytest.raises(KeyError), store.transaction():
            add_track(store, "inner")
            raise KeyError("inner fails")
    assert [r[0] for r in store.conn.execute("SELECT source_id FROM tracks")] == ["outer"]


def test_foreign_keys_cascade_from_tracks() -> None:
    store = Store.memory()
    tid = add_track(store)
    with store.transaction():
        insert(
            store,
            "predictions",
            {
                "track_id": tid,
                "classifier": "taxonomy",
                "label_set": "genre",
                "version": "1",
                "labels": "[]",
                "created_at": utcnow(),
            },
        )
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        insert(store, "decisions", {"track_id": 999, "status": "decided", "decided_at": utcnow()})
    with store.transaction():
        store.conn.execute("DELETE FROM tracks WHERE id=?", (tid,))
    assert count(store, "predictions") == 0


def test_runs_are_recorded_and_latest_per_job() -> None:
    store = Store.memory()
    first = runs.start(store, "sync", "cli")
    runs.finish(store, first, "ok", {"added": 3})
    second = runs.start(store, "sync", "schedule")
    runs.finish(store, second, "failed", {"added": 0}, error="PlexUnreachable: timed out")
    dangling = runs.start(store, "writeback", "schedule")
    assert runs.mark_interrupted(store) == 1
    latest = {r.job: r for r in runs.latest(store)}
    assert latest["sync"].id == second
    assert latest["sync"].status == "failed"
    assert latest["sync"].error == "PlexUnreachable: timed out"
    assert latest["writeback"].id == dangling
    assert latest["writeback"].status == "interrupted"


def test_failures_count_attempts_and_back_off() -> None:
    store = Store.memory()
    assert failures.record(store, "extract", "7", OSError("unreadable")) == 1
    assert failures.record(store, "extract", "7", OSError("still unreadable")) == 2
    row = store.conn.execute(
        "SELECT attempts, message, first_failed_at <= last_failed_at, next_retry_at > ? "
        "FROM failures",
        (utcnow(),),
    ).fetchone()
    assert row == (2, "still unreadable", 1, 1)
    assert failures.blocked(store, "extract") == {"7"}
    assert failures.retry_delay(1).total_seconds() == 300
    assert failures.retry_delay(3).total_seconds() == 1200
    assert failures.retry_delay(50).total_seconds() == 86400
    assert failures.counts_by_stage(store) == {"extract": 1}
    failures.clear(store, "extract", ["7"])
    assert failures.blocked(store, "extract") == set()


def test_track_counts_by_state() -> None:
    store = Store.memory()
    a, b, c = (add_track(store, s) for s in "abc")
    with store.transaction() as conn:
        conn.execute("UPDATE tracks SET removed = 1 WHERE id = ?", (c,))
        conn.execute(
            "INSERT INTO decisions (track_id, status, decided_at) VALUES (?, 'decided', 'x'), "
            "(?, 'review', 'x')",
            (a, b),
        )
    counts = tracks.counts(store)
    assert (counts.total, counts.removed, counts.active) == (3, 1, 2)
    assert (counts.decided, counts.needs_review) == (1, 1)
