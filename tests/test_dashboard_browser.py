"""The dashboard in a real browser: Debian's chromium driven by Playwright, against the real
`genred run` (a subprocess, as systemd starts it) syncing the Plex emulator.

Overview with live progress, search and filters, a track's page (its title is markup and
must stay text), an override that reaches the emulated Plex, an album answered in the
review queue, the CSV export, logging in and out, and a write without the token refused.
Screenshots of every page, at 1280 px and at a phone's 390 px, land in
test-artifacts/screenshots/ (look at them). Without /usr/bin/chromium (or Playwright) the
tests are skipped, saying so; CI sets GENRED_REQUIRE_BROWSER=1, which makes that a failure.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import re
import socket
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.daemon_process import DaemonProcess, query, runs, wait_until
from tests.emulators.plex import Faults, PlexEmulator, PlexLibrary

CHROMIUM = Path(os.environ.get("GENRED_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-artifacts" / "screenshots"
TOKEN = "browser-test-token-5f1e9c2a"
SCRIPT_TITLE = "<script>alert(1)</script>"
VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install 'genred[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium fonts-dejavu-core"
    return None


REASON = _skip_reason()
if REASON is not None:
    if os.environ.get("GENRED_REQUIRE_BROWSER"):
        pytest.fail(f"GENRED_REQUIRE_BROWSER is set but {REASON}", pytrace=False)
    pytest.skip(REASON, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def small_library(plex_library: PlexLibrary) -> PlexLibrary:
    """The first 2,000 freemusi.cc tracks plus an album nobody can place (under review),
    one of whose titles is markup."""
    library = copy.deepcopy(plex_library)
    artist = library.add_artist("Test Pilots", added_at=1_700_000_000)
    album = library.add_album(artist, "Unsorted Tapes", added_at=1_700_000_000, year=2001)
    for number, title in enumerate([SCRIPT_TITLE, "Second Tape", "Third Tape"], start=1):
        library.add_track(
            album,
            title,
            file=f"/data/music/Test Pilots/Unsorted Tapes/{number:02d}.mp3",
            added_at=1_700_000_000,
            index=number,
            tags={"genre": ["tape hiss"]},
        )
    return library


PROBLEMS: dict[int, list[str]] = {}  # page errors, console errors and dialogs, per page


def problems(page: Page) -> list[str]:
    return PROBLEMS[id(page)]


@dataclass
class Site:
    url: str
    db: Path
    emu: PlexEmulator
    daemon: DaemonProcess
    browser: Browser

    def page(self, viewport: str = "desktop") -> Page:
        context = self.browser.new_context(base_url=self.url, **VIEWPORTS[viewport])
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: m.type == "error" and problems.append(f"console: {m.text}"),
        )
        page.on("dialog", lambda d: problems.append(f"a dialog opened: {d.message}"))
        PROBLEMS[id(page)] = problems
        return page

    def track_id(self, title: str) -> int:
        return int(query(self.db, "SELECT id FROM tracks WHERE title = ?", (title,))[0][0])


def shoot(page: Page, name: str, viewport: str = "desktop") -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}-{viewport}.png"
    page.screenshot(path=str(path), full_page=True)
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"{name} at {viewport}: the page is wider than the screen"
    return path


def login(page: Page, name: str = "ada") -> None:
    page.goto("/login")
    page.fill("#token", TOKEN)
    page.fill("#name", name)
    page.click("button[type=submit]")
    expect(page.locator(".note")).to_have_text("Logged in.")


@pytest.fixture(scope="module")
def site(plex_library: PlexLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser")
    library = small_library(plex_library)
    port = free_port()
    with PlexEmulator(library) as emu:
        config = root / "genred.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                data_dir: {root / "data"}
                plex: {{url: {emu.url}, token: {emu.token}}}
                plugins:
                  sources: [plex]
                  classifiers: [taxonomy]
                  writeback: [plex]
                schedule: {{first_sync_after: 0.2s}}
                watch: {{enabled: false}}
                writeback: {{mode: replace, levels: [track]}}
                web: {{port: {port}, api_token: {TOKEN}}}
                logging: {{level: info}}
                """
            )
        )
        config.chmod(0o600)
        db = root / "data" / "genred.db"
        with DaemonProcess(config) as daemon:
            daemon.wait_ready(60)
            wait_until(
                lambda: any(r[1] == "writeback" and r[3] == "ok" for r in runs(db)),
                120,
                "the first sync → classify → decide → writeback",
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                site = Site(f"http://127.0.0.1:{port}", db, emu, daemon, browser)
                yield site
                # A dashboard tab open on its live progress does not hold up the stop:
                # its event stream ends at once (uvicorn would wait 5 s for it otherwise).
                open_tab = site.page()
                open_tab.goto("/")
                expect(open_tab.locator("#now[data-live=on]")).to_have_count(1)
                began = time.monotonic()
                assert daemon.stop() == 0
                assert time.monotonic() - began < 4.5
                expect(open_tab.locator("#now[data-live=off]")).to_have_count(1)  # saw `bye`
                browser.close()
            logged = "\n".join(daemon.raw_output)
            assert TOKEN not in logged, "the API token reached the log"


# --------------------------------------------------------------------------- tests


def test_a_write_without_the_token_is_refused(site: Site) -> None:
    track = site.track_id("Second Tape")
    api = httpx.put(f"{site.url}/api/tracks/{track}/override", json={"genres": ["Jazz"]})
    assert api.status_code == 401 and "Bearer" in api.json()["message"]
    wrong = httpx.put(
        f"{site.url}/api/tracks/{track}/override",
        json={"genres": ["Jazz"]},
        headers={"authorization": "Bearer not-the-token-at-all"},
    )
    assert wrong.status_code == 401
    page = site.page()
    page.goto(f"/tracks/{track}")
    expect(page.locator("#override-form button[type=submit]")).to_be_disabled()
    status = page.evaluate(
        """async (id) => (await fetch(`/tracks/${id}/override`, {method: 'POST',
            headers: {'content-type': 'application/x-www-form-urlencoded'},
            body: 'genres=Jazz&csrf=' + document.querySelector('[name=csrf]').value})).status""",
        track,
    )
    assert status == 401
    assert query(site.db, "SELECT COUNT(*) FROM overrides")[0][0] == 0
    assert problems(page) == [
        "console: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]  # the refused write, and nothing else


def test_logging_in_and_out(site: Site) -> None:
    page = site.page()
    page.goto("/library")
    page.click("text=Log in")
    shoot(page, "login")
    page.fill("#token", "wrong token")
    page.click("button[type=submit]")
    expect(page.locator(".problem")).to_contain_text("that is not the token")
    page.fill("#token", TOKEN)
    page.fill("#name", "ada")
    page.click("button[type=submit]")
    expect(page.locator(".note")).to_have_text("Logged in.")
    assert page.url.endswith("/library?note=logged-in")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "genred_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator(".who")).to_contain_text("ada")
    page.click("text=Log out")
    expect(page.locator(".note")).to_have_text("Logged out.")
    assert not [c for c in page.context.cookies() if c["name"] == "genred_session"]


def test_the_overview_shows_the_library_and_live_progress(site: Site) -> None:
    page = site.page()
    login(page)
    page.goto("/")
    tracks = query(site.db, "SELECT COUNT(*) FROM tracks WHERE removed = 0")[0][0]
    expect(page.locator("#stat-tracks")).to_have_text(f"{tracks:,}")
    expect(page.locator(".big-compare")).to_contain_text("distinct genre tags before genred")
    shoot(page, "overview")
    # A slow Plex keeps the sync running long enough to watch it move.
    site.emu.faults = Faults(latency_ms=700, path_prefix="/library/sections")
    try:
        page.click("button:has-text('Sync now')")
        expect(page.locator(".note")).to_have_text("Started.")
        expect(page.locator("#running li.job")).to_contain_text("sync", timeout=20_000)
        shoot(page, "overview-running")
        expect(page.locator(".finished")).to_contain_text("sync", timeout=60_000)
    finally:
        site.emu.faults = Faults()
    assert problems(page) == []


def test_search_filter_and_export(site: Site) -> None:
    page = site.page()
    page.goto("/library")
    page.fill("#q", "unsorted tapes")
    page.press("#q", "Enter")
    expect(page.locator("#total")).to_have_text("3")
    rows = page.locator("#tracks tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#tracks")).to_contain_text(SCRIPT_TITLE)  # as text
    page.goto("/library")
    page.locator("#genre").press_sequentially("Elec", delay=30)
    suggestion = page.locator("#genre-suggestions li").first
    expect(suggestion).to_contain_text("Electronic")
    suggestion.dispatch_event("mousedown")
    page.click("button:has-text('Show')")
    expect(page.locator("#tracks tbody tr").first).to_contain_text("Electronic")
    total = int(page.locator("#total").inner_text().replace(",", ""))
    decided = query(
        site.db,
        "SELECT COUNT(*) FROM decisions d JOIN tracks t ON t.id = d.track_id "
        "WHERE t.removed = 0 AND d.genres LIKE '%\"Electronic\"%'",
    )[0][0]
    assert total == decided > 0
    shoot(page, "library")
    with page.expect_download() as download:
        page.click("#export")
    rows_out = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows_out) == total and all("Electronic" in r["genres"] for r in rows_out)
    assert download.value.suggested_filename == "genred-library.csv"
    phone = site.page("phone")
    phone.goto("/library?q=unsorted+tapes")
    shoot(phone, "library", "phone")
    assert problems(page) == problems(phone) == []


def test_a_track_page_keeps_markup_as_text(site: Site) -> None:
    page = site.page()
    page.goto("/library?q=unsorted+tapes+script")
    page.click("a.track-link")
    expect(page.locator("#track-title")).to_have_text(SCRIPT_TITLE)
    expect(page.locator("#why")).to_contain_text("needs review")
    assert page.evaluate("() => document.querySelectorAll('main script').length") == 0
    shoot(page, "track-review")
    phone = site.page("phone")
    phone.goto(page.url)
    shoot(phone, "track-review", "phone")
    assert problems(page) == problems(phone) == []


def test_an_override_reaches_plex(site: Site) -> None:
    page = site.page()
    login(page, "ada")
    key = int(query(site.db, "SELECT source_id FROM tracks WHERE title = 'Second Tape'")[0][0])
    track = site.track_id("Second Tape")
    page.goto(f"/tracks/{track}")
    genres = page.locator("#genres")
    genres.fill("")
    genres.press_sequentially("Drum and", delay=30)
    pick = page.locator("#genres-suggestions li").first
    expect(pick).to_contain_text("Drum")
    pick.dispatch_event("mousedown")
    expect(page.locator("input[name=keep_genre]")).not_to_be_checked()  # typing unticked it
    genres.press_sequentially("Jungle", delay=30)
    page.click("#override-form button[type=submit]")
    expect(page.locator(".note")).to_contain_text("Saved.")
    wanted = ["Drum & Bass", "Jungle"]
    wait_until(lambda: site.emu.library.track(key).genres == wanted, 30, "the override in Plex")
    page.reload()
    expect(page.locator("#why")).to_contain_text("genres set by hand (web by ada")
    shoot(page, "track-overridden")
    origin = query(site.db, "SELECT origin, created_by FROM overrides WHERE track_id = ?", (track,))
    assert origin == [("web", "ada")]
    # The overview's figures follow (computed again in the background, never stale for long).
    overridden = query(site.db, "SELECT COUNT(DISTINCT track_id) FROM overrides")[0][0]
    wait_until(
        lambda: httpx.get(f"{site.url}/api/stats").json()["overridden"] == overridden,
        30,
        "the new override in the overview's figures",
    )
    assert problems(page) == []


def test_an_album_answered_in_the_review_queue(site: Site) -> None:
    page = site.page()
    login(page, "bo")
    page.goto("/review")
    shoot(page, "review")
    phone = site.page("phone")
    phone.goto("/review")
    shoot(phone, "review", "phone")
    key = page.locator("#album").get_attribute("data-key")
    open_tracks = page.locator("#album-answer input[name=track]").count()
    assert open_tracks > 0
    page.fill("#album-answer input[name=genres]", "Ambient")
    page.click("#album-answer button[value=correct]")
    expect(page.locator(".note")).to_have_text("Answer saved.")
    assert (
        page.locator("#album").count() == 0
        or page.locator("#album").get_attribute("data-key") != key
    )
    source, album = str(key).split(":", 1)
    answered = query(
        site.db,
        "SELECT o.value, o.origin, o.created_by FROM overrides o JOIN tracks t "
        "ON t.id = o.track_id WHERE t.source = ? AND t.album_source_id = ?",
        (source, album),
    )
    assert len(answered) >= open_tracks
    assert {row[1:] for row in answered} == {("web", "bo")}
    assert {row[0] for row in answered} == {'["Ambient"]'}
    assert problems(page) == problems(phone) == []


def test_every_page_at_both_widths(site: Site) -> None:
    for viewport in VIEWPORTS:
        page = site.page(viewport)
        for name, path in (("overview", "/"), ("settings", "/settings")):
            page.goto(path)
            shoot(page, name, viewport)
        text = page.locator("#config").inner_text()
        assert TOKEN not in text and '"api_token": "********"' in text
        assert re.search(r"The running config is valid", page.content())
        assert problems(page) == []
