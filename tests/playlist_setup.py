"""Shared set-up of the playlist tests: a library in a Harness, the real targets on the
emulators (spotipy on the Spotify emulator, plexapi on the Plex emulator), the real groq
plugin on the LLM emulator, and a PlaylistContext over all of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from genred.playlists import PlaylistContext
from genred.records import TrackRecord
from genred.testing import Harness
from genred_plugins.spotify.target import SpotifyPlaylists
from tests.emulators.spotify import Catalogue, SpotifyEmulator
from tests.emulators.spotify.clients import authorization_code

FAST = {"attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.02}
TODAY = date(2026, 6, 1)


def catalogue_records(
    catalogue: Catalogue,
    count: int,
    *,
    start: int = 0,
    source: str = "folder",
    with_isrc: bool = True,
) -> list[TrackRecord]:
    """Library tracks that are (the same recordings as) catalogue tracks: what a music
    folder tagged from the same releases holds (ISRCs where the catalogue has one)."""
    out = []
    tracks = list(catalogue.tracks.values())[start : start + count]
    for track in tracks:
        album = catalogue.albums[track.album_id]
        artists = catalogue.artist_names(track)
        out.append(
            TrackRecord(
                source=source,
                source_id=f"/music/{track.id}.flac",
                path=f"/music/{track.id}.flac",
                title=track.name,
                artist=", ".join(artists),
                album=album.name,
                album_artist=catalogue.artists[album.artist_ids[0]].name,
                album_source_id=album.id,
                year=album.year,
                duration_ms=track.duration_ms,
                genres=track.genres,
                isrc=track.isrc if with_isrc else None,
            )
        )
    return out


def decided(harness: Harness) -> None:
    """Classify (the taxonomy classifier) and decide, as the daemon's chain does."""
    harness.run("classify")
    harness.run("decide")


def spotify_settings(emu: SpotifyEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "redirect_uri": emu.auth.clients[emu.client_id].redirect_uris[0],
        "api_url": emu.api_url + "/",
        "accounts_url": emu.url,
        "retries": FAST,
        "timeout": 5,
        **extra,
    }


def spotify_target(
    harness: Harness, emu: SpotifyEmulator, *, log_in: bool = True, **extra: Any
) -> SpotifyPlaylists:
    """The real target on the emulator, logged in through the real OAuth flow (the
    emulator approves at once), in place of the configured one."""
    target: SpotifyPlaylists = harness.build(SpotifyPlaylists, spotify_settings(emu, **extra))
    if log_in:
        target.tokens.log_in(authorization_code(target.tokens.manager))
    harness.add_plugin("playlists", "spotify", target)
    return target


def context(harness: Harness, **extra: Any) -> PlaylistContext:
    extra.setdefault("today", TODAY)
    return PlaylistContext(harness.store, harness.config, harness.plugins, **extra)


def library(tmp: Path, records: Sequence[TrackRecord], config: str = "") -> Harness:
    harness = Harness(tmp, config)
    harness.add_tracks(records, source=records[0].source if records else "test")
    decided(harness)
    return harness
