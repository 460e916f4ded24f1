"""Playlist benchmarks, each against the naive way in the same run:

1. Selection time for prompts over a 100k library (everything but the LLM: the intent is
   read by the rules parser), SQL-first (genred) against loading every track and deciding
   in Python (naive).
2. LLM requests per playlist: create, refine, refresh; `rank: score` and `rank: llm`.
3. Spotify requests for a 50-track playlist: first push, second push, and a refresh after
   500 tracks joined the library; against a naive pusher (no match cache, the playlist
   replaced whole each time).
4. Filter-first against filter-last on freemusi.cc: the emulated LLM knows the whole
   freemusi.cc catalogue (21,502 tracks, its "world"); the library holds a third of it.
   Filter-last asks the LLM to name 25 songs and searches the library for them (what
   plexsonic and Sonic Sage do); filter-first is genred. How many of the 25 asked end up
   in the playlist.

Run with `make bench`, or `pytest -m bench bench -k playlists -s -p no:cacheprovider`.
GENRED_BENCH_TRACKS sets the library size of (1) (default 100,000).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from genred.playlists import PlaylistContext, create, push_playlist, refine, refresh
from genred.playlists.library import fold
from genred.store import utcnow
from genred.taxonomy import default_taxonomy
from genred.testing import Harness

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

N_TRACKS = int(os.environ.get("GENRED_BENCH_TRACKS", "100000"))
DAY = date(2026, 6, 1)
PROMPTS = (
    "relaxing jazz for reading",
    "upbeat electronic from the 2000s, 50 songs",
    "rock without punk from the 1990s",
    "calm music, no vocals, 40 songs",  # no genre: every track is a candidate
    "hip hop like Kanye, 30 songs",
)
MOODS = ("Chill", "Mellow", "Party", "Happy", "Sad", "Beautiful", "Sexy")
LABELS = ("Instrumental", "Vocals", "Female Vocals", "Male Vocals")


# --------------------------------------------------------------------------- 1. selection


def fill_100k(harness: Harness, n: int) -> int:
    """A generated library of `n` tracks through the real sync, and decisions for each
    (the tags canonicalized; moods and labels drawn, seeded): what classify and decide
    would leave, without running them over 100k tracks here."""
    from tests.emulators.plex import PlexLibrary

    records = PlexLibrary.generate(n, seed=3).track_records()
    harness.add_tracks(records, source="plex")
    taxonomy = default_taxonomy()
    rng = random.Random(5)
    rows = []
    now = utcnow()
    for track_id, genres, album_genres in harness.store.conn.execute(
        "SELECT id, genres, album_genres FROM tracks"
    ):
        decided = taxonomy.canonicalize(json.loads(genres)) or taxonomy.canonicalize(
            json.loads(album_genres)
        )
        moods = rng.sample(MOODS, rng.randint(0, 2))
        labels = rng.sample(LABELS, rng.randint(0, 1))
        rows.append((track_id, json.dumps(decided[:3]), json.dumps(moods), json.dumps(labels), now))
    with harness.store.transaction() as conn:
        conn.executemany(
            "INSERT INTO decisions (track_id, genres, moods, labels, confidence, status, "
            "decided_at) VALUES (?, ?, ?, ?, 0.8, 'decided', ?)",
            rows,
        )
    harness.store.conn.execute("ANALYZE")
    return len(rows)


def naive_select(
    store: Any, wanted: set[str], year: tuple[int | None, int | None], size: int
) -> list[int]:
    """Every track loaded and decoded in Python, filtered, scored by genre position."""
    rows = store.conn.execute(
        "SELECT t.id, t.artist, t.title, t.year, d.genres, d.moods, d.labels FROM tracks t "
        "JOIN decisions d ON d.track_id = t.id WHERE t.removed = 0"
    ).fetchall()
    scored = []
    taxonomy = default_taxonomy()
    expanded: set[str] = set()
    for genre in wanted:
        expanded |= {genre, *[g for g in taxonomy.names if genre in taxonomy.ancestors(g)]}
    for track_id, _artist, _title, track_year, genres, moods, labels in rows:
        g = json.loads(genres)
        json.loads(moods), json.loads(labels)
        if expanded and not expanded & set(g):
            continue
        if year[0] is not None and (track_year or 0) < year[0]:
            continue
        if year[1] is not None and (track_year or 9999) > year[1]:
            continue
        scored.append((2.0 if g and g[0] in expanded else 1.0, track_id))
    scored.sort(reverse=True)
    return [i for _, i in scored[:size]]


def test_selection_time_over_a_large_library(tmp_path: Path) -> None:
    with Harness(tmp_path) as h:
        started = time.perf_counter()
        n = fill_100k(h, N_TRACKS)
        print(
            f"\n[playlists] library: {n:,} tracks with decisions, built in {time.perf_counter() - started:.1f} s"
        )
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=DAY)
        print(f"[playlists] selection over {n:,} tracks (rules parser, no LLM), best of 3:")
        for prompt in PROMPTS:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                out = create(ctx, prompt, dry_run=True)
                times.append(time.perf_counter() - t0)
            intent = out.intent
            t0 = time.perf_counter()
            naive = naive_select(
                h.store,
                set(intent.genres),
                (intent.year_min, intent.year_max),
                out.report.asked or 25,
            )
            naive_s = time.perf_counter() - t0
            verdict = "within" if min(times) <= 2.0 else "OVER"
            print(
                f"  {prompt!r}: {min(times):.2f} s (median {statistics.median(times):.2f} s; "
                f"{verdict} the 2 s goal), pool {out.report.pool:,}, got {out.report.got}; "
                f"naive load-everything: {naive_s:.2f} s for {len(naive)} tracks (no soft "
                "preferences, no variety, no why)"
            )


# --------------------------------------------------------------------------- 2. LLM requests


def test_llm_requests_per_playlist(tmp_path: Path) -> None:
    from tests.emulators.llm import UNLIMITED, FakeClock, LLMEmulator
    from tests.emulators.plex import PlexLibrary
    from tests.llm_setup import groq

    records = PlexLibrary.from_freemusicc(limit=5000, audio_map=False).track_records()
    print("\n[playlists] LLM requests per playlist (LLM emulator, groq plugin, 5,000 tracks):")
    for rank in ("score", "llm"):
        clock = FakeClock()
        with (
            LLMEmulator(None, key="test-groq-key", clock=clock, limits=UNLIMITED) as emu,
            Harness(tmp_path / rank, f"playlists: {{rank: {rank}}}") as h,
        ):
            h.add_tracks(records, source="plex")
            h.run("classify")
            h.run("decide")
            h.add_plugin("llm", "groq", groq(emu, clock))
            ctx = PlaylistContext(h.store, h.config, h.plugins, today=DAY)
            counts = {}
            emu.clear_requests()
            create(ctx, "calm electronic for reading, 25 songs", name="P")
            counts["create"] = len(emu.completions())
            emu.clear_requests()
            refine(ctx, "P", "more upbeat, no vocals")
            counts["refine"] = len(emu.completions())
            emu.clear_requests()
            refresh(ctx, "P")
            counts["refresh"] = len(emu.completions())
            print(
                f"  rank: {rank}: create {counts['create']}, refine {counts['refine']}, "
                f"refresh {counts['refresh']} (goal 1, 1, 0)"
            )


# --------------------------------------------------------------------------- 3. Spotify requests


def test_spotify_requests_for_a_50_track_playlist(tmp_path: Path) -> None:
    from tests.emulators.spotify import Catalogue, SpotifyEmulator
    from tests.playlist_setup import catalogue_records, decided, spotify_target

    catalogue = Catalogue.from_freemusicc()
    with SpotifyEmulator(catalogue.copy()) as emu, Harness(tmp_path) as h:
        h.add_tracks(catalogue_records(catalogue, 5000), source="folder")
        decided(h)
        spotify_target(h, emu)
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=DAY)

        def tally() -> str:
            api = emu.api_requests()
            searches = sum(1 for r in api if r.path == "/v1/search")
            writes = len(emu.writes())
            reads = len(api) - searches - writes
            emu.clear_requests()
            return f"{len(api)} ({searches} searches, {reads} reads, {writes} writes)"

        emu.clear_requests()
        create(ctx, "electronic, 50 songs", name="Fifty", targets=["spotify"])
        first = tally()
        push_playlist(ctx, "Fifty")
        second = tally()
        h.add_tracks(catalogue_records(catalogue, 500, start=5000), source="folder")
        decided(h)
        out = refresh(ctx, "Fifty")
        third = tally()
        new = len(out.added)
        print("\n[playlists] Spotify requests for a 50-track playlist (spotipy, Spotify emulator):")
        print(f"  genred: first push {first}; second push {second}; refresh after 500 new tracks "
              f"{third} ({new} tracks of the refresh were new to the playlist)")  # fmt: skip
        print(f"  naive (no match cache; the playlist replaced whole): {naive_pushes(h, emu, out)}")
        assert emu.violations() == []


def naive_pushes(h: Harness, emu: Any, out: Any) -> str:
    """The same playlist pushed as a script would: every track searched on every push
    (no cache), the remote playlist replaced whole; three pushes (first, again, refreshed)."""
    from genred.records import PlaylistEdit, TrackRecord

    target = h.plugins.get("playlists", "spotify")
    ids = [t.track_id for t in out.preview]
    rows = {
        r[0]: r
        for r in h.store.conn.execute(
            "SELECT * FROM tracks WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        )
    }
    names = [d[0] for d in h.store.conn.execute("SELECT * FROM tracks LIMIT 1").description]
    records = [TrackRecord.from_row(dict(zip(names, rows[i], strict=True))) for i in ids]
    counts = []
    remote = None
    for _ in range(3):
        emu.clear_requests()
        uris = [m.item for m in target.match(records) if m.item]
        if remote is None:
            remote = target.create("naive", "", uris[:100])
        else:
            target.apply(remote, PlaylistEdit("replace", items=tuple(uris[:100])))
        counts.append(len(emu.api_requests()))
    return f"first push {counts[0]}, second push {counts[1]}, refresh {counts[2]} requests"


# --------------------------------------------------------------------------- 4. filter-first/last


def test_filter_first_against_filter_last_on_freemusicc(tmp_path: Path) -> None:
    from genred_plugins.llm.groq_llm import GroqLLM  # noqa: F401 (the llm extra is there)
    from tests.emulators.llm import UNLIMITED, FakeClock, LLMEmulator
    from tests.emulators.llm.playlists import Song
    from tests.emulators.plex import PlexLibrary
    from tests.llm_setup import groq

    world = PlexLibrary.from_freemusicc(audio_map=False).track_records()
    rng = random.Random(11)
    library = [r for r in world if rng.random() < 1 / 3]
    in_library = {(fold(r.artist), fold(r.title)) for r in library}
    knowledge = [
        Song(
            r.artist or "",
            r.title or "",
            tuple(default_taxonomy().canonicalize(list(r.genres))),
            r.year,
        )
        for r in world
    ]
    clock = FakeClock()
    prompts = (
        "electronic, 25 songs",
        "ambient from the 2000s, 25 songs",
        "hip hop, 25 songs",
        "rock, 25 songs",
        "jazz, 25 songs",
        "folk from the 2010s, 25 songs",
    )
    with (
        LLMEmulator(None, key="test-groq-key", clock=clock, limits=UNLIMITED) as emu,
        Harness(tmp_path) as h,
    ):
        emu.playlists.knowledge = knowledge
        h.add_tracks(library, source="plex")
        h.run("classify")
        h.run("decide")
        llm = h.add_plugin("llm", "groq", groq(emu, clock))
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=DAY)
        print(
            f"\n[playlists] filter-first (genred) against filter-last (the LLM names songs, then "
            f"they are searched): world {len(world):,} tracks the LLM knows, library {len(library):,}"
        )
        total_last = total_first = 0
        for prompt in prompts:
            answer = llm.chat(
                [
                    {
                        "role": "user",
                        "content": json.dumps(
                            {"task": "playlist-songs", "prompt": prompt, "count": 25}
                        ),
                    }
                ],
                None,
                validate=lambda d: d,
            )
            named = answer.data.get("songs", [])
            found = sum(1 for s in named if (fold(s["artist"]), fold(s["title"])) in in_library)
            out = create(ctx, prompt, name=prompt)
            total_last += found
            total_first += out.report.got
            print(
                f"  {prompt!r}: filter-last {found} of 25 ({len(named)} named); filter-first {out.report.got} of 25"
            )
        print(
            f"  in all: filter-last {total_last} of {25 * len(prompts)}, filter-first {total_first} of {25 * len(prompts)}"
        )
