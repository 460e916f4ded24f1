"""`genred train` and the `audio-model` classifier: the album-wise split, labels in order of
trust, the metrics; training on vectors written straight into the store (7 classes, for
top-5 and the error paths), on synthetic audio through the real handcrafted extractor
(clearly separable classes: the held-out albums must be recognised), and on the real
fixture clips through extract → train → classify."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from genred.cli import cli  # noqa: E402
from genred.config import TrainLabelsConfig, parse_config  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred.loader import discover, load_plugins  # noqa: E402
from genred.pipeline.classify import classify  # noqa: E402
from genred.pipeline.sync import sync  # noqa: E402
from genred.records import TrackRecord  # noqa: E402
from genred.store import Store, features, utcnow  # noqa: E402
from genred.taxonomy import default_taxonomy  # noqa: E402
from genred.training import metrics, registry  # noqa: E402
from genred.training.dataset import label_inputs  # noqa: E402
from genred.training.labels import (  # noqa: E402
    LabelInputs,
    assemble_labels,
    select_classes,
)
from genred.training.model import fit_temperature, softmax  # noqa: E402
from genred.training.split import GroupedTrack, group_keys, split_groups  # noqa: E402
from genred.training.train import train_audio_model  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402
from tests.stored import ListSource  # noqa: E402

AUDIO = FIXTURES / "audio"


# --------------------------------------------------------------------------- split


def grouped(n_albums: int, per_album: int, labels: Sequence[str]) -> list[GroupedTrack]:
    """`n_albums` albums per label, `per_album` tracks each; artist k owns albums 2k, 2k+1."""
    out = []
    for label in labels:
        for a in range(n_albums):
            for _ in range(per_album):
                out.append(
                    GroupedTrack(
                        id=len(out) + 1,
                        source="plex",
                        album_source_id=f"{label}-{a}",
                        album=f"Album {a}",
                        artist=f"{label} artist {a // 2}",
                    )
                )
    return out


def sides(keys: Sequence[str], split: Any) -> tuple[set[str], set[str]]:
    return {keys[i] for i in split.train}, {keys[i] for i in split.test}


def test_album_split_never_puts_one_album_on_both_sides() -> None:
    tracks = grouped(6, 5, ["Rock", "Jazz", "Folk"])
    labels = [t.album_source_id.split("-")[0] for t in tracks]
    keys = group_keys(tracks, "album")
    split = split_groups(labels, keys, 0.2, seed=3)
    train, test = sides(keys, split)
    assert train and test and not train & test
    assert sorted(split.train + split.test) == list(range(len(tracks)))
    # by album names where there is no id: same name + artist is one album, case-folded
    named = [
        GroupedTrack(1, album="Blue", album_artist="X"),
        GroupedTrack(2, album="blue ", album_artist="x"),
        GroupedTrack(3, album="Blue", album_artist="Y"),
        GroupedTrack(4),
        GroupedTrack(5),
    ]
    keys = group_keys(named, "album")
    assert keys[0] == keys[1] != keys[2] and keys[3] != keys[4]


def test_artist_split_keeps_artists_and_their_albums_together() -> None:
    tracks = grouped(6, 3, ["Rock", "Jazz"])
    # a compilation: one album, tracks by two artists, links them
    tracks += [
        GroupedTrack(100, "plex", "comp", "Hits", "Various", "Rock artist 0"),
        GroupedTrack(101, "plex", "comp", "Hits", "Various", "Rock artist 1"),
    ]
    labels = [("Rock" if "Rock" in (t.artist or "") else "Jazz") for t in tracks]
    keys = group_keys(tracks, "artist")
    assert keys[-1] == keys[-2] == keys[0]  # artist 0 ~ compilation ~ artist 1
    for seed in range(5):
        split = split_groups(labels, keys, 0.3, seed)
        for field in ("artist", "album_source_id"):
            values = [getattr(t, field) for t in tracks]
            train, test = sides(values, split)
            assert not train & test, (seed, field)
        assert split.test


def test_split_is_deterministic_whatever_the_order() -> None:
    tracks = grouped(8, 3, ["Rock", "Jazz", "Folk", "Pop"])
    labels = [t.artist.split()[0] for t in tracks]
    keys = group_keys(tracks, "album")
    first = split_groups(labels, keys, 0.25, seed=7)
    assert split_groups(labels, keys, 0.25, seed=7) == first
    assert split_groups(labels, keys, 0.25, seed=8) != first
    order = list(reversed(range(len(tracks))))
    flipped = split_groups([labels[i] for i in order], [keys[i] for i in order], 0.25, seed=7)
    assert sorted(order[i] for i in flipped.test) == list(first.test)


def test_split_is_stratified_per_class() -> None:
    # Rock: 10 albums of 4; Jazz: 5 albums of 2; Folk: one album only
    tracks = grouped(10, 4, ["Rock"]) + grouped(5, 2, ["Jazz"]) + grouped(1, 6, ["Folk"])
    labels = [t.album_source_id.split("-")[0] for t in tracks]
    keys = group_keys(tracks, "album")
    split = split_groups(labels, keys, 0.2, seed=1)
    held = [labels[i] for i in split.test]
    assert held.count("Rock") == 8  # 2 albums of 4 = 20 % of 40
    assert held.count("Jazz") == 2  # 1 album of 2 = 20 % of 10
    assert held.count("Folk") == 0  # one album: it must stay in training
    # however small the fraction, a class with two albums has one held out, never both
    tiny = split_groups(["A", "A", "B", "B"], ["a1", "a2", "b1", "b2"], 0.01, seed=0)
    assert sorted("AB"[i // 2] for i in tiny.test) == ["A", "B"]


# --------------------------------------------------------------------------- labels

RULES = TrainLabelsConfig()  # override 1.0, library 1.0, llm 0.5 from 0.8


def test_override_beats_library_beats_llm() -> None:
    inputs = LabelInputs(
        overrides={1: (("Jazz", 1.0),)},
        library={1: (("Rock", 1.0),), 2: (("Rock", 1.0), ("Pop", 1.0)), 3: (("Folk", 0.6),)},
        llm={1: (("Pop", 0.99),), 2: (("Pop", 0.99),), 3: (("Blues", 0.9),), 4: (("Soul", 0.95),)},
    )
    got = {(x.track_id, x.label, x.source, x.weight) for x in assemble_labels(inputs, RULES)}
    assert got == {
        (1, "Jazz", "override", 1.0),
        (2, "Rock", "library", 1.0),  # the primary (first) genre
        (3, "Folk", "library", 1.0),
        (4, "Soul", "llm", 0.5),
    }


def test_thresholds_disabled_sources_and_cleared_overrides() -> None:
    inputs = LabelInputs(
        overrides={1: ()},  # a person removed its genres
        library={1: (("Rock", 1.0),), 2: (("Folk", 0.6),)},
        llm={2: (("Blues", 0.9),), 3: (("Soul", 0.7),), 4: (("Pop", 0.8),)},
    )
    rules = TrainLabelsConfig.model_validate({"library": {"min_confidence": 0.8}})
    got = {x.track_id: (x.label, x.source) for x in assemble_labels(inputs, rules)}
    # 1: left out; 2: fuzzy library match below 0.8 → the LLM; 3: LLM below 0.8 → none
    assert got == {2: ("Blues", "llm"), 4: ("Pop", "llm")}
    off = TrainLabelsConfig.model_validate(
        {"override": {"enabled": False}, "llm": {"enabled": False}}
    )
    got = {x.track_id: x.label for x in assemble_labels(inputs, off)}
    assert got == {1: "Rock", 2: "Folk"}
    only = assemble_labels(inputs, rules, track_ids=[4, 99])
    assert [x.track_id for x in only] == [4]


def test_min_examples_makes_classes_of_any_label_and_reports_the_rest() -> None:
    inputs = LabelInputs(
        overrides={i: (("Focus Music", 1.0),) for i in range(5)},
        library={i: (("Rock", 1.0),) for i in range(5, 9)}
        | {i: (("Jazz", 1.0),) for i in range(9, 11)},
    )
    chosen = select_classes(assemble_labels(inputs, RULES), min_examples=4)
    assert chosen.classes == ("Focus Music", "Rock")  # a custom genre is a class too
    assert chosen.dropped == {"Jazz": 2}
    assert {x.track_id for x in chosen.kept} == set(range(9))


def test_labels_read_from_the_store_in_order_of_trust() -> None:
    store = Store.memory()
    records = [
        TrackRecord("plex", "1", title="a", genres=("Rock",)),
        TrackRecord("plex", "2", title="b", genres=("Hip Hop", "Jazz"), album_source_id="al"),
        TrackRecord("plex", "3", title="c", album_genres=("Folk",), album_source_id="f"),
        TrackRecord("plex", "4", title="d"),
        TrackRecord("plex", "5", title="e", genres=("Electronic",)),
    ]
    sync(store, "plex", ListSource(records), full=True)
    ids = {sid: i for i, sid in store.conn.execute("SELECT id, source_id FROM tracks")}
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO overrides (track_id, field, value, origin, created_at)"
            " VALUES (?, 'genre', ?, 'cli', ?)",
            (ids["1"], json.dumps(["My Own Genre"]), now),
        )
        conn.execute(
            "INSERT INTO predictions (track_id, classifier, label_set, version, labels, created_at)"
            " VALUES (?, 'llm-metadata', 'genre', '1', ?, ?)",
            (ids["4"], json.dumps([["blues", 0.9], ["Soul", 0.4]]), now),
        )
        # genred wrote Electronic to track 5; before that it had Ambient: learn Ambient
        conn.execute(
            "INSERT INTO writebacks (target, item_kind, item_id, field, original, written,"
            " first_written_at, written_at) VALUES ('plex', 'track', '5', 'genre', ?, ?, ?, ?)",
            (json.dumps(["Ambient"]), json.dumps(["Electronic"]), now, now),
        )
    inputs = label_inputs(store, default_taxonomy(), RULES)
    got = {x.track_id: (x.label, x.source) for x in assemble_labels(inputs, RULES)}
    assert got == {
        ids["1"]: ("My Own Genre", "override"),
        ids["2"]: ("Hip-Hop", "library"),
        ids["3"]: ("Folk", "library"),
        ids["4"]: ("Blues", "llm"),
        ids["5"]: ("Ambient", "library"),
    }


# --------------------------------------------------------------------------- metrics


def test_metrics_on_hand_built_arrays() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.confusion_matrix(y_true, y_pred, 4).tolist() == [
        [2, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
    ]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    # F1: class 0 = 2·2/(3+2) = 0.8, class 1 = 2·1/(2+2) = 0.5, class 2 = 2·1/(1+2) = 2/3;
    # class 3 occurs nowhere and does not count
    assert metrics.macro_f1(y_true, y_pred, 4) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics.macro_f1(y_true, y_true, 4) == 1.0


def test_calibration_error_and_temperature() -> None:
    # confidence 0.9 on every track, right on 6 of 10: ECE = |0.9 - 0.6| = 0.3
    probs = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0] * 6 + [1] * 4)
    assert metrics.expected_calibration_error(probs, y) == pytest.approx(0.3)
    assert metrics.expected_calibration_error(np.array([[0.5, 0.5], [1.0, 0.0]]), [0, 0]) == (
        pytest.approx(0.25)
    )
    # overconfident logits: temperature scaling softens them (T > 1) and lowers the ECE
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3))
    logits[np.arange(400), y] += 1.5
    logits *= 4
    t = fit_temperature(logits, y)
    assert t > 1.5
    before = metrics.expected_calibration_error(softmax(logits), y)
    after = metrics.expected_calibration_error(softmax(logits, t), y)
    assert after < before / 2
    assert np.allclose(softmax(logits, t).sum(axis=1), 1.0)


# --------------------------------------------------------------------------- training on vectors

GENRES7 = ("Rock", "Jazz", "Classical", "Hip Hop", "Electronic", "Folk", "Blues")


def config_text(data_dir: Path, **train: Any) -> str:
    settings = {"min_examples": 8, "epochs": 80, "patience": 15, "hidden": [32], **train}
    return (
        f"data_dir: {data_dir}\n"
        "plugins:\n  classifiers:\n    audio-model: {}\n"
        f"train: {json.dumps(settings)}\n"
    )


def store_tracks(store: Store, records: Sequence[TrackRecord]) -> dict[str, int]:
    sync(store, "folder", ListSource(records), full=True)
    return {sid: i for i, sid in store.conn.execute("SELECT id, source_id FROM tracks")}


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[tuple[Path, Store, dict[str, int]]]:
    """7 genres × 5 albums × 4 tracks, each genre a Gaussian blob in 16 dimensions, stored
    as features `blobs`, plus a track with no features and one with no label."""
    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (len(GENRES7), 16))
    records, vectors = [], {}
    for g, genre in enumerate(GENRES7):
        for a in range(5):
            for t in range(4):
                sid = f"{g}-{a}-{t}"
                records.append(
                    TrackRecord(
                        "folder",
                        sid,
                        title=sid,
                        album=f"{genre} album {a}",
                        album_artist=f"{genre} band {a}",
                        genres=(genre,),
                    )
                )
                vectors[sid] = centres[g] + rng.normal(0, 1, 16)
    records.append(TrackRecord("folder", "nofeatures", title="x", genres=("Rock",)))
    records.append(TrackRecord("folder", "nolabel", title="y", album="Z"))
    vectors["nolabel"] = centres[0]
    config = tmp_path / "genred.yaml"
    config.write_text(config_text(data, features=["blobs"]))
    with Store.open(data / "genred.db") as store:
        ids = store_tracks(store, records)
        features.write(store, "blobs", "v1", [(ids[s], v) for s, v in vectors.items()])
        yield config, store, ids


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def audio_model(config_path: Path, store: Store) -> Any:
    """The enabled classifiers as the config file builds them (audio-model among them)."""
    config = parse_config(config_path.read_text(), str(config_path), {})
    return load_plugins(PluginContext(config, store), discover(["classifiers"]))


def stored_predictions(store: Store) -> dict[int, tuple[str, list[list[Any]]]]:
    rows = store.conn.execute(
        "SELECT track_id, version, labels FROM predictions WHERE classifier = 'audio-model'"
    )
    return {t: (v, json.loads(labels)) for t, v, labels in rows}


def test_train_stores_a_calibrated_model_and_classify_stores_top5(blobs: Any) -> None:
    config, store, ids = blobs
    result = run_cli("train", "--config", str(config))
    assert result.exit_code == 0, result.output
    version = registry.current_version(config.parent / "data")
    assert version is not None and f"stored audio model {version}" in result.stdout
    folder = registry.models_dir(config.parent / "data") / version
    assert (folder / "model.pt").is_file()
    card = json.loads((folder / "card.json").read_text())
    assert card["version"] == version and card["name"] == "audio-model"
    assert card["labels"] == sorted(
        ["Blues", "Classical", "Electronic", "Folk", "Hip-Hop", "Jazz", "Rock"]
    )
    assert card["features"] == [{"extractor": "blobs", "version": "v1", "dims": 16}]
    assert card["label_sources"] == {"override": 0, "library": 140, "llm": 0}
    assert card["left_out"]["labelled_without_features"] == 1
    assert sum(c["train"] + c["test"] for c in card["counts"].values()) == 140
    assert all(c["test"] == 4 for c in card["counts"].values())  # one album of 5 per genre
    assert card["split"]["by"] == "album" and card["split"]["test_groups"] == 7
    assert card["metrics"]["accuracy"] >= 0.9 and card["metrics"]["macro_f1"] >= 0.9
    confusion = np.array(card["metrics"]["confusion"])
    assert confusion.shape == (7, 7) and confusion.sum() == 28
    assert np.trace(confusion) == round(card["metrics"]["accuracy"] * 28)
    assert card["calibration"]["temperature"] > 0
    assert 0 <= card["calibration"]["ece_after"] <= 1 and "ece_before" in card["calibration"]
    assert card["created_at"] and card["genred_version"] and "single-label" in card["task"]

    report = run_cli("train", "--report", "--config", str(config))
    assert report.exit_code == 0, report.output
    text = report.stdout
    assert version in text and "macro-F1" in text and "blobs v1 (16)" in text
    assert card["created_at"] in text and f"accuracy {card['metrics']['accuracy']:.3f}" in text
    assert "confusion matrix" in text and "Hip-Hop" in text and "temperature" in text
    rock_row = next(line for line in text.splitlines() if line.split()[:1] == ["Rock"])
    assert rock_row.split()[1:3] == [str(card["counts"]["Rock"]["train"]), "4"]

    loaded = audio_model(config, store)
    plugin = loaded.get("classifiers", "audio-model")
    assert plugin.version == version
    counts = classify(store, {"audio-model": plugin})
    assert counts["audio-model.considered"] == 142
    assert counts["audio-model.predicted"] == 141  # everything with features
    assert counts["audio-model.failed"] == 1  # no features yet: retried after a backoff
    stored = stored_predictions(store)
    labels = stored[ids["3-0-0"]][1]
    assert stored[ids["3-0-0"]][0] == version
    assert len(labels) == 5 and labels[0][0] == "Hip-Hop"
    assert [c for _, c in labels] == sorted((c for _, c in labels), reverse=True)
    assert 0 < sum(c for _, c in labels) <= 1.0 + 1e-3  # calibrated softmax: 5 of 7 classes
    full = plugin.model.probabilities(np.ones((3, 16), dtype=np.float32))
    assert np.allclose(full.sum(axis=1), 1.0)
    failure = store.conn.execute(
        "SELECT error_type, message FROM failures WHERE item = ?", (str(ids["nofeatures"]),)
    ).fetchone()
    assert failure[0] == "FeaturesMissing" and "genred extract --extractor blobs" in failure[1]
    assert classify(store, {"audio-model": plugin})["audio-model.considered"] == 0

    # a new model: the plugin follows `current`, every track is classified again
    again = run_cli("train", "--config", str(config))
    assert again.exit_code == 0, again.output
    newer = registry.current_version(config.parent / "data")
    assert newer != version and plugin.version == newer
    assert classify(store, {"audio-model": plugin})["audio-model.predicted"] == 141
    assert {v for v, _ in stored_predictions(store).values()} == {newer}


def test_training_is_deterministic_and_keeps_few_versions(blobs: Any) -> None:
    import torch

    config, store, _ = blobs
    settings = parse_config(
        config_text(config.parent / "data", features=["blobs"], keep_versions=2), "g.yaml", {}
    )
    cards = [train_audio_model(store, settings).card for _ in range(3)]
    assert len({c.version for c in cards}) == 3
    assert cards[0].metrics == cards[1].metrics == cards[2].metrics
    assert cards[0].calibration == cards[2].calibration
    data = config.parent / "data"
    assert registry.versions(data) == [c.version for c in cards[1:]]  # oldest pruned
    assert registry.current_version(data) == cards[2].version
    first, last = (
        torch.load(registry.weights_path(data, c.version), weights_only=True) for c in cards[1:]
    )
    assert first.keys() == last.keys() and all(torch.equal(first[k], last[k]) for k in first)


def test_feature_sets_side_by_side(blobs: Any) -> None:
    """Two extractors: trained on the tracks that have both; a track lacking one, or
    having it at another version, is not classified and is told what to do."""
    config, store, ids = blobs
    rng = np.random.default_rng(2)
    some = [i for sid, i in ids.items() if sid not in ("0-0-0", "nofeatures")]
    features.write(store, "extra", "e1", [(i, rng.normal(0, 1, 4)) for i in some])
    result = run_cli("train", "--features", "blobs,extra", "--config", str(config))
    assert result.exit_code == 0, result.output
    card = registry.read_card(
        config.parent / "data", registry.current_version(config.parent / "data")
    )
    assert [(f.extractor, f.dims) for f in card.features] == [("blobs", 16), ("extra", 4)]
    assert card.architecture.inputs == 20 and card.left_out["incomplete_features"] == 1
    assert sum(c.train + c.test for c in card.counts.values()) == 139
    features.write(store, "extra", "e2", [(ids["1-0-0"], np.zeros(4))])
    plugin = audio_model(config, store).get("classifiers", "audio-model")
    counts = classify(store, {"audio-model": plugin})
    assert counts["audio-model.predicted"] == 139 and counts["audio-model.failed"] == 3
    failures = dict(store.conn.execute("SELECT item, message FROM failures"))
    assert "no extra features (e1) yet" in failures[str(ids["0-0-0"])]
    assert "no blobs features (v1) yet" in failures[str(ids["nofeatures"])]
    assert (
        "extra features are version e2, the audio model was trained on e1"
        in (failures[str(ids["1-0-0"])])
    )
    assert "run `genred train` again" in failures[str(ids["1-0-0"])]


def test_train_errors_say_what_to_do(blobs: Any) -> None:
    config, store, ids = blobs
    result = run_cli("train", "--features", "handcrafted", "--config", str(config))
    assert result.exit_code == 1
    assert "run `genred extract --extractor handcrafted` first" in result.stderr
    result = run_cli("train", "--features", "tagger-msd-musicnn", "--config", str(config))
    assert "enable the tagger classifier" in result.stderr
    features.write(store, "blobs", "v2", [(ids["0-0-0"], np.zeros(16))])
    result = run_cli("train", "--config", str(config))
    assert result.exit_code == 1 and "of 2 versions" in result.stderr
    assert "v1 (140 tracks), v2 (1 tracks)" in result.stderr
    features.write(store, "blobs", "v1", [(ids["0-0-0"], np.zeros(16))])
    config.write_text(config_text(config.parent / "data", features=["blobs"], min_examples=50))
    result = run_cli("train", "--config", str(config))
    assert result.exit_code == 1 and "too few classes to train: none" in result.stderr
    assert "train.min_examples" in result.stderr
    assert registry.current_version(config.parent / "data") is None
    report = run_cli("train", "--report", "--config", str(config))
    assert report.exit_code == 1 and "run `genred train`" in report.stderr
    run = store.conn.execute("SELECT job, status, error FROM runs ORDER BY id DESC").fetchone()
    assert run[:2] == ("train", "failed") and "TrainingError" in run[2]


def test_the_classifier_without_a_usable_model_says_so(blobs: Any) -> None:
    config, store, _ = blobs
    loaded = audio_model(config, store)
    reason = loaded.unavailable[("classifiers", "audio-model")]
    assert "no audio model is trained yet" in reason and "run `genred train`" in reason
    assert run_cli("train", "--config", str(config)).exit_code == 0
    data = config.parent / "data"
    version = registry.current_version(data)
    (registry.models_dir(data) / version / "model.pt").write_bytes(b"not a torch file")
    reason = audio_model(config, store).unavailable[("classifiers", "audio-model")]
    assert "cannot be loaded" in reason and "run `genred train`" in reason
    (registry.models_dir(data) / version / "card.json").write_text('{"version": 3}')
    reason = audio_model(config, store).unavailable[("classifiers", "audio-model")]
    assert "damaged" in reason
    (registry.models_dir(data) / "current").write_text("../../etc\n")
    reason = audio_model(config, store).unavailable[("classifiers", "audio-model")]
    assert "does not name a model version" in reason


# --------------------------------------------------------------------------- synthetic audio

RATE = 11025
SECONDS = 2.5


@pytest.fixture(scope="module")
def numba_cache() -> Iterator[Path]:
    """librosa's numba functions compile once into a cache kept between test runs (~30 s
    cold); the extract stage's worker processes load them from there."""
    path = Path(tempfile.gettempdir()) / f"genred-tests-numba-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUMBA_CACHE_DIR", str(path))
        yield path


def synthetic_clip(kind: str, rng: Any) -> Any:
    """Drone: a steady sine chord; Noise: coloured noise swelling slowly; Glitch: sparse
    click trains over silence. Pitch, colour and rate are drawn at random per track, from
    the same ranges for training and held-out albums."""
    t = np.arange(int(RATE * SECONDS)) / RATE
    if kind == "Drone":
        base = rng.uniform(110, 440)
        return 0.15 * sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 1.5, 2))
    if kind == "Noise":
        width = int(rng.integers(1, 5))
        noise = np.convolve(rng.normal(0, 1, t.size), np.ones(width) / width, mode="same")
        return 0.2 * noise * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    clicks = np.zeros(t.size)
    clicks[:: int(RATE / rng.uniform(3, 10))] = 0.9
    return clicks


@pytest.mark.slow
def test_separable_synthetic_audio_is_recognised_on_held_out_albums(
    tmp_path: Path, numba_cache: Path
) -> None:
    import soundfile as sf

    pytest.importorskip("librosa")
    from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor

    data = tmp_path / "data"
    music = tmp_path / "music"
    music.mkdir()
    rng = np.random.default_rng(5)
    records = []
    for kind in ("Drone", "Noise", "Glitch"):
        for album in range(5):
            for track in range(4):
                path = music / f"{kind}-{album}-{track}.wav"
                sf.write(path, synthetic_clip(kind, rng).astype(np.float32), RATE)
                records.append(
                    TrackRecord(
                        "folder",
                        path.name,
                        title=path.stem,
                        path=str(path),
                        album=f"{kind} {album}",
                        album_artist=f"{kind} artist {album}",
                        genres=(kind,),
                    )
                )
    config_path = tmp_path / "genred.yaml"
    config_path.write_text(config_text(data, min_examples=10, test_fraction=0.25, epochs=150))
    config = parse_config(config_path.read_text(), str(config_path), {})
    extractor = HandcraftedExtractor(
        HandcraftedExtractor.Config(sample_rate=RATE), PluginContext(config)
    )
    with Store.open(data / "genred.db") as store:
        ids = store_tracks(store, records)
        vectors = [(ids[r.source_id], extractor.extract(Path(r.path))) for r in records]
        features.write(store, "handcrafted", extractor.version, vectors)

    result = run_cli("train", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    card = registry.read_card(data, registry.current_version(data))
    assert card.labels == ("Drone", "Glitch", "Noise")
    assert card.features[0].dims == 518 and card.features[0].version == extractor.version
    assert card.split.test_groups == 3 and card.metrics.test_tracks == 12
    assert card.metrics.accuracy >= 0.9 and card.metrics.macro_f1 >= 0.9, card.metrics
    assert card.calibration.temperature > 0


# --------------------------------------------------------------------------- real fixture clips

REAL = {  # fixture file → (genre, as SOURCES.md labels it)
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg": "Classical",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg": "Classical",
    "debian/wesnoth_revelation.ogg": "Romantic Classical",
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg": "Jazz",
    "librosa-data/sorohanro_-_solo-trumpet-06.ogg": "Jazz",
    "debian/singularity-music_March_Thee_to_Dis.ogg": "Soundtrack",
    "debian/hyperrogue_hr-savino-ocean.ogg": "Soundtrack",
    "debian/asc_machine_wars.mp3": "Soundtrack",
    "debian/warzone2100_aftermath_track19.opus": "Soundtrack",
}


@pytest.mark.slow
def test_real_clips_go_through_extract_train_and_classify(
    tmp_path: Path, numba_cache: Path
) -> None:
    pytest.importorskip("librosa")
    pytest.importorskip("pebble")
    missing = [name for name in REAL if not (AUDIO / name).is_file()]
    if missing:
        pytest.skip(f"audio fixtures missing: {missing}")
    data = tmp_path / "data"
    config_path = tmp_path / "genred.yaml"
    config_path.write_text(
        f"data_dir: {data}\n"
        "plugins:\n"
        "  extractors:\n    handcrafted: {excerpt_seconds: 10, sample_rate: 22050}\n"
        "  classifiers:\n    audio-model: {}\n"
        "extract: {workers: 1}\n"
        f"train: {json.dumps({'min_examples': 2, 'test_fraction': 0.34, 'epochs': 30, 'hidden': [16]})}\n"
    )
    records = [
        TrackRecord(
            "folder",
            name,
            title=Path(name).stem,
            path=str(AUDIO / name),
            album=Path(name).stem,
            genres=(genre,),
        )
        for name, genre in REAL.items()
    ]
    with Store.open(data / "genred.db") as store:
        store_tracks(store, records)
    extracted = run_cli("extract", "--config", str(config_path))
    assert extracted.exit_code == 0, extracted.output
    trained = run_cli("train", "--config", str(config_path))
    assert trained.exit_code == 0, trained.output
    version = registry.current_version(data)
    card = registry.read_card(data, version)
    assert card.labels == ("Classical", "Jazz", "Soundtrack")
    assert card.split.test_tracks == 3 and card.features[0].dims == 518
    classified = run_cli("classify", "--config", str(config_path))
    assert classified.exit_code == 0, classified.output
    with Store.open(data / "genred.db") as store:
        stored = stored_predictions(store)
    assert len(stored) == len(REAL)
    for version_of, labels in stored.values():
        assert version_of == version and len(labels) == 3
        assert {name for name, _ in labels} == set(card.labels)
        assert sum(c for _, c in labels) == pytest.approx(1.0, abs=1e-3)
