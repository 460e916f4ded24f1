"""`train.auto`: the daemon's train job retrains only once enough manual labels arrived,
and a new model becomes current only if its held-out macro-F1 is not worse; the card
says why either way. Trained on the Gaussian-blob vectors of test_train."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy")
pytest.importorskip("torch")

from genred.config import parse_config
from genred.progress import NullProgress
from genred.stages import STAGES, StageRun
from genred.store import Store, overrides
from genred.training import registry
from genred.training.auto import labels_since_current
from tests.test_train import GENRES7, blobs, config_text  # noqa: F401 (the fixture)


def auto_config(data: Path, min_new_labels: int) -> Any:
    text = config_text(
        data, features=["blobs"], auto={"enabled": True, "min_new_labels": min_new_labels}
    )
    return parse_config(text, "genred.yaml", {})


def scheduled_train(store: Store, config: Any) -> tuple[dict[str, Any], Any]:
    run = StageRun(store, config, None, NullProgress(), "schedule")  # type: ignore[arg-type]  # train needs no plugins
    return STAGES["train"].run(run), run.results["auto"]


def label(store: Store, ids: dict[str, int], wrong: bool) -> int:
    """A genre override for every blob track: its own genre, or (wrong) one that has
    nothing to do with its sound (it changes from track to track)."""
    taught = 0
    for source_id, track_id in ids.items():
        if source_id.count("-") != 2:
            continue
        genre, album, number = (int(x) for x in source_id.split("-"))
        noise = (genre + 3 * album + number) % len(GENRES7)
        name = GENRES7[noise] if wrong else GENRES7[genre]
        overrides.put(store, [track_id], "genre", [name], origin="web", who="test")
        taught += 1
    return taught


def test_train_auto_waits_for_labels_and_keeps_only_a_model_that_is_not_worse(
    blobs: Any,  # noqa: F811 (the fixture of test_train)
) -> None:
    config_path, store, ids = blobs
    data = config_path.parent / "data"
    config = auto_config(data, min_new_labels=100)
    assert config.schedule.train.enabled  # train.auto turns the daemon's train job on

    counts, result = scheduled_train(store, config)
    assert counts == {"new_labels": 0, "trained": 0, "kept": 0}
    assert "train.auto waits for 100" in result.reason
    assert registry.current_version(data) is None

    assert label(store, ids, wrong=False) == 140
    counts, result = scheduled_train(store, config)
    assert counts == {"new_labels": 140, "trained": 1, "kept": 1}
    first = result.trained.card
    assert registry.current_version(data) == first.version
    assert first.activation is not None and first.activation.activated
    assert result.reason.startswith("train.auto: ") and "no model was current" in result.reason
    assert labels_since_current(store, config).new == 0  # the model has seen them all

    # A person "corrects" every track to the wrong genre: the new model is worse on its
    # held-out albums, so it is stored but the first one stays current.
    assert label(store, ids, wrong=True) == 140
    counts, result = scheduled_train(store, config)
    assert counts == {"new_labels": 140, "trained": 1, "kept": 0}
    second = result.trained.card
    assert second.metrics.macro_f1 < first.metrics.macro_f1
    assert registry.current_version(data) == first.version
    assert second.version in registry.versions(data)
    assert second.activation is not None and not second.activation.activated
    assert result.reason == f"train.auto: {second.activation.reason}"
    stored = json.loads((registry.models_dir(data) / second.version / "card.json").read_text())
    assert stored["activation"]["activated"] is False  # the card says why, on disk too


def test_train_auto_is_off_by_default_and_needs_no_schedule_of_its_own() -> None:
    config = parse_config("schedule: {train: {every: 2d}}", "g.yaml", {})
    assert not config.schedule.train.enabled and not config.train.auto.enabled
    on = parse_config("train: {auto: {enabled: true, min_new_labels: 5}}", "g.yaml", {})
    assert on.schedule.train.enabled and on.schedule.train.every.days == 1
