"""Audio files → float32 mono samples, the way `librosa.load` does it, with specific errors.

libsndfile (through soundfile) reads WAV, FLAC, AIFF, Ogg Vorbis, Opus and MP3; it is the
decoder librosa uses, so what it reads here is bit for bit `librosa.load(path, sr=...)`:
float32 samples, the channel mean as mono (before resampling), soxr "HQ" resampling and
the length fixed to ceil(n · sr / native). Whatever libsndfile cannot open (M4A/AAC, WMA,
…) goes to FFmpeg's libraries through PyAV. `offset`/`duration` seek instead of decoding
from the start, and `max_duration` caps what is ever decoded, so memory stays bounded
for an hour-long mix.

Why libsndfile first, measured on a 4-minute 44.1 kHz stereo track (CPU s, decode and
down-mix, libsndfile / FFmpeg): MP3 0.42 / 0.32, FLAC 0.36 / 0.41, Vorbis 0.50 / 0.37,
Opus 1.48 / 0.56, M4A – / 0.28. FFmpeg is faster for three formats, but its samples differ
from librosa's (1 ulp for Vorbis, up to 0.02–0.05 for MP3 and Opus, whose decoders
differ), which would move every feature away from the straightforward computation and the
tagger's references; and its Ogg demuxer refuses one of the real fixture files that
libsndfile reads. In excerpt extraction only the windows are decoded, so the difference
matters little there.

Every failure is one of the `AudioError` types in `genred.errors`, naming the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genred.api import (
    AudioEmpty,
    AudioFileMissing,
    AudioTruncated,
    AudioUnreadable,
    NotAudio,
    UnsupportedCodec,
)

from .containers import HEAD_BYTES, TAIL_BYTES, ogg_ended, pcm_bytes_missing, sniff_container

RESAMPLE_QUALITY = "HQ"  # librosa's default res_type "soxr_hq"
# libsndfile reads at most this many frames at a time, so memory stays bounded (64 MiB of
# stereo float32). Up to that, one read, as librosa does: libsndfile's MP3 decoding gives
# samples 1 ulp apart when the same stream is read in several calls.
BLOCK_FRAMES = 1 << 23
PCM_HEAD_BYTES = 8192  # WAV/AIFF chunks before the samples are looked for in here
# A decoded stream may fall short of the declared length by this much before it counts as
# truncated (MP3 lengths are estimates without a Xing header; a cut file loses far more).
SHORTFALL_SECONDS = 0.5
SHORTFALL_FRACTION = 0.01
SEEK_PREROLL_SECONDS = 0.5  # FFmpeg seeks land this much before the window, then decode on


@dataclass(frozen=True)
class Decoded:
    """Mono samples at the file's own rate, and how much the file claims to hold."""

    samples: np.ndarray
    rate: int
    start: int  # first frame decoded
    declared: int | None  # total frames the file claims, when it says


def load_audio(
    path: str | os.PathLike[str],
    sr: int | None = None,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode `path` to float32 mono, full scale ±1; returns (samples, rate).

    Not clipped (as librosa): a lossy file of a loud master can overshoot ±1 a little.

    `sr`: resample to this rate (None keeps the file's own). `offset`/`duration` (seconds)
    choose a window, reached by seeking; `max_duration` caps the decoded length whatever
    `duration` says. A window starting past the end gives an empty array.
    """
    path = Path(path)
    head = _check_file(path)
    length = _capped(duration, max_duration)
    decoded = _read_sndfile(path, offset, length)
    if decoded is None:
        decoded = _read_ffmpeg(path, head, offset, length)
    _check_complete(path, decoded, length)
    samples = decoded.samples
    if not np.isfinite(samples).all():
        raise AudioTruncated(f"{path}: the audio holds non-finite sample values: it is damaged")
    if sr is None or sr == decoded.rate:
        return samples, decoded.rate
    return resample(samples, decoded.rate, sr), sr


def probe_duration(path: str | os.PathLike[str]) -> float | None:
    """The file's duration in seconds from its headers (nothing decoded); None if unknown."""
    import soundfile

    path = Path(path)
    head = _check_file(path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError):
        pass
    else:
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    with _open_ffmpeg(path, head) as container:
        stream = _audio_stream(path, container)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
    return None


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """soxr "HQ", then the length fixed to ceil(n · target / rate), as librosa does."""
    import soxr

    size = math.ceil(samples.shape[-1] * (float(target) / rate))
    out = soxr.resample(samples, rate, target, quality=RESAMPLE_QUALITY)
    if out.shape[-1] > size:
        return np.ascontiguousarray(out[:size], dtype=np.float32)
    if out.shape[-1] < size:
        out = np.pad(out, (0, size - out.shape[-1]))
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- checks


def _capped(duration: float | None, max_duration: float | None) -> float | None:
    if max_duration is None:
        return duration
    return max_duration if duration is None else min(duration, max_duration)


def _check_file(path: Path) -> bytes:
    """The file's first bytes, after the failures that need no decoder."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioFileMissing(f"{path}: the file does not exist") from None
    except OSError as exc:
        raise AudioUnreadable(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise AudioUnreadable(f"{path}: is a directory, not an audio file")
    try:
        with path.open("rb") as file:
            head = file.read(PCM_HEAD_BYTES)
            tail = b""
            if sniff_container(head) == "ogg":
                file.seek(max(0, size - TAIL_BYTES))
                tail = file.read()
    except PermissionError:
        raise AudioUnreadable(
            f"{path}: permission denied (the genred user needs read access to the file)"
        ) from None
    except OSError as exc:
        raise AudioUnreadable(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise AudioEmpty(f"{path}: the file is empty (0 bytes)")
    if tail and not ogg_ended(tail):
        raise AudioTruncated(f"{path}: the Ogg stream has no end: the file is truncated")
    missing = pcm_bytes_missing(head, size)
    if missing:
        raise AudioTruncated(
            f"{path}: the header declares {missing} bytes more audio than the file holds: "
            "the file is truncated"
        )
    return head


def _check_complete(path: Path, decoded: Decoded, length: float | None) -> None:
    got = decoded.samples.shape[0]
    if got == 0 and decoded.start == 0:
        raise AudioEmpty(f"{path}: no audio samples (the header is valid, the stream empty)")
    if decoded.declared is None or decoded.declared <= 0:
        return
    end = decoded.declared
    if length is not None:
        end = min(end, decoded.start + int(length * decoded.rate))
    shortfall = end - (decoded.start + got)
    allowed = max(SHORTFALL_SECONDS * decoded.rate, SHORTFALL_FRACTION * decoded.declared)
    if shortfall > allowed:
        rate = decoded.rate
        raise AudioTruncated(
            f"{path}: the audio ends at {(decoded.start + got) / rate:.1f} s but the file "
            f"declares {decoded.declared / rate:.1f} s: the file is truncated"
        )


# --------------------------------------------------------------------------- libsndfile


def _read_sndfile(path: Path, offset: float, length: float | None) -> Decoded | None:
    """Decode with libsndfile as librosa does; None when libsndfile cannot open the file."""
    import soundfile

    try:
        file = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError):
        return None
    with file:
        rate, declared = file.samplerate, file.frames
        start = int(offset * rate) if offset else 0
        if start >= declared > 0:
            return Decoded(np.zeros(0, np.float32), rate, start, declared)
        want = int(length * rate) if length is not None else -1
        try:
            if start:
                file.seek(start)
            samples = _read_blocks(file, want, max(declared - start, 0))
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioTruncated(
                f"{path}: the audio stream breaks off ({exc}): the file is truncated or damaged"
            ) from None
    return Decoded(samples, rate, start, declared)


def _read_blocks(file: Any, want: int, expected: int) -> np.ndarray:
    """Up to `want` frames (-1: all) as mono, read in blocks so only mono is ever whole."""
    size = expected if want < 0 else min(want, expected) if expected else want
    out = np.empty(max(size, 0), np.float32)
    extra: list[np.ndarray] = []
    got = 0
    while want < 0 or got < want:
        step = BLOCK_FRAMES if want < 0 else min(BLOCK_FRAMES, want - got)
        block = file.read(step, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        mono = _downmix(block.T)
        if got + mono.shape[0] <= out.shape[0]:
            out[got : got + mono.shape[0]] = mono
        else:
            fits = max(out.shape[0] - got, 0)
            out[got : got + fits] = mono[:fits]
            extra.append(mono[fits:])
        got += mono.shape[0]
    if extra:
        return np.concatenate([out, *extra])
    return out[:got]


def _downmix(channels: np.ndarray) -> np.ndarray:
    """(channels, n) float32 → n, the channel mean (librosa's `to_mono`)."""
    if channels.shape[0] == 1:
        return np.array(channels[0], dtype=np.float32)
    return np.asarray(np.mean(channels, axis=0, dtype=np.float32))


# --------------------------------------------------------------------------- FFmpeg


def _open_ffmpeg(path: Path, head: bytes) -> Any:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        kind = sniff_container(head[:HEAD_BYTES])
        if kind is None:
            raise NotAudio(f"{path}: not an audio file (no known audio format found)") from None
        raise AudioTruncated(
            f"{path}: looks like {kind} but cannot be opened ({exc.strerror or exc}): "
            "the file is truncated or damaged"
        ) from None


def _audio_stream(path: Path, container: Any) -> Any:
    streams = container.streams.audio
    if not streams:
        raise NotAudio(f"{path}: the file has no audio stream")
    stream = streams[0]
    codec = stream.codec_context
    if codec is None or codec.codec is None or not codec.codec.is_decoder:
        name = getattr(getattr(codec, "codec", None), "name", None) or "unknown"
        raise UnsupportedCodec(f"{path}: no decoder for its audio codec ({name})")
    return stream


def _read_ffmpeg(path: Path, head: bytes, offset: float, length: float | None) -> Decoded:
    """Decode with FFmpeg (PyAV) what libsndfile cannot open: M4A/AAC, WMA, …"""
    import av

    with _open_ffmpeg(path, head) as container:
        stream = _audio_stream(path, container)
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise UnsupportedCodec(f"{path}: the audio stream has no sample rate")
        declared = None
        if container.duration is not None:
            declared = int(container.duration / 1_000_000 * rate)
        start = int(offset * rate) if offset else 0
        want = int(length * rate) if length is not None else None
        chunks: list[np.ndarray] = []
        got, skip = 0, None if start else 0
        try:
            if start:
                # Decoders need the frames before a seek point (AAC overlap, the MP3 bit
                # reservoir): seek a little earlier and drop up to `start` by timestamp.
                target = max(0.0, offset - SEEK_PREROLL_SECONDS)
                container.seek(int(target * av.time_base), backward=True)
            for frame in container.decode(stream):
                mono = _downmix(_frame_channels(frame))
                if skip is None:
                    skip = start - _frame_index(frame, stream, rate, fallback=start)
                if skip > 0:
                    dropped = min(skip, mono.shape[0])
                    mono, skip = mono[dropped:], skip - dropped
                if want is not None and got + mono.shape[0] >= want:
                    chunks.append(mono[: want - got])
                    got = want
                    break
                chunks.append(mono)
                got += mono.shape[0]
        except av.error.FFmpegError as exc:
            raise AudioTruncated(
                f"{path}: the audio stream breaks off at {(start + got) / rate:.1f} s "
                f"({exc.strerror or exc}): the file is truncated or damaged"
            ) from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return Decoded(samples, rate, start, declared)


def _frame_index(frame: Any, stream: Any, rate: int, fallback: int) -> int:
    """The frame's first sample as an index from the stream's start (by its timestamp)."""
    pts = frame.pts
    if pts is None or stream.time_base is None:
        return fallback
    first = stream.start_time or 0
    return round(float((pts - first) * stream.time_base) * rate)


SAMPLE_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _frame_channels(frame: Any) -> np.ndarray:
    """An FFmpeg audio frame as (channels, n) float32 in [-1, 1]."""
    data = frame.to_ndarray()
    fmt = frame.format
    channels = len(frame.layout.channels)
    if not fmt.is_planar:
        data = data.reshape(-1, channels).T
    name = fmt.name.rstrip("p")
    if name in ("flt", "dbl"):
        return data.astype(np.float32, copy=False)
    if name == "u8":
        return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    return (data / SAMPLE_SCALE[name]).astype(np.float32)
