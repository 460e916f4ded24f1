"""Which parts of a track to analyse, and decoding just those parts.

An excerpt plan takes `count` windows of `seconds` from the body of the track, with equal
gaps before, between and after them: two 30 s windows of a 4-minute track start at 60 s
and 150 s (centred near 1/3 and 2/3), clear of intros and outros. A track no longer than
the windows together is taken whole. Each window is decoded by seeking to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Window:
    """A span of a track in seconds; `duration` None: to the end."""

    offset: float
    duration: float | None


WHOLE_TRACK = (Window(0.0, None),)


def excerpt_windows(track_seconds: float | None, count: int, seconds: float) -> tuple[Window, ...]:
    """`count` windows of `seconds`, evenly spaced inside the track (equal gaps around them).

    An unknown duration, or a track not longer than the windows together, is taken whole.
    """
    if count < 1 or seconds <= 0:
        raise ValueError("an excerpt plan needs at least one window of positive length")
    if track_seconds is None or track_seconds <= count * seconds:
        return WHOLE_TRACK
    gap = (track_seconds - count * seconds) / (count + 1)
    return tuple(Window(gap + k * (seconds + gap), seconds) for k in range(count))


def load_windows(
    path: str | os.PathLike[str],
    windows: tuple[Window, ...],
    *,
    sr: int | None = None,
    max_seconds: float | None = None,
) -> tuple[list[np.ndarray], int]:
    """Decode each window (seeking to it): the non-empty ones and their sample rate.

    `max_seconds` caps each window (a whole-track window of an hour-long mix included).
    Raises the `AudioError` of the first window that fails; AudioEmpty if none has samples.
    """
    from genred.api import AudioEmpty

    from .decode import load_audio

    parts: list[np.ndarray] = []
    rate = sr or 0
    for window in windows:
        samples, rate = load_audio(
            path, sr, offset=window.offset, duration=window.duration, max_duration=max_seconds
        )
        if samples.size:
            parts.append(samples)
    if not parts:
        raise AudioEmpty(f"{path}: no audio samples in the windows to analyse")
    return parts, rate
