"""Permanent failures (not audio, too short) are recorded once and skipped until the file
changes; transient ones back off; `genred status` lists both kinds, `genred retry` clears
them. The FeaturesMissing of a model trained on features a file can never give (a 2.7 s
clip: shorter than one tagger patch) is permanent too, instead of retried up to daily."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from genred.errors import AudioTooShort
from genred.paths import file_fingerprint
from genred.pipeline.classify import classify
from genred.store import Store, failures, features
from tests import test_partial_runs, test_train
from tests.test_partial_runs import folder_config, genred

plugins = test_partial_runs.plugins  # the fixtures, shared
blobs = test_train.blobs


def failure_rows(config: Path) -> dict[str, tuple[str, int, int]]:
    """source file name → (error type, attempts, permanent) of its extract failure."""
    with Store.open(config.parent / "data" / "genred.db") as store:
        rows = store.conn.execute(
            "SELECT t.path, f.error_type, f.attempts, f.permanent FROM failures f "
            "JOIN tracks t ON CAST(f.item AS INTEGER) = t.id"
        ).fetchall()
    return {
        Path(path).name: (kind, attempts, permanent) for path, kind, attempts, permanent in rows
    }


def a_day_later(config: Path) -> None:
    """Every backoff is over, as it would be a day later."""
    with Store.open(config.parent / "data" / "genred.db") as store:
        store.conn.execute("UPDATE failures SET next_retry_at = '2000-01-01T00:00:00+00:00'")


def counts_of(config: Path, job: str) -> dict[str, int]:
    with Store.open(config.parent / "data" / "genred.db") as store:
        (counts,) = store.conn.execute(
            "SELECT counts FROM runs WHERE job = ? ORDER BY id DESC", (job,)
        ).fetchone()
    return dict(json.loads(counts))


def test_not_audio_is_skipped_until_the_file_changes_and_nan_is_retried(
    tmp_path: Path, plugins: None
) -> None:
    config = folder_config(tmp_path, "extractors: [fake]")
    music = tmp_path / "music"
    t = np.arange(8000) / 8000
    sf.write(music / "nan.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype("f4"), 8000)
    assert genred(config, "sync").exit_code == 0
    assert genred(config, "extract").exit_code == 3
    assert failure_rows(config) == {
        "readme.mp3": ("NotAudio", 1, 1),
        "nan.wav": ("InvalidFeatures", 1, 0),
    }

    a_day_later(config)
    assert genred(config, "extract").exit_code == 3  # the transient one was tried again
    assert counts_of(config, "extract")["fake.considered"] == 1
    assert failure_rows(config) == {
        "readme.mp3": ("NotAudio", 1, 1),  # recorded once, not tried again
        "nan.wav": ("InvalidFeatures", 2, 0),
    }

    status = genred(config, "status")
    assert status.exit_code == 0
    assert "failures: 1 permanent (skipped until the file changes), 1 transient" in status.output
    lines = {
        line.split()[2]: line.split()
        for line in status.output.splitlines()
        if line.startswith("  extract:fake")
    }
    assert lines["NotAudio"][:4] == ["extract:fake", "permanent", "NotAudio", "1"]
    assert lines["InvalidFeatures"][:4] == ["extract:fake", "transient", "InvalidFeatures", "1"]
    assert "readme.mp3: not an audio file" in status.output

    # the file is replaced by real audio: no more waiting, it is extracted
    readme = music / "readme.mp3"
    sf.write(music / "real.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype("f4"), 8000)
    os.replace(music / "real.wav", readme)  # same path, other content (a WAV named .mp3)
    result = genred(config, "extract")
    assert counts_of(config, "extract")["fake.extracted"] == 1, result.output
    assert set(failure_rows(config)) == {"nan.wav"}


def test_retry_clears_failures_by_stage_and_kind(tmp_path: Path, plugins: None) -> None:
    config = folder_config(tmp_path, "extractors: [fake]")
    assert genred(config, "sync").exit_code == 0
    assert genred(config, "extract").exit_code == 3
    assert genred(config, "extract").exit_code == 0  # nothing to try
    nothing = genred(config, "retry", "--stage", "classify")
    assert nothing.exit_code == 0 and "no failures to clear in classify" in nothing.output
    transient = genred(config, "retry", "--transient")
    assert "no transient failures to clear" in transient.output
    result = genred(config, "retry", "--stage", "extract", "--permanent")
    assert result.exit_code == 0, result.output
    assert "cleared 1 permanent failure (extract:fake 1)" in result.output
    assert failure_rows(config) == {}
    assert genred(config, "extract").exit_code == 3  # tried again, on request
    assert counts_of(config, "extract")["fake.considered"] == 1
    bad = genred(config, "retry", "--stage", "extracts")
    assert bad.exit_code == 2 and "no stage 'extracts'" in bad.output


def test_a_model_whose_features_a_file_can_never_give_fails_once(
    blobs: Any, tmp_path: Path
) -> None:
    """A 2.7 s clip has no features (its extractor failed for good: too short); the audio
    model trained on them says FeaturesMissing once, permanently, not every backoff."""
    config, store, ids = blobs
    clip = tmp_path / "short.wav"
    sf.write(clip, np.zeros(int(2.7 * 8000), dtype="f4") + 0.1, 8000)
    store.conn.execute("UPDATE tracks SET path = ? WHERE source_id = 'nofeatures'", (str(clip),))
    short = ids["nofeatures"]
    failures.record(
        store,
        features.failure_stage("blobs"),
        str(short),
        AudioTooShort(f"{clip}: 2.7 s of audio, shorter than one patch (3.0 s)"),
        fingerprint=file_fingerprint(clip),
    )
    assert test_train.run_cli("train", "--config", str(config)).exit_code == 0
    plugin = test_train.audio_model(config, store).get("classifiers", "audio-model")
    counts = classify(store, {"audio-model": plugin})
    assert counts["audio-model.failed"] == 1
    (row,) = store.conn.execute(
        "SELECT error_type, message, attempts, permanent, next_retry_at FROM failures "
        "WHERE stage = 'classify:audio-model'"
    )
    assert row[0] == "FeaturesMissing" and row[2:] == (1, 1, None)
    assert "cannot be computed from its file (AudioTooShort: " in row[1]

    store.conn.execute("UPDATE failures SET next_retry_at = '2000-01-01'")  # a day later
    assert classify(store, {"audio-model": plugin})["audio-model.considered"] == 0
    assert store.conn.execute(
        "SELECT attempts FROM failures WHERE stage = 'classify:audio-model'"
    ).fetchone() == (1,)

    # its features arrive (the file was replaced by a longer one, extracted again):
    features.write(store, "blobs", "v1", [(short, np.zeros(16, dtype=np.float32))])
    again = classify(store, {"audio-model": plugin})
    assert again["audio-model.considered"] == 1 and again["audio-model.predicted"] == 1
    assert failures.counts_by_stage(store) == {}
