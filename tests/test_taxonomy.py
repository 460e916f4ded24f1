"""The genre taxonomy: folding, splitting, matching, the tree, user additions, the data."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from genred.taxonomy import (
    CONTAINED,
    EXACT,
    FUZZY,
    GenreMatch,
    Taxonomy,
    TaxonomyError,
    canonicalize,
    default_taxonomy,
    normalize_key,
)
from tests.conftest import FIXTURES

REPO = Path(__file__).resolve().parent.parent
GENRES_YAML = REPO / "models" / "genres.yaml"
METADATA = FIXTURES / "metadata"
FREEMUSICC = METADATA / "freemusi.cc" / "tracks_joined.csv.gz"
FMA_GENRES = METADATA / "fma" / "genres.csv"

# Styles in the freemusi.cc data that name no genre: formats, instrumentation, moods.
# They are in `ignore` and count as NOT canonicalized in the coverage figures.
FREEMUSICC_NON_GENRES = {
    "Compilation",
    "Mix",
    "Live",
    "Instrumental",
    "Vocal",
    "Piano",
    "Acoustic",
    "Dark",
    "Melodic",
    "Exotic",
}


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return Taxonomy.load()


def small(**extra: Any) -> Taxonomy:
    """A tiny taxonomy for loader tests."""
    data = {
        "genres": {
            "Rock": {
                "aliases": ["rock music"],
                "children": {
                    "Punk": {"aliases": ["punk rock"]},
                    "Indie Rock": {"aliases": ["indie"]},
                },
            },
            "Pop": {"children": {"Indie Pop": None}},
            "Electronic": {
                "children": {"Abstract": {"whitelist": False}, "Techno": {}},
            },
        },
        "ignore": ["live"],
    }
    return Taxonomy.from_data(data, source="test.yaml", **extra)


# -- folding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hip-Hop", "hip hop"),
        ("hip hop", "HIPHOP"),
        ("Drum & Bass", "drum and bass"),
        ("Drum & Bass", "Drum'n'Bass"),
        ("Drum + Bass", "drum n bass"),
        ("Rock 'n' Roll", "rock & roll"),
        ("R&B", "R'n'B"),
        ("Musique Concrète", "musique concrete"),
        ("Raï", "RAI"),
        ("Post-Rock", "post rock"),
    ],
)
def test_normalize_key_folds_spellings_together(a: str, b: str) -> None:
    assert normalize_key(a) == normalize_key(b)


def test_normalize_key_values() -> None:
    assert normalize_key("Hip-Hop") == "hiphop"
    assert normalize_key("Rock 'n' Roll") == "rockandroll"
    assert normalize_key("N. Indian Traditional") == "nindiantraditional"  # leading n stays
    assert normalize_key(" Pop / Rock ") == "pop/rock"  # '/' is kept
    assert normalize_key("Pop Rock") == "poprock"
    assert normalize_key("/ -- /") == ""


# -- splitting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("Electronic, Rock", ["Electronic", "Rock"]),
        ("Hip Hop; Jazz | Pop", ["Hip Hop", "Jazz", "Pop"]),
        ("Rock/Pop", ["Rock", "Pop"]),
        ("Drum & Bass", ["Drum & Bass"]),
        ("Drum & Bass / Jungle", ["Drum & Bass", "Jungle"]),
        ("Rock & Pop", ["Rock", "Pop"]),
        ("R&B and Soul", ["R&B", "Soul"]),
        ("Rhythm and Blues", ["Rhythm and Blues"]),
        ("Folk, World, & Country", ["Folk", "World", "Country"]),
        ("Drum & Bas", ["Drum & Bas"]),  # nothing known: kept whole, for guessing
        ("  ,, ; ", []),
    ],
)
def test_split(tax: Taxonomy, raw: str, parts: list[str]) -> None:
    assert tax.split(raw) == parts


# -- canonicalization: the tricky cases -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hip Hop", ["Hip-Hop"]),
        ("hiphop", ["Hip-Hop"]),
        ("RAP", ["Hip-Hop"]),
        ("Hip-Hop/Rap", ["Hip-Hop"]),
        ("d&b", ["Drum & Bass"]),
        ("DnB", ["Drum & Bass"]),
        ("Drum'n'Bass", ["Drum & Bass"]),
        ("drum and bass", ["Drum & Bass"]),
        ("Rock 'n' Roll", ["Rock & Roll"]),
        ("R&B", ["R&B"]),
        ("RnB", ["R&B"]),
        ("Electronic, Rock", ["Electronic", "Rock"]),
        ("Rock/Pop", ["Rock", "Pop"]),
        ("Pop/Rock", ["Pop", "Rock"]),
        ("Pop Rock", ["Pop Rock"]),
        ("Hip Hop; Jazz", ["Hip-Hop", "Jazz"]),
        ("Rock | Pop", ["Rock", "Pop"]),
        ("Rock & Pop", ["Rock", "Pop"]),
        ("Hip Hop & R&B", ["Hip-Hop", "R&B"]),
        ("Drum & Bass / Jungle", ["Drum & Bass", "Jungle"]),
        ("Rock & Roll & Blues", ["Rock & Roll", "Blues"]),
        ("Rock\x00Pop", ["Rock", "Pop"]),  # ID3v2.4 multi-value
        ("Singer/Songwriter", ["Singer-Songwriter"]),
        ("Big Band/Swing", ["Swing"]),
        ("Old-Time / Historic", ["Old-Time / Historic"]),
        ("Funk / Soul", ["Soul-RnB"]),
        ("Stage & Screen", ["Soundtrack"]),
        ("Cut-up/DJ", ["Turntablism"]),
        ("World", ["International"]),
        ("Folk, World, & Country", ["Folk", "International", "Country"]),
        (
            "Electronic, Funk / Soul, Hip Hop, Jazz, Rock",
            ["Electronic", "Soul-RnB", "Hip-Hop", "Jazz", "Rock"],
        ),
        ("Electronic, electronica, ELECTRONIC", ["Electronic"]),
        ("Trip Hop", ["Trip-Hop"]),
        ("Synth-pop", ["Synth-Pop"]),
        ("Post Rock", ["Post-Rock"]),
        ("Psy-Trance", ["Psytrance"]),
        ("Musique Concrete", ["Musique Concrète"]),
        ("Reggae - Dub", ["Dub"]),
        ("Jazz: Vocal", ["Vocal Jazz"]),
        ("Romany (Gypsy)", ["Romani"]),
        ("Hardcore", ["Hardcore Punk"]),
        ("Abstract", ["Electronic"]),  # whitelist: false → nearest whitelisted ancestor
        ("Ambient, Live", ["Ambient"]),
        ("Live", []),
        ("Mix", []),
        ("Female Vocals", []),
        ("Instrumental", []),
        ("Compilation, Live", []),
        ("", []),
        (" , ;  ", []),
        ("Progressive Death Metal", ["Death Metal"]),  # words inside
        ("Elecronic", ["Electronic"]),  # close spelling
        ("Psychadelic", ["Psychedelic Rock"]),  # ID3v1's spelling
        ("Mathcore", []),  # unknown: not forced onto Deathcore
        ("Semba", []),  # unknown: not forced onto Samba
    ],
)
def test_canonicalize_tricky_cases(tax: Taxonomy, raw: str, expected: list[str]) -> None:
    assert tax.canonicalize(raw) == expected


def test_match_confidence_scale(tax: Taxonomy) -> None:
    assert tax.match("drum n bass") == [GenreMatch("Drum & Bass", EXACT, "drum n bass")]
    assert tax.match("Elecronic") == [GenreMatch("Electronic", FUZZY, "Elecronic")]
    assert tax.match("Melodic Death Metal") == [
        GenreMatch("Death Metal", CONTAINED, "Melodic Death Metal")
    ]
    assert EXACT > FUZZY > CONTAINED > 0


def test_match_dedupes_keeping_best_confidence_and_first_position(tax: Taxonomy) -> None:
    for raw in ("Elecronic, Jazz, Electronic", "Electronic, Jazz, Elecronic"):
        found = tax.match(raw)
        assert [m.name for m in found] == ["Electronic", "Jazz"]
        assert found[0] == GenreMatch("Electronic", EXACT, "Electronic")


def test_iterable_input_is_merged_in_order(tax: Taxonomy) -> None:
    assert tax.canonicalize(["Rock", "Hip Hop, rock", "Live", "Pop"]) == ["Rock", "Hip-Hop", "Pop"]
    assert tax.canonicalize([]) == []


def test_near_miss_of_an_ignore_entry_maps_to_nothing(tax: Taxonomy) -> None:
    assert tax.canonicalize("Vocalist") == []  # close to the ignored "vocals"
    assert tax.canonicalize("Compilations") == []


def test_module_level_canonicalize_uses_the_cached_default() -> None:
    assert default_taxonomy() is default_taxonomy()
    assert canonicalize("hip hop; d&b") == ["Hip-Hop", "Drum & Bass"]


def test_results_are_fresh_lists(tax: Taxonomy) -> None:
    first = tax.canonicalize("Rock, Pop")
    first.append("mutated")
    assert tax.canonicalize("Rock, Pop") == ["Rock", "Pop"]


# -- the tree ---------------------------------------------------------------------------------


def test_tree_navigation(tax: Taxonomy) -> None:
    assert tax.parent("Deep House") == "House"
    assert tax.parent("Rock") is None
    assert tax.ancestors("Deep House") == ["House", "Electronic"]
    assert tax.ancestors("dnb") == ["Electronic"]  # aliases are accepted
    assert tax.top_level("Death Metal") == "Rock"
    assert tax.top_level("Rock") == "Rock"
    assert "Death Metal" in tax.children("Metal")
    assert tax.is_known("hip hop") and tax.is_known("Hip-Hop")
    assert not tax.is_known("Live")  # ignored, so not a genre
    assert not tax.is_known("Polka Dot Metalcore Fusion")
    assert tax.resolve("d&b") == "Drum & Bass"
    with pytest.raises(KeyError, match="Nonsense"):
        tax.parent("Nonsense")


def test_whitelist_flag(tax: Taxonomy) -> None:
    assert tax.is_known("Abstract")
    assert not tax.is_whitelisted("Abstract")
    assert tax.is_whitelisted("Techno")


# -- the built-in data ------------------------------------------------------------------------


def _walk(node: dict[str, Any], parent: str | None) -> list[tuple[str, str | None, dict]]:
    out = []
    for name, body in node.items():
        body = body or {}
        out.append((name, parent, body))
        out.extend(_walk(body.get("children") or {}, name))
    return out


def test_every_name_and_alias_in_the_file_maps_to_its_genre(tax: Taxonomy) -> None:
    data = yaml.safe_load(GENRES_YAML.read_text(encoding="utf-8"))
    entries = _walk(data["genres"], None)
    assert {name for name, _, _ in entries} == tax.names
    for name, parent, body in entries:
        assert tax.parent(name) == parent
        emitted = name if body.get("whitelist", True) else tax.parent(name)
        for text in [name, *body.get("aliases", [])]:
            assert tax.match(text) == [GenreMatch(emitted, EXACT, text)], text
    for text in data["ignore"]:
        assert tax.canonicalize(text) == [], text


def test_builtin_tree_shape(tax: Taxonomy) -> None:
    assert 150 <= len(tax.names) <= 500
    fma_top = {
        "Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental",
        "Folk", "Hip-Hop", "International", "Jazz", "Old-Time / Historic", "Pop", "Rock",
        "Soul-RnB", "Spoken",
    }  # fmt: skip
    assert fma_top <= set(tax.top_levels)
    assert len(tax.top_levels) <= 20
    assert all(tax.is_whitelisted(top) for top in tax.top_levels)


def test_loads_from_an_explicit_path_too() -> None:
    assert Taxonomy.load(GENRES_YAML).names == default_taxonomy().names


def test_every_fma_genre_title_is_recognised(tax: Taxonomy) -> None:
    with FMA_GENRES.open(encoding="utf-8") as f:
        titles = [row["title"] for row in csv.DictReader(f)]
    assert len(titles) == 163
    missing = [t for t in titles if not tax.canonicalize(t)]
    assert sorted(missing) == ["Compilation", "Instrumental", "Unclassifiable"]
    guessed = [t for t in titles if any(m.confidence < EXACT for m in tax.match(t))]
    assert guessed == []


def test_freemusicc_coverage(tax: Taxonomy) -> None:
    genres: Counter[str] = Counter()
    styles: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    with gzip.open(FREEMUSICC, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for column, counter in (("genre", genres), ("style", styles)):
                if row[column].strip():
                    counter[row[column]] += 1
            tags.update(t.strip() for t in row["style"].split(",") if t.strip())
    values = genres + styles

    def covered(counter: Counter[str]) -> list[str]:
        return [v for v in counter if tax.canonicalize(v)]

    ok_values, ok_tags = covered(values), covered(tags)
    value_share, tag_share = len(ok_values) / len(values), len(ok_tags) / len(tags)
    failing = sorted(set(tags) - set(ok_tags), key=lambda t: -tags[t])
    print(
        f"\nfreemusi.cc: distinct genre+style values {len(ok_values)}/{len(values)}"
        f" = {value_share:.1%} (genre {len(covered(genres))}/{len(genres)},"
        f" style {len(covered(styles))}/{len(styles)});"
        f" distinct style tags {len(ok_tags)}/{len(tags)} = {tag_share:.1%};"
        f" not canonicalized: {[(t, tags[t]) for t in failing]}"
    )
    assert len(covered(genres)) == len(genres)
    assert value_share >= 0.95
    # Tags that name no genre are ignored on purpose and count against the figure; the
    # rest must all be recognised, each exactly (by name or alias, not by guessing).
    assert set(failing) == FREEMUSICC_NON_GENRES
    assert tag_share >= 0.90
    assert all(m.confidence == EXACT for t in ok_tags for m in tax.match(t))


# -- user additions from the config -----------------------------------------------------------


def test_example_config_additions_load() -> None:
    # The values in config/genred.example.yaml.
    tax = Taxonomy.load(
        extra_genres={"Chiptune": "Electronic"},
        extra_aliases={"8-bit": "Chiptune"},
        ignore=["favourites", "to sort"],
    )
    assert tax.canonicalize("8-bit, To Sort") == ["Chiptune"]


def test_extra_genre_new_and_nested_on_another_extra() -> None:
    tax = small(extra_genres={"Acid Techno": "Techno", "Hard Acid": "acid techno"})
    assert tax.ancestors("Hard Acid") == ["Acid Techno", "Techno", "Electronic"]
    assert tax.canonicalize("Hard Acid") == ["Hard Acid"]


def test_extra_genre_moves_an_existing_one_or_takes_over_an_alias() -> None:
    tax = small(extra_genres={"Indie Pop": "Rock", "Indie": None, "Folk": None})
    assert tax.parent("Indie Pop") == "Rock"
    assert tax.canonicalize("indie") == ["Indie"]
    assert tax.top_level("Indie") == "Indie"
    assert "Folk" in tax.top_levels


def test_extra_alias_overrides_builtin_alias_and_ignore() -> None:
    tax = small(extra_aliases={"indie": "Indie Pop", "live": "Rock", "Krach": "Rock"})
    assert tax.canonicalize("indie, live, krach") == ["Indie Pop", "Rock"]


def test_extra_ignore_overrides_builtin_alias() -> None:
    tax = small(ignore=["Indie"])
    assert tax.canonicalize("indie, punk rock") == ["Punk"]


def test_whitelist_override_folds_into_parent_or_drops() -> None:
    tax = small(whitelist={"Punk": False, "Electronic": False, "Abstract": True})
    assert tax.canonicalize("Punk, Techno, Abstract") == ["Rock", "Techno", "Abstract"]
    tax = small(whitelist={"Electronic": False})
    assert tax.canonicalize("Abstract, Electronic, Rock") == ["Rock"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"extra_aliases": {"Krach": "Noise"}}, r"taxonomy\.aliases: Krach: target 'Noise'"),
        ({"extra_genres": {"Witch House": "Hause"}}, r"parent 'Hause' is not a known genre"),
        ({"extra_genres": {"Rock": "Punk"}}, r"'Rock' would be its own ancestor"),
        ({"extra_genres": {"A": "B", "B": "A"}}, r"would be its own ancestor"),
        ({"extra_aliases": {"Rock": "Pop"}}, r"alias 'Rock' → 'Pop' is the name of the genre"),
        ({"extra_aliases": {"K-Rock": "Rock", "krock": "Pop"}}, r"'krock' → 'Pop' is claimed"),
        ({"ignore": ["Techno"]}, r"taxonomy\.ignore: 'Techno' is the genre 'Techno'"),
        ({"extra_aliases": {"zzz": "Rock"}, "ignore": ["ZZZ"]}, r"ignore 'ZZZ' clashes"),
        ({"whitelist": {"Nope": False}}, r"taxonomy\.whitelist: genre 'Nope'"),
    ],
)
def test_invalid_additions_are_refused_naming_the_entry(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(TaxonomyError, match=message):
        small(**extra)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"genres": {"Rock": {"aliases": ["indie"]}, "Pop": {"aliases": ["Indie"]}}},
            r"Pop > aliases: alias 'Indie' → 'Pop' is claimed by alias 'indie' of 'Rock'",
        ),
        ({"genres": {"Rock": {"aliases": ["Pop"]}, "Pop": {}}}, r"genre 'Pop' clashes"),
        ({"genres": {"Rock": {"children": {"rock": {}}}}}, r"genre 'rock' clashes"),
        ({"genres": {"Rock": {"aliases": [{"jazz": "vocal"}]}}}, r"quote entries"),
        ({"genres": {"Rock": {"alias": ["x"]}}}, r"Rock: unknown key\(s\) \['alias'\]"),
        ({"genres": {"Rock": {"whitelist": "no"}}}, r"Rock: whitelist must be true or false"),
        ({"genres": {"Rock": {}}, "ignore": ["rock"]}, r"'rock' is the genre 'Rock'"),
        ({"genres": {"Rock": {"aliases": ["!!"]}}}, r"alias '!!' has no letters or digits"),
        ({"genres": {}}, r"'genres' is missing or empty"),
        ({"genres": {"Rock": {}}, "aliases": {}}, r"unknown top-level key"),
        (["Rock"], r"expected a mapping"),
    ],
)
def test_invalid_files_are_refused_naming_the_entry(data: Any, message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy.from_data(data, source="bad.yaml")


def test_unreadable_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read"):
        Taxonomy.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("genres: [unclosed\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        Taxonomy.load(broken)
    good = tmp_path / "mine.yaml"
    good.write_text("genres:\n  Noise: {aliases: [harsh]}\nignore: [junk]\n", encoding="utf-8")
    tax = Taxonomy.load(good)
    assert tax.canonicalize("Harsh, Junk, Noise") == ["Noise"]
    assert tax.source == str(good)
