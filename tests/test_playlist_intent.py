"""The intent: the rules parser's reading of prompts, patches (refine, edit), summaries."""

from __future__ import annotations

from collections import Counter

import pytest

from genred.playlists.intent import (
    Intent,
    IntentPatch,
    apply_patch,
    describe_change,
    intent_schema,
    parse_answer,
)
from genred.playlists.library import Vocabulary, fold
from genred.playlists.rules import RulesParser
from genred.taxonomy import default_taxonomy


def vocabulary(
    moods: tuple[str, ...] = ("Chill", "Mellow", "Party", "Happy"),
    labels: tuple[str, ...] = ("Instrumental", "Vocals", "Female Vocals"),
    artists: tuple[str, ...] = ("Miles Davis", "Low", "Air"),
) -> Vocabulary:
    return Vocabulary(
        genres=Counter(),
        moods=Counter(dict.fromkeys(moods, 10)),
        labels=Counter(dict.fromkeys(labels, 10)),
        artists=Counter(dict.fromkeys(artists, 5)),
        tracks=100,
        decided=100,
        _folded_artists={fold(a): a for a in artists},
    )


def parse(prompt: str, **vocab: tuple[str, ...]) -> dict[str, object]:
    return RulesParser(default_taxonomy().resolve, vocabulary(**vocab)).parse(prompt).fields


def test_genre_decade_and_calm() -> None:
    fields = parse("jazz 1950s calm")
    assert fields["genres"] == ("Jazz",)
    assert (fields["year_min"], fields["year_max"]) == (1950, 1959)
    assert fields["energy"] == "low"
    assert fields["moods"] == ("Chill", "Mellow")  # "calm" in the library's mood words


@pytest.mark.parametrize(
    ("prompt", "low", "high"),
    [
        ("rock from the 80s", 1980, 1989),
        ("sixties soul", 1960, 1969),
        ("jazz from 1965 to 1970", 1965, 1970),
        ("blues before 1960", None, 1959),
        ("pop since 2015", 2015, None),
        ("hits of 1977", 1977, 1977),
        ("the 1990s and 2000s", 1990, 2009),
    ],
)
def test_years(prompt: str, low: int | None, high: int | None) -> None:
    fields = parse(prompt)
    assert (fields.get("year_min"), fields.get("year_max")) == (low, high)


def test_multiword_genres_and_aliases_are_found_longest_first() -> None:
    assert parse("some drum n bass and bossa nova")["genres"] == ("Drum & Bass", "Bossa Nova")
    assert parse("hip hop for the gym")["genres"] == ("Hip-Hop",)
    assert parse("hip hop for the gym")["energy"] == "high"


def test_size_and_length() -> None:
    assert parse("30 songs of jazz")["size"] == 30
    assert parse("two hours of jazz, 90 minutes")["minutes"] == 90
    assert parse("jazz for 2 hours")["minutes"] == 120


def test_no_vocals_is_instrumental_and_excludes_the_vocal_labels_the_library_has() -> None:
    fields = parse("ambient, no vocals")
    assert fields["labels"] == ("Instrumental",)
    assert fields["exclude_labels"] == ("Vocals", "Female Vocals")
    assert fields["genres"] == ("Ambient",)


def test_exclusions_are_genres_artists_or_words() -> None:
    fields = parse("rock without punk, no Miles Davis, drop the christmas songs, no remixes")
    assert fields["genres"] == ("Rock",)
    assert fields["exclude_genres"] == ("Punk", "Christmas")  # a genre (under Holiday) …
    assert fields["exclude_artists"] == ("Miles Davis",)
    # … and "the christmas songs" are about Christmas: no title may say it either. "remixes"
    # is no genre and no artist: a word to avoid.
    assert fields["avoid"] == ("christmas", "remix")


def test_artists_by_name_and_like() -> None:
    fields = parse("cool jazz like Kind of Blue by Miles Davis")
    assert fields["artists"] == ("Miles Davis",)
    assert fields["like"] == ("Kind of Blue",)
    # A one-word artist is not read out of ordinary words ("low energy" is no request for Low).
    assert "artists" not in parse("low energy electronic")


def test_words_it_cannot_place_are_the_vibe() -> None:
    parsed = RulesParser(default_taxonomy().resolve, vocabulary()).parse(
        "musique calme pour lire, jazz"
    )
    assert parsed.fields["genres"] == ("Jazz",)
    assert parsed.unplaced == ["musique", "calme", "pour", "lire"]
    assert parsed.fields["vibe"] == "musique calme pour lire"


def test_a_refine_without_an_llm_is_a_patch() -> None:
    parser = RulesParser(default_taxonomy().resolve, vocabulary())
    patch = parser.patch("more upbeat, no vocals")
    assert patch.set == {"energy": "high"}
    assert patch.add == {"labels": ["Instrumental"], "exclude_labels": ["Vocals", "Female Vocals"]}
    before = Intent(genres=("Jazz",), energy="low", sources={"genres": "rules"})
    after = apply_patch(before, patch, "refine")
    assert after.energy == "high" and after.genres == ("Jazz",)
    assert after.sources == {
        "genres": "rules",
        "energy": "refine",
        "labels": "refine",
        "exclude_labels": "refine",
    }
    assert describe_change(before, after) == [
        "exclude_labels: (any) → Vocals, Female Vocals",
        "labels: (any) → Instrumental",
        "energy: low → high",
    ]


def test_an_exclusion_wins_over_the_same_inclusion() -> None:
    intent = Intent(genres=("Jazz", "Blues"))
    after = apply_patch(intent, IntentPatch(add={"exclude_genres": ["Jazz"]}), "refine")
    assert after.genres == ("Blues",) and after.exclude_genres == ("Jazz",)
    back = apply_patch(after, IntentPatch(add={"genres": ["Jazz"]}), "user")
    assert back.genres == ("Blues", "Jazz") and back.exclude_genres == ()


def test_a_patch_names_only_known_fields() -> None:
    with pytest.raises(ValueError, match="unknown intent fields"):
        IntentPatch(set={"tempo_bpm": 120})
    with pytest.raises(ValueError, match="not list fields"):
        IntentPatch(add={"energy": ["high"]})
    cleared = apply_patch(Intent(energy="low", size=10), IntentPatch(set={"energy": None}), "user")
    assert cleared.energy is None and cleared.size == 10


def test_summary_and_round_trip() -> None:
    intent = Intent(
        genres=("Jazz",),
        year_min=1950,
        year_max=1959,
        energy="low",
        exclude_labels=("Vocals",),
        size=25,
        sources={"genres": "llm"},
    )
    assert intent.summary() == "Jazz · 1950s · calm · no Vocals · 25 tracks"
    assert Intent.from_json(intent.to_json()) == intent


def test_the_llm_answer_is_checked_against_its_schema() -> None:
    answer = parse_answer({"genres": ["Jazz"], "energy": "LOW", "colour": "blue"})
    assert answer.genres == ["Jazz"] and answer.energy == "low"  # unknown keys ignored
    with pytest.raises(ValueError, match="energy"):
        parse_answer({"energy": "loud"})
    with pytest.raises(ValueError, match="one JSON object"):
        parse_answer(["Jazz"])
    schema = intent_schema()
    assert set(schema["required"]) == set(schema["properties"])
