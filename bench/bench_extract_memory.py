"""Extraction's memory per worker with a 3-hour file, and the first-run compile wait
(issue 13, items 7 and 8), against the way it was, in the same run.

The library: a 3-hour 44.1 kHz stereo file (WAV; GENRED_BENCH_MEMORY_FORMATS=wav,flac,mp3
adds others, which take minutes to encode) among the real fixture files. The `handcrafted`
extractor runs through the extract stage with 2 workers, in excerpt and full mode, and
the peak RSS (VmHWM) of every worker is read while it runs.

- "before": kernels compiled in each worker with an empty numba cache (as the first run
  did), and the whole STFT magnitude held (`bench/naive_handcrafted.py`);
- "after": the stage as it is: the kernels compiled once by the warm-up (its time is the
  first-run wait a CLI user sees, with "compiling audio kernels, first run only"), then
  workers that only load them; a long track's spectrogram streamed, and its freed pages
  given back before the CQT.

Goals: ≤ 350 MB per worker in excerpt mode, ≤ 500 MB in full mode (MB = 10^6 bytes).
Run: `pytest -m bench bench/bench_extract_memory.py -s` (about 5 minutes here).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bench.bench_extract import WorkerPeaks, store_with
from tests.conftest import FIXTURES

pytestmark = pytest.mark.bench

np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")
pytest.importorskip("pebble")

HOURS = 3
FORMATS = os.environ.get("GENRED_BENCH_MEMORY_FORMATS", "wav").split(",")
GOAL_MB = {"excerpt": 350, "full": 500}
FIXED = [
    FIXTURES / "audio" / "debian" / "asc_machine_wars.mp3",
    FIXTURES / "audio" / "debian" / "wesnoth_revelation.ogg",
    FIXTURES / "audio" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.ogg",
]


def long_file(folder: Path, fmt: str) -> Path:
    """HOURS hours of 44.1 kHz stereo: a tone that changes every minute, over noise."""
    path = folder / f"{HOURS}h.{fmt}"
    subtype = {"wav": "PCM_16", "flac": "PCM_16", "mp3": "MPEG_LAYER_III"}[fmt]
    rate = 44100
    rng = np.random.default_rng(0)
    t = np.arange(rate * 60) / rate
    with sf.SoundFile(path, "w", rate, 2, format=fmt.upper(), subtype=subtype) as out:
        for minute in range(HOURS * 60):
            mono = 0.2 * np.sin(2 * np.pi * 110 * (1 + minute % 7) * t)
            mono += 0.02 * rng.standard_normal(t.size)
            out.write(np.stack([mono, np.roll(mono, 100)], axis=1).astype(np.float32))
    return path


class Progress:
    def __init__(self) -> None:
        self.started: list[tuple[float, str]] = []
        self.first: float | None = None

    def start(self, description: str, total: int | None = None) -> None:
        self.started.append((time.perf_counter(), description))

    def advance(self, n: int = 1) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def finish(self, summary: str) -> None:
        pass


def run(db: Path, data: Path, plugin: Any) -> dict[str, Any]:
    from genred.config import Config
    from genred.pipeline.extract import extract
    from genred.store import Store

    config = Config.model_validate(
        {"data_dir": data, "extract": {"workers": 2, "timeout": "30m", "batch": 20}}
    )
    with Store.open(db) as store:
        store.conn.execute("DELETE FROM features")
        store.conn.execute("DELETE FROM failures")
        progress = Progress()
        with WorkerPeaks() as peaks:
            began = time.perf_counter()
            counts = extract(store, {"handcrafted": plugin}, config, progress=progress)
            seconds = time.perf_counter() - began
    assert counts["handcrafted.failed"] == 0, counts
    said = [text for _, text in progress.started]
    return {
        "seconds": seconds,
        "first_result_s": (progress.first or began) - began,
        "said": said,
        "peak_mb": max(peaks.peaks.values()) * 1.048576,  # MiB → MB
        "workers": len(peaks.peaks),
    }


def plugin(kind: str, mode: str, cache: Path) -> Any:
    from bench.naive_handcrafted import NaiveHandcrafted
    from genred.config import Config
    from genred.hookspecs import PluginContext
    from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor

    cls = NaiveHandcrafted if kind == "before" else HandcraftedExtractor
    os.environ["NUMBA_CACHE_DIR"] = str(cache)  # this run's own cache (the plugin keeps it)
    return cls(cls.Config(mode=mode), PluginContext(Config(data_dir=cache.parent)))


@pytest.mark.timeout(3600)
def test_memory_per_worker_with_a_three_hour_file(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    made = time.perf_counter()
    long = [long_file(music, fmt) for fmt in FORMATS]
    files = [*long, *FIXED]
    print(
        f"\nextract memory: {', '.join(p.name for p in long)} ({HOURS} h, "
        f"{sum(p.stat().st_size for p in long) / 1e9:.1f} GB, made in "
        f"{time.perf_counter() - made:.0f} s) among {len(FIXED)} fixture files; 2 workers; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    db, data = tmp_path / "data" / "genred.db", tmp_path / "data"
    store_with(db, files)
    saved = os.environ.get("NUMBA_CACHE_DIR")
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for mode in ("excerpt", "full"):
            for kind in ("before", "after"):
                cache = Path(tempfile.mkdtemp(prefix=f"numba-{kind}-", dir=tmp_path)) / "numba"
                cache.mkdir()
                result = run(db, data, plugin(kind, mode, cache))
                results[(mode, kind)] = result
                print(
                    f"  {mode:7} {kind:6}: peak RSS per worker {result['peak_mb']:4.0f} MB "
                    f"({result['workers']} workers); cold cache: first result after "
                    f"{result['first_result_s']:5.1f} s, all {len(files)} in "
                    f"{result['seconds']:5.1f} s; progress said {result['said']}"
                )
                if kind == "after":  # the daemon warmed at start: what a user waits for
                    warm = run(db, data, plugin(kind, mode, cache))
                    print(
                        f"  {mode:7} after, kernels ready (warmed at daemon start): first "
                        f"result after {warm['first_result_s']:5.1f} s, peak "
                        f"{warm['peak_mb']:4.0f} MB"
                    )
    finally:
        if saved is None:
            os.environ.pop("NUMBA_CACHE_DIR", None)
        else:
            os.environ["NUMBA_CACHE_DIR"] = saved
    for mode, goal in GOAL_MB.items():
        before, after = results[(mode, "before")], results[(mode, "after")]
        print(
            f"  {mode}: {before['peak_mb']:.0f} → {after['peak_mb']:.0f} MB per worker "
            f"(goal ≤ {goal} MB)"
        )
        assert after["peak_mb"] <= goal
        assert after["said"][0] == "compiling audio kernels, first run only"
