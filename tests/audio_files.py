"""Audio files made in tests: lossless ones with soundfile, lossy ones with PyAV's encoders
(FFmpeg's libraries bundled in its wheel: no ffmpeg binary needed), and broken variants."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from tests.conftest import FIXTURES

AUDIO = FIXTURES / "audio"
REAL_AUDIO = sorted(p for p in AUDIO.rglob("*") if p.suffix in {".ogg", ".mp3", ".opus"})

# format → (container for av.open, encoder, sample rate)
LOSSY = {
    "mp3": ("mp3", "libmp3lame", 44100),
    "m4a": ("ipod", "aac", 44100),
    "opus": ("ogg", "libopus", 48000),
    "wma": ("asf", "wmav2", 44100),
    "wv": ("wv", "wavpack", 44100),  # lossless, but made the same way
    "aac": ("adts", "aac", 44100),  # raw AAC, no container (and no tags)
}
BIT_RATE = {"wmav2": 128_000}  # encoders that will not open without one


def stereo_tones(
    seconds: float, rate: int = 44100, seed: int = 0, noise: float = 0.01
) -> np.ndarray:
    """(frames, 2) float32: 440 Hz left, 660 Hz right, a little noise; peaks below 0.6."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal((t.size, 2)) * noise
    tones = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1)
    return (tones + noise).astype(np.float32)


def write_lossless(path: Path, samples: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    """WAV/FLAC/AIFF/Ogg Vorbis by suffix, through libsndfile (in blocks: its Vorbis
    encoder crashes on one large write)."""
    import soundfile

    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with soundfile.SoundFile(str(path), "w", rate, channels, subtype=subtype) as file:
        for at in range(0, max(len(samples), 1), 65536):
            file.write(samples[at : at + 65536])
    return path


def write_lossy(path: Path, samples: np.ndarray, rate: int, kind: str) -> Path:
    """Encode (frames, channels) float32 with FFmpeg's encoder for `kind` (a LOSSY key)."""
    import av

    container_format, codec, codec_rate = LOSSY[kind]
    layout = "stereo" if samples.shape[1] == 2 else "mono"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=codec_rate)
        stream.layout = layout
        if codec in BIT_RATE:
            stream.bit_rate = BIT_RATE[codec]
        converter = av.AudioResampler(
            format=stream.codec_context.format.name, layout=layout, rate=codec_rate
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for converted in [*converter.resample(frame), *converter.resample(None)]:
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return path


def truncated_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def sparse_long_wav(path: Path, seconds: float, rate: int = 44100) -> Path:
    """A mono 16-bit WAV declaring `seconds` of (silent) audio, written sparse: an hour-long
    file without an hour's worth of disk writes."""
    data_bytes = int(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with path.open("wb") as file:
        file.write(header)
        file.truncate(len(header) + data_bytes)
    return path
