"""The straightforward FMA feature computation, for tests and benchmarks to compare with.

What mdeff/fma's `features.py` computes, written for current librosa: `rms` (was `rmse`),
no pandas, and the chroma calls given `bins_per_octave=12` (librosa ≤ 0.9 defaulted it to
`n_chroma` = 12 for a 12-bin CQT; 0.10 changed the default to 36). Its quirks are kept on
purpose, since they are what the FMA features are: the spectral features and chroma_stft
are called without `sr` (so librosa's default 22050 applies, whatever the file's rate),
tonnetz is computed from chroma_cens, and the CQT and chroma_stft each estimate tuning.

Output: 518 float32 values in `genred_plugins.audio.handcrafted.FEATURE_NAMES` order.
"""

from __future__ import annotations

import numpy as np


def reference_features(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa
    from scipy import stats

    from genred_plugins.audio.handcrafted import FAMILIES, STATISTICS

    values: dict[str, np.ndarray] = {}
    values["zcr"] = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)

    cqt = np.abs(
        librosa.cqt(y, sr=sr, hop_length=512, bins_per_octave=12, n_bins=7 * 12, tuning=None)
    )
    values["chroma_cqt"] = librosa.feature.chroma_cqt(
        C=cqt, n_chroma=12, n_octaves=7, bins_per_octave=12
    )
    cens = librosa.feature.chroma_cens(C=cqt, n_chroma=12, n_octaves=7, bins_per_octave=12)
    values["chroma_cens"] = cens
    values["tonnetz"] = librosa.feature.tonnetz(chroma=cens)

    stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    values["chroma_stft"] = librosa.feature.chroma_stft(S=stft**2, n_chroma=12)
    values["rms"] = librosa.feature.rms(S=stft)
    values["spectral_centroid"] = librosa.feature.spectral_centroid(S=stft)
    values["spectral_bandwidth"] = librosa.feature.spectral_bandwidth(S=stft)
    values["spectral_contrast"] = librosa.feature.spectral_contrast(S=stft, n_bands=6)
    values["spectral_rolloff"] = librosa.feature.spectral_rolloff(S=stft)
    mel = librosa.feature.melspectrogram(sr=sr, S=stft**2)
    values["mfcc"] = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)

    summaries = {
        "kurtosis": lambda v: stats.kurtosis(v, axis=1),
        "max": lambda v: np.max(v, axis=1),
        "mean": lambda v: np.mean(v, axis=1),
        "median": lambda v: np.median(v, axis=1),
        "min": lambda v: np.min(v, axis=1),
        "skew": lambda v: stats.skew(v, axis=1),
        "std": lambda v: np.std(v, axis=1),
    }
    out = [summaries[stat](values[family]) for family, _ in FAMILIES for stat in STATISTICS]
    return np.concatenate(out).astype(np.float32)
