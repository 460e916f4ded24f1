"""The `tagger` classifier: musicnn's reference tags on the real fixtures, the spec files,
the patch pipeline's edges (short, silent, batched), the classify stage, `genred models`."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("onnxruntime")
pytest.importorskip("librosa")
pytest.importorskip("soxr")

import yaml  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from genred.cli import cli  # noqa: E402
from genred.config import parse_config  # noqa: E402
from genred.errors import Cancelled  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred.loader import discover, load_plugins  # noqa: E402
from genred.pipeline.classify import classify  # noqa: E402
from genred.pipeline.sync import sync  # noqa: E402
from genred.records import TrackRecord  # noqa: E402
from genred.store import Store  # noqa: E402
from genred.store import features as features_q  # noqa: E402
from genred.taxonomy import default_taxonomy  # noqa: E402
from genred_plugins.audio.decode import load_audio  # noqa: E402
from genred_plugins.audio.tagger_classifier import TaggerClassifier  # noqa: E402
from genred_plugins.audio.tagging.fetch import ModelFetchError, fetch_model  # noqa: E402
from genred_plugins.audio.tagging.logmel import frame_count, patch_starts  # noqa: E402
from genred_plugins.audio.tagging.meaning import genre_of, ranked, tag_meaning  # noqa: E402
from genred_plugins.audio.tagging.model import OnnxTagger  # noqa: E402
from genred_plugins.audio.tagging.spec import (  # noqa: E402
    ModelSpecError,
    file_sha256,
    read_spec,
    resolve_spec,
    shipped_specs,
)
from tests.conftest import FIXTURES, REPO  # noqa: E402
from tests.stored import ListSource  # noqa: E402

MUSICNN = FIXTURES / "models" / "musicnn"
AUDIO = FIXTURES / "audio"
REFERENCE = json.loads((MUSICNN / "expected_tags.json").read_text())["files"]
RATE = 16000
ROBIN = AUDIO / "librosa-data" / "456440__inspectorj__bird-whistling-robin-single-13.ogg"
VIBE_ACE = AUDIO / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
CHOICE = AUDIO / "librosa-data" / "admiralbob77_-_Choice_-_Drum-bass.hq.ogg"
TRUMPET = AUDIO / "librosa-data" / "sorohanro_-_solo-trumpet-06.hq.ogg"
FISHIN = AUDIO / "librosa-data" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"


def fixture_path(name: str) -> Path:
    return next(AUDIO.glob(f"*/{name}"))


@functools.cache
def tagger(name: str) -> OnnxTagger:
    return OnnxTagger(resolve_spec(name))


@functools.cache
def samples(path: Path) -> Any:
    return load_audio(path, sr=RATE)[0]


# --------------------------------------------------------------------------- reference


# expected_tags.json covers the 8 librosa *.hq.ogg and 3 Debian *.ogg fixtures (1 to 44
# patches each, 226 in all), computed by musicnn in TensorFlow. Here: 5 of them (58
# patches: both collections, 44.1 and 48 kHz, 1 to 20 patches); bench/bench_tagger.py
# checks all 11 with both models.
REFERENCE_SUBSET = (
    TRUMPET.name,
    CHOICE.name,
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
    "singularity-music_March_Thee_to_Dis.ogg",
    "hyperrogue_hr-savino-ocean.ogg",
)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["msd", "mtt"])
def test_reproduces_musicnn_reference_tags_on_the_real_fixtures(model: str) -> None:
    assert len(REFERENCE) == 11 and set(REFERENCE_SUBSET) <= set(REFERENCE)
    model_tagger = tagger(f"{model}-musicnn")
    for name in REFERENCE_SUBSET:
        expected = REFERENCE[name]
        clip = model_tagger.tag(samples(fixture_path(name)), batch_patches=64)
        assert clip is not None, name
        assert clip.patches == expected["n_patches"], name
        np.testing.assert_allclose(clip.probs, expected[model], atol=1e-4, rtol=0, err_msg=name)
        assert clip.embedding is not None and clip.embedding.shape == (200,)
        top5 = [model_tagger.tags[i] for i in np.argsort(clip.probs)[::-1][:5]]
        assert top5[:3] == expected[f"{model}_top5"][:3], name


def test_batching_does_not_change_results() -> None:
    model = tagger("msd-musicnn")
    audio = samples(CHOICE)
    one = model.tag(audio, batch_patches=1)
    three = model.tag(audio, batch_patches=3)
    whole = model.tag(audio, batch_patches=1000)
    assert one is not None and three is not None and whole is not None
    assert one.patches == three.patches == whole.patches == 8
    np.testing.assert_allclose(one.probs, whole.probs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(three.probs, whole.probs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(one.embedding, whole.embedding, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- edges


def test_patch_grid_follows_musicnn() -> None:
    mel = resolve_spec("msd-musicnn").spec.mel
    assert frame_count(60 * RATE, mel) == 3751
    assert patch_starts(3751, 187, 187) == [187 * i for i in range(20)]
    # 186 · 256 samples is the shortest clip with 187 frames: one patch, not before.
    assert patch_starts(frame_count(47_616, mel), 187, 187) == [0]
    assert patch_starts(frame_count(47_615, mel), 187, 187) == []
    assert patch_starts(10, 4, 3) == [0, 3, 6]


def test_short_clips_and_silence_give_no_tags() -> None:
    model = tagger("msd-musicnn")
    robin = samples(ROBIN)
    assert len(robin) < 3 * RATE  # the 2.7 s robin call
    assert model.tag(robin) is None
    assert model.tag(np.zeros(0, np.float32)) is None
    assert model.tag(np.zeros(47_615, np.float32), min_dbfs=None) is None
    silence = np.zeros(10 * RATE, np.float32)
    assert model.tag(silence) is None
    hiss = (np.random.default_rng(1).standard_normal(10 * RATE) * 1e-4).astype(np.float32)
    assert model.tag(hiss) is None  # -80 dBFS
    ungated = model.tag(silence, min_dbfs=None)
    assert ungated is not None and ungated.patches == 3  # the gate is what drops silence


def test_silent_patches_are_skipped_and_the_rest_tagged() -> None:
    model = tagger("msd-musicnn")
    trumpet = samples(TRUMPET)[: 187 * 256]  # exactly one patch of music
    padded = np.concatenate([np.zeros(187 * 256 * 2, np.float32), trumpet])
    alone = model.tag(trumpet)
    after_silence = model.tag(padded)
    assert alone is not None and after_silence is not None
    assert after_silence.patches == 1
    np.testing.assert_allclose(after_silence.probs, alone.probs, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- specs


def test_shipped_specs_map_to_canonical_genres() -> None:
    specs = shipped_specs()
    assert {"msd-musicnn", "mtt-musicnn", "discogs-effnet"} <= set(specs)
    taxonomy = default_taxonomy()
    for name in ("msd-musicnn", "mtt-musicnn"):
        loaded = specs[name]
        tags = loaded.tags(None)  # checks every tag is placed and every key is a tag
        assert len(tags) == 50
        for tag, genre in loaded.spec.genres.items():
            assert taxonomy.canonicalize(genre) == [genre], (name, tag, genre)
        meaning = tag_meaning(loaded.spec, tags, taxonomy)
        assert not meaning.unmapped_genres
    msd = specs["msd-musicnn"].spec
    assert msd.genres["rnb"] == "R&B" and msd.moods["sad"] == "Sad"
    assert "00s" in msd.labels and "female vocalists" in msd.labels
    assert json.loads((REPO / "models/musicnn/msd_tags.json").read_text()) == json.loads(
        (MUSICNN / "msd_tags.json").read_text()
    )
    for name in ("msd", "mtt"):  # the shipped weights are the ones their specs pin
        spec = yaml.safe_load((REPO / f"models/musicnn/{name}-musicnn.yaml").read_text())
        assert file_sha256(REPO / f"models/musicnn/{name}_musicnn.onnx") == spec["model"]["sha256"]


def test_tags_to_labels_take_the_best_tag_per_label() -> None:
    probs = np.array([0.05, 0.3, 0.6, 0.2], np.float32)
    meaning = {0: "Rock", 1: "Electronic", 2: "Electronic", 3: "Jazz"}
    assert ranked(probs, meaning, threshold=0.1, top_k=5) == (("Electronic", 0.6), ("Jazz", 0.2))
    assert ranked(probs, meaning, threshold=0.1, top_k=1) == (("Electronic", 0.6),)
    taxonomy = default_taxonomy()
    assert genre_of("Electronic---Deep House", taxonomy, "---") == "Deep House"
    assert genre_of("Electronic---No Such Style Here", taxonomy, "---") == "Electronic"
    assert genre_of("Non-Music---Xyzzy", taxonomy, "---") is None


def write_spec(folder: Path, **changes: Any) -> Path:
    """A copy of msd-musicnn.yaml in `folder` (files copied beside it), with `changes`."""
    data = yaml.safe_load((REPO / "models/musicnn/msd-musicnn.yaml").read_text())
    for name in ("msd_tags.json", "msd_musicnn.onnx"):
        target = folder / name
        if not target.exists():
            target.write_bytes((REPO / "models" / "musicnn" / name).read_bytes())
    data.update(changes)
    path = folder / "custom.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_broken_specs_are_refused_with_the_reason(tmp_path: Path) -> None:
    cases = {
        "patch": ({"patch": {"frames": 0, "hop": 187}}, "patch.frames"),
        "model": (
            {"model": {"file": "x.onnx", "url": "https://example.invalid/x.onnx"}},
            "needs its sha256",
        ),
        "escape": ({"model": {"file": "../x.onnx"}}, "model.file"),
        "unknown": ({"genres": {"polka": "Polka", "rock": "Rock"}}, "does not have: ['polka']"),
    }
    for change, message in cases.values():
        path = write_spec(tmp_path, **change)
        with pytest.raises(ModelSpecError, match=re.escape(message)):
            read_spec(path).tags(None)
    unplaced = write_spec(tmp_path, labels={})
    with pytest.raises(ModelSpecError, match="not listed under genres"):
        read_spec(unplaced).tags(None)
    with pytest.raises(ModelSpecError, match="unknown tagger model 'nope'"):
        resolve_spec("nope")


def test_bad_model_files_are_refused_before_any_track(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx graph" * 100)
    spec = write_spec(tmp_path, model={"file": "garbage.onnx", "sha256": file_sha256(garbage)})
    with pytest.raises(ModelSpecError, match="not a usable ONNX model"):
        OnnxTagger(read_spec(spec))
    damaged = write_spec(tmp_path, model={"file": "msd_musicnn.onnx", "sha256": "0" * 64})
    with pytest.raises(ModelSpecError, match="does not match the sha256"):
        OnnxTagger(read_spec(damaged))
    renamed = write_spec(
        tmp_path,
        onnx={"input": "mel", "tags_output": "tag_probs", "embedding_output": "penultimate"},
    )
    with pytest.raises(ModelSpecError, match=r"no input 'mel' \(it has \['log_mel'\]\)"):
        OnnxTagger(read_spec(renamed))
    shape = write_spec(tmp_path, patch={"frames": 128, "hop": 62})
    with pytest.raises(ModelSpecError, match=r"shape \['batch', 187, 96\]"):
        OnnxTagger(read_spec(shape))
    missing = write_spec(tmp_path, model={"file": "absent.onnx"})
    with pytest.raises(ModelSpecError, match=r"absent\.onnx is missing"):
        OnnxTagger(read_spec(missing))


# --------------------------------------------------------------------------- the classifier


def tagger_config(tmp_path: Path, **settings: Any) -> Any:
    section = {"tagger": settings or {}}
    text = yaml.safe_dump({"data_dir": str(tmp_path / "data"), "plugins": {"classifiers": section}})
    return parse_config(text)


def library(tmp_path: Path) -> tuple[Store, dict[str, int]]:
    corrupt = tmp_path / "corrupt.ogg"
    corrupt.write_bytes(b"OggS" + bytes(range(256)) * 40)
    files = {
        "vibeace": VIBE_ACE,
        "fishin": FISHIN,
        "robin": ROBIN,
        "corrupt": corrupt,
        "missing": tmp_path / "gone.flac",
    }
    records = [
        TrackRecord("folder", key, title=key, path=str(path), id=None)
        for key, path in files.items()
    ]
    records.append(TrackRecord("folder", "nopath", title="no path"))
    store = Store.memory()
    sync(store, "folder", ListSource(records), full=True)
    ids = dict(store.conn.execute("SELECT source_id, id FROM tracks"))
    return store, ids


def stored_labels(store: Store, track_id: int, label_set: str) -> list[tuple[str, float]] | None:
    row = store.conn.execute(
        "SELECT labels FROM predictions WHERE track_id = ? AND classifier = 'tagger'"
        " AND label_set = ?",
        (track_id, label_set),
    ).fetchone()
    return None if row is None else [tuple(x) for x in json.loads(row[0])]


def test_classify_stage_stores_genres_moods_and_embeddings(tmp_path: Path) -> None:
    config = tagger_config(tmp_path, seconds=30)
    store, ids = library(tmp_path)
    loaded = load_plugins(PluginContext(config, store), discover(["classifiers"]))
    assert not loaded.unavailable
    plugin = loaded.get("classifiers", "tagger")
    assert isinstance(plugin, TaggerClassifier)
    counts = classify(store, {"tagger": plugin})
    assert counts["tagger.considered"] == 6
    assert counts["tagger.failed"] == 3  # corrupt, missing, and too short (for good)
    assert counts["tagger.predicted"] == 2
    vibe = stored_labels(store, ids["vibeace"], "genre")
    assert vibe is not None and vibe[0][0] == "Jazz" and vibe[0][1] > 0.3
    fishin_genres = dict(stored_labels(store, ids["fishin"], "genre") or [])
    assert {"Folk", "Pop"} <= set(fishin_genres)
    assert all(0.1 <= c <= 1 for c in fishin_genres.values())
    assert dict(stored_labels(store, ids["fishin"], "tags") or {}).get("Female Vocals", 0) > 0.2
    assert stored_labels(store, ids["vibeace"], "mood") is not None
    assert stored_labels(store, ids["nopath"], "genre") == []  # nothing to say: not asked again
    failed = {
        item: (error, bool(permanent))
        for item, error, permanent in store.conn.execute(
            "SELECT item, error_type, permanent FROM failures WHERE stage = 'classify:tagger'"
        )
    }
    assert set(failed) == {str(ids["corrupt"]), str(ids["missing"]), str(ids["robin"])}
    assert failed[str(ids["missing"])] == ("AudioFileMissing", False)
    assert failed[str(ids["robin"])] == ("AudioTooShort", True)  # 2.7 s: less than one patch
    # ... and its features can never be computed: what a model trained on them is told
    [(stage, error_type, message)] = store.conn.execute(
        "SELECT stage, error_type, message FROM failures WHERE stage LIKE 'extract:%'"
    )
    assert (stage, error_type) == ("extract:tagger-msd-musicnn", "AudioTooShort")
    assert "s of audio, shorter than one tagger-msd-musicnn patch (3.0 s)" in message
    tracks, matrix = features_q.load_matrix(store, plugin.feature_extractor, plugin.feature_version)
    assert plugin.feature_extractor == "tagger-msd-musicnn"
    assert sorted(tracks) == sorted([ids["vibeace"], ids["fishin"]])
    assert matrix.shape == (2, 200) and np.isfinite(matrix).all()
    again = classify(store, {"tagger": plugin})
    assert again["tagger.considered"] == 0  # failures back off, the rest is done


def test_classifier_with_the_whole_track_matches_the_reference(tmp_path: Path) -> None:
    config = tagger_config(tmp_path)
    plugin = TaggerClassifier(TaggerClassifier.Config(seconds=None), PluginContext(config))
    whole = TaggerClassifier(
        TaggerClassifier.Config(seconds=None, threshold=0.0, top_k=50),
        PluginContext(config),
    )
    assert whole.version != plugin.version  # settings that change answers change the version
    mtt = TaggerClassifier(TaggerClassifier.Config(model="mtt-musicnn"), PluginContext(config))
    assert mtt.version != plugin.version and mtt.feature_extractor == "tagger-mtt-musicnn"
    track = TrackRecord("folder", "v", path=str(VIBE_ACE), id=7)
    results = {p.label_set: p for p in whole.classify([track])}
    expected = REFERENCE[VIBE_ACE.name]["msd"]
    tags = whole.tagger.tags
    jazz = expected[tags.index("jazz")]
    assert results["genre"].labels[0] == ("Jazz", round(jazz, 4))
    electronic = max(expected[tags.index(t)] for t in ("electronic", "electronica"))
    assert dict(results["genre"].labels)["Electronic"] == pytest.approx(electronic, abs=1e-4)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        list(whole.classify([track], cancel=stop))


# --------------------------------------------------------------------------- models fetch


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def fetchable_spec(folder: Path, url: str, sha: str, tags_sha: str) -> Path:
    spec = write_spec(
        folder,
        name="remote",
        model={"file": "remote.onnx", "url": f"{url}/remote.onnx", "sha256": sha},
        tags_file={"file": "remote_tags.json", "url": f"{url}/tags.json", "sha256": tags_sha},
    )
    return spec


def test_fetch_installs_a_file_with_the_right_checksum(
    tmp_path: Path, served: tuple[str, Path]
) -> None:
    url, root = served
    (root / "remote.onnx").write_bytes(
        (REPO / "models" / "musicnn" / "msd_musicnn.onnx").read_bytes()
    )
    (root / "tags.json").write_bytes((MUSICNN / "msd_tags.json").read_bytes())
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = fetchable_spec(
        specs, url, file_sha256(root / "remote.onnx"), file_sha256(root / "tags.json")
    )
    data_dir = tmp_path / "data"
    config = tmp_path / "genred.yaml"
    config.write_text(f"data_dir: {data_dir}\n")
    result = CliRunner().invoke(cli, ["models", "fetch", str(spec), "--config", str(config)])
    assert result.exit_code == 0, result.output
    installed = data_dir / "models" / "remote"
    assert sorted(p.name for p in installed.iterdir()) == ["remote.onnx", "remote_tags.json"]
    assert "remote.onnx: downloaded, checksum ok" in result.output
    model = OnnxTagger(read_spec(spec), data_dir)  # the fetched files are found and work
    clip = model.tag(samples(TRUMPET))
    assert clip is not None and clip.probs.shape == (50,)
    again = fetch_model(read_spec(spec), data_dir)
    assert [f.downloaded for f in again] == [False, False]


def test_fetch_refuses_a_wrong_checksum_and_leaves_nothing(
    tmp_path: Path, served: tuple[str, Path]
) -> None:
    url, root = served
    (root / "remote.onnx").write_bytes(b"not the model" * 1000)
    (root / "tags.json").write_text("[]")
    spec = fetchable_spec(tmp_path, url, "a" * 64, file_sha256(root / "tags.json"))
    data_dir = tmp_path / "data"
    with pytest.raises(ModelFetchError, match="refused, nothing was installed"):
        fetch_model(read_spec(spec), data_dir)
    assert list((data_dir / "models" / "remote").iterdir()) == []
    missing = fetchable_spec(tmp_path, url + "/nothing-here", "a" * 64, "b" * 64)
    with pytest.raises(ModelFetchError, match="HTTP 404"):
        fetch_model(read_spec(missing), data_dir)
    assert list((data_dir / "models" / "remote").iterdir()) == []


def test_fetch_without_a_network_says_what_to_do(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = fetchable_spec(tmp_path, f"http://127.0.0.1:{port}", "a" * 64, "b" * 64)
    config = tmp_path / "genred.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    result = CliRunner().invoke(cli, ["models", "fetch", str(spec), "--config", str(config)])
    assert result.exit_code == 1
    assert f"cannot reach 127.0.0.1:{port}" in result.output
    assert "copy it to" in result.output and "by hand" in result.output
    assert not any((tmp_path / "data" / "models" / "remote").iterdir())


def test_models_list_shows_shipped_and_fetchable(tmp_path: Path) -> None:
    config = tmp_path / "genred.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    result = CliRunner().invoke(cli, ["models", "list", "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "shipped" in rows["msd-musicnn"] and "ready" in rows["msd-musicnn"]
    assert "shipped" in rows["mtt-musicnn"]
    assert "genred models fetch discogs-effnet" in rows["discogs-effnet"]


def test_spec_digest_follows_the_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    before = read_spec(spec).digest
    assert read_spec(write_spec(tmp_path)).digest == before
    assert read_spec(write_spec(tmp_path, patch={"frames": 187, "hop": 93})).digest != before
    assert read_spec(write_spec(tmp_path, moods={"sad": "Melancholy"})).digest != before


def test_model_files_ship_as_package_data() -> None:
    import fnmatch
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in ("musicnn", "essentia"):
        package = f"genred.models.{folder}"
        assert package in setuptools["packages"]
        patterns = setuptools["package-data"][package]
        for path in (REPO / "models" / folder).iterdir():
            if path.is_file():
                assert any(fnmatch.fnmatch(path.name, p) for p in patterns), path


def test_config_check_names_an_unknown_model(tmp_path: Path) -> None:
    from genred.config import ConfigError
    from genred.loader import validate_plugin_settings

    config = tagger_config(tmp_path, model="msd-musicn")
    with pytest.raises(ConfigError, match="unknown tagger model 'msd-musicn'"):
        validate_plugin_settings(config, discover(["classifiers"]))


def test_spec_options_for_other_models_layout_and_logits() -> None:
    """Another model is a spec: input layout [batch, mels, frames], outputs as logits."""
    from genred_plugins.audio.tagging.logmel import cut_patches

    model = tagger("msd-musicnn")
    spec = model.spec
    audio = samples(TRUMPET)
    time_mel = cut_patches(audio, [0], spec)
    mel_first = spec.model_copy(
        update={"onnx": spec.onnx.model_copy(update={"layout": "mel_time"})}
    )
    assert cut_patches(audio, [0], mel_first).shape == (1, 96, 187)
    np.testing.assert_array_equal(cut_patches(audio, [0], mel_first), time_mel.transpose(0, 2, 1))
    probs, _ = model.predict(time_mel, batch=1)
    logits = spec.model_copy(update={"onnx": spec.onnx.model_copy(update={"tags_are": "logits"})})
    as_logits = OnnxTagger.__new__(OnnxTagger)
    as_logits.__dict__.update(model.__dict__, spec=logits)
    squashed, _ = as_logits.predict(time_mel, batch=1)
    np.testing.assert_allclose(squashed, 1 / (1 + np.exp(-probs)), rtol=1e-6)


def test_patches_are_the_whole_track_spectrogram_cut_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Computed a stretch at a time, frame for frame librosa's whole-track log-mel."""
    import librosa

    from genred_plugins.audio.tagging import logmel

    spec = resolve_spec("msd-musicnn").spec
    audio = samples(CHOICE)
    whole = librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=512, hop_length=256, n_mels=96)
    reference = np.log10(10000 * whole + 1).T
    starts = [0, 187, 561, 1122]  # with gaps, as skipped silent patches leave them
    expected = np.stack([reference[s : s + 187] for s in starts])
    np.testing.assert_allclose(logmel.cut_patches(audio, starts, spec), expected, atol=2e-5)
    monkeypatch.setattr(logmel, "SPAN_FRAMES", 200)  # one STFT per patch
    np.testing.assert_allclose(logmel.cut_patches(audio, starts, spec), expected, atol=2e-5)
