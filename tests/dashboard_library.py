"""A small library for the dashboard's tests, filled through the real sync, classify
(`taxonomy`) and decide stages: three albums, a track with no usable genre (under
review), a compilation, and a title that is HTML."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from genred.config import Config
from genred.store import Store
from genred.testing import Harness, track
from genred.web import create_app
from genred.web.context import WebContext
from genred.worker import Runtime, Worker

SCRIPT_TITLE = "<script>alert(1)</script>"

TRACKS = [
    # Miles Davis – Kind of Blue: jazz, spelled three ways
    track("So What", source_id="101", artist="Miles Davis", album="Kind of Blue",
          album_artist="Miles Davis", album_source_id="1", track_no=1, year=1959,
          genres=["jazz"]),
    track("Freddie Freeloader", source_id="102", artist="Miles Davis", album="Kind of Blue",
          album_artist="Miles Davis", album_source_id="1", track_no=2, year=1959,
          genres=["Jazz"]),
    track("Blue in Green", source_id="103", artist="Miles Davis", album="Kind of Blue",
          album_artist="Miles Davis", album_source_id="1", track_no=3, year=1959,
          genres=["cool jazz"]),
    # Goldie – Timeless: drum and bass, one track with nothing usable
    track("Inner City Life", source_id="201", artist="Goldie", album="Timeless",
          album_artist="Goldie", album_source_id="2", track_no=1, year=1995,
          genres=["d&b"]),
    track("Timeless", source_id="202", artist="Goldie", album="Timeless",
          album_artist="Goldie", album_source_id="2", track_no=2, year=1995,
          genres=["Drum & Bass"]),
    track("Saint Angel", source_id="203", artist="Goldie", album="Timeless",
          album_artist="Goldie", album_source_id="2", track_no=3, year=1995,
          genres=["favourite songs"]),
    # Motörhead, with a title that is markup
    track(SCRIPT_TITLE, source_id="301", artist="Motörhead", album="Ace of Spades",
          album_artist="Motörhead", album_source_id="3", track_no=1, year=1980,
          genres=["mystery tag"]),
    track("Ace of Spades", source_id="302", artist="Motörhead", album="Ace of Spades",
          album_artist="Motörhead", album_source_id="3", track_no=2, year=1980,
          genres=["heavy metal"]),
]  # fmt: skip


def build(root: Path, config: str = "") -> Harness:
    """The library decided: Harness over root, source `plex`, the `taxonomy` classifier."""
    harness = Harness(root, "plugins: {classifiers: [taxonomy]}\n" + config)
    harness.add_tracks(TRACKS, source="plex")
    harness.run("classify")
    harness.run("decide")
    return harness


def ids(harness: Harness) -> dict[str, int]:
    """Track id by title."""
    return dict(harness.store.conn.execute("SELECT title, id FROM tracks"))


TOKEN = "test-token-0123456789abcdef"


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


class Dashboard:
    """A decided library, its config, the app, and what the app asked of the daemon."""

    def __init__(self, root: Path, web: str = f"{{api_token: {TOKEN}}}") -> None:
        self.harness = build(root, f"web: {web}\n")
        self.config: Config = self.harness.config
        self.track = ids(self.harness)
        self.corrections = Calls()
        self.worker = Worker(lambda: Runtime(self.config, self.harness.plugins), threading.Event())
        self.context = WebContext(
            config=lambda: self.config,
            jobs=self.worker,
            corrections=self.corrections,
            status=lambda: {"next_runs": {"sync": "2030-01-01T00:00:00+00:00"}},
            plugins=lambda: self.harness.plugins,
        )
        self.app = create_app([], None, web=self.context)
        self.client = TestClient(self.app, base_url="http://genred.test")

    def store(self) -> Store:
        return Store.open(self.config.db_path)

    def login(self, client: TestClient | None = None, name: str = "ada") -> TestClient:
        client = client or self.client
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf": token, "token": TOKEN, "name": name, "next": "/library"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)
