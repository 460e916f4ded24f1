"""What the model hears of a track: 16 kHz mono, excerpts of 30 s or the whole track up to
the model's limit, decoded in a worker process by genred's decoder.

The model reads audio in 30 s windows (750 audio tokens each, 25 per second); one chat
message carries one audio, so excerpts are joined into one waveform, each exactly one
window long (window k is excerpt k). A track longer than the model takes (AF3 600 s,
Music Flamingo 1200 s: the processor would silently drop the rest) is cut at that
limit here, and the listening says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0  # the feature extractor's chunk_length
TOKENS_PER_SECOND = 25


@dataclass(frozen=True)
class Listening:
    """One track's audio for the model, and what the model is told about it."""

    name: str  # the file's name (logs, and a test's scripted answer)
    samples: Any  # float32 [n], 16 kHz mono
    seconds: float  # of audio the model hears
    track_seconds: float | None  # the file's length, when its header says
    cut: bool  # the file is longer than what the model hears (whole-track mode)
    hint: Any = None  # the genres earlier steps proposed (from the stage)


def listen(
    path: Path,
    *,
    mode: str,
    excerpts: int,
    limit_seconds: float,
    hint: Any = None,
) -> Listening:
    """Decode what the model hears of `path` (raises the decoder's AudioError)."""
    import numpy as np

    from ..decode import load_audio, probe_duration
    from ..excerpts import WHOLE_TRACK, excerpt_windows, load_windows

    total = probe_duration(path)
    if mode == "whole":
        samples, _ = load_audio(path, sr=SAMPLE_RATE, max_duration=limit_seconds)
        cut = total is not None and total > limit_seconds + 0.5
    else:
        count = max(1, min(excerpts, int(limit_seconds // WINDOW_SECONDS)))
        plan = excerpt_windows(total, count, WINDOW_SECONDS)
        parts, _ = load_windows(
            path, plan, sr=SAMPLE_RATE, max_seconds=min(count * WINDOW_SECONDS, limit_seconds)
        )
        window = int(WINDOW_SECONDS * SAMPLE_RATE)  # a decoder may give a sample more
        whole = plan == WHOLE_TRACK  # a short track, taken whole
        samples = np.concatenate([p if whole else p[:window] for p in parts])
        cut = False
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    return Listening(
        name=path.name,
        samples=samples,
        seconds=round(len(samples) / SAMPLE_RATE, 2),
        track_seconds=round(total, 2) if total is not None else None,
        cut=cut,
        hint=hint,
    )
