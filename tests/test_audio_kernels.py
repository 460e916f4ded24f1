"""Extraction's memory and its first-run kernel compilation (issue 13, items 7 and 8).

- The compile happened in every worker at once, silently (20 s here, up to 2 min
  elsewhere), each worker ~120 MB higher while LLVM ran: now the stage says so and
  compiles once, in a process of its own, before the workers start (and the daemon does
  it in the background at start); a fresh worker then only loads the cache.
- Full mode held the whole STFT magnitude (50 MB for 300 s at 22 kHz, twice that at
  44.1 kHz) while computing the families: now a long track's spectrogram is streamed,
  with bit-identical values.

The peak RSS per worker with a 3-hour file is measured in bench/bench_extract_memory.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("librosa")
pytest.importorskip("pebble")

from genred.config import Config  # noqa: E402
from genred.pipeline.extract import extract  # noqa: E402
from genred.store import Store, utcnow  # noqa: E402
from genred.warmup import warm_up_in_background  # noqa: E402
from genred_plugins.audio import handcrafted, kernels  # noqa: E402
from genred_plugins.audio.decode import load_audio  # noqa: E402
from tests.conftest import FIXTURES, REPO  # noqa: E402
from tests.fake_extractors import WarmingExtractor  # noqa: E402

REVELATION = FIXTURES / "audio" / "debian" / "wesnoth_revelation.ogg"  # 78 s, 44.1 kHz


# --------------------------------------------------------------------------- memory


def test_a_long_track_is_analysed_without_holding_its_spectrogram() -> None:
    """300 s at 22.05 kHz: the magnitude alone would be 50.5 MiB; the analysis used to
    peak at 88.7 MiB of allocations (the magnitude plus its temporaries). Streamed, the
    peak is the CQT's, below the magnitude's size plus a third."""
    sr, seconds = 22050, 300
    y = (0.1 * np.random.default_rng(0).standard_normal(sr * seconds)).astype(np.float32)
    handcrafted.frame_features([y[: sr * 5]], sr)  # imports and kernels, outside the count
    magnitude = (handcrafted.N_FFT // 2 + 1) * (1 + y.size // handcrafted.HOP) * 4
    tracemalloc.start()
    try:
        handcrafted.frame_features([y], sr)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.3 * magnitude, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("windows", ["whole", "excerpts"])
def test_streamed_and_held_spectrograms_give_the_same_features(windows: str) -> None:
    y, sr = load_audio(REVELATION)
    parts = [y] if windows == "whole" else [y[: 20 * sr], y[40 * sr : 70 * sr]]
    held = handcrafted.summarize(handcrafted.frame_features(parts, sr, stream=False))
    streamed = handcrafted.summarize(handcrafted.frame_features(parts, sr, stream=True))
    np.testing.assert_array_equal(held, streamed)


# --------------------------------------------------------------------------- the first run


class Starts:
    """A progress that notes what each step said it started."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, description: str, total: int | None = None) -> None:
        self.started.append(description)

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self, summary: str) -> None:
        pass


def _library(tmp_path: Path, names: list[str]) -> Store:
    import soundfile as sf

    music = tmp_path / "music"
    music.mkdir()
    t = np.arange(4000) / 8000
    for name in names:
        sf.write(music / f"{name}.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype("f4"), 8000)
    store = Store.open(tmp_path / "data" / "genred.db")
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, path, first_seen_at, changed_at, synced_at)"
            " VALUES ('folder', ?, ?, ?, ?, ?)",
            [(n, str(music / f"{n}.wav"), now, now, now) for n in names],
        )
    return store


def test_the_first_extraction_says_it_prepares_and_does_it_once_before_any_file(
    tmp_path: Path,
) -> None:
    log = tmp_path / "calls.log"
    plugin = WarmingExtractor(tmp_path / "warm.marker", calls_log=log)
    config = Config.model_validate({"data_dir": tmp_path / "data", "extract": {"workers": 2}})
    with _library(tmp_path, ["a", "b", "c"]) as store:
        progress = Starts()
        counts = extract(store, {"fake": plugin}, config, progress=progress)
        assert counts["fake.extracted"] == 3
        assert progress.started == ["compiling audio kernels, first run only", "extract (fake)"]
        lines = log.read_text().split()
        assert lines[0] == "warm" and lines.count("warm") == 1 and len(lines) == 4

        store.conn.execute("DELETE FROM features")
        again = Starts()
        extract(store, {"fake": plugin}, config, progress=again)
        assert again.started == ["extract (fake)"]  # ready: nothing said, nothing done
        assert log.read_text().split().count("warm") == 1


def test_the_daemon_prepares_in_the_background_and_stops_with_it(tmp_path: Path) -> None:
    started = threading.Event()

    class Slow(WarmingExtractor):
        def warm_up(self, cancel: Any = None) -> bool:
            started.set()
            assert cancel is not None
            return not cancel.wait(30)  # stopped when the daemon stops

    cancel = threading.Event()
    ready = WarmingExtractor(tmp_path / "ready.marker")
    (tmp_path / "ready.marker").write_text("ready")
    assert warm_up_in_background([ready, object()], cancel) is None  # nothing to prepare
    thread = warm_up_in_background([Slow(tmp_path / "slow.marker"), object()], cancel)
    assert thread is not None and started.wait(10)
    cancel.set()
    thread.join(10)
    assert not thread.is_alive()


def test_one_warm_up_at_a_time_the_others_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stages (or the daemon's background warm-up and a stage) asking at once: one
    compiler process, the other waits for it and finds the cache ready."""
    runs: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(args: list[str], **kwargs: Any) -> Any:
        runs.append(args)
        script = f"import time, pathlib; time.sleep(0.5); pathlib.Path({str(kernels.marker(tmp_path))!r}).write_text('x')"
        return real_popen([sys.executable, "-c", script], **kwargs)

    monkeypatch.setattr(kernels.subprocess, "Popen", popen)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(kernels.warm_kernels(tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True, True, True]
    assert len(runs) == 1 and runs[0][1:3] == ["-m", "genred_plugins.audio.kernels"]


def test_a_failed_warm_up_is_logged_and_leaves_the_workers_to_compile(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory should be")
    assert kernels.warm_kernels(blocked / "numba") is False
    assert not kernels.kernels_ready(blocked / "numba")


WORKER = """
import sys
from pathlib import Path
from genred.config import Config
from genred.hookspecs import PluginContext
from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor, HandcraftedSettings
plugin = HandcraftedExtractor(HandcraftedSettings(), PluginContext(Config(data_dir=Path(sys.argv[1]))))
print(plugin.extract(Path(sys.argv[2]))[:2])
"""


@pytest.mark.slow
def test_after_the_warm_up_a_fresh_worker_compiles_nothing(tmp_path: Path) -> None:
    """A cold cache (a fresh install): the warm-up compiles every kernel a real
    extraction uses, so a new process extracting a real file saves nothing to the cache
    (numba says "data saved" for each kernel it compiles)."""
    from genred.hookspecs import PluginContext
    from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    data = tmp_path / "data"
    cache = data / "cache" / "numba"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("NUMBA_CACHE_DIR", raising=False)
        plugin = HandcraftedExtractor(
            HandcraftedExtractor.Config(), PluginContext(Config(data_dir=data))
        )
    assert plugin.numba_cache == cache
    assert plugin.warm_up_needed() == "compiling audio kernels, first run only"
    assert plugin.warm_up() is True
    assert plugin.warm_up_needed() is None
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WORKER), str(data), str(REVELATION)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "NUMBA_DEBUG_CACHE": "1"},
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "data loaded" in run.stdout  # it used the cache
    assert "data saved" not in run.stdout  # and compiled nothing
