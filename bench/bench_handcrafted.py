"""`handcrafted` extractor benchmark: the straightforward librosa computation (FMA's
`features.py`, as tests/fma_reference.py) against our `full` and `excerpt` modes, in the
same run, on the same files: every distinct real fixture recording and three generated
4-minute 44.1 kHz stereo tracks (MP3, FLAC, Ogg Vorbis: fixture clips and a synthesised
piece of chords and drums).

Measured in one fresh process with one thread for BLAS/OpenMP (a worker's share of the
machine), as process CPU seconds (steadier than wall time on a shared machine), after a
warm-up that loads numba's compiled functions. "straightforward" is `librosa.load` + the
reference; ours is `load_audio` + `track_features`, both decoding included. The maximum
relative difference of `full` is over all 518 values of every file; the excerpt's
deviation is the median relative difference of its means and medians from `full`'s.

Run with `make bench` (or `pytest -m bench bench/bench_handcrafted.py -s`);
GENRED_BENCH_QUICK=1 takes only the generated tracks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
PLANS = {"excerpt 30s": (1, 30.0), "excerpt 2x30s": (2, 30.0)}


# --------------------------------------------------------------------------- the files


def real_files() -> list[Path]:
    """Each real recording once: the 44.1 kHz stereo `.hq.ogg` where there is one."""
    from tests.audio_files import REAL_AUDIO

    chosen = []
    for path in REAL_AUDIO:
        if path.suffixes[-2:] != [".hq", ".ogg"] and path.with_suffix(".hq.ogg").exists():
            continue
        chosen.append(path)
    return chosen


def generated_files(folder: Path) -> list[Path]:
    """Three 4-minute 44.1 kHz stereo tracks: fixture clips joined (MP3), a synthesised
    piece (FLAC) and the same piece transposed (Ogg Vorbis)."""
    import numpy as np

    from genred_plugins.audio.decode import load_audio
    from tests.audio_files import AUDIO, write_lossless, write_lossy

    rate, seconds = 44100, 240
    clips = [load_audio(p)[0] for p in sorted((AUDIO / "librosa-data").glob("*.hq.ogg"))]
    joined = np.tile(np.concatenate(clips), 3)[: rate * seconds]
    stereo = np.stack([joined, np.roll(joined, 300) * 0.8], axis=1)
    made = [write_lossy(folder / "clips-4min.mp3", stereo, rate, "mp3")]
    for name, shift, subtype in (("synth-4min.flac", 0, "PCM_16"), ("synth-4min.ogg", 3, None)):
        made.append(write_lossless(folder / name, synthesised(seconds, rate, shift), rate, subtype))
    return made


def synthesised(seconds: int, rate: int, transpose: int) -> Any:
    """Chords of harmonic tones (a new one every 2 s), a bass line and noise drums."""
    import numpy as np

    rng = np.random.default_rng(transpose)
    t = np.arange(rate * 2) / rate
    envelope = np.exp(-t * 1.5)
    out = []
    progression = [0, 5, 7, 3, 8, 10, 2, 7]
    for bar in range(seconds // 2):
        root = 220 * 2 ** ((progression[bar % 8] + transpose) / 12)
        chord = sum(
            np.sin(2 * np.pi * root * 2 ** (step / 12) * h * t) / h
            for step in (0, 4, 7)
            for h in (1, 2, 3)
        )
        bass = np.sin(2 * np.pi * root / 4 * t)
        drums = np.zeros_like(t)
        for beat in range(4):
            at = beat * rate // 2
            hit = rng.standard_normal(rate // 10) * np.exp(-np.arange(rate // 10) / 800)
            drums[at : at + hit.size] += hit
        mix = 0.12 * chord * envelope + 0.2 * bass + 0.15 * drums
        out.append(np.stack([mix, np.roll(mix, 200)], axis=1))
    return (np.concatenate(out) * 0.8).astype("float32")


# --------------------------------------------------------------------------- measuring


def measure(paths: list[str]) -> list[dict[str, Any]]:
    """In this (fresh, single-threaded) process: each way on each file, CPU seconds."""
    import time

    import librosa
    import numpy as np

    from genred_plugins.audio.decode import load_audio, probe_duration
    from genred_plugins.audio.excerpts import excerpt_windows, load_windows
    from genred_plugins.audio.handcrafted import FEATURE_NAMES, track_features
    from tests.fma_reference import reference_features

    def timed(work: Any) -> tuple[float, Any]:
        started = time.process_time()
        result = work()
        return time.process_time() - started, result

    warm, rate = load_audio(paths[0], duration=5.0)  # numba's functions, loaded once
    reference_features(warm, rate)
    track_features([warm], rate)
    central = [i for i, n in enumerate(FEATURE_NAMES) if ".mean." in n or ".median." in n]
    rows = []
    for path in paths:
        row: dict[str, Any] = {"file": Path(path).name}
        decode, (samples, rate) = timed(lambda p=path: librosa.load(p, sr=None))
        features, reference = timed(lambda y=samples, r=rate: reference_features(y, r))
        row |= {"seconds": len(samples) / rate, "rate": rate}
        row["straightforward"] = {"total": decode + features, "decode": decode}
        decode, (samples, rate) = timed(lambda p=path: load_audio(p))
        features, full = timed(lambda y=samples, r=rate: track_features([y], r))
        row["full"] = {"total": decode + features, "decode": decode}
        scale = np.maximum(np.abs(reference), 1e-6)
        row["full_max_rel_diff"] = float(np.max(np.abs(full - reference) / scale))
        for name, (count, length) in PLANS.items():
            windows = excerpt_windows(probe_duration(path), count, length)
            decode, (parts, rate) = timed(lambda p=path, w=windows: load_windows(p, w))
            features, vector = timed(lambda w=parts, r=rate: track_features(w, r))
            deviation = np.abs(vector - full)[central] / (np.abs(full[central]) + 1e-3)
            row[name] = {"total": decode + features, "decode": decode}
            row[f"{name} deviation"] = float(np.median(deviation))
        rows.append(row)
    return rows


def in_fresh_process(paths: list[Path]) -> list[dict[str, Any]]:
    code = textwrap.dedent(
        f"""
        import json
        from bench.bench_handcrafted import measure
        print(json.dumps(measure({[str(p) for p in paths]!r})))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the report


def report(rows: list[dict[str, Any]], title: str) -> dict[str, float]:
    modes = ["straightforward", "full", *PLANS]
    print(f"\n{title}: CPU seconds per file (decode share), speedup over straightforward")
    header = f"{'file':42} {'audio':>6} " + " ".join(f"{m:>20}" for m in modes)
    print(header + f" {'full maxrel':>11} {'exc.dev':>7}")
    sums = {m: 0.0 for m in modes}
    decode_sums = {m: 0.0 for m in modes}
    for row in rows:
        cells = []
        base = row["straightforward"]["total"]
        for m in modes:
            total, decode = row[m]["total"], row[m]["decode"]
            sums[m] += total
            decode_sums[m] += decode
            speed = "" if m == "straightforward" else f" {base / total:5.1f}x"
            cells.append(f"{total:7.2f} ({100 * decode / total:3.0f}%){speed:>7}")
        print(
            f"{row['file'][:42]:42} {row['seconds']:5.0f}s "
            + " ".join(f"{c:>20}" for c in cells)
            + f" {row['full_max_rel_diff']:11.1e} {row['excerpt 30s deviation']:7.3f}"
        )
    minutes = sum(r["seconds"] for r in rows) / 60
    print(f"{'all':42} {minutes * 60:5.0f}s")
    speedups = {}
    for m in modes:
        per_4min = sums[m] / minutes * 4
        speed = sums["straightforward"] / sums[m]
        speedups[m] = speed
        print(
            f"  {m:16} {per_4min:6.2f} s per 4 minutes of audio, decode {100 * decode_sums[m] / sums[m]:3.0f}%,"
            f" {speed:5.1f}x, ~{3600 / per_4min:,.0f} four-minute tracks per hour per core"
        )
    return speedups


def test_handcrafted_against_straightforward(tmp_path: Path) -> None:
    generated = generated_files(tmp_path)
    real = [] if os.environ.get("GENRED_BENCH_QUICK") else real_files()
    rows = in_fresh_process(generated + real)
    made = report(rows[: len(generated)], "Generated 4-minute tracks (44.1 kHz stereo)")
    if real:
        report(rows[len(generated) :], "Real fixture recordings")
    worst = max(r["full_max_rel_diff"] for r in rows)
    print(f"\nfull mode: largest relative difference from straightforward, any value: {worst:.1e}")
    assert worst < 1e-4
    assert made["full"] > 1 and made["excerpt 30s"] > made["full"]
