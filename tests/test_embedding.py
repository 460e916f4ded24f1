"""Extractor `embedding`: a tiny randomly initialised wav2vec2 saved in tmp_path and loaded
through the same from_pretrained path a user's model id takes. Nothing is downloaded."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from genred.config import Config  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred_plugins.audio.embedding_extractor import (  # noqa: E402
    AudioTooShort,
    EmbeddingExtractor,
    EmbeddingModelError,
    EmbeddingSettings,
)
from tests.conftest import FIXTURES, REPO  # noqa: E402
from tests.tiny_models import HIDDEN, save_tiny_model  # noqa: E402

TRUMPET = FIXTURES / "audio" / "librosa-data" / "sorohanro_-_solo-trumpet-06.ogg"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-wav2vec2"))


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WAVs at 44.1 kHz stereo: a long one, a middling one, one shorter than a window."""
    folder = tmp_path_factory.mktemp("songs")
    rng = np.random.default_rng(7)
    out = {}
    for name, seconds, pitch in (("long", 9.0, 220.0), ("mid", 5.0, 330.0), ("short", 1.2, 440.0)):
        t = np.arange(int(seconds * 44100)) / 44100
        tone = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(t.size)
        out[name] = folder / f"{name}.wav"
        sf.write(out[name], np.stack([tone, tone * 0.5], axis=1).astype(np.float32), 44100)
    return out


def extractor(model: Path, data_dir: Path | None = None, **settings: Any) -> EmbeddingExtractor:
    settings = {"excerpt_seconds": 2.0, "excerpts": 2, "device": "cpu", **settings}
    config = Config(data_dir=data_dir or model.parent)
    return EmbeddingExtractor(
        EmbeddingSettings(model=str(model), **settings), PluginContext(config)
    )


# --------------------------------------------------------------------------- windows


def test_windows_come_from_the_body_of_the_track_or_the_whole_short_one(
    tmp_path: Path, model_dir: Path, songs: dict[str, Path]
) -> None:
    plugin = extractor(model_dir)  # 2 windows of 2 s
    assert [len(w) for w in plugin.prepare(songs["long"])] == [32000, 32000]
    t = np.arange(int(3.5 * 16000)) / 16000
    ramp = tmp_path / "ramp.wav"  # 3.5 s: not longer than the two windows, so taken whole
    sf.write(ramp, (t / 4).astype(np.float32), 16000)
    first, rest = plugin.prepare(ramp)  # cut into window-long pieces
    assert (len(first), len(rest)) == (32000, 24000)
    np.testing.assert_allclose(first[[0, -1]], [0.0, (32000 - 1) / 16000 / 4], atol=1e-4)
    np.testing.assert_allclose(rest[0], 2.0 / 4, atol=1e-4)
    assert [len(w) for w in plugin.prepare(songs["short"])] == [int(1.2 * 16000)]


# --------------------------------------------------------------------------- vectors


def test_vectors_have_the_hidden_size_and_are_deterministic(
    model_dir: Path, songs: dict[str, Path]
) -> None:
    first = extractor(model_dir)
    vector = first.extract(songs["long"])
    assert first.dims == HIDDEN
    assert vector.dtype == np.float32 and vector.shape == (HIDDEN,)
    assert np.isfinite(vector).all() and np.abs(vector).sum() > 0
    again = extractor(model_dir).extract(songs["long"])  # a fresh load of the same model
    np.testing.assert_array_equal(vector, again)
    other = first.extract(songs["mid"])
    assert not np.allclose(vector, other)  # different audio, different vector


def test_a_real_fixture_file_gives_a_vector(model_dir: Path) -> None:
    vector = extractor(model_dir).extract(TRUMPET)
    assert vector.shape == (HIDDEN,) and np.isfinite(vector).all()


def test_a_batch_gives_the_same_vectors_as_one_track_at_a_time(
    model_dir: Path, songs: dict[str, Path]
) -> None:
    plugin = extractor(model_dir, batch_size=3)
    prepared = [plugin.prepare(songs[n]) for n in ("long", "mid", "short", "long")]
    assert [len(p) for p in prepared] == [2, 2, 1, 2]
    batched = plugin.extract_batch(prepared)
    single = [plugin.extract_batch([p])[0] for p in prepared]
    assert len(batched) == 4
    for got, want in zip(batched, single, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched[0], batched[3], rtol=1e-5, atol=1e-6)


def test_layer_choice_and_the_mean_of_all_layers(model_dir: Path, songs: dict[str, Path]) -> None:
    per_layer = [extractor(model_dir, layer=i).extract(songs["mid"]) for i in range(3)]
    last = extractor(model_dir, layer=-1).extract(songs["mid"])
    mean = extractor(model_dir, layer="mean").extract(songs["mid"])
    np.testing.assert_allclose(last, per_layer[2], rtol=1e-6)
    assert not np.allclose(per_layer[0], per_layer[2])
    # pooling is linear: the mean of all hidden states pools to the mean of their vectors
    np.testing.assert_allclose(mean, np.mean(per_layer, axis=0), rtol=1e-4, atol=1e-6)
    with pytest.raises(EmbeddingModelError, match=r"layer 3 does not exist.*0\.\.2"):
        extractor(model_dir, layer=3).load()


def test_audio_is_resampled_to_the_models_own_rate(
    tmp_path: Path, model_dir: Path, songs: dict[str, Path]
) -> None:
    mert_like = extractor(save_tiny_model(tmp_path / "at-24k", sampling_rate=24000))
    mert_like.load()
    assert mert_like.sampling_rate == 24000
    windows = mert_like.prepare(songs["long"])  # a 44.1 kHz file
    assert [len(w) for w in windows] == [2 * 24000, 2 * 24000]
    seen: list[int] = []
    feature_extractor = mert_like._feature_extractor

    def spy(audio: Any, sampling_rate: int, **kw: Any) -> Any:
        seen.append(sampling_rate)
        return feature_extractor(audio, sampling_rate=sampling_rate, **kw)

    mert_like._feature_extractor = spy
    mert_like.extract_batch([windows])
    assert seen == [24000]  # one call: both windows have the same length
    plain = extractor(model_dir)
    assert [len(w) for w in plain.prepare(songs["long"])] == [2 * 16000, 2 * 16000]


def test_audio_too_short_for_the_model_is_an_error(tmp_path: Path, model_dir: Path) -> None:
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.zeros(2000, dtype=np.float32) + 0.1, 16000)  # 0.125 s
    with pytest.raises(AudioTooShort, match=r"only 0\.12 s of audio"):
        extractor(model_dir).prepare(blip)


# --------------------------------------------------------------------------- loading


def test_model_code_runs_only_with_trust_remote_code(tmp_path: Path) -> None:
    repo = tmp_path / "custom-model"
    repo.mkdir()
    marker = tmp_path / "code-was-run"
    (repo / "config.json").write_text(
        json.dumps(
            {
                "model_type": "genred-test-custom",
                "auto_map": {
                    "AutoConfig": "configuration_custom.CustomConfig",
                    "AutoModel": "modeling_custom.CustomModel",
                },
            }
        )
    )
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    (repo / "configuration_custom.py").write_text(code)
    (repo / "modeling_custom.py").write_text(code)
    with pytest.raises(EmbeddingModelError, match=r"set `trust_remote_code: true`"):
        extractor(repo).load()
    assert not marker.exists()


def test_a_directory_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbeddingModelError, match=r"cannot load model .*empty"):
        extractor(tmp_path / "empty").load()


def test_version_follows_what_changes_the_vectors(model_dir: Path) -> None:
    base = extractor(model_dir).version
    assert extractor(model_dir, layer=1).version != base
    assert extractor(model_dir, excerpt_seconds=3.0).version != base
    assert extractor(model_dir, excerpts=1).version != base
    assert extractor(model_dir, revision="v2").version != base
    assert extractor(model_dir, batch_size=1, dtype="float32").version == base


def test_pickled_for_a_worker_it_carries_the_rate_but_not_the_model(
    model_dir: Path, songs: dict[str, Path]
) -> None:
    plugin = extractor(model_dir)
    plugin.load()
    copy = pickle.loads(pickle.dumps(plugin))
    assert copy._model is None and copy.sampling_rate == 16000
    assert [len(w) for w in copy.prepare(songs["mid"])] == [2 * 16000, 2 * 16000]
    assert copy._model is None  # prepare did not load it
    assert plugin._model is not None


def test_sent_unloaded_to_a_worker_it_decodes_without_loading_the_model(
    tmp_path: Path, model_dir: Path, songs: dict[str, Path]
) -> None:
    """A Ray task gets the plugin as the stage built it, never loaded: the rate comes
    from the model's preprocessor_config.json (24 kHz here), not from loading it."""
    plugin = extractor(save_tiny_model(tmp_path / "at-24k", sampling_rate=24000))
    copy = pickle.loads(pickle.dumps(plugin))
    assert copy.sampling_rate is None and copy._model is None
    assert [len(w) for w in copy.prepare(songs["mid"])] == [2 * 24000, 2 * 24000]
    assert copy._model is None and copy.sampling_rate == 24000


def test_cache_dir_defaults_into_the_data_dir(tmp_path: Path, model_dir: Path) -> None:
    assert extractor(model_dir, data_dir=tmp_path).cache_dir == tmp_path / "cache" / "huggingface"


def test_building_the_plugin_and_the_daemon_import_no_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import genred.service
        from genred.config import parse_config
        from genred.loader import PluginContext, load_plugins
        config = parse_config(
            "data_dir: {tmp_path}\\nplugins:\\n  extractors:\\n    embedding:\\n"
            "      model: /nonexistent/model\\n"
        )
        loaded = load_plugins(PluginContext(config))
        plugin = loaded.get("extractors", "embedding")
        print(plugin.version, "torch" in sys.modules, "transformers" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    version, torch_loaded, transformers_loaded = result.stdout.split()
    assert version.startswith("1-")
    assert (torch_loaded, transformers_loaded) == ("False", "False")


def test_the_example_config_documents_the_defaults() -> None:
    from genred.config import ExtractConfig, load_config
    from tests.conftest import EXAMPLE_CONFIG

    config = load_config(EXAMPLE_CONFIG, env={})
    entry = next(e for e in config.plugins.extractors if e.name == "embedding")
    assert EmbeddingSettings.model_validate(entry.settings) == EmbeddingSettings()
    assert config.extract == ExtractConfig()
    assert config.schedule.extract.every is not None
