"""pytest fixtures: the freemusi.cc catalogue (built once), a running emulator per test, and
the real spotipy logged in to it.

Import them by name in a test module (`from tests.emulators.spotify.fixtures import
spotify_emulator, spotify_client  # noqa: F401`) or add "tests.emulators.spotify.fixtures"
to `pytest_plugins` in the root conftest.py. spotipy (the `spotify` extra) is imported only
by the fixtures that need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .catalogue import Catalogue
from .server import SpotifyEmulator


@pytest.fixture(scope="session")
def spotify_catalogue() -> Catalogue:
    """All 21,502 freemusi.cc tracks, 70 % with an ISRC, none absent (treat as read-only)."""
    return Catalogue.from_freemusicc()


@pytest.fixture
def spotify_emulator(spotify_catalogue: Catalogue) -> Iterator[SpotifyEmulator]:
    """A running emulator over a private copy of the catalogue: client `genred-test-client`
    / `genred-test-secret`, redirect URI http://127.0.0.1:8888/callback, the recorded user
    1112264649, Development-Mode limits, spec validation on. `emu.catalogue`, `emu.auth`,
    `emu.faults`, `emu.requests`, `emu.violations()`."""
    with SpotifyEmulator(spotify_catalogue.copy()) as emulator:
        yield emulator
    assert emulator.errors == [], "the emulator crashed while answering:\n" + "\n".join(
        emulator.errors
    )


@pytest.fixture
def spotify_oauth(spotify_emulator: SpotifyEmulator) -> Any:
    """A spotipy SpotifyOAuth (client secret, in-memory cache) that has logged in."""
    from .clients import log_in, oauth

    manager = oauth(spotify_emulator)
    log_in(manager)
    return manager


@pytest.fixture
def spotify_client(spotify_emulator: SpotifyEmulator, spotify_oauth: Any) -> Any:
    """spotipy.Spotify(auth_manager=spotify_oauth, retries=0, status_retries=0,
    requests_timeout=5) on the emulator. Note: with spotipy's own session a 429 or 5xx still
    comes back as SpotifyException(429, "Max Retries") without headers (README, traps); pass
    `requests_session=requests.Session()` to `clients.spotify` to see the real answer."""
    from .clients import spotify

    return spotify(spotify_emulator, spotify_oauth)
