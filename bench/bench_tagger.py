"""Tagger benchmark: tracks per second of the `tagger` classifier, against the naive way.

The library: the real music fixtures (the 11 clips of musicnn's reference, 5 to 133 s, plus
the 291 s MP3 and the 361 s Opus) and GENRED_BENCH_TAGGER_GENERATED (default 4) generated
4-minute 44.1 kHz stereo MP3s. Measured in the same run, on the same files, one process:

- the classify stage with the `tagger` plugin (msd-musicnn): the default (60 s from the
  middle of each track) and the whole track, with 1 and 2 onnxruntime threads;
- the naive way, as musicnn itself works: `librosa.load` of the whole file, one
  melspectrogram of it, then one inference call per patch (batch 1);
- first, the reference check on all 11 clips with both models (max difference to
  musicnn's TensorFlow tags; must stay under 1e-4).

Run with `make bench`, or alone: `pytest -m bench bench/bench_tagger.py -s`.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.bench

np = pytest.importorskip("numpy")
pytest.importorskip("onnxruntime")
librosa = pytest.importorskip("librosa")

from genred_plugins.audio.decode import probe_duration  # noqa: E402

GENERATED = int(os.environ.get("GENRED_BENCH_TAGGER_GENERATED", "4"))
MUSICNN = FIXTURES / "models" / "musicnn"
REFERENCE = json.loads((MUSICNN / "expected_tags.json").read_text())["files"]
RATE = 16000


def real_files() -> list[Path]:
    audio = FIXTURES / "audio"
    clips = [next(audio.glob(f"*/{name}")) for name in REFERENCE]
    long_ones = [audio / "debian" / "asc_machine_wars.mp3"]
    long_ones.append(audio / "debian" / "warzone2100_aftermath_track19.opus")
    return [*clips, *long_ones]


def make_library(folder: Path) -> list[Path]:
    from bench.bench_extract import four_minute_mp3

    folder.mkdir(parents=True, exist_ok=True)
    made = [four_minute_mp3(folder / f"generated-{i}.mp3", 100 + i) for i in range(GENERATED)]
    return [*real_files(), *made]


def reference_check() -> float:
    """Largest difference to musicnn's reference over all clips and both models."""
    from genred_plugins.audio.decode import load_audio
    from genred_plugins.audio.tagging.model import OnnxTagger
    from genred_plugins.audio.tagging.spec import resolve_spec

    worst = 0.0
    for model in ("msd", "mtt"):
        tagger = OnnxTagger(resolve_spec(f"{model}-musicnn"))
        for path in real_files()[: len(REFERENCE)]:
            clip = tagger.tag(load_audio(path, sr=RATE)[0], batch_patches=64)
            assert clip is not None
            assert clip.patches == REFERENCE[path.name]["n_patches"]
            worst = max(worst, float(np.abs(clip.probs - REFERENCE[path.name][model]).max()))
    return worst


def stage(files: list[Path], data_dir: Path, **settings: Any) -> dict[str, Any]:
    """The classify stage with the tagger over `files`, in a fresh in-memory store."""
    from genred.config import parse_config
    from genred.hookspecs import PluginContext
    from genred.pipeline.classify import classify
    from genred.store import Store, utcnow
    from genred_plugins.audio.tagger_classifier import TaggerClassifier

    config = parse_config(f"data_dir: {data_dir}\n", env={})
    store = Store.memory()
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES ('folder', ?, ?, ?, ?, ?)",
            [(str(p), str(p), now, now, now) for p in files],
        )
    plugin = TaggerClassifier(TaggerClassifier.Config(**settings), PluginContext(config, store))
    started, cpu = time.perf_counter(), cpu_seconds()
    counts = classify(store, {"tagger": plugin})
    seconds = time.perf_counter() - started
    assert counts["tagger.failed"] == 0, counts
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "tracks": len(files)}


def naive(files: list[Path]) -> dict[str, Any]:
    """musicnn's own way: librosa.load of the whole file, one whole-track melspectrogram,
    then one inference call per patch (its BATCH_SIZE = 1), 1 thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MUSICNN / "msd_musicnn.onnx"), options)
    started, cpu = time.perf_counter(), cpu_seconds()
    patches = 0
    for path in files:
        y, _ = librosa.load(path, sr=RATE)
        mel = librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=512, hop_length=256, n_mels=96)
        log_mel = np.log10(10000 * mel + 1).T.astype(np.float32)
        probs = [
            session.run(["tag_probs"], {"log_mel": log_mel[None, s : s + 187]})[0][0]
            for s in range(0, len(log_mel) - 186, 187)
        ]
        patches += len(probs)
        assert np.isfinite(np.mean(probs, axis=0)).all()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "tracks": len(files)}


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads): on a shared machine it
    varies less than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def line(label: str, result: dict[str, Any]) -> str:
    rate = result["tracks"] / result["seconds"]
    return (
        f"  {label:<48} {result['seconds']:6.1f} s wall  {rate:5.2f} tracks/s  "
        f"{1000 * result['seconds'] / result['tracks']:5.0f} ms/track  "
        f"CPU {1000 * result['cpu'] / result['tracks']:5.0f} ms/track"
    )


@pytest.mark.timeout(1800)
def test_tagger_throughput(tmp_path: Path) -> None:
    started = time.perf_counter()
    worst = reference_check()
    print(f"\nreference: all 11 clips, both models: max |diff| to musicnn = {worst:.1e}")
    assert worst < 1e-4
    print(f"  ({time.perf_counter() - started:.0f} s)")
    files = make_library(tmp_path / "library")
    minutes = sum(probe_duration(p) or 0 for p in files) / 60
    print(f"library: {len(files)} tracks, {minutes:.1f} minutes of audio")
    data = tmp_path / "data"
    stage(files[:2], data)  # warm-up: imports, numba, the first session
    runs = {
        "tagger, default (60 s from the middle), 1 thread": {},
        "tagger, default, 2 threads": {"threads": 2},
        "tagger, whole track, 1 thread": {"seconds": None},
        "tagger, whole track, 2 threads": {"seconds": None, "threads": 2},
    }
    results = {}
    for label, settings in runs.items():
        results[label] = stage(files, data, **settings)
        print(line(label, results[label]), flush=True)
    slow = naive(files)
    print(line("naive: librosa.load, mel, one run per patch", slow))
    whole = results["tagger, whole track, 1 thread"]
    default = results["tagger, default (60 s from the middle), 1 thread"]
    print(
        f"  speed-up over naive: whole track {slow['seconds'] / whole['seconds']:.2f}x "
        f"(CPU {slow['cpu'] / whole['cpu']:.2f}x), default "
        f"{slow['seconds'] / default['seconds']:.2f}x (CPU {slow['cpu'] / default['cpu']:.2f}x); "
        f"{minutes * 60 / whole['seconds']:.0f} s of audio per second (whole track)"
    )
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
