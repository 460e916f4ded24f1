"""The extract stage over a small library in a real store: files that hang, crash the
worker or are broken fail alone; the rest get vectors; kills and reruns lose nothing and
redo nothing. The test extractors are in tests/fake_extractors.py (the workers import it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")
pytest.importorskip("pebble")
pytest.importorskip("genred_plugins.audio.decode")

from genred import errors  # noqa: E402
from genred.config import Config  # noqa: E402
from genred.errors import Cancelled  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred.loader import LoadedPlugins  # noqa: E402
from genred.pipeline.extract import extract as run_extract  # noqa: E402
from genred.records import SourcePage, TrackRecord  # noqa: E402
from genred.store import Store, features, utcnow  # noqa: E402
from genred.worker import Runtime, Worker  # noqa: E402
from genred_plugins.plex.source import PlexSource  # noqa: E402
from tests.conftest import FIXTURES, REPO  # noqa: E402
from tests.fake_extractors import FakeBatchedExtractor, FakeExtractor, summary  # noqa: E402

REAL = FIXTURES / "audio" / "debian" / "wesnoth_revelation.ogg"
GOOD = ("one", "two", "three", "four", "five")


def tone(path: Path, seconds: float, pitch: float) -> Path:
    t = np.arange(int(seconds * 8000)) / 8000
    sf.write(path, (0.4 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), 8000)
    return path


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Good WAVs, a real Ogg, and the troublemakers (by name, see fake_extractors)."""
    folder = tmp_path / "music"
    folder.mkdir()
    for i, name in enumerate(GOOD):
        tone(folder / f"{name}.wav", 0.5 + 0.25 * i, 200.0 + 50 * i)
    for name in ("hang", "crash", "abort", "nan", "wide", "poison"):
        tone(folder / f"{name}.wav", 0.5, 300.0)
    (folder / "notaudio.mp3").write_text("these are not the droids you are looking for\n" * 40)
    return folder


def config_for(tmp_path: Path, **extract: Any) -> Config:
    return Config.model_validate(
        {
            "data_dir": tmp_path / "data",
            "plex": {
                "url": "http://127.0.0.1:32400",
                "token": "x",
                "path_map": {"/plexmedia": str(tmp_path / "music")},
            },
            "extract": {"workers": 2, "timeout": 2, "batch": 3, **extract},
        }
    )


def extract(store: Store, extractors: dict[str, Any], config: Config, **options: Any) -> Any:
    """The extract stage with the sources the daemon would give it (Plex's path_map)."""
    sources = (
        {"plex": PlexSource(PlexSource.Config(), PluginContext(config))} if config.plex else {}
    )
    return run_extract(store, extractors, config, sources=sources, **options)


def add_tracks(store: Store, paths: dict[str, str | None], source: str = "folder") -> None:
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(source, sid, path, now, now, now) for sid, path in paths.items()],
        )


def ids(store: Store) -> dict[str, int]:
    return {sid: i for i, sid in store.conn.execute("SELECT id, source_id FROM tracks")}


def stored(store: Store, name: str = "fake") -> dict[int, Any]:
    rows = store.conn.execute(
        "SELECT track_id, dims, vector FROM features WHERE extractor = ?", (name,)
    )
    return {t: features.from_blob(blob, dims) for t, dims, blob in rows}


def failed(store: Store, name: str = "fake") -> dict[int, tuple[str, str]]:
    rows = store.conn.execute(
        "SELECT item, error_type, message FROM failures WHERE stage = ?", (f"extract:{name}",)
    )
    return {int(item): (kind, message) for item, kind, message in rows}


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def library(tmp_path: Path, music: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data" / "genred.db") as store:
        add_tracks(store, {n: str(music / f"{n}.wav") for n in GOOD})
        add_tracks(store, {"real": str(REAL), "notaudio": str(music / "notaudio.mp3")})
        add_tracks(
            store, {n: str(music / f"{n}.wav") for n in ("hang", "crash", "abort", "nan", "wide")}
        )
        add_tracks(store, {"gone": str(music / "deleted.wav"), "nopath": None})
        add_tracks(
            store,
            {"mapped": "/plexmedia/one.wav", "unmapped": "/srv/plex/music/x.flac"},
            source="plex",
        )
        yield store


# --------------------------------------------------------------------------- one run


@pytest.mark.slow
def test_every_track_gets_features_except_the_ones_that_fail_alone(
    tmp_path: Path, music: Path, library: Store
) -> None:
    log = tmp_path / "calls.log"
    counts = extract(library, {"fake": FakeExtractor(calls_log=log)}, config_for(tmp_path))

    by = ids(library)
    vectors = stored(library)
    good = {*GOOD, "real", "mapped"}
    assert {by[s] for s in good} == set(vectors)
    for sid in GOOD:
        np.testing.assert_array_equal(vectors[by[sid]], summary(music / f"{sid}.wav"))
    np.testing.assert_array_equal(vectors[by["mapped"]], summary(music / "one.wav"))
    np.testing.assert_array_equal(vectors[by["real"]], summary(REAL))

    problems = {sid: failed(library)[by[sid]] for sid in by if sid not in good}
    assert set(failed(library)) == {by[s] for s in problems}
    assert problems["hang"][0] == "ExtractTimedOut"
    assert "no result after 2 s" in problems["hang"][1]
    assert problems["crash"] == ("ExtractorCrashed", problems["crash"][1])
    assert "the worker process died while reading it (exit code 3)" in problems["crash"][1]
    assert problems["abort"][0] == "ExtractorCrashed" and "SIGABRT" in problems["abort"][1]
    assert problems["nan"] == ("InvalidFeatures", "the extractor returned NaN or infinite values")
    assert problems["wide"] == ("InvalidFeatures", "the extractor returned 4 values, not 3")
    assert issubclass(getattr(errors, problems["notaudio"][0]), errors.AudioError)
    assert problems["gone"][0] == "AudioFileMissing" and "deleted.wav" in problems["gone"][1]
    assert problems["nopath"] == (
        "AudioFileMissing",
        f"track {by['nopath']} has no file path at its source",
    )
    assert "plex.path_map" in problems["unmapped"][1]

    assert counts == {"fake.considered": 16, "fake.extracted": 7, "fake.failed": 9}
    # the unreachable ones never went to a worker
    assert not {p for p in calls(log) if "deleted" in p or "plex" in p}

    # a second run: nothing pending; the failures wait for their retry time
    log.unlink()
    again = extract(library, {"fake": FakeExtractor(calls_log=log)}, config_for(tmp_path))
    assert again == {"fake.considered": 0, "fake.extracted": 0, "fake.failed": 0}
    assert calls(log) == []


def test_a_changed_track_or_a_new_version_is_extracted_again(
    tmp_path: Path, music: Path, library: Store
) -> None:
    library.conn.execute("DELETE FROM tracks WHERE source_id NOT IN ('one', 'two', 'three')")
    config = config_for(tmp_path)
    extract(library, {"fake": FakeExtractor()}, config)
    by = ids(library)
    first = dict(library.conn.execute("SELECT track_id, created_at FROM features"))

    tone(music / "two.wav", 1.5, 900.0)  # the file changed; the sync noticed
    library.conn.execute("UPDATE tracks SET changed_at = ? WHERE id = ?", (utcnow(), by["two"]))
    log = tmp_path / "calls.log"
    counts = extract(library, {"fake": FakeExtractor(calls_log=log)}, config)
    assert counts["fake.extracted"] == 1
    assert calls(log) == [str(music / "two.wav")]
    np.testing.assert_array_equal(stored(library)[by["two"]], summary(music / "two.wav"))
    second = dict(library.conn.execute("SELECT track_id, created_at FROM features"))
    assert second[by["one"]] == first[by["one"]] and second[by["two"]] > first[by["two"]]

    extract(library, {"fake": FakeExtractor(version="2")}, config)
    versions = library.conn.execute("SELECT DISTINCT version FROM features").fetchall()
    assert versions == [("2",)]  # the old version's vectors were replaced
    assert features.load_matrix(library, "fake")[0] == sorted(by.values())


def test_limit_takes_the_first_pending_tracks(tmp_path: Path, library: Store) -> None:
    counts = extract(library, {"fake": FakeExtractor()}, config_for(tmp_path), limit=2)
    assert counts == {"fake.considered": 2, "fake.extracted": 2, "fake.failed": 0}
    assert set(stored(library)) == {ids(library)["one"], ids(library)["two"]}


@pytest.mark.slow
def test_batched_extractor_decodes_in_workers_and_runs_batches_here(
    tmp_path: Path, music: Path, library: Store
) -> None:
    add_tracks(library, {"poison": str(music / "poison.wav")})
    plugin = FakeBatchedExtractor()
    counts = extract(library, {"fake": plugin}, config_for(tmp_path))
    by = ids(library)
    assert set(stored(library)) == {by[s] for s in (*GOOD, "real", "mapped", "nan")}
    problems = failed(library)  # ("nan" is only a name to this extractor)
    assert problems[by["wide"]] == ("InvalidFeatures", "the extractor returned 4 values, not 3")
    assert problems[by["poison"]] == ("ValueError", "the model choked on this input")
    assert problems[by["hang"]][0] == "ExtractTimedOut"
    assert problems[by["crash"]][0] == "ExtractorCrashed"
    assert counts["fake.failed"] == 9
    assert max(plugin.batches) == 3  # settings.batch_size
    assert sum(plugin.batches) >= 8  # the poisoned batch was run again one by one
    assert (plugin.loaded, plugin.unloaded) == (1, 1)


def test_cancel_commits_what_is_in_hand_and_stops(tmp_path: Path, library: Store) -> None:
    library.conn.execute("DELETE FROM tracks WHERE source_id NOT IN ('one', 'two', 'three')")
    for i in range(20):
        add_tracks(library, {f"more{i}": str(tmp_path / "music" / "one.wav")})
    cancel = threading.Event()

    class StopAfterTwo:
        done = 0

        def start(self, description: str, total: int | None = None) -> None:
            pass

        def advance(self, n: int = 1) -> None:
            self.done += n
            if self.done == 2:
                cancel.set()

        def finish(self, summary: str) -> None:
            pass

    progress = StopAfterTwo()
    with pytest.raises(Cancelled, match="stopped for shutdown"):
        extract(
            library,
            {"fake": FakeExtractor(delay=0.2)},
            config_for(tmp_path, batch=50),
            progress=progress,
            cancel=cancel,
        )
    assert progress.done == 2
    assert len(stored(library)) == 2  # the two in hand were committed, nothing more ran


# --------------------------------------------------------------------------- kill and resume

KILLED_RUN = """
import sys
from pathlib import Path
from genred.config import Config
from genred.pipeline.extract import extract
from genred.store import Store
from tests.fake_extractors import FakeExtractor

tmp = Path(sys.argv[1])
config = Config.model_validate(
    {"data_dir": tmp / "data", "extract": {"workers": 1, "timeout": 30, "batch": 2}}
)
with Store.open(tmp / "data" / "genred.db") as store:
    extract(store, {"fake": FakeExtractor(calls_log=tmp / "killed.log", delay=0.3)}, config)
"""


@pytest.mark.slow
def test_a_kill_loses_at_most_the_batch_in_hand_and_a_rerun_redoes_nothing(
    tmp_path: Path, music: Path
) -> None:
    with Store.open(tmp_path / "data" / "genred.db") as store:
        add_tracks(store, {f"t{i:02}": str(music / f"{GOOD[i % 5]}.wav") for i in range(12)})
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(tmp_path)],
        cwd=REPO,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    try:
        with Store.open(tmp_path / "data" / "genred.db") as store:
            deadline = time.monotonic() + 60
            while not stored(store) and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the stage, its forkserver and its workers
        process.wait()
    with Store.open(tmp_path / "data" / "genred.db") as store:
        kept = dict(store.conn.execute("SELECT track_id, created_at FROM features"))
        assert 2 <= len(kept) < 12  # a batch (or more) made it, not everything
        log = tmp_path / "rerun.log"
        counts = extract(store, {"fake": FakeExtractor(calls_log=log)}, config_for(tmp_path))
        assert counts["fake.extracted"] == 12 - len(kept)
        by_path = dict(store.conn.execute("SELECT id, path FROM tracks"))
        assert len(calls(log)) == 12 - len(kept)  # nothing stored before was computed again
        after = dict(store.conn.execute("SELECT track_id, created_at FROM features"))
        assert set(after) == set(by_path)
        assert all(after[t] == created for t, created in kept.items())


# --------------------------------------------------------------------------- the daemon


class OneFolderSource:
    """Lists the given files once, as a sync source."""

    supports_paths = False

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def scan(self, request: Any) -> Iterator[SourcePage]:
        ids = sorted(self.files)
        known = request.known(ids)
        records = [
            TrackRecord("folder", sid, title=sid, path=str(self.files[sid]))
            for sid in ids
            if sid not in known
        ]
        yield SourcePage(seen=ids, records=records, total=len(ids))

    def gone(self, source_ids: Any) -> set[str]:
        return set()


def test_the_daemon_extracts_right_after_a_sync_that_brought_tracks(
    tmp_path: Path, music: Path
) -> None:
    plugins = LoadedPlugins()
    plugins.by_kind["sources"]["folder"] = OneFolderSource(
        {n: music / f"{n}.wav" for n in ("one", "two")}
    )
    plugins.by_kind["extractors"]["fake"] = FakeExtractor()
    runtime = Runtime(config_for(tmp_path), plugins)
    worker = Worker(lambda: runtime, threading.Event())
    worker.scheduled("sync")
    with Store.open(runtime.config.db_path) as store:
        jobs = [r for r in store.conn.execute("SELECT job, status, counts FROM runs ORDER BY id")]
        assert [(j, s) for j, s, _ in jobs][:2] == [("sync", "ok"), ("extract", "ok")]
        assert '"fake.extracted": 2' in jobs[1][2]
        assert len(stored(store)) == 2

    plugins.by_kind["extractors"].clear()  # no extractor enabled: the job is skipped
    worker.scheduled("extract")
    with Store.open(runtime.config.db_path) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM runs WHERE job = 'extract'").fetchone() == (
            1,
        )


# --------------------------------------------------------------------------- the CLI


def test_genred_extract_runs_the_enabled_extractor_in_the_foreground(
    tmp_path: Path, music: Path, write_config: Any
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from click.testing import CliRunner

    from genred.cli import cli
    from genred_plugins.audio.embedding_extractor import EmbeddingExtractor, EmbeddingSettings
    from tests.tiny_models import HIDDEN, save_tiny_model

    model = save_tiny_model(tmp_path / "model")
    cfg = write_config(
        f"""
        data_dir: {tmp_path / "data"}
        extract: {{workers: 1}}
        plugins:
          extractors:
            embedding: {{model: {model}, device: cpu, excerpt_seconds: 0.5, excerpts: 2}}
        """
    )
    with Store.open(tmp_path / "data" / "genred.db") as store:
        add_tracks(store, {n: str(music / f"{n}.wav") for n in GOOD[:3]})

    result = CliRunner().invoke(cli, ["extract", "--limit", "2", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "embedding: 2 of 2 pending tracks got features" in result.output

    direct = EmbeddingExtractor(
        EmbeddingSettings(model=str(model), device="cpu", excerpt_seconds=0.5, excerpts=2),
        PluginContext(Config(data_dir=tmp_path / "data")),
    )
    with Store.open(tmp_path / "data" / "genred.db") as store:
        vectors = stored(store, "embedding")
        assert sorted(vectors) == [ids(store)["one"], ids(store)["two"]]
        assert all(v.shape == (HIDDEN,) for v in vectors.values())
        np.testing.assert_allclose(
            vectors[ids(store)["one"]], direct.extract(music / "one.wav"), rtol=1e-5, atol=1e-6
        )
        runs = store.conn.execute("SELECT job, trigger, status FROM runs").fetchall()
        assert runs == [("extract", "cli", "ok")]

    result = CliRunner().invoke(cli, ["extract", "--extractor", "nope", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "extractor nope is not enabled or not available (enabled: embedding" in result.output


# --------------------------------------------------------------------------- pool breakdowns


class InProcessPool:
    """Stands in for pebble's pool: runs each task here at once, or fails as told.

    `plan` says, per pool built, what its n-th task (from 1) does: "broken" (the whole pool
    broke: BrokenProcessPool), "stuck" (never finishes). Other tasks run normally.
    """

    plans: ClassVar[list[dict[int, str]]] = []
    built = 0

    def __init__(self) -> None:
        self.plan = self.plans[InProcessPool.built] if InProcessPool.built < len(self.plans) else {}
        InProcessPool.built += 1
        self.scheduled = 0

    def schedule(self, function: Any, args: Any, timeout: Any) -> Any:
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future: Future[Any] = Future()
        self.scheduled += 1
        what = self.plan.get(self.scheduled)
        if what == "broken":
            future.set_exception(BrokenProcessPool("All workers expired"))
        elif what != "stuck":
            future.set_result(function(*args))
        return future

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def in_process_pool(monkeypatch: pytest.MonkeyPatch) -> type[InProcessPool]:
    from genred.pipeline import filepool

    monkeypatch.setattr(filepool, "_extractor", FakeExtractor())  # what a worker would hold
    InProcessPool.built = 0
    monkeypatch.setattr(filepool.FilePool, "_new_pool", lambda self: InProcessPool())
    monkeypatch.setattr(filepool.FilePool, "STALL_GRACE_S", 0.0)
    return InProcessPool


def pool_outcomes(music: Path, names: list[str], timeout: float = 5.0) -> tuple[dict, Any]:
    from genred.pipeline.filepool import FilePool

    pool = FilePool(FakeExtractor(), "extract", workers=2, timeout=timeout)
    items = [(n, music / f"{GOOD[i % 5]}.wav") for i, n in enumerate(names)]
    return dict(pool.run(items)), pool


def test_a_pool_that_breaks_is_replaced_and_the_files_in_hand_tried_again(
    music: Path, in_process_pool: type[InProcessPool]
) -> None:
    in_process_pool.plans = [{3: "broken"}]
    outcomes, pool = pool_outcomes(music, [f"t{i}" for i in range(6)])
    assert pool.restarts == 1
    assert sorted(outcomes) == [f"t{i}" for i in range(6)]
    assert all(isinstance(v, np.ndarray) for v in outcomes.values())


def test_a_pool_that_gives_nothing_is_replaced(
    music: Path, in_process_pool: type[InProcessPool]
) -> None:
    in_process_pool.plans = [{2: "stuck"}]
    outcomes, pool = pool_outcomes(music, ["a", "b", "c"], timeout=0.1)
    assert pool.restarts == 1
    assert all(isinstance(v, np.ndarray) for v in outcomes.values()) and len(outcomes) == 3


def test_a_file_in_hand_at_two_breakdowns_is_recorded_as_a_crash(
    music: Path, in_process_pool: type[InProcessPool]
) -> None:
    in_process_pool.plans = [{2: "broken"}, {1: "broken"}]
    outcomes, pool = pool_outcomes(music, ["a", "b", "c"])
    assert pool.restarts == 2
    assert isinstance(outcomes["b"], errors.ExtractorCrashed)
    assert "broke twice" in str(outcomes["b"])
    assert isinstance(outcomes["a"], np.ndarray) and isinstance(outcomes["c"], np.ndarray)


def test_workers_that_never_do_a_file_fail_the_stage(
    music: Path, in_process_pool: type[InProcessPool]
) -> None:
    from genred.pipeline.filepool import WorkerSetupFailed

    in_process_pool.plans = [{1: "broken", 2: "broken"}]
    with pytest.raises(WorkerSetupFailed, match="stopped before any file was done"):
        pool_outcomes(music, ["a", "b"])


def test_an_extractor_the_workers_cannot_load_fails_the_stage_not_every_track(
    tmp_path: Path, library: Store
) -> None:
    from genred.pipeline.filepool import WorkerSetupFailed
    from tests.fake_extractors import UnloadableExtractor

    with pytest.raises(WorkerSetupFailed, match="No module named 'bogus_codec'"):
        extract(library, {"fake": UnloadableExtractor()}, config_for(tmp_path))
    assert stored(library) == {}
    reachable = {i for s, i in ids(library).items() if s not in ("gone", "nopath", "unmapped")}
    assert not reachable & set(failed(library))  # no track is blamed for it


def test_each_worker_gets_its_share_of_native_threads(music: Path) -> None:
    from genred.pipeline.filepool import FilePool
    from tests.fake_extractors import ThreadsExtractor

    share = str(max(1, (os.cpu_count() or 1) // 2))
    with FilePool(ThreadsExtractor(), "extract", workers=2, timeout=30) as pool:
        (_, seen), *_ = pool.run([("a", music / "one.wav")])
    assert seen == {
        name: os.environ.get(name, share)  # a limit the user set is kept
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
