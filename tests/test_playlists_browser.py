"""The Playlists section in a real browser (Debian's chromium driven by Playwright), the app
served by uvicorn over the playlist board (the real groq plugin on the LLM emulator, the
real Spotify target on its emulator): a prompt previewed with each track's why, its intent
edited as fields and saved, refined in words, a track removed, pushed to Spotify.
Screenshots at 1280 px and 390 px land in test-artifacts/screenshots/ (look at them)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.emulators.llm import FakeClock, LLMEmulator
from tests.emulators.spotify import Catalogue, SpotifyEmulator
from tests.playlist_board import TOKEN, PlaylistBoard
from tests.test_dashboard_browser import CHROMIUM, VIEWPORTS, free_port, shoot

from playwright.sync_api import Page, expect, sync_playwright  # isort: skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROMPT = "calm ambient from the 2000s, 12 songs"


@pytest.fixture
def served(
    tmp_path: Path, llm_emulator: LLMEmulator, llm_clock: FakeClock
) -> Iterator[tuple[str, PlaylistBoard, SpotifyEmulator]]:
    catalogue = Catalogue.from_freemusicc(limit=3000)
    with SpotifyEmulator(catalogue.copy()) as spotify:
        board = PlaylistBoard(tmp_path, catalogue, spotify, llm_emulator, llm_clock)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(board.app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", board, spotify
        finally:
            server.should_exit = True
            thread.join(10)
            board.close()


def log_in(page: Page) -> None:
    page.goto("/login?next=/playlists")
    page.fill("#token", TOKEN)
    page.fill("#name", "ada")
    page.click("button[type=submit]")
    expect(page.locator("#create-form")).to_be_visible()


def test_a_playlist_made_refined_and_pushed_in_the_browser(
    served: tuple[str, PlaylistBoard, SpotifyEmulator],
) -> None:
    url, _board, spotify = served
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = browser.new_context(base_url=url, **VIEWPORTS["desktop"])
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            log_in(page)
            shoot(page, "playlists-empty")

            page.fill("#prompt", PROMPT)
            page.click("#create-form button[type=submit]")
            expect(page.locator("#save-form")).to_be_visible()
            expect(page.locator("#genres")).to_have_value("Ambient")
            whys = page.locator(".why").all_inner_texts()
            assert len(whys) == 12 and all("Ambient" in w for w in whys), whys
            shoot(page, "playlist-preview")

            page.fill("#name", "Drift <b>")
            page.fill("#size", "8")
            page.click("#save-form button[type=submit]")
            expect(page.locator("h1")).to_have_text("Drift <b>")  # text, not markup
            assert page.locator(".why").count() == 8

            page.fill("#refine-form input[name=change]", "more upbeat")
            page.click("#refine-form button[type=submit]")
            expect(page.locator("#changed")).to_be_visible()
            titles = page.locator("button[aria-label^='Remove ']").all()
            removed = (titles[0].get_attribute("aria-label") or "").removeprefix("Remove ")
            titles[0].click()
            expect(page.locator("button[aria-label^='Remove ']")).to_have_count(8)
            assert removed not in page.locator("main").inner_text()

            page.click("form[action$='/push'] button[type=submit]")
            expect(page.get_by_text(re.compile(r"spotify: created"))).to_be_visible()
            (remote,) = spotify.playlists.values()
            assert len(remote.track_ids) == 8
            shoot(page, "playlist")

            phone = browser.new_context(base_url=url, **VIEWPORTS["phone"]).new_page()
            log_in(phone)
            shoot(phone, "playlists", "phone")
            phone.click("a[href^='/playlists/']")
            expect(phone.locator("h1")).to_have_text("Drift <b>")
            shoot(phone, "playlist", "phone")
        finally:
            browser.close()
    assert problems == []
