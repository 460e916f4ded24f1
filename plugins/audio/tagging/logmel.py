"""From decoded samples to the model's input patches, exactly as a spec describes.

Pure functions over numpy arrays: the patch grid (fixed length, fixed hop, leftover
frames dropped), a patch's loudness (so silence can be skipped), and the log-compressed
power mel spectrogram of each chosen patch (librosa's STFT and mel filterbank with the
spec's arguments).

Frames are computed a stretch of audio at a time (at most SPAN_FRAMES, about two
minutes), frame for frame what a whole-track spectrogram would give (a frame depends only
on its own n_fft samples): memory stays bounded however long the track, and a long run
of skipped patches costs nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, cast

import librosa
import numpy as np

from .spec import MelSettings, TaggerSpec

SPAN_FRAMES = 8192  # frames per STFT call: ~131 s at 16 kHz / hop 256, ~25 MB of spectrum


@functools.cache
def mel_basis(sample_rate: int, mel: MelSettings) -> np.ndarray:
    """[n_mels, 1 + n_fft/2] float32 filterbank (librosa.filters.mel), built once per spec."""
    return librosa.filters.mel(
        sr=sample_rate,
        n_fft=mel.n_fft,
        n_mels=mel.n_mels,
        fmin=mel.fmin,
        fmax=mel.fmax,
        htk=mel.htk,
        norm=mel.norm,
        dtype=np.float32,
    )


def frame_count(n_samples: int, mel: MelSettings) -> int:
    """STFT frames of a signal of `n_samples` (with centring: 1 + n_samples // hop)."""
    padded = n_samples + (2 * (mel.n_fft // 2) if mel.center else 0)
    return 0 if padded < mel.n_fft else 1 + (padded - mel.n_fft) // mel.hop_length


def patch_starts(n_frames: int, frames: int, hop: int) -> list[int]:
    """First frame of each whole patch: 0, hop, 2·hop, … while start + frames ≤ n_frames."""
    if n_frames < frames:
        return []
    return list(range(0, n_frames - frames + 1, hop))


def frames_audio(samples: np.ndarray, start: int, count: int, spec: TaggerSpec) -> np.ndarray:
    """The samples frames start … start + count - 1 are computed from, padded as the STFT's
    centring pads the whole signal (zeros, or np.pad's mode at the edges)."""
    mel = spec.mel
    offset = mel.n_fft // 2 if mel.center else 0
    first = start * mel.hop_length - offset
    length = (count - 1) * mel.hop_length + mel.n_fft
    lo, hi = max(first, 0), min(first + length, len(samples))
    if lo == first and hi == first + length:
        return samples[lo:hi]
    if mel.pad_mode == "constant":
        out = np.zeros(length, dtype=samples.dtype)
        out[lo - first : hi - first] = samples[lo:hi]
        return out
    padded = np.pad(
        samples, offset, mode=cast(Any, mel.pad_mode)
    )  # rare: only edge stretches get here
    return padded[first + offset : first + offset + length]


def loudness_dbfs(samples: np.ndarray, start: int, spec: TaggerSpec) -> float:
    """RMS level of the patch's own stretch of audio, in dB relative to full scale."""
    hop = spec.mel.hop_length
    chunk = samples[start * hop : (start + spec.patch.frames) * hop]
    power = float(np.mean(np.square(chunk, dtype=np.float64))) if chunk.size else 0.0
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def log_mel_frames(samples: np.ndarray, start: int, count: int, spec: TaggerSpec) -> np.ndarray:
    """[count, n_mels] float32: log_base(multiplier · mel + offset) of frames start…+count."""
    mel = spec.mel
    stft = librosa.stft(
        frames_audio(samples, start, count, spec),
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        win_length=mel.win_length,
        window=mel.window,
        center=False,
    )
    power = np.abs(stft) ** mel.power
    bands = mel_basis(spec.audio.sample_rate, mel) @ power  # [n_mels, frames]
    log = spec.log
    out = np.log10(np.float32(log.multiplier) * bands + np.float32(log.offset))
    if log.base != 10:
        out /= np.float32(math.log10(log.base))
    return out.T


def cut_patches(samples: np.ndarray, starts: Sequence[int], spec: TaggerSpec) -> np.ndarray:
    """[n, frames, mels] (layout time_mel) or [n, mels, frames] (mel_time), float32."""
    samples = np.asarray(samples, dtype=np.float32)
    frames = spec.patch.frames
    out = np.empty((len(starts), frames, spec.mel.n_mels), dtype=np.float32)
    first = 0
    while first < len(starts):  # patches whose frames fit one span share one STFT
        last = first
        while last + 1 < len(starts) and starts[last + 1] + frames - starts[first] <= max(
            SPAN_FRAMES, frames
        ):
            last += 1
        origin = starts[first]
        span = log_mel_frames(samples, origin, starts[last] + frames - origin, spec)
        for i in range(first, last + 1):
            out[i] = span[starts[i] - origin : starts[i] - origin + frames]
        first = last + 1
    if spec.onnx.layout == "mel_time":
        out = np.ascontiguousarray(out.transpose(0, 2, 1))
    return out
