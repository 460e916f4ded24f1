"""The `ray` executor on a real local Ray (2 CPUs), with the real fixture audio: the same
outcomes as the local pool (bit for bit for the handcrafted extractor), a worker killed
mid-run, a file that always crashes, SIGTERM to the daemon during a Ray run, and a kill -9
of genred during one, resumed without losing or redoing anything.

Ray takes 3-6 s to start here and 1.5 s to stop, per stage: these tests are slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")
np = pytest.importorskip("numpy")
pytest.importorskip("librosa")
pytest.importorskip("pebble")

from genred.config import Config  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred.pipeline.classify import FileStage, classify  # noqa: E402
from genred.pipeline.extract import extract  # noqa: E402
from genred.store import Store, features, utcnow  # noqa: E402
from genred_plugins.ray.executor import RayExecutor  # noqa: E402
from tests.conftest import FIXTURES, REPO  # noqa: E402
from tests.daemon_process import DaemonProcess, query, runs  # noqa: E402
from tests.fake_extractors import FakeBatchedExtractor, FakeExtractor, KillableExtractor  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.slow

DEBIAN = FIXTURES / "audio" / "debian"
REAL = [
    *sorted(p for p in DEBIAN.iterdir() if p.suffix in (".ogg", ".mp3", ".opus")),
    FIXTURES / "audio" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.ogg",
]


@pytest.fixture(scope="module", autouse=True)
def numba_cache() -> Iterator[Path]:
    """The kernels compile once into a cache kept between runs (as in test_train)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"genred-tests-numba-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUMBA_CACHE_DIR", str(path))
        yield path


def config_for(tmp_path: Path, executor: str = "ray", **extract: Any) -> Config:
    return Config.model_validate(
        {
            "data_dir": tmp_path / "data",
            # timeout: the local pool's first file waits for the kernels' first compile, which
            # on a busy 2-core CI machine took longer than 20 s (4 files timed out there)
            "extract": {"executor": executor, "workers": 2, "timeout": 120, "batch": 3, **extract},
        }
    )


def ray_executor(config: Config, **settings: Any) -> RayExecutor:
    # the workers import the test extractors from the repository
    settings.setdefault("env", {"PYTHONPATH": str(REPO)})
    return RayExecutor(RayExecutor.Config(**settings), PluginContext(config))


def store_with(db: Path, files: dict[str, Path]) -> Store:
    store = Store.open(db)
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES ('folder', ?, ?, ?, ?, ?)",
            [(sid, str(path), now, now, now) for sid, path in files.items()],
        )
    return store


def vectors(store: Store, name: str) -> dict[str, Any]:
    rows = store.conn.execute(
        "SELECT t.source_id, f.dims, f.vector FROM features f JOIN tracks t ON t.id = f.track_id"
        " WHERE f.extractor = ?",
        (name,),
    )
    return {sid: features.from_blob(blob, dims) for sid, dims, blob in rows}


def failed(store: Store, stage: str) -> dict[str, tuple[str, str]]:
    rows = store.conn.execute(
        "SELECT t.source_id, f.error_type, f.message FROM failures f"
        " JOIN tracks t ON CAST(t.id AS TEXT) = f.item WHERE f.stage = ?",
        (stage,),
    )
    return {sid: (kind, message) for sid, kind, message in rows}


def tone(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), rate)
    return path


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


# --------------------------------------------------------------------------- the same outcomes


def test_ray_gives_what_the_local_pool_gives(tmp_path: Path) -> None:
    """handcrafted (per file) bit for bit, a batched extractor (its batch step on a model
    worker), and the tagger through the classify stage: the same as the local pool."""
    from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor
    from genred_plugins.audio.tagger_classifier import TaggerClassifier

    files = {p.stem: p for p in REAL}
    files["gone"] = tmp_path / "deleted.ogg"
    files["poison"] = tone(tmp_path / "poison.wav", 3.0, 22050)
    results: dict[str, dict[str, Any]] = {}
    for executor in ("local", "ray"):
        config = config_for(tmp_path / executor, executor)
        context = PluginContext(config)
        plugins = {
            "handcrafted": HandcraftedExtractor(HandcraftedExtractor.Config(), context),
            "fake": FakeBatchedExtractor(),
        }
        tagger = TaggerClassifier(TaggerClassifier.Config(seconds=30), context)
        ray = ray_executor(config)
        with store_with(tmp_path / executor / "genred.db", files) as store:
            counts = extract(store, plugins, config, executors={"ray": ray})
            stage = FileStage(config, {}, {"ray": ray})
            classified = classify(store, {"tagger": tagger}, files=stage)
            predictions = store.conn.execute(
                "SELECT t.source_id, p.label_set, p.labels FROM predictions p"
                " JOIN tracks t ON t.id = p.track_id ORDER BY 1, 2"
            ).fetchall()
            results[executor] = {
                "counts": counts,
                "classified": classified,
                "handcrafted": vectors(store, "handcrafted"),
                "fake": vectors(store, "fake"),
                "tagger": vectors(store, tagger.feature_extractor),
                "predictions": predictions,
                "failed": failed(store, "extract:handcrafted") | failed(store, "extract:fake"),
            }
        assert ray._driver is None  # released with the stage
    local, remote = results["local"], results["ray"]
    assert remote["counts"] == local["counts"]
    assert local["counts"]["handcrafted.extracted"] == len(REAL) + 1  # the tone too
    assert remote["classified"] == local["classified"]
    for name in ("handcrafted", "fake", "tagger"):
        assert set(remote[name]) == set(local[name]) and local[name]
        for sid, vector in local[name].items():
            np.testing.assert_array_equal(remote[name][sid], vector, err_msg=f"{name} {sid}")
    assert remote["predictions"] == local["predictions"]
    assert remote["failed"] == local["failed"]
    assert local["failed"]["poison"][0] == "ValueError"  # the batch step's failure, alone
    assert local["failed"]["gone"][0] == "AudioFileMissing"


# --------------------------------------------------------------------------- failures


def test_a_worker_killed_mid_run_is_retried_and_a_file_that_always_crashes_is_recorded(
    tmp_path: Path,
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    names = ["a", "b", "victim", "crash", "hang", "c", "d"]
    files = {n: tone(music / f"{n}.wav") for n in names}
    pidfile = tmp_path / "victim.pid"

    def kill_the_victim() -> None:
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "the victim"))
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_victim, daemon=True)
    killer.start()
    config = config_for(tmp_path, timeout=4)
    log = tmp_path / "calls.log"
    plugin = KillableExtractor(pidfile, calls_log=log)
    started = time.monotonic()
    with store_with(tmp_path / "data" / "genred.db", files) as store:
        counts = extract(store, {"fake": plugin}, config, executors={"ray": ray_executor(config)})
        took = time.monotonic() - started
        killer.join(1)
        problems = failed(store, "extract:fake")
        got = vectors(store, "fake")
    assert set(got) == {"a", "b", "victim", "c", "d"}  # the killed worker's file, retried
    assert set(problems) == {"crash", "hang"}
    kind, message = problems["crash"]
    assert kind == "ExtractorCrashed" and "WorkerCrashedError" in message
    assert calls_of(log).count(str(files["crash"])) == 2  # max_retries 1: tried twice, no more
    assert problems["hang"][0] == "ExtractTimedOut"
    assert counts == {"fake.considered": 7, "fake.extracted": 5, "fake.failed": 2}
    assert took < 120


def calls_of(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


# --------------------------------------------------------------------------- kill -9, SIGTERM

KILLED_RUN = """
import sys
from pathlib import Path
from genred.config import Config
from genred.hookspecs import PluginContext
from genred.pipeline.extract import extract
from genred.store import Store
from genred_plugins.ray.executor import RayExecutor
from tests.fake_extractors import FakeExtractor

tmp = Path(sys.argv[1])
config = Config.model_validate(
    {"data_dir": tmp / "data", "extract": {"executor": "ray", "workers": 2, "timeout": 30, "batch": 2}}
)
ray = RayExecutor(RayExecutor.Config(env={"PYTHONPATH": sys.argv[2]}), PluginContext(config))
with Store.open(tmp / "data" / "genred.db") as store:
    extract(store, {"fake": FakeExtractor(calls_log=tmp / "killed.log", delay=0.4)}, config,
            executors={"ray": ray})
"""


def test_kill_9_of_genred_during_a_ray_run_loses_nothing_and_leaves_no_ray_behind(
    tmp_path: Path,
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    files = {f"t{i:02}": tone(music / f"t{i:02}.wav", 0.5 + i / 20) for i in range(16)}
    db = tmp_path / "data" / "genred.db"
    store_with(db, files).close()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(tmp_path), str(REPO)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or query(db, "SELECT COUNT(*) FROM features")[0][0],
            120,
            "a first committed batch",
        )
        assert process.poll() is None
        tree = descendants(process.pid)
        assert len(tree) >= 4  # the driver, Ray's processes, its workers
        process.kill()  # genred only: Ray must notice and go
        process.wait(10)
        wait_for(lambda: not alive(tree), 30, "every Ray process to exit")
    finally:
        if process.poll() is None:
            process.kill()
    with Store.open(db) as store:
        kept = dict(store.conn.execute("SELECT track_id, created_at FROM features"))
        assert 2 <= len(kept) < 16
        config = config_for(tmp_path)
        log = tmp_path / "rerun.log"
        counts = extract(
            store,
            {"fake": FakeExtractor(calls_log=log)},
            config,
            executors={"ray": ray_executor(config)},
        )
        assert counts["fake.extracted"] == 16 - len(kept)
        assert len(calls_of(log)) == 16 - len(kept)  # nothing committed was computed again
        after = dict(store.conn.execute("SELECT track_id, created_at FROM features"))
        assert len(after) == 16 and all(after[t] == c for t, c in kept.items())


def test_sigterm_to_the_daemon_during_a_ray_run_stops_it_cleanly(
    tmp_path: Path, numba_cache: Path
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for copy in range(6):  # enough work to be in the middle of it
        for path in REAL:
            shutil.copy(path, music / f"{copy}-{path.name}")
    config = tmp_path / "genred.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            data_dir: {tmp_path / "data"}
            folders: [{music}]
            plugins:
              sources: [folder]
              extractors:
                handcrafted: {{mode: full}}
              classifiers: [taxonomy]
            extract: {{executor: ray, workers: 2}}
            schedule: {{first_sync_after: 0.2s}}
            web: {{enabled: false}}
            logging: {{format: json}}
            """
        )
    )
    config.chmod(0o600)
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config, env={"NUMBA_CACHE_DIR": str(numba_cache)}) as daemon:
        daemon.wait_ready(60)
        wait_for(lambda: daemon.events("ray driver ready"), 120, "the Ray driver")
        wait_for(
            lambda: query(db, "SELECT COUNT(*) FROM features")[0][0] or daemon.exited(),
            120,
            "a first committed batch",
        )
        assert daemon.proc is not None
        tree = descendants(daemon.proc.pid)
        began = time.monotonic()
        assert daemon.stop(timeout=60) == 0
        took = time.monotonic() - began
        wait_for(lambda: not alive(tree), 20, "every Ray process to exit")
    assert took < 15, f"{took:.1f} s to stop"
    extract_runs = [r for r in runs(db, "extract")]
    assert extract_runs and extract_runs[-1][3] == "interrupted"
    counts = query(db, "SELECT COUNT(*) FROM features")[0][0]
    assert 0 < counts < 6 * len(REAL)
    assert json.loads(extract_runs[-1][4] or "{}") == {}


def test_audio_llm_runs_its_model_on_a_ray_model_worker_with_the_hints(tmp_path: Path) -> None:
    """The model on a Ray actor (loaded there once), fed by reference from the decoding
    tasks, each track's hint (the earlier steps' genres) carried along: the same
    predictions and captions as the local pool."""
    pytest.importorskip("transformers")
    from genred.pipeline.classify import _store_batch
    from genred.records import Prediction
    from tests.scripted_flamingo import ScriptedAudioLLM
    from tests.tiny_models import save_tiny_flamingo

    checkpoint = save_tiny_flamingo(tmp_path / "tiny-mf")
    files = {p.stem: p for p in REAL[:4]}
    results = {}
    for executor in ("local", "ray"):
        config = config_for(tmp_path / executor, executor)
        settings = {"model": str(checkpoint), "device": "cpu", "allow_cpu": True}
        plugin = ScriptedAudioLLM(
            ScriptedAudioLLM.Config(**settings, every_track=True), PluginContext(config)
        )
        loads = tmp_path / f"{executor}-loads.log"
        plugin.load_log = str(loads)
        with store_with(tmp_path / executor / "genred.db", files) as store:
            first = sorted(files)[0]
            track_id = store.conn.execute(
                "SELECT id FROM tracks WHERE source_id = ?", (first,)
            ).fetchone()[0]
            _store_batch(
                store, "tagger", "1", [track_id], [Prediction(track_id, "genre", (("Metal", 0.6),))]
            )
            counts = classify(
                store,
                {"audio-llm": plugin},
                files=FileStage(config, {}, {"ray": ray_executor(config)}),
            )
            # the model loaded once, where the batches ran; never by a decoding worker
            assert len(loads.read_text().split()) == 1, executor
            results[executor] = (
                counts,
                store.conn.execute(
                    "SELECT t.source_id, p.labels FROM predictions p JOIN tracks t"
                    " ON t.id = p.track_id WHERE p.classifier = 'audio-llm' ORDER BY 1"
                ).fetchall(),
                store.conn.execute(
                    "SELECT t.source_id, c.text FROM captions c JOIN tracks t"
                    " ON t.id = c.track_id ORDER BY 1"
                ).fetchall(),
            )
    assert results["ray"] == results["local"]
    counts, predictions, captions = results["ray"]
    assert counts["audio-llm.predicted"] == 4 and counts["audio-llm.failed"] == 0
    by_track = {sid: json.loads(labels) for sid, labels in predictions}
    assert by_track[sorted(files)[0]] == [["Metal", 0.5]]  # the hint reached the model worker
    assert all(v == [["Jazz", 0.5]] for k, v in by_track.items() if k != sorted(files)[0])
    assert len(captions) == 4


def test_old_ray_sessions_are_pruned_but_never_a_running_one(tmp_path: Path) -> None:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="gr-", dir="/tmp"))  # short: Ray's socket paths
    config = config_for(tmp_path)
    ray = RayExecutor(RayExecutor.Config(temp_dir=root), PluginContext(config))
    gone = 2**22 + 12345  # above the default pid_max: no such process
    names = [
        f"session_2026-01-0{day}_10-00-00_000000_{pid}"
        for day, pid in ((1, gone), (2, os.getpid()), (3, gone), (4, gone), (5, gone))
    ]
    for age, name in enumerate(names):
        (root / name).mkdir(parents=True)
        os.utime(root / name, (1_000_000 + age, 1_000_000 + age))
    assert ray._temp_dir() == root
    left = sorted(p.name for p in root.iterdir())
    shutil.rmtree(root)
    assert left == [names[1], names[3], names[4]]  # the live one, and the newest two
