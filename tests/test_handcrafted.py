"""The `handcrafted` extractor: FMA's 518 features, checked against the straightforward
librosa computation (tests/fma_reference.py) on real fixture clips."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.loader import load_plugins
from genred_plugins.audio.excerpts import WHOLE_TRACK, Window, excerpt_windows
from genred_plugins.audio.numba_cache import configure_numba_cache
from tests.conftest import FIXTURES, REPO

np = pytest.importorskip("numpy")
librosa = pytest.importorskip("librosa")
pytest.importorskip("av")

from genred.errors import AudioFileMissing, NotAudio  # noqa: E402
from genred_plugins.audio.decode import load_audio, probe_duration  # noqa: E402
from genred_plugins.audio.handcrafted import FEATURE_NAMES, frame_features, track_features  # noqa: E402
from genred_plugins.audio.handcrafted_extractor import (  # noqa: E402
    HandcraftedExtractor,
    HandcraftedSettings,
)
from genred_plugins.audio.spectral import magnitude_stft, zero_crossing_rate  # noqa: E402
from genred_plugins.audio.tuning import estimate_tuning  # noqa: E402
from tests.fma_reference import reference_features  # noqa: E402

LIBROSA_DATA = FIXTURES / "audio" / "librosa-data"
TRUMPET = LIBROSA_DATA / "sorohanro_-_solo-trumpet-06.hq.ogg"  # 5.3 s, 44.1 kHz stereo
NUTCRACKER = LIBROSA_DATA / "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg"
MACHINE_WARS = FIXTURES / "audio" / "debian" / "asc_machine_wars.mp3"  # 22.05 kHz MP3
TOLERANCE = {"rtol": 1e-4, "atol": 1e-7}


@pytest.fixture(autouse=True)
def _own_numba_cache_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the plugin sets NUMBA_CACHE_DIR; put it back after each test."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)


def extractor(tmp_path: Path, **settings: object) -> HandcraftedExtractor:
    config = parse_config(f"data_dir: {tmp_path / 'data'}\n", "g.yaml", {})
    return HandcraftedExtractor(HandcraftedSettings(**settings), PluginContext(config))


# --------------------------------------------------------------------------- the names


def test_518_names_in_fma_column_order() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 518
    assert FEATURE_NAMES[:3] == (
        "chroma_cens.kurtosis.01",
        "chroma_cens.kurtosis.02",
        "chroma_cens.kurtosis.03",
    )
    assert FEATURE_NAMES[12] == "chroma_cens.max.01"
    assert FEATURE_NAMES[252] == "mfcc.kurtosis.01"
    assert FEATURE_NAMES[392:399] == tuple(
        f"rms.{s}.01" for s in ("kurtosis", "max", "mean", "median", "min", "skew", "std")
    )
    assert FEATURE_NAMES[-1] == "zcr.std.01"
    # FMA's features.csv columns are its (feature, statistic, number) triples, sorted
    # ("rmse" there: it sorts where "rms" does)
    triples = [tuple(n.replace("rms.", "rmse.").split(".")) for n in FEATURE_NAMES]
    assert triples == sorted(triples)
    families = {n.split(".")[0] for n in FEATURE_NAMES}
    assert len(families) == 11


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("path", "offset", "duration"),
    [(TRUMPET, 0.0, None), (MACHINE_WARS, 120.0, 12.0)],
    ids=["ogg-44.1kHz-stereo", "mp3-22.05kHz"],
)
def test_equal_to_the_straightforward_computation(
    path: Path, offset: float, duration: float | None
) -> None:
    samples, rate = librosa.load(path, sr=None, offset=offset, duration=duration)
    expected = reference_features(samples, rate)
    ours = track_features([samples], rate)
    assert ours.dtype == np.float32 and ours.shape == (518,)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(ours, expected, **TOLERANCE)


def test_full_mode_extracts_the_whole_file(tmp_path: Path) -> None:
    vector = extractor(tmp_path, mode="full").extract(TRUMPET)
    samples, rate = librosa.load(TRUMPET, sr=None)
    np.testing.assert_allclose(vector, reference_features(samples, rate), **TOLERANCE)


def test_excerpt_mode_is_the_middle_30_seconds(tmp_path: Path) -> None:
    plugin = extractor(tmp_path)  # the defaults: one 30 s window
    vector = plugin.extract(NUTCRACKER)  # 119.9 s: the window starts at 44.94 s
    (window,) = excerpt_windows(probe_duration(NUTCRACKER), 1, 30.0)
    assert window.offset == pytest.approx(44.94, abs=0.01)
    samples, rate = librosa.load(NUTCRACKER, sr=None, offset=window.offset, duration=30.0)
    np.testing.assert_allclose(vector, reference_features(samples, rate), **TOLERANCE)
    whole, rate = load_audio(NUTCRACKER)  # ... which is not the whole track's statistics
    assert not np.allclose(vector, track_features([whole], rate), rtol=1e-3)


def test_windows_are_summarised_over_all_their_frames() -> None:
    samples, rate = load_audio(TRUMPET)
    one = track_features([samples], rate)
    # the same window twice: every statistic of the doubled frames is the same
    # (float32 moments of twice the frames round differently: skew/kurtosis by ~1e-5)
    np.testing.assert_allclose(track_features([samples, samples], rate), one, rtol=1e-3, atol=1e-4)
    # two halves: the frames of both, in order
    half = len(samples) // 2
    frames = frame_features([samples[:half], samples[half:]], rate)
    assert frames["mfcc"].shape[1] == 1 + half // 512 + 1 + (len(samples) - half) // 512
    assert all(values.shape[1] == frames["mfcc"].shape[1] for values in frames.values())


def test_silence_and_tiny_inputs_give_finite_values() -> None:
    silent = track_features([np.zeros(22050 * 2, np.float32)], 22050)
    assert np.isfinite(silent).all()
    assert silent[FEATURE_NAMES.index("rms.max.01")] == 0
    assert silent[FEATURE_NAMES.index("zcr.kurtosis.01")] == 0  # undefined: stored as 0
    tiny = np.random.default_rng(0).standard_normal(800).astype(np.float32) * 0.1
    assert np.isfinite(track_features([tiny], 22050)).all()


@pytest.mark.parametrize("path", [TRUMPET, MACHINE_WARS], ids=["44.1kHz", "22.05kHz"])
def test_tuning_is_librosas_estimate(path: Path) -> None:
    samples, rate = load_audio(path, duration=30.0)
    magnitude = magnitude_stft(samples)
    assert np.array_equal(magnitude, np.abs(librosa.stft(samples, n_fft=2048, hop_length=512)))
    assert estimate_tuning(magnitude, rate) == librosa.estimate_tuning(y=samples, sr=rate)
    assert estimate_tuning(magnitude, 22050, squared=True) == librosa.estimate_tuning(
        S=magnitude**2, sr=22050
    )


@pytest.mark.parametrize("length", [300, 2047, 2048, 2049, 100_000, 2048 * 512 + 77])
def test_zero_crossing_rate_is_librosas(length: int) -> None:
    signal = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    signal[::7] = 0
    signal[::11] = -1e-12  # below librosa's threshold: counts as zero
    expected = librosa.feature.zero_crossing_rate(signal, frame_length=2048, hop_length=512)
    assert np.array_equal(zero_crossing_rate(signal), expected)


# --------------------------------------------------------------------------- windows


def test_excerpt_windows_leave_equal_gaps() -> None:
    assert excerpt_windows(240.0, 1, 30.0) == (Window(105.0, 30.0),)
    assert excerpt_windows(240.0, 2, 30.0) == (Window(60.0, 30.0), Window(150.0, 30.0))
    assert excerpt_windows(100.0, 3, 20.0) == (
        Window(10.0, 20.0),
        Window(40.0, 20.0),
        Window(70.0, 20.0),
    )
    assert excerpt_windows(60.0, 2, 30.0) == WHOLE_TRACK  # no longer than the windows
    assert excerpt_windows(None, 1, 30.0) == WHOLE_TRACK  # unknown length
    with pytest.raises(ValueError):
        excerpt_windows(100.0, 0, 30.0)


# --------------------------------------------------------------------------- the plugin


def test_version_names_what_changes_the_values(tmp_path: Path) -> None:
    default = extractor(tmp_path)
    assert default.version == "1-excerpt-30x1"
    assert default.dims == 518
    assert extractor(tmp_path, excerpts=2).version == "1-excerpt-30x2"
    assert extractor(tmp_path, excerpt_seconds=20).version == "1-excerpt-20x1"
    assert extractor(tmp_path, mode="full").version == "1-full-300s"
    assert extractor(tmp_path, mode="full", max_seconds=600).version == "1-full-600s"
    assert extractor(tmp_path, sample_rate=22050).version == "1-excerpt-30x1-22050hz"
    # settings that do not reach the values in this mode leave the version alone
    assert extractor(tmp_path, max_seconds=600).version == default.version


def test_bad_files_raise_audio_errors(tmp_path: Path) -> None:
    plugin = extractor(tmp_path)
    with pytest.raises(AudioFileMissing):
        plugin.extract(tmp_path / "gone.flac")
    text = tmp_path / "notes.ogg"
    text.write_text("not music\n" * 50)
    with pytest.raises(NotAudio):
        plugin.extract(text)


def test_loaded_from_the_config_and_numba_cache_in_the_data_dir(tmp_path: Path) -> None:
    """In a fresh process: importing the CLI and the daemon imports no audio library;
    building the plugin sets numba's cache (0700, in the data dir) before anything
    imports numba, and imports neither numba nor torch itself."""
    data = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import json, os, sys
        import genred.cli, genred.service
        costly = ("librosa", "numba", "scipy", "torch")
        at_start = sorted(m for m in costly if m in sys.modules)
        from genred.config import parse_config
        from genred.loader import PluginContext, load_plugins
        text = "data_dir: {data}\\nplugins:\\n  extractors:\\n    handcrafted: {{}}\\n"
        loaded = load_plugins(PluginContext(parse_config(text, "g.yaml", {{}})))
        plugin = loaded.get("extractors", "handcrafted")
        heavy = sorted(m for m in costly if m in sys.modules)
        import numba, numpy
        from genred_plugins.audio.spectral import spectral_shape  # one of our cached numba kernels
        freqs = numpy.linspace(0, 11025, 1025)
        spectral_shape(numpy.ones((1025, 4), numpy.float32), freqs, sr=22050)
        print(json.dumps({{"at_start": at_start, "heavy": heavy, "version": plugin.version,
                           "cache": os.environ.get("NUMBA_CACHE_DIR"),
                           "numba_cache": numba.config.CACHE_DIR}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    cache = data / "cache" / "numba"
    assert result["at_start"] == []  # the CLI and the daemon import none of them
    # with the plugins loaded: librosa's top level is lazy (another plugin imports it),
    # numba is what costs (and must see NUMBA_CACHE_DIR first)
    assert "numba" not in result["heavy"] and "torch" not in result["heavy"]
    assert result["cache"] == result["numba_cache"] == str(cache)
    assert result["version"] == "1-excerpt-30x1"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert any(cache.rglob("*.nbi"))  # numba wrote its index there


def test_configure_numba_cache_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    first = configure_numba_cache(tmp_path / "one")
    assert first == tmp_path / "one" / "cache" / "numba"
    assert os.environ["NUMBA_CACHE_DIR"] == str(first)
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    assert configure_numba_cache(tmp_path / "one") == first
    # a cache the environment already names (by the user, or an earlier call) is kept
    assert configure_numba_cache(tmp_path / "two") == first
    assert not (tmp_path / "two").exists()


def test_plugin_is_registered(tmp_path: Path) -> None:
    config = parse_config(
        f"data_dir: {tmp_path}\nplugins:\n  extractors:\n    handcrafted:\n      excerpts: 2\n",
        "g.yaml",
        {},
    )
    loaded = load_plugins(PluginContext(config))
    plugin = loaded.get("extractors", "handcrafted")
    assert isinstance(plugin, HandcraftedExtractor)
    assert plugin.settings.excerpts == 2
