"""numba-compiled kernels, compiled on first use and cached in NUMBA_CACHE_DIR."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def compiled(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """`kernel` compiled by numba (nopython, GIL released, cached on disk), once per process."""
    import numba

    return numba.njit(cache=True, nogil=True)(kernel)
