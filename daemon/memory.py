"""Handing freed heap back to the operating system after a big stage."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def release_memory() -> None:
    """Give the heap a stage freed back to the OS: a 100k-track sync peaks far above what
    the idle daemon needs, and glibc keeps freed arenas otherwise."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_malloc_trim = _load_malloc_trim()
