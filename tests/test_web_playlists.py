"""The dashboard's Playlists section in-process (TestClient): the pages (list, a prompt's
preview with its intent as fields, save, refine, pin, remove, push, what Spotify lacks)
and `/api/playlists`, over the real groq plugin on the LLM emulator and the real Spotify
target on its emulator; tokens, CSRF, escaping and the errors a person can act on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from genred.store import Store
from genred.store import playlists as q
from tests.dashboard_library import SCRIPT_TITLE, Dashboard, csrf_of
from tests.emulators.llm import FakeClock, LLMEmulator
from tests.emulators.spotify import Catalogue, SpotifyEmulator
from tests.playlist_board import TOKEN, PlaylistBoard

PROMPT = "calm ambient from the 2000s, 12 songs"
BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def spotify_catalogue() -> Catalogue:
    return Catalogue.from_freemusicc(limit=3000)


@pytest.fixture
def spotify_emulator(spotify_catalogue: Catalogue) -> Iterator[SpotifyEmulator]:
    with SpotifyEmulator(spotify_catalogue.copy()) as emulator:
        yield emulator


@pytest.fixture
def board(
    tmp_path: Path,
    spotify_catalogue: Catalogue,
    spotify_emulator: SpotifyEmulator,
    llm_emulator: LLMEmulator,
    llm_clock: FakeClock,
) -> Iterator[PlaylistBoard]:
    found = PlaylistBoard(tmp_path, spotify_catalogue, spotify_emulator, llm_emulator, llm_clock)
    llm_emulator.clear_requests()
    yield found
    found.close()


def asked(emu: LLMEmulator) -> list[str]:
    return [r.kind for r in emu.completions()]


def playlists(board: PlaylistBoard) -> list[q.PlaylistRow]:
    with Store.open(board.harness.config.db_path) as store:
        return q.all_playlists(store)


def main_of(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def test_a_prompt_is_previewed_edited_as_fields_saved_refined_and_pushed(
    board: PlaylistBoard, llm_emulator: LLMEmulator, spotify_emulator: SpotifyEmulator
) -> None:
    csrf = board.login()
    preview = board.client.post("/playlists/preview", data={"csrf": csrf, "prompt": PROMPT})
    assert preview.status_code == 200, preview.text
    assert asked(llm_emulator) == ["playlist-intent"]
    assert playlists(board) == []  # a preview stores nothing
    html = main_of(preview.text)
    assert 'id="genres" name="genres" value="Ambient"' in html
    assert re.search(r'<option value="low" selected>', html)
    assert 'name="year_min" inputmode="numeric" value="2000"' in html
    whys = re.findall(r'class="small why">([^<]+)<', html)
    assert len(whys) == 12 and all("Ambient" in w for w in whys)

    fields = {
        "csrf": csrf, "prompt": PROMPT, "name": "Drift", "genres": "Ambient",
        "energy": "low", "year_min": "2000", "year_max": "2009", "size": "8",
    }  # fmt: skip
    saved = board.client.post("/playlists", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    (row,) = playlists(board)
    assert saved.headers["location"] == f"/playlists/{row.id}?note=playlist-saved"
    page = board.client.get(saved.headers["location"])
    assert "Playlist saved." in page.text and ">Drift</h1>" in page.text
    assert len(re.findall(r'class="small why">', page.text)) == 8  # the edited size

    llm_emulator.clear_requests()
    refined = board.client.post(
        f"/playlists/{row.id}/refine", data={"csrf": csrf, "change": "more upbeat"}
    )
    assert refined.status_code == 200, refined.text
    assert asked(llm_emulator) == ["playlist-refine"]
    api = board.client.get(f"/api/playlists/{row.id}").json()
    assert api["intent"]["energy"] == "high" and api["intent"]["genres"] == ["Ambient"]
    assert 'id="changed"' in refined.text

    pushed = board.client.post(f"/playlists/{row.id}/push", data={"csrf": csrf})
    assert pushed.status_code == 200, pushed.text
    assert "spotify: created" in pushed.text
    (remote_id,) = spotify_emulator.playlists
    assert len(spotify_emulator.playlists[remote_id].track_ids) == 8
    listed = board.client.get("/playlists").text
    assert 'badge written">spotify<' in listed


def test_pin_and_remove_from_the_page_and_the_api(board: PlaylistBoard) -> None:
    csrf = board.login()
    made = board.client.post(
        "/api/playlists", json={"prompt": PROMPT, "name": "Drift"}, headers=BEARER
    )
    assert made.status_code == 201, made.text
    body = made.json()
    first, second = body["tracks"][0]["track_id"], body["tracks"][1]["track_id"]
    pid = body["id"]

    pin = board.client.post(
        f"/playlists/{pid}/tracks/{first}/pin", data={"csrf": csrf}, follow_redirects=False
    )
    assert pin.status_code == 303 and pin.headers["location"].endswith("note=pinned")
    shown = board.client.get(f"/api/playlists/{pid}").json()
    assert [t["pinned"] for t in shown["tracks"] if t["track_id"] == first] == [True]

    gone = board.client.delete(f"/api/playlists/{pid}/tracks/{second}", headers=BEARER)
    assert gone.status_code == 200, gone.text
    ids = [t["track_id"] for t in gone.json()["tracks"]]
    assert second not in ids and first in ids and len(ids) == len(body["tracks"])

    unpin = board.client.delete(f"/api/playlists/{pid}/tracks/{first}/pin", headers=BEARER)
    assert [t["pinned"] for t in unpin.json()["tracks"] if t["track_id"] == first] == [False]
    missing = board.client.put(f"/api/playlists/{pid}/tracks/{second}/pin", headers=BEARER)
    assert missing.status_code == 404 and "not in the playlist" in missing.json()["message"]


def test_the_api_lists_in_cursor_pages_and_previews_without_storing(board: PlaylistBoard) -> None:
    preview = board.client.post(
        "/api/playlists", json={"prompt": PROMPT, "preview": True}, headers=BEARER
    )
    assert preview.status_code == 201 and preview.json()["id"] is None
    assert len(preview.json()["tracks"]) == 12 and playlists(board) == []
    for name in ("One", "Two", "Three"):
        made = board.client.post(
            "/api/playlists", json={"prompt": PROMPT, "name": name, "size": 5}, headers=BEARER
        )
        assert made.status_code == 201, made.text
    first = board.client.get("/api/playlists?limit=2").json()
    assert [p["name"] for p in first["items"]] == ["One", "Two"] and first["next_cursor"]
    rest = board.client.get(f"/api/playlists?limit=2&cursor={first['next_cursor']}").json()
    assert [p["name"] for p in rest["items"]] == ["Three"] and rest["next_cursor"] is None
    assert rest["items"][0]["tracks"] == 5 and rest["items"][0]["pushed"] == []
    twice = board.client.post(
        "/api/playlists", json={"prompt": PROMPT, "name": "one"}, headers=BEARER
    )
    assert twice.status_code == 422 and "exists" in twice.json()["message"]


def test_writes_need_the_token_and_forms_their_csrf(board: PlaylistBoard) -> None:
    made = board.client.post("/api/playlists", json={"prompt": PROMPT})
    assert made.status_code == 401 and "Bearer" in made.json()["message"]
    wrong = board.client.post(
        "/api/playlists", json={"prompt": PROMPT}, headers={"authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    not_in = board.client.post("/playlists/preview", data={"prompt": PROMPT})
    assert not_in.status_code == 403  # no CSRF token: refused before anything
    csrf = csrf_of(board.client.get("/playlists").text)
    anonymous = board.client.post("/playlists/preview", data={"csrf": csrf, "prompt": PROMPT})
    assert anonymous.status_code == 401 and "log in" in anonymous.text
    board.login()
    foreign = board.client.post(
        "/playlists/preview", data={"csrf": csrf, "prompt": PROMPT},
        headers={"origin": "http://evil.test"},
    )  # fmt: skip
    assert foreign.status_code == 403
    assert playlists(board) == []


def test_errors_are_json_or_on_the_page_with_what_to_do(board: PlaylistBoard) -> None:
    assert board.client.get("/api/playlists/99").json() == {
        "message": "there is no playlist 99", "errors": [],
    }  # fmt: skip
    assert board.client.get("/playlists/99").status_code == 404
    empty = board.client.post("/api/playlists", json={"prompt": ""}, headers=BEARER)
    assert empty.status_code == 422 and empty.json()["errors"][0].startswith("prompt")
    made = board.client.post("/api/playlists", json={"prompt": PROMPT, "name": "D"}, headers=BEARER)
    pid = made.json()["id"]
    csrf = board.login()
    same = board.client.post(f"/playlists/{pid}/refine", data={"csrf": csrf, "change": "ok"})
    assert same.status_code == 422 and 'id="problem"' in same.text
    assert "changes the playlist" in same.text
    board.spotify.tokens.cache.delete()  # logged out of Spotify
    page = board.client.post(f"/playlists/{pid}/push", data={"csrf": csrf})
    assert page.status_code == 200 and 'class="problem push-report"' in page.text
    assert "spotify: failed" in page.text and "not logged in to Spotify" in page.text
    api = board.client.post(f"/api/playlists/{pid}/push", json={}, headers=BEARER)
    (report,) = api.json()["pushes"]
    assert report["status"] == "failed" and "not logged in to Spotify" in report["message"]


def test_the_tracks_spotify_lacks_are_listed(
    board: PlaylistBoard, spotify_emulator: SpotifyEmulator
) -> None:
    made = board.client.post("/api/playlists", json={"prompt": PROMPT, "name": "D"}, headers=BEARER)
    pid, tracks = made.json()["id"], made.json()["tracks"]
    with Store.open(board.harness.config.db_path) as store:
        for t in tracks[:2]:
            (source_id,) = store.conn.execute(
                "SELECT source_id FROM tracks WHERE id = ?", (t["track_id"],)
            ).fetchone()
            spotify_emulator.catalogue.remove_track(Path(source_id).stem)
    pushed = board.client.post(f"/api/playlists/{pid}/push", json={}, headers=BEARER)
    assert pushed.status_code == 200, pushed.text
    (report,) = pushed.json()["pushes"]
    assert report["status"] == "created" and report["unmatched"] == 2
    shown = board.client.get(f"/api/playlists/{pid}").json()
    assert [t["track_id"] for t in shown["unmatched"]["spotify"]] == [
        t["track_id"] for t in tracks[:2]
    ]
    page = board.client.get(f"/playlists/{pid}").text
    assert "Not found on spotify (2)" in page and tracks[0]["title"] in main_of(page)


def test_without_an_llm_the_rules_read_the_prompt_and_say_so(tmp_path: Path) -> None:
    board = Dashboard(tmp_path)
    try:
        client = board.login()
        page = client.get("/playlists")
        assert "No LLM is configured" in page.text
        csrf = csrf_of(page.text)
        preview = client.post(
            "/playlists/preview", data={"csrf": csrf, "prompt": "jazz from the fifties"}
        )
        assert preview.status_code == 200 and "rules parser read the prompt" in preview.text
        nothing = client.post("/playlists/preview", data={"csrf": csrf, "prompt": "something nice"})
        assert nothing.status_code == 422 and "names nothing genred can select by" in nothing.text
        api = client.post(
            "/api/playlists", json={"prompt": "something nice"},
            headers={"authorization": f"Bearer {board_token()}"},
        )  # fmt: skip
        assert api.status_code == 422 and "nothing was created" in api.json()["message"]
        pushed = client.post(
            "/api/playlists", json={"prompt": "jazz", "name": SCRIPT_TITLE},
            headers={"authorization": f"Bearer {board_token()}"},
        )  # fmt: skip
        pid = pushed.json()["id"]
        push = client.post(f"/playlists/{pid}/push", data={"csrf": csrf})
        assert push.status_code == 409 and "no playlist target" in push.text
        for html in (client.get("/playlists").text, client.get(f"/playlists/{pid}").text):
            assert SCRIPT_TITLE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    finally:
        board.context.close()
        board.harness.close()


def board_token() -> str:
    from tests.dashboard_library import TOKEN as DASH_TOKEN

    return DASH_TOKEN
