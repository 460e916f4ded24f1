"""Decoding: real fixtures, files made here in every format, and broken files."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("soundfile")
pytest.importorskip("soxr")
pytest.importorskip("av")

from genred.errors import (  # noqa: E402
    AudioEmpty,
    AudioError,
    AudioFileMissing,
    AudioTruncated,
    AudioUnreadable,
    NotAudio,
    UnsupportedCodec,
)
from genred_plugins.audio.decode import load_audio, probe_duration  # noqa: E402
from tests.audio_files import (  # noqa: E402
    AUDIO,
    REAL_AUDIO,
    sparse_long_wav,
    stereo_tones,
    truncated_copy,
    write_lossless,
    write_lossy,
)
from tests.conftest import REPO  # noqa: E402

# The musicnn reference tags were computed from librosa.load(path, sr=16000) of these.
MUSICNN_INPUTS = [
    AUDIO / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
    AUDIO / "librosa-data" / "admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
    AUDIO / "debian" / "wesnoth_revelation.ogg",
    AUDIO / "debian" / "singularity-music_March_Thee_to_Dis.ogg",
]


# --------------------------------------------------------------------------- real files


def test_the_fixtures_are_there() -> None:
    kinds = {p.suffix for p in REAL_AUDIO}
    assert kinds == {".ogg", ".mp3", ".opus"}
    assert len(REAL_AUDIO) >= 20


@pytest.mark.parametrize("path", REAL_AUDIO, ids=lambda p: p.name)
def test_every_real_fixture_decodes(path: Path) -> None:
    duration = probe_duration(path)
    assert duration is not None and duration > 1
    # Long files: their first and last 20 s (seeking to the end), for the suite's speed.
    windows = [(0.0, None)] if duration < 150 else [(0.0, 20.0), (duration - 20, None)]
    for offset, length in windows:
        samples, rate = load_audio(path, offset=offset, duration=length)
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert rate in (22050, 44100, 48000)
        assert np.isfinite(samples).all()
        assert 0.01 < np.abs(samples).max() < 1.5  # lossy decoders overshoot clipped masters
        expected = (duration - offset) if length is None else length
        assert len(samples) / rate == pytest.approx(expected, abs=0.5)


@pytest.mark.parametrize("path", MUSICNN_INPUTS, ids=lambda p: p.name)
def test_same_samples_as_librosa_load(path: Path) -> None:
    librosa = pytest.importorskip("librosa")
    for rate in (None, 16000):
        ours, our_rate = load_audio(path, rate)
        theirs, their_rate = librosa.load(path, sr=rate)
        assert our_rate == their_rate
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def test_mp3_window_same_as_librosa_load() -> None:
    librosa = pytest.importorskip("librosa")
    path = AUDIO / "debian" / "asc_machine_wars.mp3"
    ours, _ = load_audio(path, 16000, offset=100.5, duration=20.0)
    theirs, _ = librosa.load(path, sr=16000, offset=100.5, duration=20.0)
    assert ours.shape == theirs.shape == (320000,)
    assert np.array_equal(ours, theirs)


# --------------------------------------------------------------------------- made here


@pytest.fixture(scope="module")
def tones() -> np.ndarray:
    return stereo_tones(4.0)


@pytest.mark.parametrize(
    ("suffix", "subtype"), [(".wav", "FLOAT"), (".flac", "PCM_24"), (".aiff", "PCM_16")]
)
def test_lossless_formats_decode_to_the_channel_mean(
    tmp_path: Path, tones: np.ndarray, suffix: str, subtype: str
) -> None:
    import soundfile

    path = write_lossless(tmp_path / f"tones{suffix}", tones, 44100, subtype)
    stored, _ = soundfile.read(path, dtype="float32")  # the quantised channels
    samples, rate = load_audio(path)
    assert rate == 44100
    assert np.array_equal(samples, (stored[:, 0] + stored[:, 1]) / np.float32(2))


@pytest.mark.parametrize("kind", ["mp3", "m4a", "opus"])
def test_lossy_formats_decode(tmp_path: Path, tones: np.ndarray, kind: str) -> None:
    path = write_lossy(tmp_path / f"tones.{kind}", tones, 44100, kind)
    samples, rate = load_audio(path)
    assert rate == (48000 if kind == "opus" else 44100)
    assert len(samples) / rate == pytest.approx(4.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(samples[rate : 3 * rate]))
    peaks = np.fft.rfftfreq(2 * rate, 1 / rate)[np.argsort(spectrum)[-2:]]
    assert sorted(np.round(peaks)) == [440, 660]  # both channels are in the mix
    assert probe_duration(path) == pytest.approx(4.0, abs=0.1)


def test_resampling_length_and_values(tmp_path: Path, tones: np.ndarray) -> None:
    librosa = pytest.importorskip("librosa")
    path = write_lossless(tmp_path / "tones.wav", tones[:44101], 44100, "PCM_16")
    samples, rate = load_audio(path, 16000)
    assert rate == 16000
    assert len(samples) == math.ceil(44101 * 16000 / 44100) == 16001
    assert np.array_equal(samples, librosa.load(path, sr=16000)[0])


def test_a_window_is_a_slice_of_the_whole(tmp_path: Path, tones: np.ndarray) -> None:
    flac = write_lossless(tmp_path / "tones.flac", tones, 44100, "PCM_16")
    whole, _ = load_audio(flac)
    window, _ = load_audio(flac, offset=1.25, duration=2.0)
    assert np.array_equal(window, whole[55125 : 55125 + 88200])

    # Decoded by FFmpeg. No noise: AAC codes noise as noise (PNS), which the decoder draws
    # from a generator whose state depends on where decoding started.
    m4a = write_lossy(tmp_path / "tones.m4a", stereo_tones(4.0, noise=0), 44100, "m4a")
    whole, _ = load_audio(m4a)
    window, _ = load_audio(m4a, offset=1.25, duration=2.0)
    assert len(window) == 88200
    np.testing.assert_allclose(window, whole[55125 : 55125 + 88200], atol=1e-4)


def test_max_duration_caps_what_is_decoded(tmp_path: Path, tones: np.ndarray) -> None:
    path = write_lossless(tmp_path / "tones.flac", tones, 44100, "PCM_16")
    assert len(load_audio(path, max_duration=1.5)[0]) == 66150
    assert len(load_audio(path, offset=1.0, duration=2.0, max_duration=0.5)[0]) == 22050
    assert len(load_audio(path, offset=10.0, duration=2.0)[0]) == 0  # past the end


def test_a_flac_named_mp3_decodes(tmp_path: Path, tones: np.ndarray) -> None:
    path = write_lossless(tmp_path / "tones.flac", tones, 44100, "PCM_16")
    renamed = path.rename(tmp_path / "tones.mp3")
    samples, rate = load_audio(renamed)
    assert (len(samples), rate) == (len(tones), 44100)


@pytest.mark.slow
def test_an_hour_long_file_decodes_within_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS of a fresh program: capped decode and excerpt extraction of a 1-hour WAV
    (the uncapped decode alone would hold 635 MB of samples)."""
    path = sparse_long_wav(tmp_path / "mix.wav", 3600)
    assert probe_duration(path) == pytest.approx(3600)
    script = textwrap.dedent(
        f"""
        import sys
        from genred_plugins.audio.decode import load_audio
        samples, rate = load_audio({str(path)!r}, max_duration=600)
        assert len(samples) == 600 * rate, len(samples)
        del samples
        if sys.argv[1] == "extract":
            from genred_plugins.audio.excerpts import excerpt_windows, load_windows
            from genred_plugins.audio.handcrafted import track_features
            parts, rate = load_windows({str(path)!r}, excerpt_windows(3600, 2, 30))
            assert track_features(parts, rate).shape == (518,)
        # VmHWM: this program's peak. (ru_maxrss would include the forking parent's.)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(int(status.split()[0]) // 1024)
        """
    )
    for mode in ("decode", "extract"):
        run = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=240,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        peak_mib = int(run.stdout.split()[-1])
        assert peak_mib < 500, (mode, peak_mib)


# --------------------------------------------------------------------------- broken files


def _raises(kind: type[AudioError], path: Path, *words: str) -> AudioError:
    with pytest.raises(kind) as info:
        load_audio(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _raises(AudioFileMissing, tmp_path / "gone.flac", "does not exist")
    with pytest.raises(AudioFileMissing):
        probe_duration(tmp_path / "gone.flac")


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    _raises(AudioUnreadable, tmp_path, "directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_no_read_permission(tmp_path: Path, tones: np.ndarray) -> None:
    path = write_lossless(tmp_path / "tones.flac", tones, 44100)
    path.chmod(0)
    _raises(AudioUnreadable, path, "permission denied")


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.touch()
    _raises(AudioEmpty, path, "0 bytes")


def test_a_header_without_samples(tmp_path: Path) -> None:
    path = write_lossless(tmp_path / "none.wav", np.zeros((0, 2), np.float32), 44100)
    _raises(AudioEmpty, path, "no audio samples")


def test_a_renamed_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("Track list:\n1. Something\n2. Something else\n" * 20)
    _raises(NotAudio, path, "not an audio file")


@pytest.mark.parametrize(
    "source",
    [
        AUDIO / "debian" / "wesnoth_revelation.ogg",
        AUDIO / "debian" / "warzone2100_aftermath_track19.opus",
    ],
    ids=lambda p: p.suffix,
)
def test_real_files_cut_in_half(tmp_path: Path, source: Path) -> None:
    _raises(AudioTruncated, truncated_copy(source, tmp_path / source.name), "truncated")


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".aiff", ".mp3", ".m4a"])
def test_made_files_cut_in_half(tmp_path: Path, tones: np.ndarray, suffix: str) -> None:
    made = tmp_path / f"tones{suffix}"
    if suffix in (".mp3", ".m4a"):
        write_lossy(made, tones, 44100, suffix[1:])
    else:
        write_lossless(made, tones, 44100, "PCM_16")
    cut = truncated_copy(made, tmp_path / f"cut{suffix}")
    _raises(AudioTruncated, cut, "truncated")


def test_a_codec_no_decoder_knows(tmp_path: Path, tones: np.ndarray) -> None:
    path = write_lossless(tmp_path / "odd.wav", tones, 44100, "PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"fmt ") + 8
    data[at : at + 2] = (0x1234).to_bytes(2, "little")  # an unassigned WAVE format tag
    path.write_bytes(bytes(data))
    _raises(UnsupportedCodec, path, "no decoder")


def test_audio_errors_survive_a_process_boundary(tmp_path: Path) -> None:
    error = _raises(AudioFileMissing, tmp_path / "gone.ogg")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AudioFileMissing and str(copy) == str(error)
