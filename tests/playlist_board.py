"""The dashboard over a playlist library: catalogue tracks Spotify has, decided, the real
groq plugin on the LLM emulator and the real Spotify target on the Spotify emulator, and
the app (TestClient) over them; the Playlists section's tests and its browser test use it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from genred.testing import Harness
from genred.web import create_app
from genred.web.context import WebContext
from tests.dashboard_library import csrf_of
from tests.emulators.llm import FakeClock, LLMEmulator
from tests.emulators.spotify import Catalogue, SpotifyEmulator
from tests.llm_setup import groq
from tests.playlist_setup import catalogue_records, decided, spotify_target

TOKEN = "playlist-test-token-0123456789"
SPOTIFY_ONLY_MISSING = 3  # library tracks the Spotify catalogue does not have


class PlaylistBoard:
    def __init__(
        self,
        root: Path,
        catalogue: Catalogue,
        spotify: SpotifyEmulator,
        llm: LLMEmulator | None,
        clock: FakeClock | None,
        *,
        tracks: int = 400,
    ) -> None:
        config = f"web: {{api_token: {TOKEN}}}\nplaylists: {{targets: [spotify]}}\n"
        self.harness = Harness(root, config)
        records = catalogue_records(catalogue, tracks)
        self.harness.add_tracks(records, source="folder")
        decided(self.harness)
        if llm is not None and clock is not None:
            self.harness.add_plugin("llm", "groq", groq(llm, clock))
        self.spotify = spotify_target(self.harness, spotify)
        self.context = WebContext(
            config=lambda: self.harness.config, plugins=lambda: self.harness.plugins
        )
        self.app: FastAPI = create_app([], None, web=self.context)
        self.client = TestClient(self.app, base_url="http://genred.test")

    def login(self) -> str:
        """Log the client in; the CSRF token of its forms."""
        token = csrf_of(self.client.get("/login").text)
        answer = self.client.post(
            "/login", data={"csrf": token, "token": TOKEN, "next": "/playlists"},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        return csrf_of(self.client.get("/playlists").text)

    def close(self) -> None:
        self.context.close()
        self.harness.close()
