"""The decide cascade, album smoothing and the classify stage's cascade gate, on
hand-built prediction sets (conflicts and overrides included)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from genred.config import AlbumSmoothing, DecideConfig
from genred.pipeline.cascade import (
    AlbumTrack,
    LabelDecision,
    Vote,
    cascade_genres,
    reaches_step,
    smooth_albums,
    steps_of,
)
from genred.pipeline.classify import classify
from genred.pipeline.decide import decide
from genred.records import Prediction, TrackRecord
from genred.store import Store
from tests.stored import stored

CASCADE = DecideConfig(
    cascade=[
        {"classifiers": ["taxonomy", "llm-metadata"], "accept": 0.7},
        {"classifiers": ["tagger", "audio-model"]},
    ]
)
STEPS = steps_of(CASCADE)


def genres(votes: Sequence[Vote], override: list[str] | None = None) -> tuple:
    decision, step, accepted = cascade_genres(
        votes, override, STEPS, CASCADE.weights, CASCADE.min_confidence, CASCADE.max_genres
    )
    return decision.labels, step, accepted


def test_the_cascade_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="only the last step may leave `accept` unset"):
        DecideConfig(cascade=[{"classifiers": ["a"]}, {"classifiers": ["b"], "accept": 0.5}])
    with pytest.raises(ValidationError, match="a named in more than one step"):
        DecideConfig(cascade=[{"classifiers": ["a"], "accept": 0.5}, {"classifiers": ["a"]}])
    # Classifiers no step names vote in a last step of their own.
    steps = steps_of(DecideConfig(cascade=[{"classifiers": ["a"], "accept": 0.5}]))
    assert [(s.classifiers, s.accept) for s in steps] == [(frozenset({"a"}), 0.5), (None, None)]
    assert [(s.classifiers, s.accept) for s in steps_of(DecideConfig())] == [(None, None)]


def test_confident_metadata_decides_and_the_audio_vote_is_not_counted() -> None:
    votes = [
        Vote("taxonomy", [("Jazz", 1.0)]),
        Vote("llm-metadata", [("Jazz", 0.8)]),
        Vote("tagger", [("Rock", 0.9)]),  # asked earlier, or by mistake: not needed
    ]
    assert genres(votes) == (("Jazz",), 0, True)


def test_unsure_metadata_lets_the_audio_step_vote_and_the_ensemble_decides() -> None:
    votes = [
        Vote("taxonomy", [("Rock", 0.6)]),  # 0.6 < accept 0.7
        Vote("tagger", [("Jazz", 0.9)]),
        Vote("audio-model", [("Jazz", 0.8), ("Rock", 0.2)]),
    ]
    # Everyone: Jazz (0 + 0.9 + 0.8) / 3 = 0.567, Rock (0.6 + 0 + 0.2) / 3 = 0.267.
    assert genres(votes) == (("Jazz",), 1, False)
    decision, *_ = cascade_genres(votes, None, STEPS, {}, 0.5, 3)
    assert decision.provenance["Jazz"] == {"tagger": 0.9, "audio-model": 0.8}


def test_conflicting_metadata_below_accept_is_settled_by_audio_weights() -> None:
    votes = [
        Vote("taxonomy", [("Rock", 0.9)]),
        Vote("llm-metadata", [("Jazz", 0.9)]),  # each 0.45 after the mean: below accept
        Vote("audio-model", [("Jazz", 0.7)]),
    ]
    # Jazz: (0.9 + 0.7) / 3 = 0.533; Rock: 0.9 / 3 = 0.3.
    assert genres(votes) == (("Jazz",), 1, False)
    # The same with the library's tags trusted three times more: Rock wins.
    decision, step, _ = cascade_genres(votes, None, STEPS, {"taxonomy": 3.0}, 0.5, 3)
    # Rock: 3 × 0.9 / 5 = 0.54; Jazz: (0.9 + 0.7) / 5 = 0.32.
    assert (decision.labels, step) == (("Rock",), 1)


def test_a_manual_override_always_wins() -> None:
    votes = [Vote("taxonomy", [("Rock", 1.0)]), Vote("tagger", [("Rock", 1.0)])]
    assert genres(votes, ["Blues"]) == (("Blues",), 0, True)


def test_reaches_step_asks_audio_only_where_metadata_is_unsure() -> None:
    sure = [Vote("taxonomy", [("Jazz", 0.9)])]
    unsure = [Vote("taxonomy", [("Jazz", 0.65)])]
    nothing: list[Vote] = []
    args = (STEPS, {}, 0.5, 3)
    assert reaches_step(sure, 0, *args)
    assert not reaches_step(sure, 1, *args)
    assert reaches_step(unsure, 1, *args)
    assert reaches_step(nothing, 1, *args)


# --------------------------------------------------------------------------- albums


def decision(labels: tuple[str, ...], best: float, override: bool = False) -> LabelDecision:
    provenance = {"override": list(labels)} if override else {"x": {}}
    return LabelDecision(labels, best if labels else None, provenance, bool(labels), best)


def test_album_smoothing_pulls_weak_outliers_and_keeps_confident_ones() -> None:
    decisions = {
        1: decision(("Jazz",), 0.9),
        2: decision(("Jazz", "Blues"), 0.8),
        3: decision(("Jazz",), 0.7),
        4: decision(("Rock",), 0.6),  # differs, weakly: takes the album's genres
        5: decision(("Metal",), 0.75),  # differs, confidently (≥ 0.5 + 0.2): kept
        6: decision((), 0.2),  # nothing of its own: takes the album's
        7: decision(("Pop",), 0.55, override=True),  # a person said so
        8: decision(("Jazz",), 0.9),
        9: decision(("Jazz", "Blues"), 0.9),
    }
    tracks = [AlbumTrack(i, "a1", "Miles") for i in decisions]
    changed = smooth_albums(decisions, tracks, {}, AlbumSmoothing(), 0.5)
    assert set(changed) == {4, 6}
    # 5 of the 8 tracks with a genre are Jazz (0.625 ≥ min_share 0.6); Blues is on 2 of 8.
    assert changed[4].labels == ("Jazz",)
    assert changed[4].provenance["album"] == {"genres": ["Jazz"], "share": 0.625, "was": ["Rock"]}
    assert changed[6].decided and changed[6].labels == ("Jazz",)
    assert smooth_albums(decisions, tracks, {}, AlbumSmoothing(min_share=0.7), 0.5) == {}
    # Decided album mates outside the batch count too: 9 Jazz of 12, and Blues on 6 of 12.
    others = {"a1": [["Jazz", "Blues"]] * 4}
    more = smooth_albums(decisions, tracks, others, AlbumSmoothing(min_share=0.7), 0.5)
    assert set(more) == {4, 6} and more[4].confidence == 0.75
    assert more[4].labels == ("Jazz", "Blues")


def test_compilations_and_small_albums_are_not_smoothed() -> None:
    decisions = {i: decision(("Jazz",), 0.9) for i in (1, 2, 3)} | {4: decision(("Rock",), 0.5)}
    various = [AlbumTrack(i, "c1", f"artist {i}") for i in decisions]
    assert smooth_albums(decisions, various, {}, AlbumSmoothing(min_share=0.7), 0.5) == {}
    two = {1: decision(("Jazz",), 0.9), 2: decision(("Rock",), 0.5)}
    pair = [AlbumTrack(i, "a2", "X") for i in two]
    assert smooth_albums(two, pair, {}, AlbumSmoothing(), 0.5) == {}
    assert smooth_albums(decisions, various, {}, AlbumSmoothing(enabled=False), 0.5) == {}


# --------------------------------------------------------------------------- the stages


class Fixed:
    """A classifier answering from a table, remembering which tracks it was asked about."""

    def __init__(self, answers: dict[str, tuple[tuple[str, float], ...]]) -> None:
        self.answers = answers
        self.version = "1"
        self.asked: list[int] = []

    def classify(self, tracks: Sequence[TrackRecord], **_: Any) -> Iterator[Prediction]:
        for track in tracks:
            assert track.id is not None
            self.asked.append(track.id)
            labels = self.answers.get(track.source_id, ())
            if labels:
                yield Prediction(track.id, "genre", labels)


def test_audio_classifiers_are_asked_only_about_the_long_tail_and_decisions_say_why() -> None:
    records = [
        TrackRecord("plex", str(n), title=f"t{n}", artist="A", album_source_id=f"al{n // 4}")
        for n in range(8)
    ]
    store: Store = stored(records)
    ids = dict(store.conn.execute("SELECT source_id, id FROM tracks"))
    library = Fixed({"0": (("Jazz", 1.0),), "1": (("Jazz", 0.9),), "4": (("Rock", 0.6),)})
    audio = Fixed({s: (("Electronic", 0.8),) for s in ids})
    # Listed audio first: the cascade runs the library step first all the same.
    labels = Fixed({})  # a classifier no step names (custom labels): asked about all
    counts = classify(
        store, {"tagger": audio, "taxonomy": library, "llm-labels": labels}, decide_config=CASCADE
    )
    asked = {s for s, i in ids.items() if i in audio.asked}
    assert asked == {"2", "3", "4", "5", "6", "7"}  # 0 and 1 were decided by their tags
    assert counts["tagger.decided_earlier"] == 2
    assert sorted(labels.asked) == sorted(ids.values())

    counts = decide(
        store, CASCADE.model_copy(update={"album_smoothing": AlbumSmoothing(enabled=False)})
    )
    assert counts["step1"] == 2 and counts["step2"] == 6
    rows = {
        sid: (json.loads(g), json.loads(p))
        for sid, g, p in store.conn.execute(
            "SELECT t.source_id, d.genres, d.provenance FROM decisions d "
            "JOIN tracks t ON t.id = d.track_id"
        )
    }
    assert rows["0"][0] == ["Jazz"] and rows["0"][1]["step"] == 1
    assert rows["0"][1]["genre"] == {"Jazz": {"taxonomy": 1.0}}
    assert rows["5"][0] == ["Electronic"] and rows["5"][1]["step"] == 2
    assert rows["5"][1]["genre"]["Electronic"] == {"tagger": 0.8}
    # Tags and sound disagree, each at half weight: Rock 0.3, Electronic 0.4 → review.
    assert rows["4"][0] == [] and rows["4"][1]["step"] == 2
    assert rows["4"][1]["genre"] == {"Electronic": {"tagger": 0.8}, "Rock": {"taxonomy": 0.6}}
