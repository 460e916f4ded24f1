"""Where numba keeps the kernels librosa compiles: in the data dir, not the package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"


def configure_numba_cache(data_dir: Path) -> Path:
    """Point numba's cache at `data_dir/cache/numba` (created, mode 0700); returns it.

    librosa compiles numba functions with `cache=True`. numba writes that cache beside the
    installed package by default, which a systemd service may not write to. This must run
    before numba is first imported (numba reads the variable once); calling it again is
    harmless. A directory already set in the environment by the user is kept.
    """
    if os.environ.get(NUMBA_CACHE_ENV):
        return Path(os.environ[NUMBA_CACHE_ENV])
    cache = Path(data_dir) / "cache" / "numba"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache.chmod(0o700)
    os.environ[NUMBA_CACHE_ENV] = str(cache)
    return cache


def use_numba_cache(cache: Path) -> None:
    """In a worker process (here, or a node of a cluster), before numba is imported: the
    cache the plugin was built with (which honoured the environment of the process that
    built it; a worker may have inherited another). A directory that cannot be made here
    (another machine) leaves the environment as it is."""
    if os.environ.get(NUMBA_CACHE_ENV) == str(cache) or "numba" in sys.modules:
        return
    try:
        Path(cache).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return
    os.environ[NUMBA_CACHE_ENV] = str(cache)
