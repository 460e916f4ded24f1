from __future__ import annotations

import json

import pytest

from genred.config import DecideConfig
from genred.pipeline.decide import Vote, decide, decide_labels
from genred.store import Store, utcnow


def test_override_always_wins() -> None:
    votes = [Vote("taxonomy", [("Rock", 1.0)]), Vote("llm", [("Rock", 0.99)])]
    got = decide_labels(votes, ["Jazz"], {}, 0.5, 3)
    assert (got.labels, got.confidence, got.decided) == (("Jazz",), 1.0, True)
    assert got.provenance == {"override": ["Jazz"]}


def test_weighted_mean_over_classifiers_with_an_opinion() -> None:
    votes = [
        Vote("taxonomy", [("Rock", 1.0), ("Pop", 0.6)]),
        Vote("llm", [("Rock", 0.8), ("Indie", 0.9)]),
        Vote("silent", []),  # no opinion: does not dilute the others
    ]
    got = decide_labels(votes, None, {"taxonomy": 3.0, "llm": 1.0}, 0.3, 3)
    # Rock: (3*1.0 + 1*0.8)/4 = 0.95; Pop: 3*0.6/4 = 0.45; Indie: 0.9/4 = 0.225 (< 0.3)
    assert got.labels == ("Rock", "Pop")
    assert got.confidence == 0.45
    assert got.provenance["Rock"] == {"taxonomy": 1.0, "llm": 0.8}
    assert got.decided


def test_below_min_confidence_needs_review() -> None:
    got = decide_labels([Vote("taxonomy", [("Rock", 0.4)])], None, {}, 0.5, 3)
    assert (got.labels, got.confidence, got.decided) == ((), 0.4, False)
    assert decide_labels([], None, {}, 0.5, 3).decided is False


def test_max_labels_and_zero_weight_and_clamping() -> None:
    votes = [Vote("a", [("A", 1.0), ("B", 0.9), ("C", 0.8), ("D", 1.7)]), Vote("off", [("X", 1.0)])]
    got = decide_labels(votes, None, {"off": 0.0}, 0.5, 2)
    assert got.labels == ("A", "D")  # D clamped to 1.0, ties broken by name
    assert "X" not in got.provenance


def _store_with_predictions() -> tuple[Store, list[int]]:
    store = Store.memory()
    ids = []
    with store.transaction() as conn:
        for i, labels in enumerate([[["Rock", 1.0]], [["Jazz", 0.3]], []]):
            now = utcnow()
            cur = conn.execute(
                "INSERT INTO tracks (source, source_id, first_seen_at, changed_at, synced_at) "
                "VALUES ('plex', ?, ?, ?, ?)",
                (str(i), now, now, now),
            )
            ids.append(int(cur.lastrowid or 0))
            conn.execute(
                "INSERT INTO predictions VALUES (?, 'taxonomy', 'genre', '1', ?, ?)",
                (ids[-1], json.dumps(labels), now),
            )
    return store, ids


def test_decide_stage_writes_decisions_and_only_redecides_what_changed() -> None:
    store, (rock, jazz, empty) = _store_with_predictions()
    counts = decide(store, DecideConfig(min_confidence=0.5))
    assert counts == {"decided": 1, "review": 2, "overridden": 0, "smoothed": 0}
    rows = dict(store.conn.execute("SELECT track_id, genres || '|' || status FROM decisions"))
    assert rows == {rock: '["Rock"]|decided', jazz: "[]|review", empty: "[]|review"}

    assert decide(store, DecideConfig(min_confidence=0.5))["decided"] == 0  # nothing pending
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO overrides VALUES (?, 'genre', '[\"Blues\"]', 'cli', 'me', ?)",
            (jazz, utcnow()),
        )
    assert decide(store, DecideConfig(min_confidence=0.5)) == {
        "decided": 1,
        "review": 0,
        "overridden": 1,
        "smoothed": 0,
    }
    genres, provenance = store.conn.execute(
        "SELECT genres, provenance FROM decisions WHERE track_id = ?", (jazz,)
    ).fetchone()
    assert json.loads(genres) == ["Blues"]
    assert json.loads(provenance)["genre"] == {"override": ["Blues"]}


@pytest.mark.parametrize("threshold", [0.2, 0.25])
def test_policy_change_redecides_everything(threshold: float) -> None:
    store, (_, jazz, _) = _store_with_predictions()
    decide(store, DecideConfig(min_confidence=0.5))
    counts = decide(store, DecideConfig(min_confidence=threshold))
    assert counts["decided"] == 2  # Rock and now Jazz (0.3 ≥ threshold)
    assert store.conn.execute(
        "SELECT status FROM decisions WHERE track_id = ?", (jazz,)
    ).fetchone() == ("decided",)
