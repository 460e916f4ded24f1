"""The daemon's jobs (genred.worker): stages as recorded, locked runs; the chain after a sync;
gathered sync requests. A real store in tmp_path, fake plugins that record what they got."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from genred import locks
from genred.config import Config, parse_config
from genred.errors import GenredError
from genred.loader import LoadedPlugins
from genred.records import Prediction, ScanRequest, SourcePage, TrackRecord
from genred.store import Store
from genred.triggers import SourceRequest, SyncRequests
from genred.worker import RETRY_S, Runtime, Worker
from tests.waiting import wait_for

# --------------------------------------------------------------------------- fakes


class FakeSource:
    """Lists `tracks` (source id → genres) in one page; records every request."""

    supports_paths = False

    def __init__(self, name: str, tracks: dict[str, tuple[str, ...]]) -> None:
        self.name = name
        self.tracks = dict(tracks)
        self.requests: list[ScanRequest] = []
        self.scan_requests: list[list[str]] = []
        self.fail: BaseException | None = None
        self.on_page: Callable[[], None] = lambda: None  # as the page is handed over
        self.after_page: Callable[[], None] = lambda: None  # when the next one is asked for

    def path_of(self, sid: str) -> str:
        return f"/music/{self.name}/{sid}.mp3"

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        ids = sorted(self.tracks)
        known = request.known(ids)
        records = [
            TrackRecord(self.name, sid, title=sid, path=self.path_of(sid), genres=self.tracks[sid])
            for sid in ids
            if sid not in known
        ]
        self.on_page()
        yield SourcePage(seen=ids, records=records, total=len(ids))
        self.after_page()

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        return {s for s in source_ids if s not in self.tracks}

    def request_scan(self, paths: Sequence[str], *, cancel: threading.Event | None = None) -> None:
        assert cancel is not None  # the daemon's stop event, so a long scan wait ends on stop
        self.scan_requests.append(list(paths))


class PathSource(FakeSource):
    """A source that rescans by path (like the folder source)."""

    supports_paths = True


class FakeClassifier:
    version = "1"

    def __init__(self, label: str = "Jazz") -> None:
        self.label = label
        self.seen: list[str] = []
        self.during: Callable[[], None] = lambda: None

    def classify(self, tracks: Sequence[TrackRecord], **_: Any) -> Iterator[Prediction]:
        self.during()
        for track in tracks:
            self.seen.append(track.source_id)
            assert track.id is not None
            yield Prediction(track.id, "genre", ((self.label, 0.9),))


class FakeTarget:
    """A writeback target holding genres per item, like Plex (see test_writeback_stage)."""

    def __init__(self, source: FakeSource) -> None:
        self.name = "fake-target"
        self.source = source.name
        self.items = {("track", sid, "genre"): g for sid, g in source.tracks.items()}
        self.applied: list[Any] = []

    def read(self, keys: Sequence[Any]) -> dict[Any, tuple[str, ...]]:
        return {k: self.items.get(k, ()) for k in keys}

    def apply(self, edit: Any, *, lock: bool) -> None:
        self.applied.append(edit)
        for i in edit.ids:
            self.items[(edit.kind, i, edit.field)] = tuple(edit.after[i])


# --------------------------------------------------------------------------- set-up


class Harness:
    def __init__(self, data: Path, schedule: str = "") -> None:
        self.data = data
        self.config: Config = parse_config(f"data_dir: {data}\n{schedule}", env={})
        self.plugins = LoadedPlugins()
        self.cancel = threading.Event()
        self.statuses: list[str] = []
        self.retries: list[float] = []
        self.worker = Worker(
            lambda: Runtime(self.config, self.plugins), self.cancel, self.statuses.append
        )
        self.worker.retry_requested = self.retries.append

    def add(self, kind: str, name: str, plugin: Any) -> Any:
        self.plugins.by_kind[kind][name] = plugin
        return plugin

    def runs(self) -> list[tuple[str, str, str]]:
        return [r[:3] for r in self.run_rows()]

    def run_rows(self) -> list[tuple[Any, ...]]:
        if not self.config.db_path.exists():
            return []
        with Store.open(self.config.db_path) as store:
            return [
                (job, trigger, status, json.loads(counts), error)
                for job, trigger, status, counts, error in store.conn.execute(
                    "SELECT job, trigger, status, counts, error FROM runs ORDER BY id"
                )
            ]

    def tracks(self) -> list[tuple[str, str, int]]:
        with Store.open(self.config.db_path) as store:
            return store.conn.execute(
                "SELECT source, source_id, removed FROM tracks ORDER BY source, source_id"
            ).fetchall()

    def decided(self) -> dict[str, list[str]]:
        with Store.open(self.config.db_path) as store:
            rows = store.conn.execute(
                "SELECT t.source_id, d.genres FROM decisions d JOIN tracks t ON t.id = d.track_id"
            )
            return {sid: json.loads(genres) for sid, genres in rows}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "data")


@pytest.fixture
def source(h: Harness) -> FakeSource:
    return h.add("sources", "fake", FakeSource("fake", {"a": ("rock",), "b": ("pop",)}))


@pytest.fixture
def classifier(h: Harness) -> FakeClassifier:
    return h.add("classifiers", "clf", FakeClassifier())


# --------------------------------------------------------------------------- SyncRequests


def test_sync_requests_gather_per_source_and_take_empties() -> None:
    requests = SyncRequests()
    assert not requests
    assert requests.take() == {}
    requests.add(None, "watch", ["/m/a.mp3"], [("/m/x.mp3", "/m/y.mp3")])
    requests.add(None, "watch", ["/m/b.mp3", "/m/a.mp3"])
    requests.add("plex", "webhook library.new")
    requests.add("plex", "alert timeline")
    assert requests
    taken = requests.take()
    assert taken == {
        None: SourceRequest({"watch"}, {"/m/a.mp3", "/m/b.mp3"}, [("/m/x.mp3", "/m/y.mp3")]),
        "plex": SourceRequest({"webhook library.new", "alert timeline"}, set(), []),
    }
    assert not requests
    assert requests.take() == {}


def test_sync_requests_are_thread_safe() -> None:
    requests = SyncRequests()
    taken: list[dict[str | None, SourceRequest]] = []
    start = threading.Barrier(9)

    def adder(n: int) -> None:
        start.wait()
        for i in range(300):
            requests.add(None if n % 2 else "plex", f"r{n}", [f"/m/{n}/{i}.mp3"])

    def taker() -> None:
        start.wait()
        for _ in range(50):
            taken.append(requests.take())

    threads = [threading.Thread(target=adder, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=taker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    taken.append(requests.take())
    paths = [p for batch in taken for req in batch.values() for p in req.paths]
    assert len(paths) == len(set(paths)) == 8 * 300  # nothing lost, nothing twice


# --------------------------------------------------------------------------- scheduled


def test_sync_with_new_tracks_chains_the_downstream_stages(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    target = h.add("writeback", "fake-target", FakeTarget(source))
    h.worker.scheduled("sync")
    assert h.runs() == [
        ("sync", "schedule", "ok"),
        ("classify", "chain", "ok"),
        ("decide", "chain", "ok"),
        ("writeback", "chain", "ok"),
    ]
    sync_counts = h.run_rows()[0][3]
    assert (sync_counts["added"], sync_counts["seen"]) == (2, 2)
    assert h.tracks() == [("fake", "a", 0), ("fake", "b", 0)]
    assert sorted(classifier.seen) == ["a", "b"]
    assert h.decided() == {"a": ["Jazz"], "b": ["Jazz"]}
    assert target.items == {  # appended at the target: what crossed the wire
        ("track", "a", "genre"): ("rock", "Jazz"),
        ("track", "b", "genre"): ("pop", "Jazz"),
    }
    assert h.statuses[0] == "sync starting (schedule)"
    assert [s for s in h.statuses if "starting" in s] == [
        "sync starting (schedule)",
        "classify starting (chain)",
        "decide starting (chain)",
        "writeback starting (chain)",
    ]
    assert h.statuses[-1] == "idle"
    assert not h.worker.busy


def test_sync_with_nothing_new_does_not_chain(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.worker.scheduled("sync")
    first = len(h.runs())
    classifier.seen.clear()
    h.worker.scheduled("sync")
    rows = h.run_rows()
    assert len(rows) == first + 1
    job, trigger, status, counts, _ = rows[-1]
    assert (job, trigger, status) == ("sync", "schedule", "ok")
    assert (counts["added"], counts["changed"], counts["unchanged"]) == (0, 0, 2)
    assert classifier.seen == []


def test_a_changed_track_chains_again(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.worker.scheduled("sync")
    n = len(h.runs())
    source.tracks["c"] = ("blues",)
    classifier.seen.clear()
    h.worker.scheduled("sync")
    rows = h.runs()[n:]
    assert rows[:3] == [
        ("sync", "schedule", "ok"),
        ("classify", "chain", "ok"),
        ("decide", "chain", "ok"),
    ]
    assert all(trigger == "chain" for _, trigger, _ in rows[1:])
    assert classifier.seen == ["c"]  # only what is new


def test_chain_skips_stages_disabled_in_the_schedule(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data", "schedule:\n  decide: {enabled: false}\n")
    src = h.add("sources", "fake", FakeSource("fake", {"a": ("rock",)}))
    h.add("classifiers", "clf", FakeClassifier())
    h.add("writeback", "fake-target", FakeTarget(src))
    h.worker.scheduled("sync")
    assert [r[0] for r in h.runs()] == ["sync", "classify", "writeback"]


def test_chain_without_a_writeback_plugin_stops_after_decide(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.worker.scheduled("sync")
    assert h.runs() == [
        ("sync", "schedule", "ok"),
        ("classify", "chain", "ok"),
        ("decide", "chain", "ok"),
    ]


def test_scheduled_stage_other_than_sync_runs_alone(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.worker.scheduled("sync")
    n = len(h.runs())
    h.worker.scheduled("classify")
    h.worker.scheduled("decide", trigger="cli")
    assert h.runs()[n:] == [("classify", "schedule", "ok"), ("decide", "cli", "ok")]


def test_failing_sync_is_recorded_and_does_not_chain_or_raise(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    source.fail = RuntimeError("disk on fire")
    h.worker.scheduled("sync")  # never raises into the scheduler
    [(job, trigger, status, counts, error)] = h.run_rows()
    assert (job, trigger, status, counts) == ("sync", "schedule", "failed", {})
    assert error == "RuntimeError: disk on fire"
    assert classifier.seen == []
    assert h.statuses[-1] == "idle"
    assert not h.worker.busy


# --------------------------------------------------------------------------- cancel


def test_cancel_set_skips_every_stage(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.cancel.set()
    h.worker.scheduled("sync")
    h.worker.scheduled("classify")
    assert source.requests == []
    assert h.runs() == []


def test_cancel_during_the_sync_interrupts_it_and_skips_the_chain(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    source.on_page = h.cancel.set  # the daemon is told to stop while a page is in hand
    h.worker.scheduled("sync")
    [(job, _trigger, status, _counts, error)] = h.run_rows()
    assert (job, status) == ("sync", "interrupted")
    assert "stopped for shutdown" in error
    assert h.tracks() == [("fake", "a", 0), ("fake", "b", 0)]  # the committed page stays
    assert classifier.seen == []


def test_cancel_after_the_last_page_keeps_the_sync_and_skips_the_chain(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    source.after_page = h.cancel.set
    h.worker.scheduled("sync")
    assert h.runs() == [("sync", "schedule", "ok")]
    assert classifier.seen == []


def test_cancel_during_classify_skips_the_rest_of_the_chain(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    h.add("writeback", "fake-target", FakeTarget(source))
    classifier.during = h.cancel.set
    h.worker.scheduled("sync")
    assert h.runs() == [("sync", "schedule", "ok"), ("classify", "chain", "interrupted")]


# --------------------------------------------------------------------------- locks


def test_stage_busy_elsewhere_waits_says_so_and_records_after(
    h: Harness, source: FakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "POLL_S", 0.05)
    h.config = parse_config(
        f"data_dir: {h.data}\nschedule:\n  classify: {{enabled: false}}\n"
        "  decide: {enabled: false}\n  writeback: {enabled: false}\n",
        env={},
    )
    taken, release = threading.Event(), threading.Event()

    def cli_sync() -> None:
        with locks.acquire(h.data, "sync", "sync", wait=False):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=cli_sync)
    holder.start()
    assert taken.wait(5)
    job = threading.Thread(target=h.worker.scheduled, args=("sync",))
    job.start()
    try:
        waiting = wait_for(
            lambda: [s for s in h.statuses if s.startswith("sync: waiting for ")],
            what="the waiting status",
        )
        assert waiting[0].startswith(f"sync: waiting for `genred sync`, pid {os.getpid()}, since ")
        assert h.worker.busy
        assert h.worker.wait_idle(0.1) is False
        assert h.runs() == []  # not recorded while it waits
        assert source.requests == []
    finally:
        release.set()
        holder.join(5)
    assert h.worker.wait_idle(5) is True
    job.join(5)
    assert h.runs() == [("sync", "schedule", "ok")]
    assert len(source.requests) == 1
    assert locks.holder(h.data, "sync") is None


def test_cancel_while_waiting_for_the_lock_gives_up(
    h: Harness, source: FakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "POLL_S", 0.05)
    with_lock = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with locks.acquire(h.data, "sync", "sync"):
            with_lock.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert with_lock.wait(5)
    try:
        h.worker.requests.add(None, "watch", ["/music/fake/a.mp3"])
        job = threading.Thread(target=h.worker.requested)
        job.start()
        wait_for(lambda: any("waiting" in s for s in h.statuses), what="waiting")
        h.cancel.set()
        job.join(5)
        assert not job.is_alive()
    finally:
        release.set()
        t.join(5)
    assert h.runs() == []
    assert source.requests == []
    assert h.retries == []  # shutting down: no retry


# --------------------------------------------------------------------------- requested


def test_requested_with_nothing_asked_does_nothing(h: Harness, source: FakeSource) -> None:
    h.worker.requested()
    assert source.requests == []
    assert h.runs() == []
    assert h.statuses == []


def test_requested_sync_serves_every_request_in_one_run_and_chains(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    paths_source = h.add("sources", "paths", PathSource("paths", {"p": ("jazz",)}))
    h.worker.requests.add(None, "watch", ["/music/paths/p.mp3", "/music/fake/a.mp3"])
    h.worker.requests.add("fake", "webhook library.new")
    h.worker.requested()
    assert h.runs()[0] == ("sync", "watch,webhook", "ok")
    # no writeback plugin in this harness: the chain ends with decide
    assert [r[:2] for r in h.runs()[1:]] == [("classify", "chain"), ("decide", "chain")]
    # a source that rescans by path gets the paths; another is asked to rescan them
    assert [r.paths for r in paths_source.requests] == [("/music/fake/a.mp3", "/music/paths/p.mp3")]
    assert source.scan_requests == [["/music/fake/a.mp3", "/music/paths/p.mp3"]]
    assert len(source.requests) == 1 and source.requests[0].paths == ()
    assert not h.worker.requests
    assert h.retries == []


def test_requested_for_one_source_syncs_only_that_one(h: Harness, source: FakeSource) -> None:
    other = h.add("sources", "other", FakeSource("other", {"o": ()}))
    h.worker.requests.add("fake", "alert timeline")
    h.worker.requested()
    assert len(source.requests) == 1
    assert other.requests == []
    assert h.runs()[0] == ("sync", "alert", "ok")


def test_failed_requested_sync_requeues_and_asks_for_a_retry(
    h: Harness, source: FakeSource, classifier: FakeClassifier
) -> None:
    source.fail = GenredError("Plex is down")
    h.worker.requests.add(None, "watch", ["/m/b.mp3", "/m/a.mp3"], [("/m/x.mp3", "/m/y.mp3")])
    h.worker.requests.add(None, "webhook library.new")
    h.worker.requested()
    assert h.run_rows() == [("sync", "watch,webhook", "failed", {}, "GenredError: Plex is down")]
    assert h.retries == [RETRY_S]
    assert classifier.seen == []
    again = h.worker.requests.take()
    assert again == {
        None: SourceRequest(
            {"watch", "webhook library.new"}, {"/m/a.mp3", "/m/b.mp3"}, [("/m/x.mp3", "/m/y.mp3")]
        )
    }
    # served on the retry, and nothing more is queued
    source.fail = None
    h.worker.requests.add(None, "watch", ["/m/a.mp3"])
    h.worker.requested()
    assert h.runs()[1] == ("sync", "watch", "ok")
    assert h.retries == [RETRY_S]
    assert not h.worker.requests


def test_requested_while_cancelled_is_not_requeued(h: Harness, source: FakeSource) -> None:
    h.cancel.set()
    h.worker.requests.add(None, "watch", ["/m/a.mp3"])
    h.worker.requested()
    assert source.requests == []
    assert h.retries == []
    assert h.runs() == []


def test_each_run_reads_the_current_runtime(h: Harness, source: FakeSource) -> None:
    first = h.add("classifiers", "clf", FakeClassifier("Jazz"))
    h.worker.scheduled("sync")
    assert sorted(first.seen) == ["a", "b"]
    plugins = LoadedPlugins()
    plugins.by_kind["sources"]["fake"] = source
    second = FakeClassifier("Blues")
    plugins.by_kind["classifiers"]["clf2"] = second
    h.plugins = plugins  # a reload replaces the runtime as a whole
    h.worker.scheduled("classify")
    assert sorted(second.seen) == ["a", "b"]
    assert len(first.seen) == 2


def test_requested_trigger_names_the_kinds_without_punctuation(
    h: Harness, source: FakeSource
) -> None:
    h.worker.requests.add("fake", "webhook: plex library.new")
    h.worker.requests.add("fake", "alerts: timeline")
    h.worker.requested()
    assert h.runs()[0] == ("sync", "alerts,webhook", "ok")


def test_requested_with_a_blank_reason_still_syncs(h: Harness, source: FakeSource) -> None:
    h.worker.requests.add(None, "", ["/music/fake/a.mp3"])
    h.worker.requested()
    assert [r[0] for r in h.runs()][:1] == ["sync"]
    assert len(source.requests) == 1


# --------------------------------------------------------------------------- budgets


def test_a_spent_llm_budget_stops_the_stage_and_asks_to_run_it_again_later(
    h: Harness, source: FakeSource
) -> None:
    from datetime import UTC, datetime

    from genred.errors import LLMBudgetExhausted

    back_at = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    spent = FakeClassifier()

    def out_of_budget() -> None:
        raise LLMBudgetExhausted("requests per day spent", back_at)

    spent.during = out_of_budget
    h.add("classifiers", "llm", spent)
    later: list[tuple[str, datetime]] = []
    h.worker.run_at = lambda stage, when: later.append((stage, when))
    h.worker.scheduled("sync")
    assert later == [("classify", back_at)]
    classify_run = next(r for r in h.run_rows() if r[0] == "classify")
    assert classify_run[2] == "failed" and "requests per day spent" in classify_run[4]
    assert spent.seen == []  # nothing classified, nothing stored as a failure of the tracks
