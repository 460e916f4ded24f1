"""`genred train` benchmark: fitting and predicting the audio-model head on the CPU.

A library's worth of stored vectors (GENRED_BENCH_TRAIN_TRACKS, default 10,000 tracks of
518 handcrafted values, 20 genres in albums of 10) is trained twice in the same run: the
way genred does it (torch on one thread: the matrices are small, so threads only wait
on each other) and the naive way (torch's default thread count). Then the classify
throughput of the stored model. Run with `make bench` (or `pytest -m bench bench -s`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

N_TRACKS = int(os.environ.get("GENRED_BENCH_TRAIN_TRACKS", "10000"))
DIMS, GENRES, PER_ALBUM = 518, 20, 10


def library(tmp_path: Path) -> tuple[object, object]:
    from genred.config import parse_config
    from genred.store import Store, features, utcnow

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (GENRES, DIMS))
    genre = np.arange(N_TRACKS) % GENRES
    album = np.arange(N_TRACKS) // (GENRES * PER_ALBUM) * GENRES + genre
    vectors = centres[genre] + rng.normal(0, 12, (N_TRACKS, DIMS))
    store = Store.open(tmp_path / "data" / "genred.db")
    now = utcnow()
    names = ["Rock", "Jazz", "Classical", "Hip-Hop", "Electronic", "Folk", "Blues", "Pop",
             "Metal", "Reggae", "Soul", "Funk", "Country", "Ambient", "Techno", "House",
             "Punk", "Disco", "Gospel", "Ska"]  # fmt: skip
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (source, source_id, album_source_id, genres, first_seen_at,"
            " changed_at, synced_at) VALUES ('plex', ?, ?, ?, ?, ?, ?)",
            [
                (str(i), f"al{album[i]}", f'["{names[genre[i]]}"]', now, now, now)
                for i in range(N_TRACKS)
            ],
        )
    ids = [r[0] for r in store.conn.execute("SELECT id FROM tracks ORDER BY id")]
    features.write(store, "handcrafted", "1", zip(ids, vectors, strict=True))
    config = parse_config(
        f"data_dir: {tmp_path / 'data'}\ntrain: {{epochs: 30, patience: 30}}\n", "g.yaml", {}
    )
    return store, config


def test_train_and_classify_throughput(tmp_path: Path) -> None:
    from genred.hookspecs import PluginContext
    from genred.pipeline.classify import classify
    from genred.training import model as model_module
    from genred.training.train import train_audio_model
    from genred_plugins.audio.model_classifier import AudioModelClassifier

    store, config = library(tmp_path)
    default_threads = torch.get_num_threads()
    started = time.perf_counter()
    trained = train_audio_model(store, config)
    ours = time.perf_counter() - started

    real_one_thread = model_module.one_thread
    model_module.one_thread = lambda: _nothing()  # the naive way: torch's own threads
    try:
        started = time.perf_counter()
        naive_card = train_audio_model(store, config).card
        naive = time.perf_counter() - started
    finally:
        model_module.one_thread = real_one_thread

    plugin = AudioModelClassifier(
        AudioModelClassifier.Config(version=trained.card.version), PluginContext(config, store)
    )
    started = time.perf_counter()
    counts = classify(store, {"audio-model": plugin})
    predicting = time.perf_counter() - started
    card = trained.card
    print(
        f"\ntrain: {N_TRACKS} tracks x {DIMS} values, {GENRES} classes, "
        f"{card.training.epochs} epochs: {ours:.1f} s on 1 thread, {naive:.1f} s on torch's "
        f"default {default_threads} threads ({naive / ours:.1f}x); held-out accuracy "
        f"{card.metrics.accuracy:.3f} / {naive_card.metrics.accuracy:.3f}, macro-F1 "
        f"{card.metrics.macro_f1:.3f}, T {card.calibration.temperature:.2f}, ECE "
        f"{card.calibration.ece_before:.3f} → {card.calibration.ece_after:.3f}"
    )
    print(
        f"classify: {counts['audio-model.predicted']} tracks in {predicting:.2f} s "
        f"({counts['audio-model.predicted'] / predicting:.0f} tracks/s, store reads and "
        "writes included)"
    )
    assert counts["audio-model.predicted"] == N_TRACKS


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
