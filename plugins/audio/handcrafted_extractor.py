"""Extractor `handcrafted`: the FMA feature set, 518 statistics of librosa features.

The families, parameters, statistics and column order of FMA's `features.csv` (see
`genred_plugins.audio.handcrafted`), so vectors are comparable with FMA's published ones.

- `mode: excerpt` (the default): `excerpts` windows of `excerpt_seconds`, evenly spaced in
  the track with equal gaps around them, decoded by seeking; the statistics are over all
  their frames together. The default, one 30 s window from the middle, is how FMA's own
  clips were cut: ~0.19 s of CPU per 4-minute track, 1/25 of the straightforward
  full-track computation; two windows (near 1/3 and 2/3) follow a track's changes better
  at twice the cost. A track no longer than the
  windows is taken whole. Values differ from the full track's: over the fixtures, the
  median deviation of a mean or median statistic is ~15 % with one 30 s window, ~5 %
  with two (extremes, skew and kurtosis move more).
- `mode: full`: the whole track, up to its first `max_seconds`, equal to the
  straightforward librosa computation within float32 rounding. `max_seconds` bounds a
  worker's memory, whatever the file's length: at 44.1 kHz about 300 MB plus 0.5 MB per
  analysed second (measured peak RSS with a 3-hour file: 460 MB at the default 300 s;
  excerpt mode: 320 MB; bench/bench_extract_memory.py).

`sample_rate` None analyses at the file's own rate, as FMA does; a rate resamples first
(faster at 22050, but the values are no longer FMA's). The `version` names every setting
that changes the values, so changing one re-extracts. librosa and numpy are imported only
when a file is extracted: building the plugin (the daemon starting) costs neither.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from threading import Event
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genred.api import PluginContext, PluginUnavailable

from .kernels import COMPILING, kernels_ready, warm_kernels
from .numba_cache import configure_numba_cache, use_numba_cache

FEATURES_VERSION = 1  # bump when the computation changes what it returns
NEEDS = ("numpy", "scipy", "librosa", "soundfile", "soxr", "av")


class HandcraftedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["excerpt", "full"] = Field(
        "excerpt", description="excerpt: windows from the track's body; full: the whole track"
    )
    excerpts: int = Field(1, ge=1, le=20, description="windows per track (excerpt mode)")
    excerpt_seconds: float = Field(30.0, ge=5, le=600, description="length of each window")
    max_seconds: float = Field(
        300.0, ge=10, description="full mode: analyse at most the first this many seconds"
    )
    sample_rate: int | None = Field(
        None, ge=8000, le=192000, description="resample to this rate first (None: the file's)"
    )


class HandcraftedExtractor:
    Config = HandcraftedSettings
    uses_config = ("data_dir",)
    dims = 518

    def __init__(self, settings: HandcraftedSettings, context: PluginContext) -> None:
        missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
        if missing:
            raise PluginUnavailable(
                f"plugin 'handcrafted' (extractors) needs {', '.join(missing)}: "
                "install it with pip install 'genred[audio]'"
            )
        # before librosa first imports numba (here, and in the workers)
        self.numba_cache = configure_numba_cache(context.data_dir)
        self.settings = settings
        self.version = _version(settings)

    def warm_up_needed(self) -> str | None:
        """`WarmsUp`: the kernels are compiled once, before the workers start."""
        return None if kernels_ready(self.numba_cache) else COMPILING

    def warm_up(self, cancel: Event | None = None) -> bool:
        return warm_kernels(self.numba_cache, cancel)

    def extract(self, path: Path) -> Any:
        """The 518 features of the file at `path` (float32); raises AudioError subclasses."""
        use_numba_cache(self.numba_cache)
        from .decode import probe_duration
        from .excerpts import WHOLE_TRACK, Window, excerpt_windows, load_windows
        from .handcrafted import track_features

        s = self.settings
        windows: tuple[Window, ...]
        if s.mode == "full":
            windows, cap = WHOLE_TRACK, s.max_seconds
        else:
            windows = excerpt_windows(probe_duration(path), s.excerpts, s.excerpt_seconds)
            cap = s.excerpts * s.excerpt_seconds  # a short or unknown-length track, whole
        parts, rate = load_windows(path, windows, sr=s.sample_rate, max_seconds=cap)
        return track_features(parts, rate)


def _version(s: HandcraftedSettings) -> str:
    """e.g. "1-excerpt-30x1", "1-full-600s", "1-excerpt-30x2-22050hz"."""
    if s.mode == "full":
        version = f"{FEATURES_VERSION}-full-{s.max_seconds:g}s"
    else:
        version = f"{FEATURES_VERSION}-excerpt-{s.excerpt_seconds:g}x{s.excerpts}"
    if s.sample_rate:
        version += f"-{s.sample_rate}hz"
    return version
