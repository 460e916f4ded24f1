"""Compiling the audio kernels once, in a process of its own, before any worker needs them.

librosa compiles its numba kernels when its modules are first imported (`guvectorize`
with signatures: `_localmax`, `_zc`, `_pi`, …) and ours (`genred_plugins.audio.compiled`)
on first call; all are cached in NUMBA_CACHE_DIR. With an empty cache that costs the first
extraction 20 s here (40 s to 2 min on slower machines) of silence, and it is paid in
every worker at once, each worker peaking ~120 MB higher while LLVM compiles (measured:
424 MiB instead of 306 for one excerpt). So the plugins that need them (`handcrafted`,
`tagger`) declare it (`WarmsUp`): the stage says "compiling audio kernels, first run
only" and `warm_kernels` runs this module as a subprocess that compiles everything one
real extraction would (a few seconds of synthetic audio through `track_features` and the
tagger's spectrogram) and writes a marker; the workers then only load the cache. The
daemon does it in the background when it starts, so the first extraction waits for
nothing. The marker names what the cache depends on (Python, numba, librosa, our kernel
sources): an upgrade warms again.

    python -m genred_plugins.audio.kernels CACHE_DIR     # what warm_kernels runs
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from genred.api import get_logger

from .numba_cache import NUMBA_CACHE_ENV

log = get_logger("genred.extract")

COMPILING = "compiling audio kernels, first run only"
POLL_S = 0.2
NICENESS = 10  # a background warm-up leaves the CPUs to the daemon's own work
_SOURCES = ("compiled.py", "spectral.py", "tuning.py", "kernels.py")
_lock = threading.Lock()  # one warm-up per process at a time; the others wait for it


def marker(cache_dir: Path) -> Path:
    """The file that says this cache holds every kernel, compiled for these versions."""
    parts = [f"{sys.version_info[0]}.{sys.version_info[1]}"]
    for dist in ("numba", "llvmlite", "librosa", "numpy"):
        try:
            parts.append(f"{dist}={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    here = Path(__file__).parent
    digest = hashlib.sha256("\n".join(parts).encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return Path(cache_dir) / f".genred-warm-{digest.hexdigest()[:16]}"


def kernels_ready(cache_dir: Path) -> bool:
    return marker(cache_dir).exists()


def warm_kernels(cache_dir: Path, cancel: threading.Event | None = None) -> bool:
    """Compile every kernel into `cache_dir` in a subprocess (once per process at a time;
    a warm-up already under way is waited for); True when the cache is ready.

    A failed warm-up is logged and returns False: the workers then compile for
    themselves, as they would without it. `cancel` stops it (the subprocess is killed).
    """
    while not _lock.acquire(timeout=POLL_S):
        if cancel is not None and cancel.is_set():
            return False
    try:
        if kernels_ready(cache_dir):
            return True
        started = time.monotonic()
        env = {**os.environ, NUMBA_CACHE_ENV: str(cache_dir)}
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "genred_plugins.audio.kernels", str(cache_dir)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            stop = cancel or threading.Event()  # never set without one: a plain wait
            while process.poll() is None:
                if stop.wait(POLL_S):
                    process.kill()
                    process.wait()
                    return False
            errors.seek(0)
            error = errors.read().decode(errors="replace")
        if process.returncode != 0:
            log.warning(
                "compiling the audio kernels failed; each worker compiles its own",
                exit_code=process.returncode,
                error=error.strip().splitlines()[-1:] or None,
            )
            return False
        log.info("audio kernels compiled", seconds=round(time.monotonic() - started, 1))
        return kernels_ready(cache_dir)
    finally:
        _lock.release()


def compile_all() -> None:
    """What one real extraction compiles: librosa's import-time kernels and ours."""
    import numpy as np

    from .handcrafted import track_features
    from .tagging.logmel import mel_basis  # noqa: F401  (imports librosa's core, as the tagger)

    rate = 22050
    t = np.arange(4 * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    noise = (0.05 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    track_features([tone + noise, tone], rate)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m genred_plugins.audio.kernels CACHE_DIR", file=sys.stderr)
        return 2
    cache_dir = Path(argv[0])
    os.nice(NICENESS)
    if os.environ.get(NUMBA_CACHE_ENV) != str(cache_dir):
        os.environ[NUMBA_CACHE_ENV] = str(cache_dir)  # before numba is imported
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    compile_all()
    done = marker(cache_dir)
    done.write_text(f"warmed at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
