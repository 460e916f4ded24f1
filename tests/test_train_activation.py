"""`genred train` never installs a model worse than chance (issue 13, item 4).

Reproduced on a store built so that the held-out and early-stopping albums sound like
another genre than the one they carry (an "album effect" no model can learn across): the
first epoch is kept, the temperature goes to its bound of 20, 0 of 18 held-out tracks
are right, and before the fix that model became `current`. Calibration that makes the
ECE worse (0.31 → 0.44 here) was kept. Each now has a test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from genred.cli import cli  # noqa: E402
from genred.config import parse_config  # noqa: E402
from genred.errors import TrainingError  # noqa: E402
from genred.pipeline.sync import sync  # noqa: E402
from genred.records import TrackRecord  # noqa: E402
from genred.store import Store, features  # noqa: E402
from genred.training import metrics, registry  # noqa: E402
from genred.training.activation import (  # noqa: E402
    CurrentScore,
    decide_activation,
    majority_baseline,
)
from genred.training.dataset import grouped_tracks  # noqa: E402
from genred.training.split import group_keys, split_groups  # noqa: E402
from genred.training.train import VALIDATION_FRACTION, calibrate, train_audio_model  # noqa: E402
from tests.stored import ListSource  # noqa: E402

GENRES = ("Folk", "Jazz", "Rock")
FRACTION = 0.3


def write_config(path: Path, data: Path, **train: Any) -> Path:
    settings = {
        "min_examples": 8,
        "features": ["blobs"],
        "epochs": 80,
        "patience": 15,
        "hidden": [32],
        "test_fraction": FRACTION,
        **train,
    }
    path.write_text(f"data_dir: {data}\ntrain: {json.dumps(settings)}\n")
    return path


def album_effect_store(
    data: Path, *, misleading: bool, albums: int = 6, per_album: int = 3, seed: int = 0
) -> list[int]:
    """GENRES × `albums` × `per_album` tracks, each genre a blob in 8 dimensions. With
    `misleading`, the albums the split holds out and those it stops early on lie at the
    *next* genre's blob. Returns the held-out track ids."""
    rng = np.random.default_rng(seed)
    records = [
        TrackRecord(
            "folder",
            f"{g}-{a}-{t}",
            title=f"{g} {a} {t}",
            album=f"{g} album {a}",
            album_artist=f"{g} band {a}",
            genres=(g,),
        )
        for g in GENRES
        for a in range(albums)
        for t in range(per_album)
    ]
    with Store.open(data / "genred.db") as store:
        sync(store, "folder", ListSource(records), full=True)
        rows = store.conn.execute("SELECT id, source_id FROM tracks ORDER BY id").fetchall()
        labels = [sid.split("-")[0] for _, sid in rows]
        # the split train_audio_model makes (same labels, groups, fraction and seed)
        groups = group_keys(grouped_tracks(store, [r[0] for r in rows]), "album")
        held = split_groups(labels, groups, FRACTION, 0)
        rest = list(held.train)
        inner = split_groups(
            [labels[i] for i in rest], [groups[i] for i in rest], VALIDATION_FRACTION, 0
        )
        odd = set(held.test) | {rest[i] for i in inner.test} if misleading else set()
        centres = {g: rng.normal(0, 3, 8) for g in GENRES}
        vectors = []
        for i, (track_id, _sid) in enumerate(rows):
            genre = GENRES[(GENRES.index(labels[i]) + (i in odd)) % len(GENRES)]
            vectors.append((track_id, centres[genre] + rng.normal(0, 0.5, 8)))
        features.write(store, "blobs", "v1", vectors)
    return [rows[i][0] for i in held.test]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def current(data: Path) -> str | None:
    return registry.current_version(data)


def newest_card(data: Path) -> Any:
    return registry.read_card(data, registry.versions(data)[-1])


# --------------------------------------------------------------------------- the run


def test_a_model_worse_than_chance_is_stored_not_activated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    album_effect_store(data, misleading=True)
    config = write_config(tmp_path / "genred.yaml", data, learning_rate=0.1)
    result = run_cli("train", "--config", str(config))
    card = newest_card(data)
    # the figures: first epoch kept, temperature at its bound, nothing right
    assert card.training.best_epoch == 1
    assert card.calibration.temperature == 20.0
    assert card.metrics.test_tracks == 18 and card.metrics.accuracy == 0.0
    # … and now: stored, not current, and both the card and the command say why
    assert result.exit_code == 4, result.output
    assert current(data) is None
    assert (registry.models_dir(data) / card.version / "model.pt").is_file()
    activation = card.activation
    assert activation is not None and not activation.activated and not activation.forced
    assert activation.macro_f1 == 0.0 and activation.baseline_macro_f1 == 0.1667
    assert activation.current_version is None
    assert "does not beat the majority-class baseline's 0.167" in activation.reason
    assert "not activated: held-out macro-F1 0.000 does not beat" in result.stderr
    assert "there is no current model" in result.stderr and "--force" in result.stderr
    assert "NOT activated: " in result.stdout
    with Store.open(data / "genred.db") as store:
        run = store.conn.execute("SELECT status, counts FROM runs WHERE job = 'train'").fetchone()
    assert run[0] == "ok" and json.loads(run[1])["activated"] == 0

    forced = run_cli("train", "--force", "--config", str(config))
    assert forced.exit_code == 0, forced.output
    card = newest_card(data)
    assert current(data) == card.version
    assert card.activation is not None and card.activation.activated and card.activation.forced
    assert card.activation.reason.startswith("activated by --force although its held-out")


def test_calibration_that_worsens_the_ece_is_dropped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    album_effect_store(data, misleading=True)
    config = write_config(tmp_path / "genred.yaml", data, learning_rate=0.01)
    settings = parse_config(config.read_text(), str(config), {})
    with Store.open(data / "genred.db") as store:
        card = train_audio_model(store, settings).card
    calibration = card.calibration
    # fitted at the bound, and worse across the held-out albums: not applied
    assert calibration.fitted_temperature == 20.0
    assert calibration.ece_after > calibration.ece_before
    assert (calibration.ece_before, calibration.ece_after) == (0.3096, 0.4408)
    assert calibration.temperature == 1.0 and not calibration.applied
    assert "makes the ECE worse (0.310 before, 0.441 after): not applied" in (
        calibration.dropped or ""
    )
    model = registry.load_model(data, card.version)
    assert model.card.temperature == 1.0  # what predictions use


def test_calibration_is_dropped_exactly_when_it_worsens_the_ece() -> None:
    # Two held-out albums: on one the model is confidently right, on the other confidently
    # wrong. Each half's temperature is the wrong one for the other half.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    logits = rng.normal(0, 0.1, (40, 3))
    logits[np.arange(40), y] += 6.0
    wrong = np.arange(20, 40)
    logits[wrong] = np.roll(logits[wrong], 1, axis=1)
    groups = ["right"] * 20 + ["wrong"] * 20
    dropped = calibrate(logits, y, groups, seed=0)
    assert dropped.ece_after > dropped.ece_before and dropped.temperature == 1.0
    assert dropped.fitted_temperature is not None and dropped.dropped
    # an overconfident model that is right 70 % of the time everywhere: kept
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3))
    logits[np.arange(400), y] += 1.5
    logits *= 4
    kept = calibrate(logits, y, [f"album {i % 8}" for i in range(400)], seed=0)
    assert kept.ece_after < kept.ece_before and kept.temperature > 1.5
    assert kept.applied and kept.fitted_temperature is None


# --------------------------------------------------------------------------- against the current model


def test_a_model_worse_than_the_current_one_is_not_activated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    held = album_effect_store(data, misleading=False)
    good = write_config(tmp_path / "good.yaml", data)
    assert run_cli("train", "--config", str(good)).exit_code == 0
    first = newest_card(data)
    assert current(data) == first.version and first.metrics.macro_f1 == 1.0
    assert first.activation is not None and first.activation.current_version is None

    # the same data and seed, so the same held-out tracks; a network too small to learn
    weak = write_config(tmp_path / "weak.yaml", data, hidden=[1], epochs=3, learning_rate=0.02)
    result = run_cli("train", "--config", str(weak))
    assert result.exit_code == 4, result.output
    second = newest_card(data)
    a = second.activation
    assert a is not None and not a.activated
    assert a.baseline_macro_f1 < a.macro_f1 < 1.0  # better than chance, worse than current
    assert a.current_version == first.version
    # the current model measured on the new split reproduces its own card's figure
    assert a.current_macro_f1 == first.metrics.macro_f1 and a.current_unclassified == 0
    assert f"is worse than the current model {first.version}'s 1.000" in a.reason
    assert current(data) == first.version
    assert f"the current model stays {first.version}" in result.stderr
    report = run_cli("train", "--report", "--config", str(good))
    assert first.version in report.stdout and f"{second.version}: not activated" in report.stdout

    # retrained as well as before: not worse, so it replaces the current model
    assert run_cli("train", "--config", str(good)).exit_code == 0
    third = newest_card(data)
    assert current(data) == third.version != first.version
    assert third.activation is not None and third.activation.current_macro_f1 == 1.0
    assert "is not worse than the current model" in third.activation.reason
    assert len(held) == third.split.test_tracks


def test_a_current_model_that_cannot_read_the_new_features_counts_those_as_misses(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    held = album_effect_store(data, misleading=False)
    config = write_config(tmp_path / "genred.yaml", data)
    assert run_cli("train", "--config", str(config)).exit_code == 0
    first = current(data)
    # every track's features move to a new extractor version the current model was not
    # trained on: it cannot classify any held-out track (nor can the classify stage)
    with Store.open(data / "genred.db") as store:
        ids, matrix = features.load_matrix(store, "blobs", "v1")
        features.write(store, "blobs", "v2", list(zip(ids, matrix, strict=True)))
    result = run_cli("train", "--config", str(config))
    card = newest_card(data)
    a = card.activation
    assert a is not None and a.current_version == first
    assert a.current_unclassified == len(held)  # v1 is gone for every track
    assert a.current_macro_f1 == 0.0 and a.activated
    assert result.exit_code == 0, result.output
    assert current(data) == card.version
    assert f"({len(held)} of them it could not classify)" in result.stdout


# --------------------------------------------------------------------------- too little data


def test_too_little_data_for_a_split_is_refused_with_the_counts_needed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    album_effect_store(data, misleading=False, albums=1, per_album=10)
    config = write_config(tmp_path / "genred.yaml", data)
    result = run_cli("train", "--config", str(config))
    assert result.exit_code == 1
    assert "too little data for an honest held-out split" in result.stderr
    assert "at least 2 classes need tracks from 2 or more albums each" in result.stderr
    assert "Folk 10 tracks in 1 album, Jazz 10 tracks in 1 album, Rock 10 tracks in 1 album" in (
        result.stderr
    )
    assert registry.versions(data) == []


def test_a_class_from_a_single_album_is_dropped_and_said(tmp_path: Path) -> None:
    data = tmp_path / "data"
    album_effect_store(data, misleading=False)
    with Store.open(data / "genred.db") as store:
        records = [
            TrackRecord("folder", f"Soul-{t}", title=f"s{t}", album="Soul", genres=("Soul",))
            for t in range(9)
        ]
        # a second page of the same source: the earlier tracks stay, unchanged
        sync(store, "folder", ListSource(records), paths=(), full=False)
        ids = [r[0] for r in store.conn.execute("SELECT id FROM tracks WHERE title LIKE 's%'")]
        features.write(store, "blobs", "v1", [(i, np.zeros(8)) for i in ids])
    config = write_config(tmp_path / "genred.yaml", data)
    result = run_cli("train", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "dropped, all tracks from a single album (nothing to hold out): Soul (9)" in (
        result.stderr
    )
    card = newest_card(data)
    assert card.labels == GENRES and card.dropped_labels == {"Soul": 9}
    assert card.left_out["single_group_labels"] == 9


# --------------------------------------------------------------------------- the rule itself


def test_the_activation_rule() -> None:
    assert decide_activation(0.5, 0.2).activated
    assert "no model was current" in decide_activation(0.5, 0.2).reason
    assert not decide_activation(0.2, 0.2).activated  # must beat, not equal, the baseline
    assert not decide_activation(0.0, 1 / 6).activated
    better = CurrentScore("20260101-000000-00000000", 0.4)
    worse = CurrentScore("20260101-000000-00000000", 0.6)
    assert decide_activation(0.5, 0.2, better).activated
    assert decide_activation(0.4, 0.2, better).activated  # equal to current: not worse
    verdict = decide_activation(0.5, 0.2, worse)
    assert not verdict.activated and verdict.current_macro_f1 == 0.6
    assert "worse than the current model 20260101-000000-00000000's 0.600" in verdict.reason
    forced = decide_activation(0.5, 0.2, worse, force=True)
    assert forced.activated and forced.forced
    assert not decide_activation(0.5, 0.2, better, force=True).forced  # good anyway
    broken = CurrentScore("20260101-000000-00000000", None, problem="weights are damaged")
    verdict = decide_activation(0.5, 0.2, broken)
    assert verdict.activated and "could not be compared: weights are damaged" in verdict.reason


def test_majority_baseline() -> None:
    # training part: class 1 most common; held out: 2 of each of 3 classes
    y_train = np.array([0, 1, 1, 1, 2])
    y_test = np.array([0, 0, 1, 1, 2, 2])
    # guessing 1 everywhere: F1 of class 1 = 2·2/(2+6) = 0.5, the others 0 → 0.5 / 3
    assert majority_baseline(y_train, y_test, 3) == pytest.approx(round(0.5 / 3, 4))
    guess = np.ones(6, dtype=np.int64)
    assert majority_baseline(y_train, y_test, 3) == round(metrics.macro_f1(y_test, guess, 3), 4)


def test_train_refuses_before_fitting_when_nothing_separates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    album_effect_store(data, misleading=False, albums=1, per_album=10)
    config = write_config(tmp_path / "genred.yaml", data)
    settings = parse_config(config.read_text(), str(config), {})
    with Store.open(data / "genred.db") as store, pytest.raises(TrainingError) as caught:
        train_audio_model(store, settings)
    assert "Label tracks of more albums" in str(caught.value)
