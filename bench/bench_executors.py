"""The `ray` executor against the local pool on this machine, in the same run: throughput
and per-file overhead of the extract stage, for the README's guidance on when Ray pays.

- the `handcrafted` extractor in excerpt mode (the default) over the real fixture files
  (GENRED_BENCH_EXECUTORS_COPIES copies of each, default 8), 2 workers / 2 Ray CPUs;
- a near-free extractor (decode 0.5 s of an 8 kHz WAV) over as many files: what each
  executor costs per file, beyond the work;
- the naive way for reference: the extractor in a loop in this process (1 CPU).

Each executor runs ROUNDS times, alternated (GENRED_BENCH_EXECUTORS_ROUNDS, default 2); the
best run of each is shown. Figures: wall time, time to the first result (start-up: workers importing, Ray starting),
steady files per second after it, Ray's start and stop, the per-file overhead (steady
time per file × slots − the work's own time per file), and the memory of everything the
executor started (the total PSS of genred's child processes: workers, or Ray's driver,
its processes and workers).
Run: `pytest -m bench bench/bench_executors.py -s` (needs genred[ray]).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.bench

pytest.importorskip("ray")
np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

COPIES = int(os.environ.get("GENRED_BENCH_EXECUTORS_COPIES", "8"))
ROUNDS = int(os.environ.get("GENRED_BENCH_EXECUTORS_ROUNDS", "2"))
REAL = [
    *sorted(
        p
        for p in (FIXTURES / "audio" / "debian").iterdir()
        if p.suffix in (".ogg", ".mp3", ".opus")
    ),
    FIXTURES / "audio" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.ogg",
]


def store_with(db: Path, files: list[Path]) -> None:
    """A store whose tracks are `files` (the same file may be several tracks)."""
    from genred.store import Store, utcnow

    now = utcnow()
    with Store.open(db) as store, store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES ('folder', ?, ?, ?, ?, ?)",
            [(f"{i:04}", str(p), now, now, now) for i, p in enumerate(files)],
        )


class TreeMemory:
    """The largest total PSS (MB) of this process's descendants (workers, or Ray's driver,
    its processes and workers), sampled every 0.5 s: shared pages counted once."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, sum(_pss(pid) for pid in _descendants(os.getpid())))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pss(pid: int) -> float:
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if row.startswith("Pss:"):
                return int(row.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


class Moments:
    def __init__(self) -> None:
        self.times: list[float] = []

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.times.extend([time.perf_counter()] * n)

    def finish(self, summary: str) -> None:
        pass


def stage(db: Path, data: Path, name: str, plugin: Any, executor: str) -> dict[str, Any]:
    from genred.config import Config
    from genred.hookspecs import PluginContext
    from genred.pipeline.extract import extract
    from genred.store import Store
    from genred_plugins.ray.executor import RayExecutor

    config = Config.model_validate(
        {"data_dir": data, "extract": {"executor": executor, "workers": 2, "batch": 50}}
    )
    ray = RayExecutor(RayExecutor.Config(env={"PYTHONPATH": str(REPO)}), PluginContext(config))
    with Store.open(db) as store:
        store.conn.execute("DELETE FROM features")
        moments = Moments()
        with TreeMemory() as memory:
            began = time.perf_counter()
            counts = extract(
                store, {name: plugin}, config, progress=moments, executors={"ray": ray}
            )
            seconds = time.perf_counter() - began
    assert counts[f"{name}.failed"] == 0, counts
    first, last = moments.times[0], moments.times[-1]
    steady = (len(moments.times) - 1) / (last - first) if last > first else float("nan")
    return {
        "seconds": seconds,
        "first_s": first - began,
        "steady": steady,
        "tail_s": began + seconds - last,  # after the last file: workers or Ray stopping
        "files": len(moments.times),
        "memory_mb": memory.peak,
    }


def direct(plugin: Any, files: list[Path]) -> float:
    """Seconds of work per file, the extractor alone in this process (after a warm-up)."""
    method = plugin.extract
    method(files[0])
    began = time.perf_counter()
    for path in files:
        method(path)
    return (time.perf_counter() - began) / len(files)


def line(label: str, r: dict[str, Any], work_s: float) -> str:
    overhead = 2 / r["steady"] - work_s if r["steady"] == r["steady"] else float("nan")
    return (
        f"  {label:<34} {r['seconds']:6.1f} s  first result {r['first_s']:5.1f} s  "
        f"steady {r['steady']:6.1f} files/s  end {r['tail_s']:4.1f} s  "
        f"overhead {1000 * overhead:6.0f} ms/file  memory {r['memory_mb']:5.0f} MB"
    )


@pytest.mark.timeout(3600)
def test_ray_against_the_local_pool(tmp_path: Path) -> None:
    from genred.config import Config
    from genred.hookspecs import PluginContext
    from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor
    from tests.fake_extractors import FakeExtractor

    cache = Path(tempfile.gettempdir()) / f"genred-tests-numba-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))
    data = tmp_path / "data"
    handcrafted = HandcraftedExtractor(
        HandcraftedExtractor.Config(), PluginContext(Config(data_dir=data))
    )
    assert handcrafted.warm_up()  # kernels compiled: the comparison is of the executors
    files = [p for p in REAL for _ in range(COPIES)]
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    t = np.arange(4000) / 8000
    small = []
    for i in range(len(files)):
        path = tiny / f"{i:03}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + i) * t)).astype(np.float32), 8000)
        small.append(path)
    print(
        f"\nexecutors: {len(files)} files ({len(REAL)} real fixtures × {COPIES}); 2 workers / "
        f"2 Ray CPUs; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start"
    )
    for label, name, plugin, library in (
        ("handcrafted excerpt", "handcrafted", handcrafted, files),
        ("near-free extractor", "fake", FakeExtractor(), small),
    ):
        db = tmp_path / f"{name}.db"
        store_with(db, library)
        work = direct(plugin, library[: min(len(library), 12)])
        print(f"  {label}: {1000 * work:.0f} ms of work per file (in-process loop, 1 CPU)")
        # alternated and repeated (local, ray, ray, local): the best of each, so that other
        # work on a shared machine skews both alike
        runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
        for ex in ("local", "ray", "ray", "local")[: 2 * ROUNDS]:
            runs[ex].append(stage(db, data, name, plugin, ex))
        results = {ex: min(found, key=lambda r: r["seconds"]) for ex, found in runs.items()}
        for ex, result in results.items():
            print(line(f"{label}, {ex} (best of {len(runs[ex])})", result, work))
        local, ray = results["local"], results["ray"]
        print(
            f"  {label}: ray/local wall {ray['seconds'] / local['seconds']:.2f}×, "
            f"start-up +{ray['first_s'] - local['first_s']:.1f} s, steady "
            f"{ray['steady'] / local['steady']:.2f}× the local rate"
        )
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")
