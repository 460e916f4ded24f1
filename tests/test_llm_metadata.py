"""The `llm-metadata` classifier: the real groq SDK against the LLM emulator, whose oracle
answers from the freemusi.cc ground truth, with the real sync, classify and decide stages
on a store, and once end to end through the CLI to the Plex emulator.

Rate limits run on the emulator's FakeClock (the plugin's limiter sleeps by advancing it),
so minutes of Groq's free tier pass in milliseconds.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genred.config import Config, DecideConfig, parse_config
from genred.errors import Cancelled, LLMBudgetExhausted
from genred.hookspecs import PluginContext
from genred.loader import LoadedPlugins, discover
from genred.pipeline.classify import classify, load_tracks
from genred.pipeline.decide import decide
from genred.pipeline.sync import sync
from genred.records import TrackRecord, Unclassified
from genred.store import Store
from genred.taxonomy import default_taxonomy, normalize_key
from genred_plugins.llm import prompt as llm_prompt
from genred_plugins.llm.limits import estimate_tokens
from genred_plugins.llm.metadata import LLMMetadataClassifier
from tests.conftest import EXAMPLE_CONFIG
from tests.emulators.llm import (
    NOISE_KINDS,
    UNLIMITED,
    FakeClock,
    GroundTruth,
    Limits,
    LLMEmulator,
    Noise,
)
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.llm.ratelimits import prompt_tokens as emulator_prompt_tokens
from tests.emulators.plex import PlexEmulator, PlexLibrary
from tests.llm_setup import groq
from tests.stored import ListSource, stored

NAME = "llm-metadata"
TAXONOMY = default_taxonomy()


# --------------------------------------------------------------------------- helpers


def records_of(lib: PlexLibrary) -> list[TrackRecord]:
    """The library's tracks as the plex source reports them."""
    return lib.track_records()


@pytest.fixture(scope="module")
def freemusicc() -> PlexLibrary:
    """The first 400 freemusi.cc rows: albums and compilations, as Plex groups them."""
    return PlexLibrary.from_freemusicc(limit=400, audio_map=False)


def albums_of(lib: PlexLibrary, *, compilation: bool) -> list[list[TrackRecord]]:
    """The library's albums (records by album), compilations or not."""
    by_album: dict[str, list[TrackRecord]] = {}
    for record in records_of(lib):
        by_album.setdefault(record.album_source_id or "", []).append(record)
    return [
        tracks
        for tracks in by_album.values()
        if llm_prompt.is_compilation(tracks) == compilation and len(tracks) > 1
    ]


def classifier(llm: Any, config: Config | None = None, **settings: Any) -> LLMMetadataClassifier:
    """Built as load_plugins builds it: the LLM reached through `context.plugins`."""
    context = PluginContext(config or parse_config("{}", env={}))
    context.plugins = LoadedPlugins()
    context.plugins.by_kind["llm"]["groq"] = llm
    return LLMMetadataClassifier(LLMMetadataClassifier.Config(**settings), context)


def predictions(store: Store, label_set: str = "genre") -> dict[int, list[tuple[str, float]]]:
    rows = store.conn.execute(
        "SELECT track_id, labels FROM predictions WHERE classifier = ? AND label_set = ?",
        (NAME, label_set),
    )
    return {tid: [tuple(x) for x in json.loads(labels)] for tid, labels in rows}


def completions(emu: LLMEmulator) -> list[Any]:
    return [r for r in emu.requests if r.kind == "classify"]


def track_ids(store: Store) -> dict[str, int]:
    return dict(store.conn.execute("SELECT source_id, id FROM tracks"))


# --------------------------------------------------------------------------- pure parts


def test_entries_one_per_album_one_per_compilation_track() -> None:
    def rec(n: int, **fields: Any) -> TrackRecord:
        base = {"album_source_id": "a1", "album": "Blue", "album_artist": "Ann", "artist": "Ann"}
        return TrackRecord("plex", str(n), **{**base, **fields}, id=n)

    album = [
        rec(1, title="One", track_no=1, year=2001, genres=("Jazz, Blues",), path="/m/01 - One.mp3"),
        rec(2, title="Two", track_no=2, year=2001, album_genres=("Jazz",)),
        rec(3, title="Three", track_no=3, year=2001, artist="Ann feat. Bo"),
        rec(4, title="Four", track_no=4),
    ]
    various = [
        rec(n, album_source_id="c1", album="Mix", album_artist="Various Artists", artist=a,
            year=2010, genres=tags, album_genres=("House",))
        for n, a, tags in ((10, "Cy", ("House",)), (11, "Di", ("House", "Dub")))
    ]  # fmt: skip
    lone = TrackRecord(
        "plex", "20", title="Solo", artist="Eve", path="/m/[Dub] Eve - x.flac", id=20
    )
    entries = llm_prompt.build_entries([album[1], *various, album[0], lone])

    [first, comp_a, comp_b, single] = entries
    assert first.track_ids == (2, 1)  # one entry for the album, its tracks in this batch
    assert first.item == {
        "artist": "Ann",
        "album": "Blue",
        "year": 2001,
        "tags": ["Jazz", "Blues"],
        "title": "One",
        "more": ["Two"],
    }
    # With the whole album known (from the store) the entry is the same whatever the batch.
    whole = {llm_prompt.album_key(album[0]): album}
    again = llm_prompt.build_entries([album[3]], whole)[0]
    assert again.item["more"] == ["Two", "Three"] and again.track_ids == (4,)
    assert again.cache_key("m", 1, False) == llm_prompt.build_entries(album[:1], whole)[
        0
    ].cache_key("m", 1, False)
    assert again.cache_key("m", 1, False) != again.cache_key("m", 2, False)
    # A compilation: one entry per track; the album's facts are shared, said once.
    assert (comp_a.track_ids, comp_b.track_ids) == ((10,), (11,))
    assert comp_a.item == {"artist": "Cy", "album": "Mix"}
    assert comp_b.item == {"artist": "Di", "album": "Mix", "tags": ["House", "Dub"]}
    assert comp_a.shared == comp_b.shared == ("Mix", {"year": 2010, "tags": ["House"]})
    document = json.loads(llm_prompt.messages_for([comp_a, comp_b], moods=False)[1]["content"])
    assert document["albums"] == {"Mix": {"year": 2010, "tags": ["House"]}}
    # No album: the track alone, its file name kept when it says more than the title.
    assert single.item == {"artist": "Eve", "title": "Solo", "file": "[Dub] Eve - x.flac"}
    assert "file" not in llm_prompt.track_entry(album[0]).item  # "01 - One.mp3" says nothing new


def test_packing_fits_items_and_the_token_budget_exactly() -> None:
    lib = PlexLibrary.generate(3000, seed=4)
    records = [
        TrackRecord(**{**r.__dict__, "id": n}) for n, r in enumerate(records_of(lib), start=1)
    ]
    entries = llm_prompt.build_entries(records)
    for max_items, budget in ((100, 5500), (7, 5500), (100, 1500)):
        batches = llm_prompt.pack(
            entries, max_items=max_items, max_request_tokens=budget, max_answer_tokens=4096,
            moods=False,
        )  # fmt: skip
        assert [e for b in batches for e in b] == entries  # all, in order, once
        for batch in batches:
            assert len(batch) <= max_items
            messages = llm_prompt.messages_for(batch, moods=False)
            answer = llm_prompt.answer_budget(len(batch), False, 4096)
            assert estimate_tokens(messages, answer) <= budget
            document = json.loads(messages[-1]["content"])
            assert [i["id"] for i in document["items"]] == llm_prompt.request_ids(len(batch))
        for batch in batches[:-1]:  # each request but the last is full, in items or tokens
            tokens = llm_prompt.request_tokens(batch, False, 4096)
            assert len(batch) == max_items or tokens > budget - 150


@pytest.mark.slow
def test_requests_for_100k_tracks_are_counted_without_sending() -> None:
    clf = classifier(None)
    figures = {}
    for name, lib in (
        ("freemusi.cc", PlexLibrary.from_freemusicc(audio_map=False)),
        ("generated", PlexLibrary.generate(100_000)),
    ):
        records = [
            TrackRecord(**{**r.__dict__, "id": n}) for n, r in enumerate(records_of(lib), start=1)
        ]
        figures[name] = clf.plan(records)
    for name, plan in figures.items():
        print(
            f"{name}: {plan.tracks} tracks, {plan.entries} questions, {plan.requests} requests, "
            f"{plan.tokens} tokens (naive, a request per track: {plan.tracks})"
        )
    assert figures["generated"].tracks == 100_000
    assert figures["generated"].requests <= 334
    assert figures["freemusi.cc"].requests <= 200


def test_answer_checks_structure() -> None:
    good = {"items": [{"id": 3, "genres": [{"name": " Jazz ", "confidence": 1}]}]}
    assert llm_prompt.check_answer(good) == [llm_prompt.AnswerItem("3", (("Jazz", 1.0),), ())]
    for bad in (
        [],
        {"items": {}},
        {"items": ["x"]},
        {"items": [{"genres": []}]},
        {"items": [{"id": "1", "genres": "Jazz"}]},
        {"items": [{"id": "1", "genres": [{"name": "Jazz", "confidence": "high"}]}]},
    ):
        with pytest.raises(llm_prompt.InvalidAnswer):
            llm_prompt.check_answer(bad)


def test_registered_and_the_example_section_validates() -> None:
    infos = {(i.kind, i.name): i for i in discover(["classifiers"])}
    assert infos[("classifiers", NAME)].cls is LLMMetadataClassifier
    config = parse_config(EXAMPLE_CONFIG.read_text(), str(EXAMPLE_CONFIG), {"PLEX_TOKEN": "x"})
    [entry] = [e for e in config.plugins.classifiers if e.name == NAME]
    assert LLMMetadataClassifier.Config.model_validate(entry.settings) == (
        LLMMetadataClassifier.Config()
    )


# --------------------------------------------------------------------------- through the emulator


def test_genres_flow_from_answer_to_prediction_to_decision(
    freemusicc: PlexLibrary,
    llm_emulator: LLMEmulator,
    llm_clock: FakeClock,
    llm_truth: GroundTruth,
) -> None:
    records = records_of(freemusicc)
    store = stored(records)
    clf = classifier(groq(llm_emulator, llm_clock))
    counts = classify(store, {NAME: clf})
    assert counts[f"{NAME}.failed"] == 0
    assert counts[f"{NAME}.predicted"] == len(records)
    decide(store, DecideConfig())

    ids = track_ids(store)
    got = predictions(store)
    decisions = dict(store.conn.execute("SELECT track_id, genres FROM decisions"))
    checked = 0
    for record in records:
        truth = llm_truth.lookup(
            {"artist": record.artist, "album": record.album, "title": record.title}
        )
        assert truth is not None
        expected = TAXONOMY.canonicalize(list(truth.genres))
        labels = [name for name, _ in got[ids[record.source_id]]]
        assert set(labels) <= set(expected), record
        if expected:
            decided = json.loads(decisions[ids[record.source_id]])
            assert decided and decided[0] == expected[0], record  # best first, as answered
            assert set(decided) <= set(expected)
            checked += 1
    assert checked > 300
    # Fewer requests than albums: one question per album, many per request.
    assert len(completions(llm_emulator)) < len({r.album_source_id for r in records}) / 10


def test_album_grouping_sends_one_entry_per_album(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    albums = albums_of(freemusicc, compilation=False)[:12]
    [compilation] = albums_of(freemusicc, compilation=True)[:1]
    store = stored([t for album in albums for t in album])
    clf = classifier(groq(llm_emulator, llm_clock), max_items_per_request=5)
    classify(store, {NAME: clf})

    sent = completions(llm_emulator)
    assert [len(r.items) for r in sent] == [5, 5, 2]  # 12 albums, 5 per request
    for record in sent:
        assert record.status == 200 and record.body is not None
        assert record.body["max_completion_tokens"] == llm_prompt.answer_budget(
            len(record.items), False, 4096
        )
        assert record.document is not None
        for item in record.document["items"]:
            assert {"id", "artist", "album", "title", "more"} <= set(item)
    asked = [(i["artist"], i["album"]) for r in sent for i in (r.document or {})["items"]]
    assert asked == [(a[0].album_artist, a[0].album) for a in albums]
    assert len(predictions(store)) == sum(len(a) for a in albums)

    # A compilation: one item per track, the album's year and tags said once.
    llm_emulator.clear_requests()
    sync(store, "plex", ListSource(compilation), full=False)
    classify(store, {NAME: clf})
    sent = completions(llm_emulator)
    assert sum(len(r.items) for r in sent) == len(compilation)
    for record in sent:
        document = record.document or {}
        assert list(document["albums"]) == [compilation[0].album]
        assert {i["artist"] for i in document["items"]} <= {t.artist for t in compilation}


def test_second_run_and_unchanged_questions_send_nothing(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    records = records_of(freemusicc)
    held_back = records[5]  # a later track of the first album
    store = stored([r for r in records if r is not held_back])
    clf = classifier(groq(llm_emulator, llm_clock))
    classify(store, {NAME: clf})
    first = predictions(store)
    sent = len(completions(llm_emulator))
    assert sent > 1
    cached = store.conn.execute("SELECT COUNT(*), MIN(model) FROM llm_cache").fetchone()
    assert cached[0] > 0 and cached[1] == "groq:llama-3.1-8b-instant"

    llm_emulator.clear_requests()
    assert classify(store, {NAME: clf})[f"{NAME}.considered"] == 0
    # Another version (a setting that changes the predictions, not the question): every
    # track is classified again, every answer from the cache.
    again = classifier(groq(llm_emulator, llm_clock), min_confidence=0.35)
    assert again.version != clf.version
    counts = classify(store, {NAME: again})
    assert counts[f"{NAME}.considered"] == len(records) - 1
    assert {k: [x for x in v if x[1] >= 0.35] for k, v in first.items()} == predictions(store)
    # A new track of an album already asked: its album's question is the same.
    sync(store, "plex", ListSource([held_back]), full=False)
    assert classify(store, {NAME: again})[f"{NAME}.predicted"] == 1
    assert completions(llm_emulator) == []
    # Another prompt version asks again (a minute on: its new limiter does not know what
    # the first run's spent of this minute's tokens).
    llm_clock.advance(60)
    classify(store, {NAME: classifier(groq(llm_emulator, llm_clock), prompt_version=2)})
    assert len(completions(llm_emulator)) == sent


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_at_rate_one_leaves_no_invalid_genre(
    kind: str, freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    records = records_of(freemusicc)[:120]
    store = stored(records)
    llm_emulator.noise = Noise.of({kind: 1.0})
    clf = classifier(groq(llm_emulator, llm_clock, answer_retries=1), max_items_per_request=10)
    counts = classify(store, {NAME: clf})  # finishes whatever comes back

    assert counts[f"{NAME}.considered"] == len(records)
    rows = store.conn.execute("SELECT labels FROM predictions WHERE classifier = ?", (NAME,))
    for (labels,) in rows:
        for name, confidence in json.loads(labels):
            assert TAXONOMY.resolve(name) == name and 0.0 <= confidence <= 1.0
    failed = store.conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    assert failed == counts[f"{NAME}.failed"]
    usable = kind in ("wrong_genre", "unknown_genre", "extra_id")
    if kind == "wrong_genre":  # a "genre" the taxonomy does not know is no answer: a failure
        messages = store.conn.execute("SELECT DISTINCT message FROM failures").fetchall()
        assert all("no genre the taxonomy knows" in m for (m,) in messages), messages
        assert len(predictions(store)) + failed == len(records)
    else:
        assert (len(predictions(store)) == len(records)) is usable
        assert (failed == 0) is usable  # left out or failed: retried later, not marked done
    if kind == "unknown_genre":
        assert all(p for p in predictions(store).values())  # the true genres after the junk


def test_requests_stay_within_rpm_without_a_429(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    records = records_of(freemusicc)
    store = stored(records)
    llm_emulator.set_limits(Limits(rpm=30, rpd=None, tpm=None, tpd=None))
    limits = {"requests_per_minute": 30, "requests_per_day": None, "tokens_per_minute": None,
              "tokens_per_day": None, "max_wait": 120}  # fmt: skip
    clf = classifier(groq(llm_emulator, llm_clock, limits=limits), max_items_per_request=1)
    start = llm_clock()
    classify(store, {NAME: clf})

    sent = completions(llm_emulator)
    assert len(sent) > 60 and {r.status for r in sent} == {200}
    times = [r.at for r in sent]
    assert all(sum(t <= u < t + 60 for u in times) <= 30 for t in times)
    assert llm_clock() - start >= 60 * (math.ceil(len(sent) / 30) - 1)


def test_cancel_stops_within_one_request_and_the_rerun_resumes(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    store = stored(records_of(freemusicc)[:200])
    cancel = threading.Event()
    llm = groq(llm_emulator, llm_clock)

    class CancelDuringFirstRequest:
        name = llm.name

        def chat(self, *args: Any, **kwargs: Any) -> Any:
            cancel.set()  # shutdown arrives while the request is in flight
            return llm.chat(*args, **kwargs)

    clf = classifier(CancelDuringFirstRequest(), max_items_per_request=10)
    with pytest.raises(Cancelled):
        classify(store, {NAME: clf}, cancel=cancel)
    assert len(completions(llm_emulator)) == 0  # the provider checks before sending
    assert store.conn.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)

    cancel.clear()
    calls: list[int] = []

    class CancelAfterFirstRequest:
        name = llm.name

        def chat(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            try:
                return llm.chat(*args, **kwargs)
            finally:
                cancel.set()

    clf = classifier(CancelAfterFirstRequest(), max_items_per_request=10)
    with pytest.raises(Cancelled):
        classify(store, {NAME: clf}, cancel=cancel)
    assert len(calls) == 1 and len(completions(llm_emulator)) == 1
    assert store.conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone() == (10,)
    assert store.conn.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)

    cancel.clear()
    classify(store, {NAME: classifier(llm, max_items_per_request=10)}, cancel=cancel)
    asked = [i for r in completions(llm_emulator) for i in r.items]
    assert len(asked) == store.conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0]
    assert len(predictions(store)) == 200


def test_spent_daily_budget_stops_the_stage_and_the_next_day_goes_on(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    store = stored(records_of(freemusicc)[:200])
    limits = {"requests_per_day": 2, "max_wait": 120}
    clf = classifier(groq(llm_emulator, llm_clock, limits=limits), max_items_per_request=10)
    with pytest.raises(LLMBudgetExhausted) as stopped:
        classify(store, {NAME: clf})
    assert stopped.value.retry_at > datetime.fromtimestamp(llm_clock(), UTC)
    assert len(completions(llm_emulator)) == 2
    assert store.conn.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)
    assert store.conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone() == (20,)

    llm_clock.advance(86_400)  # the scheduler runs it again at retry_at
    clf = classifier(groq(llm_emulator, llm_clock), max_items_per_request=10)
    classify(store, {NAME: clf})
    assert len(predictions(store)) == 200
    asked = [i for r in completions(llm_emulator)[2:] for i in r.items]
    assert len(asked) == store.conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0] - 20


def test_request_too_large_is_split_in_half_once(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    albums = albums_of(freemusicc, compilation=False)[:8]
    store = stored([t for album in albums for t in album])
    entries = llm_prompt.build_entries(load_tracks(store, sorted(track_ids(store).values())))
    assert len(entries) == 8

    def requested(batch: list[llm_prompt.Entry], answer: int) -> int:  # as Groq counts
        return emulator_prompt_tokens(llm_prompt.messages_for(batch, False)) + answer

    whole = requested(entries, llm_prompt.answer_budget(8, False, 4096))
    halves = [requested(h, 2 * llm_prompt.answer_budget(4, False, 4096)) for h in (entries[:4], entries[4:])]  # fmt: skip
    assert max(halves) < whole
    llm_emulator.set_limits(Limits(rpm=None, rpd=None, tpm=whole - 1, tpd=None))
    classify(store, {NAME: classifier(groq(llm_emulator, llm_clock))})
    sent = completions(llm_emulator)
    assert [(r.status, len(r.items)) for r in sent] == [(413, 8), (200, 4), (200, 4)]
    assert len(predictions(store)) == sum(len(a) for a in albums)


def test_a_cut_off_answer_is_not_asked_again_as_is_but_with_room_to_finish(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    album = albums_of(freemusicc, compilation=False)[0]
    store = stored(album)
    llm_emulator.noise = Noise(truncated_rate=1.0, max_faults=1)
    classify(store, {NAME: classifier(groq(llm_emulator, llm_clock))})
    sent = completions(llm_emulator)
    # The cut-off answer is not re-asked with the same max_tokens (it would be cut again):
    # the lone album is asked once more, allowed the longest answer.
    assert [(r.finish_reason, r.max_completion_tokens) for r in sent] == [
        ("length", llm_prompt.answer_budget(1, False, 4096)),
        ("stop", 4096),
    ]
    assert len(predictions(store)) == len(album)


def test_left_out_items_are_retried_later_not_marked_done(
    freemusicc: PlexLibrary, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> None:
    records = records_of(freemusicc)[:100]
    store = stored(records)
    llm_emulator.noise = Noise.of({"missing_id": 0.3}, seed=2)
    clf = classifier(groq(llm_emulator, llm_clock))
    counts = classify(store, {NAME: clf})
    left_out = counts[f"{NAME}.failed"]
    assert 0 < left_out < len(records)
    assert counts[f"{NAME}.predicted"] == len(records) - left_out
    assert len(predictions(store)) == len(records) - left_out  # no empty row for them

    llm_emulator.noise = Noise()
    store.conn.execute("UPDATE failures SET next_retry_at = '2000-01-01'")  # backoff over
    counts = classify(store, {NAME: clf})
    assert counts[f"{NAME}.considered"] == left_out and counts[f"{NAME}.failed"] == 0
    assert len(predictions(store)) == len(records)


def test_moods_when_asked(llm_clock: FakeClock) -> None:
    truth = GroundTruth()
    truth.add(["Jazz", "Fusion"], artist="Ann", album="Blue", title="One", moods=["Calm"])
    records = [
        TrackRecord("plex", "1", title="One", artist="Ann", album="Blue", album_source_id="a"),
        TrackRecord("plex", "2", title="Two", artist="Ann", album="Blue", album_source_id="a"),
    ]
    store = stored(records)
    with LLMEmulator(truth, key=LLM_KEY, clock=llm_clock) as emu:
        classify(store, {NAME: classifier(groq(emu, llm_clock), moods=True)})
        [record] = completions(emu)
        assert "moods" in record.body["messages"][0]["content"]
    assert list(predictions(store).values()) == [[("Jazz", 0.9), ("Jazz Fusion", 0.8)]] * 2
    assert list(predictions(store, "mood").values()) == [[("Calm", 0.8)]] * 2
    decide(store, DecideConfig())
    moods = [json.loads(m) for (m,) in store.conn.execute("SELECT moods FROM decisions")]
    assert moods == [["Calm"], ["Calm"]]


def test_without_its_llm_the_batch_fails_with_a_reason() -> None:
    store = stored([TrackRecord("plex", "1", title="One", artist="Ann")])
    context = PluginContext(parse_config("{}", env={}))
    context.plugins = LoadedPlugins()
    clf = LLMMetadataClassifier(LLMMetadataClassifier.Config(), context)
    counts = classify(store, {NAME: clf})
    assert counts[f"{NAME}.failed"] == 1
    [(message,)] = store.conn.execute("SELECT message FROM failures")
    assert "plugin 'groq' (llm) is not available" in message


def test_unclassified_from_other_classifiers_is_a_failure_not_a_prediction() -> None:
    store = stored([TrackRecord("plex", str(n), title=f"t{n}") for n in (1, 2)])
    ids = sorted(track_ids(store).values())

    class Half:
        version = "1"

        def classify(self, tracks: Sequence[TrackRecord], **_: Any) -> Iterator[Any]:
            yield Unclassified(tracks[0].id or 0, RuntimeError("later"))

    assert classify(store, {"half": Half()}) == {
        "half.considered": 2,
        "half.predicted": 0,
        "half.failed": 1,
    }
    assert [r[0] for r in store.conn.execute("SELECT track_id FROM predictions")] == ids[1:]
    assert [r[0] for r in store.conn.execute("SELECT item FROM failures")] == [str(ids[0])]


# --------------------------------------------------------------------------- end to end


def test_cli_round_trip_to_plex(
    tmp_path: Path, plex_emulator: PlexEmulator, llm_truth: GroundTruth
) -> None:
    with LLMEmulator(llm_truth, key=LLM_KEY, limits=UNLIMITED) as llm:
        config = tmp_path / "genred.yaml"
        config.write_text(
            f"""
data_dir: {tmp_path / "data"}
plex: {{url: {plex_emulator.url}, token: {plex_emulator.token}, sections: [Music]}}
plugins:
  classifiers: [{NAME}]
  llm:
    groq:
      api_key: {LLM_KEY}
      base_url: {llm.url}
      limits: {{requests_per_minute: null, requests_per_day: null, tokens_per_minute: null,
                tokens_per_day: null}}
writeback: {{mode: replace, levels: [track]}}
logging: {{level: error}}
"""
        )
        config.chmod(0o600)
        from genred.cli import cli

        run: Callable[..., Any] = CliRunner().invoke
        for step in ("sync", "classify", "decide", "writeback"):
            result = run(cli, [step, "--config", str(config)], catch_exceptions=False)
            if step == "classify":
                # The fixture tracks the truth does not know are answered `"genres": []`
                # with a reason ("I do not know this track"): an answer, not a failure.
                unknown = {i for r in llm.requests for i in r.unknown_ids}
                assert unknown and "failed" not in result.output, result.output
            assert result.exit_code == 0, f"{step}: {result.output}"
        sent = [r for r in llm.requests if r.kind == "classify"]
        assert 0 < len(sent) < 40

    lib = plex_emulator.library
    written = 0
    for track in lib.tracks.values():
        truth = llm_truth.lookup(
            {"artist": track.original_title or lib.artists[track.artist_key].title,
             "album": lib.albums[track.album_key].title, "title": track.title}
        )  # fmt: skip
        expected = TAXONOMY.canonicalize(list(truth.genres)) if truth else []
        if expected:  # Plex keeps tags in its own order and an existing tag's spelling
            assert track.genres
            assert {normalize_key(g) for g in track.genres} <= {normalize_key(g) for g in expected}
            written += 1
    assert written > 1900
