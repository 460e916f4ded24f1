"""Two gaps of the Plex sync, closed: a section left out of `plex.sections` has its tracks
marked removed (the next sync is a full one), and an album's or artist's genres edited in
Plex reach the store although none of its tracks changed. Real plexapi, the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plexapi.server import PlexServer

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.pipeline.sync import sync
from genred.store import Store
from genred_plugins.plex.connection import RetrySettings
from genred_plugins.plex.source import PlexSource, PlexSourceConfig
from tests.emulators.plex import PlexEmulator
from tests.emulators.plex.model import ARTIST, TRACK

FAST = RetrySettings(attempts=4, backoff_initial=0.001, backoff_max=0.01)


def source(emu: PlexEmulator, store: Store, sections: list[Any]) -> PlexSource:
    plex = {"url": emu.url, "token": emu.token, "sections": sections}
    config = parse_config(json.dumps({"plex": plex}), env={})
    settings = PlexSourceConfig(page_size=500, detail_batch=100, retries=FAST)
    return PlexSource(settings, PluginContext(config, store))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "genred.db") as opened:
        yield opened


def stored(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT source_id, removed, album_genres, artist_genres, changed_at FROM tracks"
    )
    return {
        sid: {
            "removed": bool(removed),
            "album_genres": json.loads(album),
            "artist_genres": json.loads(artist),
            "changed_at": changed,
        }
        for sid, removed, album, artist, changed in rows
    }


def test_a_section_left_out_of_plex_sections_has_its_tracks_removed(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    moved_artists = lib.ordered(ARTIST)[:6]
    lib.add_section(4, "Audiobooks", moved_artists)
    second = {str(t.rating_key) for a in moved_artists for t in lib.tracks_of_artist(a)}
    assert second and len(second) < len(lib)

    both = sync(store, "plex", source(emu, store, ["Music", "Audiobooks"]), full=True)
    assert both.added == len(lib) and both.removed == 0

    # the user drops "Audiobooks" from plex.sections; the daemon's next sync (full=None)
    result = sync(store, "plex", source(emu, store, ["Music"]))
    assert result.full  # what is listed changed: a full scan, which marks removals
    assert result.removed == len(second)
    now = stored(store)
    assert {sid for sid, row in now.items() if row["removed"]} == second
    assert sum(not row["removed"] for row in now.values()) == len(lib) - len(second)

    # and back: the tracks are restored (same ids), nothing else moves
    back = sync(store, "plex", source(emu, store, ["Music", "Audiobooks"]))
    assert back.full and back.restored == len(second) and back.removed == 0
    assert not any(row["removed"] for row in stored(store).values())


def test_album_and_artist_genre_edits_reach_the_store_without_a_track_change(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    plex_source = source(emu, store, ["Music"])
    sync(store, "plex", plex_source, full=True)
    track = lib.tracks[lib.ordered(TRACK)[40]]
    album, artist = lib.albums[track.album_key], lib.artists[track.artist_key]
    of_album = {str(t.rating_key) for t in lib.tracks_of_album(album.rating_key)}
    of_artist = {str(t.rating_key) for t in lib.tracks_of_artist(artist.rating_key)}
    before = stored(store)

    server = PlexServer(emu.url, emu.token)
    server.fetchItem(album.rating_key).addGenre("Dub")  # the album itself, in Plex Web
    assert all(lib.tracks[int(k)].updated_at < album.updated_at for k in of_album)
    emu.clear_requests()
    result = sync(store, "plex", plex_source)
    assert not result.full and result.changed == len(of_album)
    now = stored(store)
    for sid in of_album:
        assert "Dub" in now[sid]["album_genres"]
        assert now[sid]["changed_at"] > before[sid]["changed_at"]  # classify sees it again
    assert {sid for sid in now if now[sid]["changed_at"] != before[sid]["changed_at"]} == of_album
    track_details = [
        r
        for r in emu.requests
        if r.path.startswith("/library/metadata/") and str(track.rating_key) in r.path
    ]
    assert track_details == []  # no track was read again: only the album

    server.fetchItem(artist.rating_key).addGenre("Krautrock")
    result = sync(store, "plex", plex_source)
    assert result.changed == len(of_artist)
    assert all("Krautrock" in stored(store)[sid]["artist_genres"] for sid in of_artist)

    assert sync(store, "plex", plex_source).changed == 0  # read once, then nothing to do
