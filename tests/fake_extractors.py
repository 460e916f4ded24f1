"""Test-only extractors, importable by the stage's worker processes.

They decode with genred's own decoder, so broken files fail as they would for real, and
misbehave on purpose by file name: "hang" sleeps forever, "crash" exits the worker at
once (os._exit), "abort" kills it with SIGABRT, "nan" returns NaN, "wide" one value too
many. Every call is appended
to `calls_log` (one path a line) when it is set, so a test can see what was computed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genred_plugins.audio.decode import load_audio  # here, so a worker imports it when it starts


def summary(path: Path) -> np.ndarray:
    """The vector both fakes store: RMS, peak and duration of the decoded audio."""

    samples, rate = load_audio(path, sr=8000)
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return np.array([rms, peak, samples.size / rate], dtype=np.float32)


def misbehave(path: Path) -> None:
    name = path.name
    if "hang" in name:
        time.sleep(3600)
    if "crash" in name or "abort" in name:
        # A decoder crashes while it works. (pebble learns which task a worker took from
        # an acknowledgement; a worker dying within microseconds of taking one can be
        # reported as that task timing out instead: still that file's failure alone.)
        time.sleep(0.2)
        if "crash" in name:
            os._exit(3)
        os.abort()


class FakeExtractor:
    """A per-file extractor (runs in the workers)."""

    parallel = True
    dims = 3

    def __init__(self, version: str = "1", calls_log: Path | None = None, delay: float = 0.0):
        self.version = version
        self.calls_log = calls_log
        self.delay = delay

    def _log(self, path: Path) -> None:
        if self.calls_log is not None:
            with open(self.calls_log, "a", encoding="utf-8") as log:
                log.write(f"{path}\n")

    def extract(self, path: Path) -> Any:
        self._log(path)
        misbehave(path)
        if self.delay:
            time.sleep(self.delay)
        if "nan" in path.name:
            return np.array([np.nan, 1.0, 2.0], dtype=np.float32)
        if "wide" in path.name:
            return np.zeros(4, dtype=np.float32)
        return summary(path)


class FakeBatchedExtractor(FakeExtractor):
    """`parallel = False`: `prepare` in the workers, `extract_batch` in the stage's process.

    A batch holding a "poison" track fails as a whole (as a model call would); the stage
    then runs its tracks one by one, so only that track fails.
    """

    parallel = False
    batch_size = 3

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.loaded = self.unloaded = 0

    def load(self) -> None:
        self.loaded += 1

    def unload(self) -> None:
        self.unloaded += 1

    def prepare(self, path: Path) -> tuple[str, Any]:
        self._log(path)
        misbehave(path)
        return path.name, summary(path)

    def extract_batch(self, prepared: Sequence[tuple[str, Any]]) -> list[Any]:
        self.batches.append(len(prepared))
        if any("poison" in name for name, _ in prepared):
            raise ValueError("the model choked on this input")
        return [np.zeros(4) if "wide" in name else vector for name, vector in prepared]


class UnloadableExtractor(FakeExtractor):
    """Cannot be unpickled in a worker, as if a module it needs were missing there."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        raise ImportError("No module named 'bogus_codec'")


class ThreadsExtractor:
    """Returns the native-thread limits its worker process was given."""

    version = "1"

    def extract(self, path: Path) -> dict[str, str | None]:
        names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        return {name: os.environ.get(name) for name in names}


class PluginFakeExtractor(FakeExtractor):
    """FakeExtractor with a plugin's constructor, for a config that enables it by name
    (registered as an entry point by a test's own distribution)."""

    def __init__(self, settings: Any = None, context: Any = None) -> None:
        super().__init__()


class WarmingExtractor(FakeExtractor):
    """Needs a one-time preparation (`WarmsUp`) before its first file: it writes "warm"
    to `calls_log` and a marker file, so a test sees it ran once, before any file."""

    def __init__(self, marker: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = marker

    def warm_up_needed(self) -> str | None:
        return None if self.marker.exists() else "compiling audio kernels, first run only"

    def warm_up(self, cancel: Any = None) -> bool:
        if self.calls_log is not None:
            with open(self.calls_log, "a", encoding="utf-8") as log:
                log.write("warm\n")
        self.marker.write_text("ready")
        return True


class KillableExtractor(FakeExtractor):
    """A file named "victim" writes its worker's pid to `pidfile` and waits, the first
    time only: the test kills that worker, and the retry (the pidfile is there) goes on."""

    def __init__(self, pidfile: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pidfile = pidfile

    def extract(self, path: Path) -> Any:
        if "victim" in path.name and not self.pidfile.exists():
            self.pidfile.write_text(str(os.getpid()))
            time.sleep(60)
        return super().extract(path)
