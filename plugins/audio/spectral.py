"""Frame-wise spectral features computed directly, equal to librosa's within float rounding.

librosa's versions build large temporaries (an outer product of frequencies and frames
for the bandwidth, a NaN mask for the rolloff, a framed copy of the signal for the
zero-crossing rate) and sort across the spectrogram's strided axis for the contrast;
these compute the same values a slice of frames at a time, each frame's bins contiguous.
Each says which librosa call it stands for, with the same parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

FRAMES_PER_SLICE = 2048  # columns per temporary: bounded memory, cache-friendly


def frame_slices(n: int) -> list[slice]:
    return [slice(at, min(at + FRAMES_PER_SLICE, n)) for at in range(0, n, FRAMES_PER_SLICE)]


def magnitude_stft(y: np.ndarray, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """`np.abs(librosa.stft(y, n_fft=…, hop_length=…))` (centred, zero-padded), computed
    a slice of frames at a time: the complex STFT of a whole track is never held (for ten
    minutes at 44.1 kHz it would be 420 MB)."""
    n_frames = 1 + y.shape[-1] // hop_length
    # Fortran order, as librosa returns it: each frame's bins are contiguous, which the
    # per-frame features below want, and which makes numpy's sums over bins pairwise.
    out = np.empty((n_fft // 2 + 1, n_frames), dtype=np.float32, order="F")
    for cols, block in magnitude_slices(y, n_fft, hop_length):
        out[:, cols] = block
    return out


def magnitude_slices(
    y: np.ndarray, n_fft: int = 2048, hop_length: int = 512
) -> Iterator[tuple[slice, np.ndarray]]:
    """The columns of `magnitude_stft(y)`, FRAMES_PER_SLICE at a time, each (bins, frames)
    in Fortran order: what a pass over the spectrogram needs, without holding it whole."""
    import librosa

    half = n_fft // 2
    n_frames = 1 + y.shape[-1] // hop_length
    for cols in frame_slices(n_frames):
        start, stop = cols.start * hop_length - half, (cols.stop - 1) * hop_length + half
        segment = y[max(start, 0) : min(stop, y.shape[-1])]
        if start < 0 or stop > y.shape[-1]:  # the zero padding of `center=True`
            segment = np.pad(segment, (max(-start, 0), max(stop - y.shape[-1], 0)))
        block = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop_length, center=False))
        yield cols, np.asfortranarray(block, dtype=np.float32)


def zero_crossing_rate(
    y: np.ndarray, frame_length: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """`librosa.feature.zero_crossing_rate(y, frame_length=…, hop_length=…)`, (1, frames).

    Counts sign changes once per sample (each sample is in four frames) and reads each
    frame's count off a running total, a slice of frames at a time.
    """
    half = frame_length // 2
    n_frames = 1 + y.shape[-1] // hop_length  # of the edge-padded signal, as librosa
    out = np.empty((1, n_frames))
    for cols in frame_slices(n_frames):
        start = cols.start * hop_length - half
        stop = (cols.stop - 1) * hop_length + half
        segment = y[max(start, 0) : min(stop, y.shape[-1])]
        if start < 0 or stop > y.shape[-1]:  # `center=True` pads with the edge values
            segment = np.pad(segment, (max(-start, 0), max(stop - y.shape[-1], 0)), mode="edge")
        # librosa zeroes |y| <= 1e-10, then counts sign-bit changes: negative is y < -1e-10
        negative = segment < -1e-10
        changes = np.zeros(segment.shape[0], dtype=np.int32)
        np.cumsum(negative[1:] != negative[:-1], out=changes[1:])
        starts = np.arange(cols.stop - cols.start) * hop_length
        counts = changes[starts + frame_length - 1] - changes[starts]
        out[0, cols] = counts / frame_length
    return out


@dataclass
class SpectralShape:
    """Frame-wise spectral shape, each (rows, frames) float64 as librosa returns it."""

    centroid: np.ndarray
    bandwidth: np.ndarray
    rolloff: np.ndarray
    contrast_peak: np.ndarray
    contrast_valley: np.ndarray


def spectral_shape(
    S: np.ndarray,
    freqs: np.ndarray,
    *,
    sr: float,
    roll_percent: float = 0.85,
    n_bands: int = 6,
    fmin: float = 200.0,
) -> SpectralShape:
    """librosa's `spectral_centroid`, `spectral_bandwidth` (p=2), `spectral_rolloff` and
    the peaks and valleys of `spectral_contrast`, all with `S=S` and the given `freqs`,
    in one pass over slices of frames.

    Centroid and bandwidth come from three moments of each frame (one matrix product);
    rolloff is the first bin whose cumulative energy reaches `roll_percent` of the total;
    the contrast uses librosa's band edges and quantile (0.02) and sorts each band of a
    frame-major copy (contiguous rows sort several times faster). The contrast itself is
    `power_to_db(peak) - power_to_db(valley)` over all frames at once: its top_db clip is
    relative to the maximum of the whole array.
    """
    frames = S.shape[-1]
    bands = _contrast_bands(freqs, S.shape[-2], sr=sr, n_bands=n_bands, fmin=fmin)
    shape = SpectralShape(
        centroid=np.zeros((1, frames)),
        bandwidth=np.zeros((1, frames)),
        rolloff=np.zeros((1, frames)),
        contrast_peak=np.zeros((n_bands + 1, frames)),
        contrast_valley=np.zeros((n_bands + 1, frames)),
    )
    powers = np.stack([np.ones_like(freqs), freqs, freqs**2])
    tiny = np.finfo(S.dtype).tiny
    for cols in frame_slices(frames):
        block = np.ascontiguousarray(S[:, cols].T)  # (frames, bins): a view of S in F order
        moments = block.astype(np.float64) @ powers.T  # Σ S, Σ f·S, Σ f²·S per frame
        total = np.where(moments[:, 0] < tiny, 1.0, moments[:, 0])  # silent: 0, as librosa
        mean = moments[:, 1] / total
        shape.centroid[0, cols] = mean
        # Σ S·(f − centroid)² / Σ S, expanded into the moments
        spread = (moments[:, 2] - 2 * mean * moments[:, 1] + mean**2 * moments[:, 0]) / total
        shape.bandwidth[0, cols] = np.sqrt(np.maximum(spread, 0.0))

        for k, (rows, take) in enumerate(bands):
            ordered = np.sort(block[:, rows], axis=1)
            shape.contrast_valley[k, cols] = np.mean(ordered[:, :take], axis=1)
            shape.contrast_peak[k, cols] = np.mean(ordered[:, -take:], axis=1)
    shape.rolloff[0] = freqs[_rolloff_bins(S, roll_percent)]
    return shape


def _rolloff_bins(S: np.ndarray, roll_percent: float) -> np.ndarray:
    """Per frame, the first bin where `np.cumsum(S, axis=0)` reaches `roll_percent` of the
    frame's total: the same running float32 sums, compiled (librosa's NaN mask and minimum
    over every bin cost more than the spectral features together)."""
    from .compiled import compiled

    frames = np.ascontiguousarray(S.T)  # (frames, bins); no copy when S is in F order
    return compiled(_first_bins_kernel)(frames, S.dtype.type(roll_percent))


def _first_bins_kernel(frames: np.ndarray, fraction: float) -> np.ndarray:
    n_frames, n_bins = frames.shape
    first = np.empty(n_frames, dtype=np.int64)
    for t in range(n_frames):
        total = frames[t, 0]
        for k in range(1, n_bins):
            total += frames[t, k]
        threshold = fraction * total
        running = frames[t, 0]
        k = 0
        while running < threshold and k < n_bins - 1:
            k += 1
            running += frames[t, k]
        first[t] = k
    return first


def _contrast_bands(
    freqs: np.ndarray, n_bins: int, *, sr: float, n_bands: int, fmin: float
) -> list[tuple[slice, int]]:
    """Each contrast band's rows and how many values its quantile (0.02) averages."""
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(edges[:-1] >= 0.5 * sr):
        raise ValueError("spectral contrast: a band exceeds Nyquist")
    bands = []
    for k, (low, high) in enumerate(pairwise(edges)):
        inside = np.flatnonzero((freqs >= low) & (freqs <= high))
        first = int(inside[0]) - (1 if k > 0 else 0)  # each band also takes the bin below
        if k == n_bands:  # the last band takes everything above
            rows, count = slice(first, n_bins), n_bins - first
        else:  # ... and leaves out its top bin (the next band's first)
            rows, count = slice(first, int(inside[-1])), int(inside[-1]) - first + 1
        bands.append((rows, int(max(np.rint(0.02 * count), 1))))
    return bands
