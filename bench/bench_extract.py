"""Extract stage benchmark: tracks per hour, peak RSS per worker, against the naive way.

The library: the real fixture files (MP3, Ogg Vorbis, Opus) and GENRED_BENCH_EXTRACT_GENERATED
(default 6) generated 4-minute 44.1 kHz stereo MP3s (tones, chords and noise). Measured, in
the same run, on the same files:

- the `handcrafted` extractor through the extract stage (worker pool, batched commits), in
  `full` and `excerpt` mode, with 1 and 2 workers: wall time → tracks per hour;
- the peak RSS of each worker process (VmHWM from /proc, read while it runs);
- the extractor alone, in this process (`extract` in a loop): the stage's own cost is the
  difference;
- the naive way: the straightforward computation (`tests/fma_reference.py`: librosa.load at
  the native rate, then every family computed as FMA's script does) one file after the
  other in this process — the ratio is stage (1 worker) against it;
- the `embedding` extractor with a tiny random wav2vec2 on the CPU through the stage: a
  figure for the pipeline's own cost (decode in workers, batches in-process, writes), not a
  model's speed. GENRED_BENCH_EXTRACT_BASE=1 adds a MERT-95M-sized random encoder (768
  hidden, 12 layers, 24 kHz) for what a real model costs on this CPU.

Run with `make bench`, or alone: `pytest -m bench bench/bench_extract.py -s`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.bench

np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")

GENERATED = int(os.environ.get("GENRED_BENCH_EXTRACT_GENERATED", "6"))
WITH_BASE_MODEL = os.environ.get("GENRED_BENCH_EXTRACT_BASE") == "1"
REAL = sorted(
    p
    for p in (FIXTURES / "audio").rglob("*")
    if p.suffix in (".mp3", ".ogg", ".opus") and ".hq." not in p.name and p.stat().st_size > 200_000
)


# --------------------------------------------------------------------------- the library


def four_minute_mp3(path: Path, seed: int) -> Path:
    """A 240 s 44.1 kHz stereo MP3: a chord progression over noise, with a pulse."""
    rate, seconds = 44100, 240
    rng = np.random.default_rng(seed)
    t = np.arange(rate * seconds) / rate
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    chord = np.zeros_like(t)
    for step in range(0, seconds, 4):
        span = (t >= step) & (t < step + 4)
        base = root * 2 ** (rng.choice([0, 3, 5, 7, 10]) / 12)
        for ratio in (1.0, 1.26, 1.5):
            chord[span] += np.sin(2 * np.pi * base * ratio * t[span])
    pulse = (np.sin(2 * np.pi * 2.0 * t) > 0.95) * rng.standard_normal(t.size)
    mono = 0.15 * chord + 0.2 * pulse + 0.02 * rng.standard_normal(t.size)
    stereo = np.stack([mono, np.roll(mono, 200)], axis=1).astype(np.float32)
    sf.write(path, stereo, rate, format="MP3")
    return path


def make_library(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = [four_minute_mp3(folder / f"generated-{i}.mp3", i) for i in range(GENERATED)]
    return [*REAL, *made]


def store_with(db: Path, files: list[Path]) -> None:
    from genred.store import Store, utcnow

    now = utcnow()
    with Store.open(db) as store, store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES ('folder', ?, ?, ?, ?, ?)",
            [(str(p), str(p), now, now, now) for p in files],
        )


# --------------------------------------------------------------------------- measuring


class WorkerPeaks:
    """Peak RSS (VmHWM, MiB) of this process's grandchildren (the pool's workers, children
    of the forkserver), read every 0.2 s while they live."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            seen: dict[int, tuple[int, float]] = {}  # pid → (parent, VmHWM MiB)
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    text = status.read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
                hwm = int(fields["VmHWM"].split()[0]) / 1024 if "VmHWM" in fields else 0.0
                seen[int(fields["Pid"])] = (int(fields["PPid"]), hwm)
            for pid, (parent, hwm) in seen.items():
                if seen.get(parent, (0, 0.0))[0] == me:
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)

    @property
    def largest(self) -> float:
        return max(self.peaks.values(), default=float("nan"))


class Moments:
    """A progress that notes when each track was done."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.times.extend([time.perf_counter()] * n)

    def finish(self, summary: str) -> None:
        pass


def run_stage(db: Path, data_dir: Path, name: str, plugin: Any, workers: int) -> dict[str, Any]:
    from genred.config import Config
    from genred.pipeline.extract import extract
    from genred.store import Store

    config = Config.model_validate(
        {"data_dir": data_dir, "extract": {"workers": workers, "timeout": "10m", "batch": 20}}
    )
    with Store.open(db) as store:
        store.conn.execute("DELETE FROM features")
        store.conn.execute("DELETE FROM failures")
        moments = Moments()
        with WorkerPeaks() as peaks:
            started = time.perf_counter()
            counts = extract(store, {name: plugin}, config, progress=moments)
            seconds = time.perf_counter() - started
    first, last = moments.times[0], moments.times[-1]
    return {
        "seconds": seconds,
        "first_s": first - started,  # start-up: workers importing, a model loading
        "steady_per_hour": (len(moments.times) - 1) / (last - first) * 3600,
        "tracks": counts[f"{name}.extracted"],
        "failed": counts[f"{name}.failed"],
        "worker_peak_mib": peaks.largest,
        "workers": len(peaks.peaks),
    }


def direct(plugin: Any, files: list[Path]) -> dict[str, Any]:
    """The extractor alone: `extract` one file after the other in this process, no stage."""
    plugin.extract(files[0])  # warm: imports and numba's compiled functions
    started = time.perf_counter()
    for path in files:
        plugin.extract(path)
    return {"seconds": time.perf_counter() - started, "tracks": len(files)}


def naive(files: list[Path]) -> dict[str, Any]:
    """The straightforward computation, one file after the other, in this process."""
    import librosa

    from tests.fma_reference import reference_features

    started = time.perf_counter()
    for path in files:
        y, sr = librosa.load(path, sr=None, mono=True)
        reference_features(y, sr)
    return {"seconds": time.perf_counter() - started, "tracks": len(files)}


def per_hour(result: dict[str, Any]) -> float:
    return result["tracks"] / result["seconds"] * 3600


def line(label: str, result: dict[str, Any]) -> str:
    peak = result.get("worker_peak_mib")
    memory = f"  peak RSS/worker {peak:5.0f} MiB" if peak is not None else ""
    steady = ""
    if "steady_per_hour" in result:
        steady = (
            f"  (first track after {result['first_s']:.1f} s, then "
            f"{result['steady_per_hour']:,.0f} tracks/h)"
        )
    return (
        f"  {label:<48} {result['seconds']:6.1f} s  {result['tracks']:3} tracks  "
        f"{per_hour(result):8,.0f} tracks/h{memory}{steady}"
    )


def handcrafted(mode: str) -> Any:
    from genred.config import Config
    from genred.hookspecs import PluginContext, settings_model
    from genred.loader import discover

    info = next((i for i in discover(["extractors"]) if i.name == "handcrafted"), None)
    if info is None or info.cls is None:
        pytest.skip("the handcrafted extractor is not installed")
    settings = settings_model(info.cls).model_validate({"mode": mode})
    return info.cls(settings, PluginContext(Config(data_dir=Path("/tmp/genred-bench"))))


def embedding(model: Path, data_dir: Path) -> Any:
    from genred.config import Config
    from genred.hookspecs import PluginContext
    from genred_plugins.audio.embedding_extractor import EmbeddingExtractor, EmbeddingSettings

    settings = EmbeddingSettings(model=str(model), device="cpu", batch_size=8)
    return EmbeddingExtractor(settings, PluginContext(Config(data_dir=data_dir)))


def base_sized_model(where: Path) -> Path:
    """A randomly initialised encoder the size of MERT-v1-95M, at MERT's 24 kHz."""
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.HubertModel(transformers.HubertConfig()).save_pretrained(where)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=24000).save_pretrained(where)
    return where


# --------------------------------------------------------------------------- the benchmark


@pytest.mark.timeout(1800)
def test_extract_throughput(tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    pytest.importorskip("pebble")
    files = make_library(tmp_path / "music")
    db, data = tmp_path / "data" / "genred.db", tmp_path / "data"
    store_with(db, files)
    print(
        f"\nextract: {len(files)} files ({len(REAL)} real fixtures, {GENERATED} generated "
        f"4-minute MP3s); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start"
    )

    results: dict[str, dict[str, Any]] = {}
    for mode in ("full", "excerpt"):
        plugin = handcrafted(mode)
        results[f"{mode}/direct"] = direct(plugin, files)
        print(line(f"handcrafted {mode}, in-process loop", results[f"{mode}/direct"]))
        for workers in (1, 2):
            result = run_stage(db, data, "handcrafted", plugin, workers)
            assert result["failed"] == 0 and result["tracks"] == len(files)
            results[f"{mode}/{workers}"] = result
            print(line(f"handcrafted {mode}, {workers} worker(s)", result))

    reference = naive(files)
    print(line("naive: straightforward FMA, 1 process", reference))
    for mode in ("full", "excerpt"):
        for how in ("direct", 1, 2):
            ratio = reference["seconds"] / results[f"{mode}/{how}"]["seconds"]
            what = "in-process loop" if how == "direct" else f"stage, {how} worker(s)"
            print(f"  {mode}, {what}: {ratio:.1f}× the naive way's throughput")

    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.tiny_models import save_tiny_model

    measured: list[tuple[str, Callable[[], Path]]] = [
        ("embedding, tiny wav2vec2 (CPU)", lambda: save_tiny_model(tmp_path / "tiny"))
    ]
    if WITH_BASE_MODEL:
        measured.append(
            ("embedding, MERT-95M-sized (CPU)", lambda: base_sized_model(tmp_path / "base"))
        )
    for label, build in measured:
        plugin = embedding(build(), data)
        plugin.load()
        print(line(f"{label}, in-process loop", direct(plugin, files)))
        result = run_stage(db, data, "embedding", plugin, 2)
        assert result["failed"] == 0 and result["tracks"] == len(files)
        print(line(f"{label}, stage, 2 workers", result))
    print(
        f"  (load average {os.getloadavg()[0]:.1f} at the end: other work on the machine skews all this)"
    )
