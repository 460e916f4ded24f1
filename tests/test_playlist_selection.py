"""Selection over a small library made for it: hard constraints, relaxation, shortfall,
variety, whys, refine, pins, drops, undo, refresh — without an LLM (the rules parser)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from genred.errors import PlaylistError
from genred.playlists import (
    PlaylistContext,
    create,
    drop,
    edit,
    pin,
    refine,
    refresh,
    show,
    undo,
)
from genred.playlists.intent import IntentPatch
from genred.store import utcnow
from genred.testing import Harness, track
from tests.playlist_setup import TODAY

# title, artist, album, year, genres, moods, labels, isrc, seconds
ROWS: list[
    tuple[str, str, str, int, tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None, int]
] = []


def _rows() -> None:
    for n in range(12):  # calm jazz by four artists, 1955-1966
        artist = f"Jazz Artist {n % 4}"
        moods = ("Chill",) if n % 2 == 0 else ("Mellow",)
        labels = ("Instrumental",) if n % 3 == 0 else ("Vocals",)
        ROWS.append(
            (
                f"Blue Tune {n}",
                artist,
                f"Jazz Album {n % 6}",
                1955 + n,
                ("Jazz",),
                moods,
                labels,
                None,
                240,
            )
        )
    ROWS.append(
        (
            "Christmas Swing",
            "Jazz Artist 0",
            "Jazz Album 0",
            1958,
            ("Jazz",),
            ("Happy",),
            (),
            None,
            150,
        )
    )
    ROWS.append(
        (
            "So What",
            "Miles Davis",
            "Kind of Blue",
            1959,
            ("Jazz",),
            ("Chill",),
            (),
            "USSM15900113",
            562,
        )
    )
    ROWS.append(
        (
            "So What (Live at Newport)",
            "Miles Davis",
            "Live at Newport",
            1958,
            ("Jazz",),
            ("Chill",),
            (),
            None,
            700,
        )
    )
    ROWS.append(
        (
            "So What - Remastered 2009",
            "Miles Davis",
            "Kind of Blue (Legacy)",
            1959,
            ("Jazz",),
            ("Chill",),
            (),
            None,
            563,
        )
    )
    ROWS.append(
        (
            "Blue in Green",
            "Miles Davis",
            "Kind of Blue",
            1959,
            ("Modal Jazz", "Jazz"),
            ("Chill",),
            (),
            "USSM15900115",
            337,
        )
    )
    ROWS.append(
        (
            "Blue & Green",
            "Miles Davis",
            "Best Of",
            1999,
            ("Jazz",),
            ("Chill",),
            (),
            "USSM15900115",
            337,
        )
    )
    for n in range(3):
        ROWS.append(
            (
                f"Bossa {n}",
                f"Bossa Artist {n}",
                "Bossa Album",
                1963,
                ("Bossa Nova",),
                ("Chill",),
                (),
                None,
                200,
            )
        )
    for n in range(30):
        ROWS.append(
            (
                f"Latin {n}",
                f"Latin Artist {n % 10}",
                f"Latin Album {n % 10}",
                1990 + n % 20,
                ("Latin",),
                ("Party",),
                (),
                None,
                210,
            )
        )
    for n in range(20):
        genres = ("Punk",) if n % 4 == 0 else ("Rock",)
        ROWS.append(
            (
                f"Rock {n}",
                f"Rock Artist {n % 7}",
                f"Rock Album {n % 7}",
                1970 + n,
                genres,
                ("Party",) if n % 2 else (),
                (),
                None,
                200,
            )
        )


_rows()


def fill(harness: Harness, rows=ROWS, *, decide: bool = True) -> dict[str, int]:
    """The rows as tracks (through the real sync) and, with `decide`, their decisions."""
    records = [
        track(title, source_id=f"t{i}", artist=artist, album=album, album_artist=artist,
              year=year, genres=list(genres), duration_ms=seconds * 1000, isrc=isrc)
        for i, (title, artist, album, year, genres, _m, _l, isrc, seconds) in enumerate(rows)
    ]  # fmt: skip
    ids = harness.add_tracks(records)
    if decide:
        with harness.store.transaction() as conn:
            for track_id, (_t, _a, _al, _y, genres, moods, labels, _i, _s) in zip(
                ids, rows, strict=True
            ):
                conn.execute(
                    "INSERT INTO decisions (track_id, genres, moods, labels, confidence, status, "
                    "decided_at) VALUES (?, ?, ?, ?, 0.9, 'decided', ?)",
                    (track_id, json.dumps(list(genres)), json.dumps(list(moods)),
                     json.dumps(list(labels)), utcnow()),
                )  # fmt: skip
    return {r[0]: i for r, i in zip(rows, ids, strict=True)}


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[tuple[Harness, dict[str, int], PlaylistContext]]:
    with Harness(tmp_path) as harness:
        ids = fill(harness)
        yield (
            harness,
            ids,
            PlaylistContext(harness.store, harness.config, harness.plugins, today=TODAY),
        )


def titles(outcome) -> list[str]:
    return [t.title for t in outcome.preview]


def test_hard_constraints_are_never_relaxed_and_the_shortfall_names_closer_genres(lib) -> None:
    _h, _ids, ctx = lib
    out = create(ctx, "bossa nova, 10 songs")
    assert sorted(titles(out)) == ["Bossa 0", "Bossa 1", "Bossa 2"]
    assert out.report.asked == 10 and out.report.got == 3 and out.report.pool == 3
    assert out.report.shortfall == (
        "asked for 10 tracks, got 3: “Bossa Nova” admits only 3 tracks (one version of each recording)"
    )
    assert out.report.closest == [
        "the library has 3 tracks of Bossa Nova; International has 33; Latin has 30"
    ]
    assert out.report.relaxed == []


def test_every_hard_constraint_alone_is_counted_when_together_they_admit_nothing(lib) -> None:
    _h, _ids, ctx = lib
    out = create(ctx, "bossa nova from the 1990s")
    assert (
        out.preview == []
        and out.report.shortfall == "no track of the library fits “Bossa Nova · 1990s”"
    )
    assert out.report.closest[0] == "alone, Bossa Nova admits 3; 1990s admits 21"


def test_soft_preferences_are_relaxed_in_the_declared_order_and_said(lib) -> None:
    _h, _ids, ctx = lib
    # Party jazz that is upbeat: the library's jazz is calm and none of it is Party.
    out = create(ctx, "upbeat party jazz, 10 songs")
    assert out.intent.energy == "high" and out.intent.moods == ("Party",)
    assert out.report.got == 10
    steps = [line.split(" to reach")[0] for line in out.report.relaxed]
    assert steps[0].startswith("energy ≥ 0.60 widened to ≥ 0.45") or steps[0].startswith(
        "energy ≥ 0.60 dropped"
    )
    assert steps[-1] == "moods Party dropped"
    assert all("Jazz" in t.why or "Modal Jazz" in t.why for t in out.preview)


def test_one_version_of_each_recording_the_studio_original_first(lib) -> None:
    _h, _ids, ctx = lib
    out = create(ctx, "Miles Davis, 10 songs")
    assert out.intent.artists == ("Miles Davis",)
    assert sorted((t.title, t.album) for t in out.preview) == [
        ("Blue in Green", "Kind of Blue"),  # "Blue & Green" shares its ISRC: one of them
        ("So What", "Kind of Blue"),  # the live take and the remaster are the same song
    ]
    assert out.report.got == 2 and out.report.shortfall is not None


def test_caps_per_artist_and_album_and_a_why_for_each_track(lib) -> None:
    _h, _ids, ctx = lib
    out = create(ctx, "calm jazz, 12 songs")
    artists = Counter(t.artist for t in out.preview)
    albums = Counter(t.album for t in out.preview)
    assert max(artists.values()) <= 3 and max(albums.values()) <= 2
    first = out.preview[0]
    assert first.why.split(" · ")[0] in ("Jazz", "Modal Jazz")
    assert str(first.year) in first.why
    assert any(m in first.why for m in ("Chill", "Mellow", "calm"))


def test_words_to_avoid_and_genres_to_exclude(lib) -> None:
    _h, _ids, ctx = lib
    jazz = create(ctx, "jazz, no christmas songs, 30 songs")
    assert "Christmas Swing" not in titles(jazz)
    rock = create(ctx, "rock without punk, 30 songs")
    # Punk is a sub-genre of Rock: asked for Rock, excluded Punk.
    assert rock.report.pool == 15 and all(t.why.startswith("Rock") for t in rock.preview)


def test_a_library_without_decisions_uses_the_tags_and_says_so(tmp_path: Path) -> None:
    with Harness(tmp_path) as harness:
        fill(harness, decide=False)
        ctx = PlaylistContext(harness.store, harness.config, harness.plugins, today=TODAY)
        out = create(ctx, "latin, 5 songs")
        assert out.report.got == 5 and all(t.title.startswith("Latin") for t in out.preview)
        assert any("no track has a decision yet" in n for n in out.notes)


def test_minutes_fill_a_length(lib) -> None:
    _h, _ids, ctx = lib
    out = create(ctx, "latin music", minutes=21)
    total = sum(t.duration_ms or 0 for t in out.preview)
    assert 21 * 60_000 <= total < 21 * 60_000 + 210_000


def test_refine_pins_drops_and_undo(lib) -> None:
    _h, _ids, ctx = lib
    made = create(ctx, "calm jazz, 8 songs", name="Evening")
    assert made.playlist is not None and made.playlist.version == 1
    first = made.preview
    pinned = pin(ctx, "Evening", [1])
    assert pinned.playlist is not None and pinned.playlist.tracks[0].pinned
    dropped_track = first[1]
    after_drop = drop(ctx, "Evening", [2])
    assert dropped_track.track_id not in {t.track_id for t in after_drop.preview}
    assert [t.track_id for t in after_drop.removed] == [dropped_track.track_id]
    assert len(after_drop.added) == 1 and len(after_drop.preview) == 8
    # Refine: only instrumental tracks. The pin stays even though it is not instrumental;
    # the dropped track never comes back; tracks that still fit stay.
    refined = refine(ctx, "Evening", "instrumental only")
    kept = {t.track_id for t in refined.preview}
    assert first[0].track_id in kept
    assert dropped_track.track_id not in kept
    assert refined.intent.labels == ("Instrumental",)
    assert refined.intent_changes[0].startswith("exclude_labels: (any) → Vocals")
    assert all("Vocals" not in (ctx.store.conn.execute(
        "SELECT labels FROM decisions WHERE track_id = ?", (t.track_id,)).fetchone()[0])
        for t in refined.preview if not t.pinned)  # fmt: skip
    view = show(ctx, "Evening")
    assert [v.reason for v in view.versions] == [
        "create", "pin 1", "drop 2", "refine: instrumental only",
    ]  # fmt: skip
    back = undo(ctx, "Evening")
    assert back.playlist is not None and back.playlist.version == 3
    assert {t.track_id for t in back.preview} == {t.track_id for t in after_drop.preview}
    undo(ctx, "Evening")
    undo(ctx, "Evening")
    with pytest.raises(PlaylistError, match="nothing to undo: version 1 of 'Evening' is its first"):
        undo(ctx, "Evening")


def test_a_users_edit_of_the_intent(lib) -> None:
    _h, _ids, ctx = lib
    create(ctx, "jazz, 5 songs", name="J")
    out = edit(ctx, "J", IntentPatch(set={"year_min": 1960}))
    assert out.intent.sources["year_min"] == "user"
    assert all((t.year or 0) >= 1960 for t in out.preview)
    assert out.intent_changes == ["year_min: (any) → 1960"]


def test_refresh_keeps_a_share_is_reproducible_and_draws_anew_each_day(tmp_path: Path) -> None:
    with Harness(tmp_path) as harness:
        fill(harness)
        day = PlaylistContext(harness.store, harness.config, harness.plugins, today=TODAY)
        create(day, "latin and rock, 10 songs", name="Mix")
        before = [t.track_id for t in show(day, "Mix").tracks]
        again = refresh(day, "Mix", keep=0.5)
        first = [t.track_id for t in again.preview]
        assert len(set(first) & set(before)) >= 5  # at least half is kept
        undo(day, "Mix")
        assert [t.track_id for t in refresh(day, "Mix", keep=0.5).preview] == first  # same day
        undo(day, "Mix")
        later = PlaylistContext(
            harness.store, harness.config, harness.plugins, today=date(2026, 6, 2)
        )
        other = [t.track_id for t in refresh(later, "Mix", keep=0.5).preview]
        assert other != first


def test_refresh_prefers_recently_added_tracks(tmp_path: Path) -> None:
    with Harness(tmp_path) as harness:
        fill(harness)
        ctx = PlaylistContext(harness.store, harness.config, harness.plugins, today=TODAY)
        create(ctx, "latin, 10 songs", name="L")
        harness.store.conn.execute("UPDATE tracks SET first_seen_at = '2020-01-01T00:00:00+00:00'")
        new = harness.add_tracks(
            [track(f"New Latin {n}", source_id=f"new{n}", artist=f"New Artist {n}", album=f"New {n}",
                   genres=["Latin"]) for n in range(6)]
        )  # fmt: skip
        harness.run("classify")
        harness.run("decide")
        out = refresh(ctx, "L", keep=0.4)
        fresh = {t.track_id for t in out.preview} & set(new)
        assert len(fresh) >= 4
        assert all("recently added" in t.why for t in out.preview if t.track_id in fresh)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "the prompt is empty"),
        ("   ", "the prompt is empty"),
        ("x" * 5000, "the prompt is 5,000 characters long; at most 1,000 are read"),
        ("something nice for the weekend", "the prompt names nothing genred can select by"),
    ],
)
def test_prompts_that_cannot_make_a_playlist(lib, prompt: str, message: str) -> None:
    _h, _ids, ctx = lib
    with pytest.raises(PlaylistError, match=message):
        create(ctx, prompt)
    assert ctx.store.conn.execute("SELECT COUNT(*) FROM playlists").fetchone()[0] == 0


def test_a_name_that_exists_and_an_empty_library(lib, tmp_path: Path) -> None:
    _h, _ids, ctx = lib
    create(ctx, "jazz", name="Mine")
    with pytest.raises(PlaylistError, match="a playlist named 'Mine' exists: refine it"):
        create(ctx, "rock", name="mine")
    assert create(ctx, "jazz").playlist.name == "Jazz"
    assert create(ctx, "jazz").playlist.name == "Jazz (2)"
    with Harness(tmp_path / "empty") as empty:
        none = PlaylistContext(empty.store, empty.config, empty.plugins)
        with pytest.raises(PlaylistError, match="the library is empty: run `genred sync` first"):
            create(none, "jazz")


def test_a_prompt_the_rules_parser_cannot_read_says_so(lib) -> None:
    _h, _ids, ctx = lib
    with pytest.raises(PlaylistError) as info:
        create(ctx, "musique douce pour lire le soir")
    message = str(info.value)
    assert "no LLM is configured (plugins.llm): the rules parser read the prompt" in message
    assert (
        "words the rules parser did not understand: musique, douce, pour, lire, le, soir" in message
    )
    assert "configure an LLM for other languages" in message


def test_config_check_warns_of_playlist_targets_and_llms_not_enabled(tmp_path: Path) -> None:
    from genred.checks import playlist_warnings
    from genred.config import parse_config

    config = parse_config(
        f"data_dir: {tmp_path}\nplaylists: {{llm: groq, targets: [spotify], "
        "saved: {F: {prompt: jazz, targets: [plex]}}}",
        env={},
    )
    assert playlist_warnings(config) == [
        "playlists.targets: the playlist target 'spotify' is not enabled (plugins.playlists: none)",
        "playlists.saved.F.targets: the playlist target 'plex' is not enabled (plugins.playlists: none)",
        "playlists.llm: the llm plugin 'groq' is not enabled (plugins.llm: none); the rules parser reads prompts",
    ]
