"""Playlists read by an LLM: the real groq plugin on the LLM emulator, which answers the
playlist questions (intent, refine, ranking) from the prompt's words, with its noise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genred.errors import LLMBudgetExhausted, PlaylistError
from genred.playlists import PlaylistContext, create, refine, refresh
from genred.testing import Harness
from tests.emulators.llm import FakeClock, Limits, LLMEmulator, Noise
from tests.emulators.plex import PlexLibrary
from tests.llm_setup import groq
from tests.playlist_setup import TODAY, decided


@pytest.fixture(scope="module")
def records() -> list[Any]:
    return PlexLibrary.from_freemusicc(limit=1500, audio_map=False).track_records()


def harness_with(tmp_path: Path, records: list[Any], llm_emulator: LLMEmulator, llm_clock: FakeClock,
                 config: str = "", **settings: Any) -> Harness:  # fmt: skip
    harness = Harness(tmp_path, config)
    harness.add_tracks(records, source="plex")
    decided(harness)
    harness.add_plugin("llm", "groq", groq(llm_emulator, llm_clock, **settings))
    llm_emulator.clear_requests()
    return harness


@pytest.fixture
def lib(
    tmp_path: Path, records: list[Any], llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> Iterator[PlaylistContext]:
    with harness_with(tmp_path, records, llm_emulator, llm_clock) as harness:
        yield PlaylistContext(harness.store, harness.config, harness.plugins, today=TODAY)


def asked(emu: LLMEmulator) -> list[str]:
    return [r.kind for r in emu.completions()]


def test_create_asks_once_refine_once_refresh_never(
    lib: PlaylistContext, llm_emulator: LLMEmulator
) -> None:
    out = create(lib, "calm ambient from the 2000s, 20 songs", name="Drift")
    assert asked(llm_emulator) == ["playlist-intent"] and out.llm_requests == 1
    assert out.intent.genres == ("Ambient",) and (out.intent.year_min, out.intent.year_max) == (
        2000,
        2009,
    )
    assert out.intent.energy == "low" and out.intent.source_of("genres") == "llm"
    assert out.report.got == 20 and all((t.year or 0) in range(2000, 2010) for t in out.preview)
    document = llm_emulator.completions()[0].document
    assert document is not None and "Ambient" in document["genres"]  # shown the library's genres
    llm_emulator.clear_requests()
    refined = refine(lib, "Drift", "more upbeat")
    assert asked(llm_emulator) == ["playlist-refine"] and refined.llm_requests == 1
    assert refined.intent.energy == "high" and refined.intent.sources["energy"] == "refine"
    assert refined.intent.genres == ("Ambient",)  # a change to the intent, not a new one
    llm_emulator.clear_requests()
    refresh(lib, "Drift")
    assert asked(llm_emulator) == []


def test_a_prompt_in_another_language(lib: PlaylistContext) -> None:
    out = create(lib, "jazz calme pour lire, 10 titres")
    assert out.intent.genres == ("Jazz",) and out.intent.energy == "low" and out.intent.size == 10


def test_the_llm_ranks_ids_of_a_shortlist(tmp_path: Path, records: list[Any], llm_emulator: LLMEmulator,
                                         llm_clock: FakeClock) -> None:  # fmt: skip
    with harness_with(
        tmp_path, records, llm_emulator, llm_clock, "playlists: {rank: llm, shortlist: 40}"
    ) as h:
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=TODAY)
        out = create(ctx, "electronic, 15 songs")
        assert asked(llm_emulator) == ["playlist-intent", "playlist-rank"] and out.llm_requests == 2
        rank = llm_emulator.completions()[1]
        assert rank.document is not None
        shown = rank.document["items"]
        assert len(shown) == 40 and [i["id"] for i in shown] == list(range(1, 41))
        assert set(shown[0]) == {"id", "artist", "title", "album", "year", "genres", "moods"}
        import json

        picked = json.loads(rank.content or "{}")["ids"]
        by_number = {i["id"]: (i["artist"], i["title"]) for i in shown}
        assert {(t.artist, t.title) for t in out.preview} == {by_number[n] for n in picked}
        assert out.report.ranked_by.startswith("groq:")


@pytest.mark.parametrize(
    ("kinds", "note"),
    [
        ({"extra_id": 1.0}, "the LLM named 1 ids it was not shown: ignored"),
        ({"duplicate": 1.0}, "the LLM named 1 tracks twice: counted once"),
        ({"missing_id": 1.0}, "the LLM chose 7 of 15; the rest by score"),
    ],
)
def test_ids_the_llm_should_not_have_named_are_dropped_and_said(
    tmp_path: Path, records: list[Any], llm_emulator: LLMEmulator, llm_clock: FakeClock,
    kinds: dict[str, float], note: str,
) -> None:  # fmt: skip
    with harness_with(tmp_path, records, llm_emulator, llm_clock, "playlists: {rank: llm}") as h:
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=TODAY)
        if "duplicate" in kinds:
            llm_emulator.playlists.duplicate_rate = kinds["duplicate"]
        else:
            llm_emulator.noise = Noise.of(kinds)
        out = create(ctx, "electronic, 15 songs")
        assert note in out.notes
        assert out.report.got == 15 and len({t.track_id for t in out.preview}) == 15


def test_an_answer_that_is_not_json_falls_back_to_the_rules_parser(
    lib: PlaylistContext, llm_emulator: LLMEmulator
) -> None:
    llm_emulator.noise = Noise.of({"non_json": 1.0})
    out = create(lib, "ambient, 10 songs")
    assert len(llm_emulator.completions()) == 3  # asked, and asked again twice (answer_retries)
    assert out.intent.genres == ("Ambient",) and out.intent.source_of("genres") == "rules"
    assert out.notes[0].startswith(
        "the LLM could not read the prompt (groq:llama-3.1-8b-instant gave no usable answer in 3 tries"
    )
    assert out.notes[0].endswith("the rules parser read it")


def test_genres_genred_does_not_know_are_dropped_and_reported(
    lib: PlaylistContext, llm_emulator: LLMEmulator
) -> None:
    llm_emulator.noise = Noise.of({"unknown_genre": 1.0}, seed=2)
    out = create(lib, "ambient, 10 songs")
    assert out.intent.genres == ("Ambient",)
    (dropped,) = [n for n in out.notes if n.startswith("genres genred does not know, dropped: ")]
    assert dropped.removeprefix("genres genred does not know, dropped: ") in (
        "N/A", "Unknown", "Elevator Jazzcore", "Spacewave", "Sounds Good", "Misc",
    )  # fmt: skip


def test_an_answer_that_names_nothing_genred_knows_makes_no_playlist(
    lib: PlaylistContext, llm_emulator: LLMEmulator
) -> None:
    llm_emulator.noise = Noise.of({"unknown_genre": 1.0})
    with pytest.raises(
        PlaylistError, match=r"the prompt names nothing genred can select by.*dropped"
    ):
        create(lib, "elevator music for my cat")
    assert lib.store.conn.execute("SELECT COUNT(*) FROM playlists").fetchone()[0] == 0


def test_a_spent_budget_goes_up_and_nothing_is_half_stored(
    lib: PlaylistContext, llm_emulator: LLMEmulator
) -> None:
    llm_emulator.set_limits(Limits(rpm=None, rpd=1, tpm=None, tpd=None))
    create(lib, "ambient, 5 songs", name="First")
    with pytest.raises(LLMBudgetExhausted) as info:
        create(lib, "rock, 5 songs", name="Second")
    assert info.value.retry_at is not None
    names = [r[0] for r in lib.store.conn.execute("SELECT name FROM playlists")]
    assert names == ["First"]
