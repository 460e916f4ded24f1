"""The FMA feature set: 518 statistics of 11 librosa feature families.

The same families, parameters and statistics as mdeff/fma's `features.py`, in the order
of FMA's `features.csv` columns (feature, statistic, number, each sorted), with `rmse`
named `rms` as librosa names it now (its position is the same). FMA's parameters are
kept, quirks included, so vectors stay comparable with FMA's published features:

- the CQT: hop 512, 84 bins (7 octaves × 12) from C1, tuning estimated from the signal;
  chroma_cqt and chroma_cens from it (12 bins per octave), tonnetz from chroma_cens;
- the STFT: n_fft 2048, hop 512, centred; chroma_stft from its power, and rms, spectral
  centroid, bandwidth, contrast (6 bands) and rolloff from its magnitude. FMA calls these
  without `sr`, so librosa's default 22050 Hz sets their frequency axis and chroma_stft's
  tuning whatever the file's rate; kept as is;
- mfcc: 20 coefficients from the 128-band mel power spectrogram (at the file's rate) in dB;
- zcr: frames of 2048, hop 512;
- statistics over frames: kurtosis, max, mean, median, min, skew, std (scipy's biased
  skew and Fisher kurtosis, numpy's std with ddof 0). A statistic that is undefined (the
  skew of a constant, silent input) is stored as 0 instead of NaN.

`track_features(windows, sr)` gives the same values as that straightforward computation
(`tests/fma_reference.py`) within float32 rounding (measured: 5e-7 relative at most), 3-4×
faster on 4-minute tracks (`bench/bench_handcrafted.py`). Where the time went: librosa
estimates tuning twice, each time by parabolic interpolation over every bin and frame of
a spectrogram (one of them computed just for that); here both come from the one STFT,
only at the peaks of the band that counts (`genred_plugins.audio.tuning`). Centroid, bandwidth,
rolloff, contrast and the zero-crossing rate are computed directly, without librosa's
large temporaries (`genred_plugins.audio.spectral`); the STFT is computed a slice of frames at a
time and the power spectrogram never formed whole, so memory stays near the samples plus
one magnitude spectrogram. Several windows (excerpts) are analysed each on its own and
summarised over all their frames together; tuning is estimated over all of them.

The compiled kernels (numba, like librosa's own) are cached in NUMBA_CACHE_DIR
(`genred_plugins.audio.configure_numba_cache`); with an empty cache the first extraction in a
process compiles librosa's and ours, about half a minute, once per cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np

FAMILIES: tuple[tuple[str, int], ...] = (
    ("chroma_cens", 12),
    ("chroma_cqt", 12),
    ("chroma_stft", 12),
    ("mfcc", 20),
    ("rms", 1),
    ("spectral_bandwidth", 1),
    ("spectral_centroid", 1),
    ("spectral_contrast", 7),
    ("spectral_rolloff", 1),
    ("tonnetz", 6),
    ("zcr", 1),
)
STATISTICS = ("kurtosis", "max", "mean", "median", "min", "skew", "std")
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{family}.{stat}.{number:02d}"
    for family, size in FAMILIES
    for stat in STATISTICS
    for number in range(1, size + 1)
)
DIMS = len(FEATURE_NAMES)  # 518

N_FFT = 2048
HOP = 512
CQT_OCTAVES = 7
CQT_BINS_PER_OCTAVE = 12
N_CHROMA = 12
N_MFCC = 20
CONTRAST_BANDS = 6
# FMA's script leaves `sr` out of the STFT-based feature calls: librosa's default applies.
FMA_IMPLIED_SR = 22050
# Above this many frames (~95 s at 44.1 kHz, a 35 MB magnitude) the STFT is not held whole.
KEEP_WHOLE_FRAMES = 8192


def track_features(windows: Sequence[np.ndarray], sr: int) -> np.ndarray:
    """The 518 statistics (float32, FEATURE_NAMES order) over the frames of `windows`."""
    with warnings.catch_warnings():
        # librosa warns about short inputs and toneless audio, scipy about the moments of
        # near-constant rows: expected for some tracks, and handled (see `summarize`).
        warnings.simplefilter("ignore")
        return summarize(frame_features(windows, sr))


def frame_features(
    windows: Sequence[np.ndarray], sr: int, *, stream: bool | None = None
) -> dict[str, np.ndarray]:
    """Each family's frame-wise values, (size, frames), over all windows' frames.

    Up to KEEP_WHOLE_FRAMES frames (excerpts) the STFT magnitude is computed once and
    held; above (a whole track) it is never held whole: one pass over its slices gathers
    the tuning peaks, a second computes the families (`stream`: force either way).
    """
    from genred.api import trim_heap

    from .spectral import magnitude_stft
    from .spectral import zero_crossing_rate as zcr

    frames_total = sum(1 + w.shape[-1] // HOP for w in windows)
    if stream is None:
        stream = frames_total > KEEP_WHOLE_FRAMES
    if stream:
        source: _Slices = _StreamedSlices(windows)
    else:
        source = _HeldSlices(
            _join([magnitude_stft(w, n_fft=N_FFT, hop_length=HOP) for w in windows])
        )
    cqt_tuning, chroma_tuning = _tunings(source, sr)
    frames = _stft_families(source, sr, chroma_tuning)
    del source  # before the CQT: the magnitude and the CQT together would double the peak
    if stream:
        trim_heap()  # the slices' freed pages, back to the OS before the CQT's peak
    frames |= _cqt_families(windows, sr, tuning=cqt_tuning)
    frames["zcr"] = _join([zcr(w, frame_length=N_FFT, hop_length=HOP) for w in windows])
    return frames


def _tunings(slices: _Slices, sr: int) -> tuple[float, float]:
    """The CQT's tuning (at the file's rate) and chroma_stft's (FMA's implied 22050 Hz,
    of the power), from one pass over the magnitude."""
    from .tuning import TuningPeaks

    cqt, chroma = TuningPeaks(sr), TuningPeaks(FMA_IMPLIED_SR, squared=True)
    for block in slices():
        cqt.add(block)
        chroma.add(block)
    return cqt.tuning(), chroma.tuning()


class _Slices:
    """The STFT magnitude of the windows, a slice of frames at a time, as often as asked."""

    def __call__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


class _HeldSlices(_Slices):
    def __init__(self, magnitude: np.ndarray) -> None:
        self.magnitude = magnitude

    def __call__(self) -> Iterator[np.ndarray]:
        from .spectral import frame_slices

        for cols in frame_slices(self.magnitude.shape[-1]):
            yield self.magnitude[:, cols]


class _StreamedSlices(_Slices):
    """Computed again for each pass (an STFT costs little next to the CQT), and cut where
    `_HeldSlices` cuts the joined windows' frames: the same slices, so the same values."""

    def __init__(self, windows: Sequence[np.ndarray]) -> None:
        self.windows = windows

    def __call__(self) -> Iterator[np.ndarray]:
        from .spectral import FRAMES_PER_SLICE, magnitude_slices

        pending: list[np.ndarray] = []
        held = 0
        for w in self.windows:
            for _, block in magnitude_slices(w, n_fft=N_FFT, hop_length=HOP):
                pending.append(block)
                held += block.shape[-1]
                while held >= FRAMES_PER_SLICE:
                    joined = _join(pending)
                    yield np.asfortranarray(joined[:, :FRAMES_PER_SLICE])
                    rest = joined[:, FRAMES_PER_SLICE:]
                    pending, held = ([rest] if rest.shape[-1] else []), rest.shape[-1]
        if held:
            yield np.asfortranarray(_join(pending))


def summarize(frames: dict[str, np.ndarray]) -> np.ndarray:
    """The seven statistics of each family over its frames, in FEATURE_NAMES order."""
    from scipy import stats

    out: list[np.ndarray] = []
    for family, size in FAMILIES:
        values = frames[family]
        if values.shape[0] != size:
            raise ValueError(f"{family}: {values.shape[0]} rows, expected {size}")
        with np.errstate(invalid="ignore", divide="ignore"):
            summary = {
                "kurtosis": stats.kurtosis(values, axis=1),
                "max": np.max(values, axis=1),
                "mean": np.mean(values, axis=1),
                "median": np.median(values, axis=1),
                "min": np.min(values, axis=1),
                "skew": stats.skew(values, axis=1),
                "std": np.std(values, axis=1),
            }
        out.extend(summary[stat] for stat in STATISTICS)
    vector = np.concatenate(out).astype(np.float32)
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)


def _stft_families(slices: _Slices, sr: int, chroma_tuning: float) -> dict[str, np.ndarray]:
    """chroma_stft, rms, mfcc and the spectral shape families from the STFT magnitude, a
    slice of frames at a time (the power spectrogram is never formed whole)."""
    import librosa

    from .spectral import spectral_shape

    # librosa's chroma_stft and melspectrogram, with their filter banks built once
    chroma_bank = librosa.filters.chroma(
        sr=FMA_IMPLIED_SR, n_fft=N_FFT, tuning=chroma_tuning, n_chroma=N_CHROMA
    )
    mel_bank = librosa.filters.mel(sr=sr, n_fft=N_FFT)
    freqs = librosa.fft_frequencies(sr=FMA_IMPLIED_SR, n_fft=N_FFT)
    chroma, rms, mel, shapes = [], [], [], []
    for block in slices():
        power = block**2
        raw_chroma = np.einsum("cf,...ft->...ct", chroma_bank, power, optimize=True)
        chroma.append(librosa.util.normalize(raw_chroma, norm=np.inf, axis=-2))
        mel.append(np.einsum("...ft,mf->...mt", power, mel_bank, optimize=True))
        del power
        rms.append(librosa.feature.rms(S=block, frame_length=N_FFT))
        shapes.append(spectral_shape(block, freqs, sr=FMA_IMPLIED_SR, n_bands=CONTRAST_BANDS))
    frames = {"chroma_stft": _join(chroma), "rms": _join(rms)}
    frames["mfcc"] = librosa.feature.mfcc(S=librosa.power_to_db(_join(mel)), n_mfcc=N_MFCC)
    frames["spectral_centroid"] = _join([x.centroid for x in shapes])
    frames["spectral_bandwidth"] = _join([x.bandwidth for x in shapes])
    frames["spectral_rolloff"] = _join([x.rolloff for x in shapes])
    # the contrast's top_db clip is relative to the maximum over all frames: joined first
    peak = _join([x.contrast_peak for x in shapes])
    valley = _join([x.contrast_valley for x in shapes])
    frames["spectral_contrast"] = librosa.power_to_db(peak) - librosa.power_to_db(valley)
    return frames


def _cqt_families(windows: Sequence[np.ndarray], sr: int, tuning: float) -> dict[str, np.ndarray]:
    """chroma_cqt, chroma_cens and tonnetz: one CQT per window for all three."""
    import librosa

    chroma, cens = [], []
    for w in windows:
        cqt = np.abs(
            librosa.cqt(
                w,
                sr=sr,
                hop_length=HOP,
                bins_per_octave=CQT_BINS_PER_OCTAVE,
                n_bins=CQT_OCTAVES * CQT_BINS_PER_OCTAVE,
                tuning=tuning,
            )
        )
        chroma.append(
            librosa.feature.chroma_cqt(
                C=cqt,
                bins_per_octave=CQT_BINS_PER_OCTAVE,
                n_chroma=N_CHROMA,
                n_octaves=CQT_OCTAVES,
            )
        )
        cens.append(
            librosa.feature.chroma_cens(
                C=cqt,
                bins_per_octave=CQT_BINS_PER_OCTAVE,
                n_chroma=N_CHROMA,
                n_octaves=CQT_OCTAVES,
            )
        )
    chroma_cens = _join(cens)
    return {
        "chroma_cqt": _join(chroma),
        "chroma_cens": chroma_cens,
        "tonnetz": librosa.feature.tonnetz(chroma=chroma_cens),
    }


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
