"""Stage and instance locks (genred.locks), recorded jobs under them (genred.pipeline.jobs),
and what the CLI does with them: `--no-wait` exits 75, waiting says by whom, `genred status`."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genred import locks
from genred.cli import cli
from genred.errors import Cancelled, GenredError, StageBusy
from genred.pipeline.jobs import close_stale_runs, run_job
from genred.stages import STAGES, lock_of
from genred.store import Store, runs
from tests.waiting import wait_for

# --------------------------------------------------------------------------- helpers


class HeldLock:
    """Holds lock `name` from another thread until released (or the block ends)."""

    def __init__(self, data_dir: Path, name: str, by: str = "daemon") -> None:
        self.data_dir, self.name, self.by = data_dir, name, by
        self.taken = threading.Event()
        self.released = threading.Event()
        self.released_at: datetime | None = None
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        with locks.acquire(self.data_dir, self.name, self.by, wait=False):
            self.taken.set()
            self.released.wait(20)
            self.released_at = datetime.now(UTC)

    def release(self) -> None:
        self.released.set()
        self._thread.join(5)
        assert not self._thread.is_alive()

    def release_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.released.set)
        timer.daemon = True
        timer.start()
        return timer

    def __enter__(self) -> HeldLock:
        self._thread.start()
        assert self.taken.wait(5), "the holder thread could not take the lock"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_rows(db: Path) -> list[tuple[Any, ...]]:
    with Store.open(db) as store:
        return store.conn.execute(
            "SELECT job, trigger, status, counts, error, started_at, ended_at FROM runs ORDER BY id"
        ).fetchall()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "genred.db") as s:
        yield s


# --------------------------------------------------------------------------- Holder


def test_holder_describe() -> None:
    since = "2024-05-01T03:30:12.345678+00:00"
    assert (
        locks.Holder(812, "daemon", since).describe()
        == "the daemon, pid 812, since 2024-05-01 03:30:12 UTC"
    )
    assert (
        locks.Holder(813, "sync", since).describe()
        == "`genred sync`, pid 813, since 2024-05-01 03:30:12 UTC"
    )
    # a lock file without readable holder info (being written, or foreign)
    assert locks.Holder(None, "unknown", "").describe() == "another process"


def test_the_lock_of_each_job() -> None:
    assert {job: lock_of(job) for job in STAGES} == {
        "sync": "sync",
        "extract": "extract",
        "classify": "classify",
        "decide": "decide",
        "writeback": "writeback",
        "revert": "writeback",
        "train": "train",  # writes only its model files, atomically; two never overlap
        "playlists": "playlists",
    }
    assert lock_of("playlists:Focus") == "playlists"  # a saved playlist's own job
    assert lock_of("writeback-dry-run") is None  # a dry run writes nothing


# --------------------------------------------------------------------------- acquire / holder


def test_holder_of_a_lock_never_taken_is_none(tmp_path: Path) -> None:
    assert locks.holder(tmp_path, "sync") is None
    assert not (tmp_path / "locks").exists()  # asking creates nothing


def test_acquire_writes_who_holds_it_and_clears_it_after(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    with locks.acquire(tmp_path, "sync", "sync", wait=False):
        current = locks.holder(tmp_path, "sync")
        assert current is not None
        assert current.pid == os.getpid()
        assert current.by == "sync"
        assert before <= datetime.fromisoformat(current.since) <= datetime.now(UTC)
        content = json.loads(locks.lock_path(tmp_path, "sync").read_text())
        assert content["pid"] == os.getpid() and content["by"] == "sync"
        assert locks.holder(tmp_path, "classify") is None  # one lock per stage
    assert locks.holder(tmp_path, "sync") is None
    assert locks.lock_path(tmp_path, "sync").read_bytes() == b""


def test_lock_files_are_private(tmp_path: Path) -> None:
    with locks.acquire(tmp_path, "decide", "cli"):
        pass
    assert (tmp_path / "locks").stat().st_mode & 0o077 == 0
    assert locks.lock_path(tmp_path, "decide").stat().st_mode & 0o077 == 0


def test_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError), locks.acquire(tmp_path, "sync", "cli"):
        raise ValueError("boom")
    assert locks.holder(tmp_path, "sync") is None
    with locks.acquire(tmp_path, "sync", "cli", wait=False):
        pass


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    with HeldLock(tmp_path, "sync", by="daemon"):
        with pytest.raises(StageBusy) as info, locks.acquire(tmp_path, "sync", "sync", wait=False):
            pytest.fail("got a lock another thread holds")
        message = str(info.value)
        assert message.startswith("sync is already running (the daemon, pid ")
        assert f"pid {os.getpid()}, since " in message
        current = locks.holder(tmp_path, "sync")
        assert current is not None and current.by == "daemon"
    assert locks.holder(tmp_path, "sync") is None


def test_wait_calls_on_wait_once_then_gets_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "POLL_S", 0.05)
    seen: list[locks.Holder | None] = []
    with HeldLock(tmp_path, "classify", by="daemon") as held:
        held.release_after(0.4)
        with locks.acquire(tmp_path, "classify", "classify", on_wait=seen.append):
            current = locks.holder(tmp_path, "classify")
            assert current is not None and current.by == "classify"
            assert held.released.is_set()
    assert len(seen) == 1
    assert seen[0] is not None
    assert (seen[0].pid, seen[0].by) == (os.getpid(), "daemon")


def test_cancel_while_waiting_raises_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    waits: list[locks.Holder | None] = []
    with HeldLock(tmp_path, "sync"):
        timer = threading.Timer(0.2, cancel.set)
        timer.start()
        with (
            pytest.raises(Cancelled, match="sync: gave up waiting for the lock"),
            locks.acquire(tmp_path, "sync", "cli", cancel=cancel, on_wait=waits.append),
        ):
            pytest.fail("got a lock another thread holds")
        timer.join()
        assert len(waits) == 1
        current = locks.holder(tmp_path, "sync")
        assert current is not None and current.by == "daemon"  # untouched


def test_cancel_does_not_matter_when_the_lock_is_free(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with locks.acquire(tmp_path, "sync", "cli", cancel=cancel):
        assert locks.holder(tmp_path, "sync") is not None


def test_lock_file_that_cannot_be_created_is_a_genred_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with (
        pytest.raises(GenredError, match="cannot create the lock file") as info,
        locks.acquire(not_a_dir, "sync", "cli"),
    ):
        pytest.fail("locked inside a file")
    assert not isinstance(info.value, StageBusy)
    assert str(locks.lock_path(not_a_dir, "sync")) in str(info.value)


def test_holder_of_a_lock_with_an_empty_file_is_another_process(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "sync")
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held, but nothing written (yet)
        assert locks.holder(tmp_path, "sync") == locks.Holder(None, "unknown", "")
        with (
            pytest.raises(StageBusy, match=r"^sync is already running \(another process\)$"),
            locks.acquire(tmp_path, "sync", "cli", wait=False),
        ):
            pytest.fail("got a lock another holds")
    finally:
        os.close(fd)
    assert locks.holder(tmp_path, "sync") is None


CHILD = """
import sys, time
from pathlib import Path
from genred import locks
with locks.acquire(Path(sys.argv[1]), "sync", "sync", wait=False):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_lock_of_a_process_killed_with_sigkill_is_free(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        current = wait_for(
            lambda: (h := locks.holder(tmp_path, "sync")) and h.pid == child.pid and h,
            timeout=20,
            what="the child to take the lock",
        )
        assert current.by == "sync"
        with (
            pytest.raises(StageBusy, match=rf"`genred sync`, pid {child.pid}, since "),
            locks.acquire(tmp_path, "sync", "cli", wait=False),
        ):
            pytest.fail("got a lock another process holds")
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    assert locks.holder(tmp_path, "sync") is None
    with locks.acquire(tmp_path, "sync", "cli", wait=False):
        current = locks.holder(tmp_path, "sync")
        assert current is not None and current.pid == os.getpid()


# --------------------------------------------------------------------------- InstanceLock


def test_instance_lock_is_single(tmp_path: Path) -> None:
    first = locks.InstanceLock(tmp_path)
    first.take()
    try:
        current = locks.holder(tmp_path, locks.INSTANCE)
        assert current is not None and (current.pid, current.by) == (os.getpid(), "daemon")
        second = locks.InstanceLock(tmp_path)
        with pytest.raises(StageBusy) as info:
            second.take()
        assert str(info.value) == (
            f"genred is already running on {tmp_path} (pid {os.getpid()}); "
            "stop it first (systemctl stop genred) or give this one another data_dir"
        )
    finally:
        first.release()
    assert locks.holder(tmp_path, locks.INSTANCE) is None
    again = locks.InstanceLock(tmp_path)
    again.take()
    again.release()
    again.release()  # twice is harmless


# --------------------------------------------------------------------------- run_job


def test_run_job_records_an_ok_run_under_its_lock(store: Store, tmp_path: Path) -> None:
    during: list[locks.Holder | None] = []

    def work() -> dict[str, Any]:
        during.append(locks.holder(tmp_path, "sync"))
        return {"added": 3, "seen": 5}

    assert run_job(store, "sync", "cli", work, lock="sync", data_dir=tmp_path, by="sync") == {
        "added": 3,
        "seen": 5,
    }
    assert during[0] is not None and (during[0].pid, during[0].by) == (os.getpid(), "sync")
    assert locks.holder(tmp_path, "sync") is None
    [(job, trigger, status, counts, error, _started, ended)] = run_rows(store.path)
    assert (job, trigger, status, json.loads(counts), error) == (
        "sync",
        "cli",
        "ok",
        {"added": 3, "seen": 5},
        None,
    )
    assert ended is not None


def test_run_job_takes_the_stage_lock_it_is_given(store: Store, tmp_path: Path) -> None:
    held: dict[str, Any] = {}

    def work() -> dict[str, Any]:
        held.update({s: locks.holder(tmp_path, s) for s in ("sync", "writeback", "classify")})
        return {}

    run_job(store, "revert", "cli", work, lock=lock_of("revert"), data_dir=tmp_path)
    assert held["writeback"] is not None and held["writeback"].by == "cli"
    assert held["sync"] is None and held["classify"] is None


def test_run_job_without_data_dir_or_stage_takes_no_lock(store: Store, tmp_path: Path) -> None:
    seen: list[Any] = []
    run_job(
        store, "sync", "cli", lambda: seen.append(locks.holder(tmp_path, "sync")) or {}, lock="sync"
    )
    run_job(
        store,
        "report",  # a job with no stage lock
        "cli",
        lambda: seen.append([locks.holder(tmp_path, s) for s in STAGES]) or {},
        data_dir=tmp_path,
    )
    assert seen == [None, [None] * len(STAGES)]
    assert [r[:3] for r in run_rows(store.path)] == [
        ("sync", "cli", "ok"),
        ("report", "cli", "ok"),
    ]


def test_run_job_busy_without_wait_records_nothing(store: Store, tmp_path: Path) -> None:
    called: list[bool] = []
    with HeldLock(tmp_path, "decide"), pytest.raises(StageBusy, match="decide is already running"):
        run_job(
            store,
            "decide",
            "cli",
            lambda: called.append(True) or {},
            lock="decide",
            data_dir=tmp_path,
            wait=False,
        )
    assert called == []
    assert run_rows(store.path) == []


def test_run_job_records_the_run_only_once_it_has_the_lock(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "POLL_S", 0.05)
    waited: list[locks.Holder | None] = []
    rows_while_waiting: list[int] = []
    result: dict[str, Any] = {}

    def on_wait(holder: locks.Holder | None) -> None:
        waited.append(holder)
        rows_while_waiting.append(len(run_rows(store.path)))

    def job() -> None:
        with Store.open(store.path) as own:
            result["counts"] = run_job(
                own,
                "sync",
                "schedule",
                lambda: {"added": 1},
                lock="sync",
                data_dir=tmp_path,
                on_wait=on_wait,
            )

    with HeldLock(tmp_path, "sync", by="sync") as held:
        worker = threading.Thread(target=job)
        worker.start()
        wait_for(lambda: waited, what="on_wait")
        time.sleep(0.2)  # it keeps polling; still nothing recorded
        assert run_rows(store.path) == []
        held.release()
    worker.join(5)
    assert result["counts"] == {"added": 1}
    assert rows_while_waiting == [0]
    assert waited[0] is not None and waited[0].by == "sync"
    [row] = run_rows(store.path)
    assert row[:3] == ("sync", "schedule", "ok")
    assert held.released_at is not None
    assert datetime.fromisoformat(row[5]) >= held.released_at


def test_run_job_cancelled_while_waiting_records_nothing(store: Store, tmp_path: Path) -> None:
    cancel = threading.Event()
    called: list[bool] = []
    with HeldLock(tmp_path, "classify"):
        threading.Timer(0.1, cancel.set).start()
        with pytest.raises(Cancelled):
            run_job(
                store,
                "classify",
                "schedule",
                lambda: called.append(True) or {},
                lock="classify",
                data_dir=tmp_path,
                cancel=cancel,
            )
    assert called == []
    assert run_rows(store.path) == []


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (Cancelled("sync: stopped for shutdown"), "interrupted", "sync: stopped for shutdown"),
        (KeyboardInterrupt(), "interrupted", None),
        (GenredError("Plex is down"), "failed", "GenredError: Plex is down"),
        (ValueError("boom"), "failed", "ValueError: boom"),
    ],
)
def test_run_job_records_how_the_work_ended(
    store: Store, tmp_path: Path, exc: BaseException, status: str, error: str | None
) -> None:
    def work() -> dict[str, Any]:
        raise exc

    with pytest.raises(type(exc)):
        run_job(store, "sync", "cli", work, lock="sync", data_dir=tmp_path)
    [(job, _trigger, got_status, counts, got_error, _s, ended)] = run_rows(store.path)
    assert (job, got_status, json.loads(counts), got_error) == ("sync", status, {}, error)
    assert ended is not None
    assert locks.holder(tmp_path, "sync") is None  # released either way


# --------------------------------------------------------------------------- stale runs


def test_close_stale_runs_only_closes_runs_whose_lock_is_free(store: Store, tmp_path: Path) -> None:
    stale_sync = runs.start(store, "sync", "schedule")
    live_classify = runs.start(store, "classify", "schedule")
    stale_extract = runs.start(store, "report", "cli")  # no stage lock: cannot be running
    done = runs.start(store, "decide", "cli")
    runs.finish(store, done, "ok", {"decided": 1})
    with HeldLock(tmp_path, "classify"):
        assert close_stale_runs(store, tmp_path, lock_of) == 2
    status = dict(store.conn.execute("SELECT id, status FROM runs").fetchall())
    assert status == {
        stale_sync: "interrupted",
        live_classify: "running",
        stale_extract: "interrupted",
        done: "ok",
    }
    error, ended = store.conn.execute(
        "SELECT error, ended_at FROM runs WHERE id = ?", (stale_sync,)
    ).fetchone()
    assert error == "the process running it stopped" and ended is not None
    assert close_stale_runs(store, tmp_path, lock_of) == 1  # now the classify lock is free too


def test_close_stale_runs_with_nothing_running(store: Store, tmp_path: Path) -> None:
    assert close_stale_runs(store, tmp_path, lock_of) == 0


def test_mark_interrupted_of_some_jobs_or_all(store: Store) -> None:
    ids = {job: runs.start(store, job, "cli") for job in ("sync", "classify", "decide")}
    assert runs.mark_interrupted(store, []) == 0
    assert runs.mark_interrupted(store, ["sync", "nothing"]) == 1
    status = dict(store.conn.execute("SELECT job, status FROM runs").fetchall())
    assert status == {"sync": "interrupted", "classify": "running", "decide": "running"}
    assert runs.mark_interrupted(store) == 2
    assert runs.mark_interrupted(store) == 0
    assert {r[0] for r in store.conn.execute("SELECT status FROM runs")} == {"interrupted"}
    assert len(ids) == 3


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def folder_config(tmp_path: Path, write_config: Callable[[str], Path]) -> tuple[Path, Path]:
    """A config whose only source is an (empty) music folder: a sync needs no network."""
    music = tmp_path / "music"
    music.mkdir()
    data = tmp_path / "data"
    cfg = write_config(
        f"""
        data_dir: {data}
        folders: [{music}]
        plugins:
          sources: [folder]
        logging:
          level: warning
        """
    )
    return cfg, data


def test_cli_sync_no_wait_while_busy_exits_75_naming_the_holder(
    folder_config: tuple[Path, Path],
) -> None:
    cfg, data = folder_config
    with HeldLock(data, "sync", by="daemon"):
        result = CliRunner().invoke(cli, ["sync", "--no-wait", "--config", str(cfg)])
    assert result.exit_code == 75, result.output
    assert result.stderr.startswith(
        f"busy: sync is already running (the daemon, pid {os.getpid()}, since "
    )
    assert result.stdout == ""
    assert run_rows(data / "genred.db") == []  # nothing recorded


def test_cli_sync_waits_for_the_holder_then_runs(
    folder_config: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "POLL_S", 0.1)
    cfg, data = folder_config
    with HeldLock(data, "sync", by="daemon") as held:
        held.release_after(1.0)
        result = CliRunner().invoke(cli, ["sync", "--config", str(cfg)])
        assert held.released.is_set()
    assert result.exit_code == 0, result.output
    assert (
        f"sync is running in the daemon, pid {os.getpid()}, since " in result.stderr
        and "; waiting for it to finish (--no-wait: exit)" in result.stderr
    )
    [row] = run_rows(data / "genred.db")
    assert row[:3] == ("sync", "cli", "ok")
    assert held.released_at is not None
    assert datetime.fromisoformat(row[5]) >= held.released_at


def test_cli_decide_no_wait_while_busy_exits_75(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    data = tmp_path / "data"
    cfg = write_config(f"data_dir: {data}\n")
    with HeldLock(data, "decide", by="decide"):
        result = CliRunner().invoke(cli, ["decide", "--no-wait", "--config", str(cfg)])
    assert result.exit_code == 75, result.output
    assert "busy: decide is already running (`genred decide`, pid " in result.stderr
    result = CliRunner().invoke(cli, ["decide", "--no-wait", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert [r[:3] for r in run_rows(data / "genred.db")] == [("decide", "cli", "ok")]


def status_lines(cfg: Path) -> list[str]:
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_status_shows_whether_the_daemon_runs(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    data = tmp_path / "data"
    cfg = write_config(f"data_dir: {data}\n")
    Store.open(data / "genred.db").close()
    assert "daemon: not running" in status_lines(cfg)
    instance = locks.InstanceLock(data)
    instance.take()
    try:
        assert f"daemon: running (pid {os.getpid()})" in status_lines(cfg)
    finally:
        instance.release()
    assert "daemon: not running" in status_lines(cfg)


def test_status_of_a_daemon_lock_without_holder_info(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    data = tmp_path / "data"
    cfg = write_config(f"data_dir: {data}\n")
    Store.open(data / "genred.db").close()
    path = locks.lock_path(data, locks.INSTANCE)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        daemon = next(line for line in status_lines(cfg) if line.startswith("daemon: "))
    finally:
        os.close(fd)
    assert daemon.startswith("daemon: running")
    assert "None" not in daemon


def test_status_shows_a_running_run_with_a_free_lock_as_interrupted(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    data = tmp_path / "data"
    cfg = write_config(f"data_dir: {data}\n")
    with Store.open(data / "genred.db") as store:
        runs.start(store, "sync", "schedule")  # its process died: nobody holds the sync lock
        runs.start(store, "classify", "chain")  # still running: its lock is held
    with HeldLock(data, "classify"):
        lines = status_lines(cfg)
    rows = {line.split()[0]: line.split()[:3] for line in lines if line.strip()}
    assert rows["sync"] == ["sync", "interrupted", "schedule"]
    assert rows["classify"] == ["classify", "running", "chain"]
    with Store.open(data / "genred.db") as store:  # status only shows it; it changes nothing
        assert {r[0] for r in store.conn.execute("SELECT status FROM runs")} == {"running"}
