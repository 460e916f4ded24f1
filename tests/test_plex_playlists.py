"""The `plex` playlist target end to end: plexapi's requests on the Plex emulator, the
library synced from it, through genred's playlist operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plexapi.server import PlexServer

from genred.playlists import PlaylistContext, create, push_playlist, refine, show
from genred.testing import Harness, check_plugin, track
from genred_plugins.plex.playlists import PlexPlaylists
from tests.emulators.plex import PlexEmulator
from tests.playlist_setup import context, decided


@pytest.fixture
def lib(plex_emulator: PlexEmulator, tmp_path: Path) -> Iterator[tuple[Harness, PlaylistContext]]:
    config = f"plex: {{url: '{plex_emulator.url}', token: '{plex_emulator.token}'}}"
    with Harness(tmp_path, config) as harness:
        harness.run("sync")
        decided(harness)
        plex_emulator.clear_requests()
        yield harness, context(harness)


def items_of(emu: PlexEmulator, remote_id: str) -> list[str]:
    playlist = emu.library.playlists[int(remote_id)]
    return [str(key) for _item_id, key in playlist.items]


def test_the_plex_target_keeps_the_contract() -> None:
    assert check_plugin(PlexPlaylists, "playlists") == []


def test_a_playlist_in_plex_created_once_then_edited_in_place(
    lib: Any, plex_emulator: PlexEmulator
) -> None:
    harness, ctx = lib
    emu = plex_emulator
    out = create(ctx, "electronic, 30 songs", name="Volts", targets=["plex"])
    (push,) = out.pushes
    assert push.status == "created" and push.unmatched == []
    wanted = [
        harness.store.conn.execute(
            "SELECT source_id FROM tracks WHERE id = ?", (t.track_id,)
        ).fetchone()[0]
        for t in out.preview
    ]
    assert items_of(emu, push.remote_id) == wanted
    through_plexapi = PlexServer(emu.url, emu.token).fetchItem(f"/playlists/{push.remote_id}")
    assert through_plexapi.title == "Volts"
    assert through_plexapi.summary.startswith("Made by genred from “electronic, 30 songs”")
    assert [int(i.ratingKey) for i in through_plexapi.items()] == [int(k) for k in wanted]
    emu.clear_requests()
    (again,) = push_playlist(ctx, "Volts")
    assert again.status == "unchanged" and emu.requests == []
    refined = refine(ctx, "Volts", "no techno, no house")
    (edited,) = refined.pushes
    assert edited.status == "updated" and edited.remote_id == push.remote_id
    now = [
        harness.store.conn.execute(
            "SELECT source_id FROM tracks WHERE id = ?", (t.track_id,)
        ).fetchone()[0]
        for t in refined.preview
    ]
    assert items_of(emu, push.remote_id) == now
    assert len(emu.library.playlists) == 1
    assert not any(r.method == "POST" for r in emu.requests if r.path == "/playlists")


def test_a_playlist_deleted_in_plex_is_made_again(lib: Any, plex_emulator: PlexEmulator) -> None:
    _harness, ctx = lib
    out = create(ctx, "rock, 10 songs", name="Gone", targets=["plex"])
    old = out.pushes[0].remote_id
    PlexServer(plex_emulator.url, plex_emulator.token).fetchItem(f"/playlists/{old}").delete()
    (push,) = push_playlist(ctx, "Gone", verify=True)
    assert push.status == "recreated" and push.remote_id != old
    assert any("was deleted by hand" in note for note in push.notes)
    assert show(ctx, "Gone").remotes[0].remote_id == push.remote_id


def test_tracks_from_another_source_are_reported_not_pushed(
    lib: Any, plex_emulator: PlexEmulator
) -> None:
    harness, ctx = lib
    (folder_id,) = harness.add_tracks(
        [track("Local Only", artist="Nobody", album="Demos", genres=["Dubstep"], year=2001)],
        source="folder",
    )
    decided(harness)
    out = create(ctx, "dubstep, 40 songs", name="Mixed", targets=["plex"])
    assert folder_id in {t.track_id for t in out.preview}
    (push,) = out.pushes
    assert push.unmatched == [(folder_id, "not in Plex (a track of the folder source)")]
    assert push.remote_id is not None  # the library's 21 Dubstep tracks are in Plex
    assert len(items_of(plex_emulator, push.remote_id)) == len(out.preview) - 1


def test_a_playlist_with_no_track_in_plex_is_not_pushed(
    lib: Any, plex_emulator: PlexEmulator
) -> None:
    harness, ctx = lib
    harness.add_tracks(
        [
            track(f"Song {n}", artist="Nobody", album="Demos", genres=["Bossa Nova"])
            for n in range(3)
        ],
        source="folder",
    )
    decided(harness)
    out = create(ctx, "bossa nova", name="Local", targets=["plex"])
    (push,) = out.pushes
    assert push.status == "skipped" and len(push.unmatched) == 3
    assert push.message == "none of the playlist's tracks is at plex: nothing pushed"
    assert plex_emulator.library.playlists == {}
