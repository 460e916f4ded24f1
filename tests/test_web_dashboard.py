"""The dashboard and the REST API in-process (FastAPI's TestClient) over a library filled
through the real stages, with the daemon's real Worker starting jobs: pages, escaping,
login, sessions, CSRF, Bearer, `web.auth: all`, hostile input, CSV, jobs and progress."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from starlette.responses import HTMLResponse

from genred import locks
from genred.store import story
from genred.web import create_app
from genred.web.context import WebContext
from genred.web.sections import Section, core_sections
from tests.dashboard_library import SCRIPT_TITLE, TOKEN, Dashboard, csrf_of


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dashboard]:
    board = Dashboard(tmp_path)
    yield board
    board.context.close()
    board.harness.close()


# --------------------------------------------------------------------------- pages


def test_every_page_renders_and_markup_in_data_stays_text(dash: Dashboard) -> None:
    script = dash.track[SCRIPT_TITLE]
    for path in ("/", "/library", f"/tracks/{script}", "/review", "/settings", "/login"):
        page = dash.client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert SCRIPT_TITLE not in page.text, path
    track_page = dash.client.get(f"/tracks/{script}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in track_page
    assert "Motörhead" in track_page
    library = dash.client.get("/library?q=motör").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in library and "Ace of Spades" in library
    assert dash.client.get("/tracks/999999").status_code == 404
    assert "there is no track 999999" in dash.client.get("/tracks/999999").text


def test_the_overview_shows_states_genres_runs_and_labels(dash: Dashboard) -> None:
    page = dash.client.get("/").text
    assert re.search(r'id="stat-tracks">8<', page)
    assert re.search(r'id="stat-review">2<', page)
    assert "distinct genre tags before genred" in page
    assert "decide" in page and "classify" in page  # the last runs
    assert "new labels" in page and "Nothing is running." in page


def test_the_library_page_filters_sorts_and_pages(dash: Dashboard) -> None:
    page = dash.client.get("/library?genre=Jazz&sort=title").text
    assert re.search(r'id="total">2<', page)
    assert page.index("Freddie Freeloader") < page.index("So What")
    first = dash.client.get("/library?sort=title").text
    assert 'rel="next"' not in first  # 8 tracks: one page
    bad = dash.client.get("/library?below=lots&sort=nonsense&cursor=junk")
    assert bad.status_code == 200
    assert "a number between 0 and 1" in bad.text and "sort: one of" in bad.text
    assert "start again from the first page" in bad.text


# --------------------------------------------------------------------------- sessions and CSRF


def test_login_sets_a_strict_session_and_logout_ends_it(dash: Dashboard) -> None:
    client = dash.client
    token = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"csrf": token, "token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "that is not the token" in wrong.text
    assert "genred_session" not in wrong.headers.get("set-cookie", "")
    right = client.post(
        "/login",
        data={"csrf": token, "token": TOKEN, "name": "ada", "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/?note=logged-in"
    cookie = right.headers["set-cookie"]
    assert "genred_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    session = client.cookies.get("genred_session")
    assert "ada" in client.get("/").text and "Log out" in client.get("/").text

    page = client.get("/").text
    out = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303 and 'genred_session=""' in out.headers["set-cookie"]
    client.cookies.set("genred_session", session)  # the old cookie, kept by someone
    refused = client.post(
        f"/tracks/{dash.track['So What']}/override",
        data={"csrf": csrf_of(client.get("/").text), "genres": "Bebop"},
        follow_redirects=False,
    )
    assert refused.status_code == 401


def test_too_many_wrong_tokens_must_wait(dash: Dashboard) -> None:
    token = csrf_of(dash.client.get("/login").text)
    for _ in range(5):
        dash.client.post("/login", data={"csrf": token, "token": "wrong"})
    blocked = dash.client.post("/login", data={"csrf": token, "token": TOKEN})
    assert blocked.status_code == 401 and "wait a minute" in blocked.text


def test_every_form_needs_its_csrf_token_and_this_site(dash: Dashboard) -> None:
    client = dash.login()
    target = f"/tracks/{dash.track['So What']}/override"
    good = csrf_of(client.get("/").text)
    assert client.post(target, data={"genres": "Bebop"}).status_code == 403
    assert client.post(target, data={"csrf": "forged", "genres": "Bebop"}).status_code == 403
    other_site = client.post(
        target, data={"csrf": good, "genres": "Bebop"}, headers={"origin": "https://evil.example"}
    )
    assert other_site.status_code == 403 and "another site" in other_site.text
    stranger = TestClient(dash.app, base_url="http://genred.test")  # no cookies: no session
    assert stranger.post(target, data={"csrf": good, "genres": "Bebop"}).status_code in (401, 403)
    with dash.store() as store:
        assert story.load(store, dash.track["So What"]).overrides == {}
    assert client.post(target, data={"csrf": good, "genres": "Bebop"}).status_code == 200


def test_without_a_token_the_dashboard_is_read_only(tmp_path: Path) -> None:
    board = Dashboard(tmp_path, web="{}")
    try:
        page = board.client.get(f"/tracks/{board.track['So What']}")
        assert page.status_code == 200 and "Read-only" in page.text
        login = board.client.get("/login").text
        assert "nothing to log in with" in login
        put = board.client.put(
            f"/api/tracks/{board.track['So What']}/override",
            json={"genres": ["Bebop"]},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert put.status_code == 403 and "web.api_token" in put.json()["message"]
        form = board.client.post(
            f"/tracks/{board.track['So What']}/override",
            data={"csrf": csrf_of(page.text), "genres": "Bebop"},
        )
        assert form.status_code == 403
    finally:
        board.context.close()
        board.harness.close()


def test_auth_all_needs_a_login_for_every_read(tmp_path: Path) -> None:
    board = Dashboard(tmp_path, web=f"{{api_token: {TOKEN}, auth: all}}")
    try:
        client = board.client
        home = client.get("/library?q=jazz", follow_redirects=False)
        assert home.status_code == 303
        assert home.headers["location"] == "/login?next=/library%3Fq%3Djazz"
        api = client.get("/api/stats")
        assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
        assert (
            client.get("/api/stats", headers={"authorization": f"Bearer {TOKEN}"}).json()["tracks"]
            == 8
        )
        assert client.get("/export.csv", follow_redirects=False).status_code == 303
        assert client.get("/api/progress/events").status_code == 401
        board.login()
        assert client.get("/api/stats").status_code == 200  # the session cookie counts
        assert client.get("/library").status_code == 200
    finally:
        board.context.close()
        board.harness.close()


# --------------------------------------------------------------------------- corrections


def test_an_override_from_the_track_page(dash: Dashboard) -> None:
    client = dash.login(name="ada")
    angel = dash.track["Saint Angel"]
    page = client.get(f"/tracks/{angel}").text
    saved = client.post(
        f"/tracks/{angel}/override",
        data={"csrf": csrf_of(page), "genres": "drum and bass, Jungle", "keep_mood": "1",
              "keep_label": "1"},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"] == f"/tracks/{angel}?note=saved"
    assert dash.corrections.count == 1
    with dash.store() as store:
        found = story.load(store, angel)
    assert set(found.overrides) == {"genre"}
    genre = found.overrides["genre"]
    assert genre.values == ("Drum & Bass", "Jungle") and genre.origin == "web"
    assert genre.created_by == "ada"
    dash.harness.run("decide")
    after = client.get(f"/tracks/{angel}").text
    assert "genres set by hand (web by ada" in after and "Jungle" in after

    cleared = client.post(
        f"/tracks/{angel}/override", data={"csrf": csrf_of(after), "clear": "1"},
        follow_redirects=False,
    )  # fmt: skip
    assert cleared.headers["location"].endswith("note=cleared")
    with dash.store() as store:
        assert story.load(store, angel).overrides == {}
    too_long = client.post(
        f"/tracks/{angel}/override", data={"csrf": csrf_of(after), "genres": "x" * 150}
    )
    assert too_long.status_code == 422 and "longer than 100 characters" in too_long.text


def test_the_review_queue_answers_an_album_in_one_click(dash: Dashboard) -> None:
    client = dash.login()
    page = client.get("/review").text
    key = re.search(r'id="album" data-key="([^"]+)"', page).group(1)
    track_ids = re.findall(r'name="track" value="(\d+)"', page.split('class="table-wrap"')[0])
    answer = client.post(
        "/review/answer",
        data={"csrf": csrf_of(page), "track": track_ids, "action": "correct",
              "genres": "Metal, Hard Rock"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    with dash.store() as store:
        rows = store.conn.execute(
            "SELECT value, origin FROM overrides WHERE field = 'genre' ORDER BY track_id"
        ).fetchall()
    assert rows == [('["Metal", "Hard Rock"]', "web")] * len(track_ids)
    following = client.get("/review").text
    assert f'data-key="{key}"' not in following


def test_the_api_writes_with_the_bearer_token_only(dash: Dashboard) -> None:
    client = dash.client
    track = dash.track["So What"]
    body = {"genres": ["Modal Jazz"], "moods": ["calm"]}
    missing = client.put(f"/api/tracks/{track}/override", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in missing.json()["message"]
    dash.login()  # a dashboard session is not enough for the API's writes
    assert client.put(f"/api/tracks/{track}/override", json=body).status_code == 401
    auth = {"authorization": f"Bearer {TOKEN}", "x-genred-user": "script"}
    done = client.put(f"/api/tracks/{track}/override", json=body, headers=auth)
    assert done.status_code == 200 and done.json() == {"tracks": 1, "set": 2, "dropped": 0}
    one = client.get(f"/api/tracks/{track}").json()
    assert {o["field"]: o["values"] for o in one["overrides"]} == {
        "genre": ["Modal Jazz"],
        "mood": ["calm"],
    }
    assert {o["created_by"] for o in one["overrides"]} == {"script"}
    album = client.put("/api/albums/plex:2/override", json={"genres": ["Jungle"]}, headers=auth)
    assert album.json()["tracks"] == 3
    assert client.delete(f"/api/tracks/{track}/override", headers=auth).json()["dropped"] == 2
    assert dash.corrections.count == 3
    unknown = client.put("/api/tracks/999999/override", json=body, headers=auth)
    assert unknown.status_code == 404 and unknown.json()["message"] == "there is no track 999999"
    bad = client.put(f"/api/tracks/{track}/override", json={"genres": "Jazz"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0].startswith("genres")
    extra = client.put(f"/api/tracks/{track}/override", json={"genre": ["x"]}, headers=auth)
    assert extra.status_code == 422
    no_album = client.put("/api/albums/plex:nope/override", json=body, headers=auth)
    assert no_album.status_code == 404


def test_api_reads_pages_and_the_story(dash: Dashboard) -> None:
    client = dash.client
    first = client.get("/api/tracks", params={"limit": 3, "sort": "title"}).json()
    assert first["total"] == 8 and len(first["items"]) == 3 and first["next_cursor"]
    rest = client.get(
        "/api/tracks", params={"limit": 10, "sort": "title", "cursor": first["next_cursor"]}
    ).json()
    names = [t["title"] for t in first["items"] + rest["items"]]
    assert len(names) == 8 and rest["next_cursor"] is None
    assert names == sorted(names, key=str.casefold)
    story_of = client.get(f"/api/tracks/{dash.track['So What']}").json()
    assert story_of["decision"]["genres"] == ["Jazz"]
    assert story_of["decision"]["genre_voters"] == {"Jazz": {"taxonomy": 1.0}}
    assert story_of["predictions"][0]["classifier"] == "taxonomy"
    assert story_of["why"][0].startswith("decided")
    genres = client.get("/api/genres", params={"q": "jaz"}).json()
    assert genres[0] == {"name": "Jazz", "parent": None, "count": 2}
    assert all("jaz" in g["name"].casefold() for g in genres)
    stats = client.get("/api/stats").json()
    assert stats["tracks"] == 8 and stats["review_waiting"] == 2 and stats["new_labels"] == 0
    queue = client.get("/api/review").json()
    assert queue["waiting"] == 2 and queue["album"]["tracks"]
    config = client.get("/api/config").json()
    assert config["web"]["api_token"] == "********"
    assert TOKEN not in json.dumps(config)
    assert client.get("/api/runs").json() == {"items": [], "next_cursor": None}  # none yet


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "q",
    ["' OR '1'='1", "1; DROP TABLE tracks", "<img src=x onerror=alert(1)>", "../../etc/passwd"],
)
def test_injections_are_plain_text(dash: Dashboard, q: str) -> None:
    page = dash.client.get("/library", params={"q": q})
    assert page.status_code == 200 and "<img src=x" not in page.text
    assert dash.client.get("/api/tracks", params={"q": q}).json()["total"] == 0
    with dash.store() as store:
        assert store.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 8


def test_limits_on_sizes_and_names(dash: Dashboard) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    track = dash.track["So What"]
    huge = dash.client.put(
        f"/api/tracks/{track}/override",
        content=b'{"genres": ["' + b"a" * (10 * 1024 * 1024 + 10) + b'"]}',
        headers={**auth, "content-type": "application/json"},
    )
    assert huge.status_code == 413 and "too large" in huge.json()["message"]
    long_query = dash.client.get("/api/tracks", params={"q": "x" * 60_000})  # httpx's most
    assert long_query.status_code == 422 and long_query.json()["message"].startswith("query.q")
    page = dash.client.get("/library", params={"q": "x" * 60_000})
    assert page.status_code == 200 and "at most 200 characters" in page.text
    for bad in ("/api/tracks/99999999999999999999999", "/api/tracks/-1", "/api/tracks/abc"):
        assert dash.client.get(bad).status_code == 422, bad
    export = dash.client.get("/export.csv", params={"name": "../../etc/passwd"})
    assert export.headers["content-disposition"] == 'attachment; filename="passwd.csv"'
    odd = dash.client.get("/export.csv", params={"name": '"; rm -rf /;.csv'})
    assert re.fullmatch(
        r'attachment; filename="[A-Za-z0-9._-]+\.csv"', odd.headers["content-disposition"]
    )


def test_a_million_character_query_through_the_real_server(dash: Dashboard) -> None:
    """Sent raw (no client library takes it): uvicorn refuses it, nothing is served."""
    import socket

    from genred.web import WebServer

    with WebServer(dash.app, "127.0.0.1", 0, stopping=dash.context.stop) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /api/tracks?q=" + b"x" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = sock.recv(200)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            still = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")  # refused by uvicorn
    assert still.startswith(b"HTTP/1.1 200")  # and the server goes on serving


def test_behind_a_proxy_under_a_path(tmp_path: Path) -> None:
    """`web.root_path: /genred` behind a proxy that strips it: every link, redirect and
    cookie carries the prefix, and logging in lands where it started."""
    import httpx

    from genred.web import WebServer

    board = Dashboard(tmp_path, web=f"{{api_token: {TOKEN}, auth: all, root_path: /genred}}")
    try:
        with WebServer(board.app, "127.0.0.1", 0, root_path="/genred") as server:
            base = f"http://127.0.0.1:{server.port}"
            with httpx.Client(base_url=base) as proxy:  # requests as the proxy sends them
                away = proxy.get("/library?q=jazz")
                assert away.status_code == 303
                assert away.headers["location"] == "/genred/login?next=/library%3Fq%3Djazz"
                form = proxy.get("/login?next=/library%3Fq%3Djazz")
                assert 'href="/genred/static/app.css"' in form.text
                assert proxy.get("/static/app.css").status_code == 200
                csrf_cookie = form.headers["set-cookie"]
                assert "Path=/genred" in csrf_cookie
                # The browser sends the cookies to /genred/…; the proxy passes them on.
                jar = {"cookie": csrf_cookie.split(";")[0]}
                done = proxy.post(
                    "/login",
                    data={"csrf": csrf_of(form.text), "token": TOKEN, "next": "/library?q=jazz"},
                    headers=jar,
                )
                assert done.status_code == 303
                assert done.headers["location"] == "/genred/library?q=jazz&note=logged-in"
                session = done.headers["set-cookie"]
                assert "Path=/genred" in session and "HttpOnly" in session
                page = proxy.get("/library?q=jazz", headers={"cookie": session.split(";")[0]})
                assert page.status_code == 200
                assert f'href="/genred/tracks/{board.track["So What"]}"' in page.text
    finally:
        board.context.close()
        board.harness.close()


def test_csv_export_has_the_filtered_rows(dash: Dashboard) -> None:
    answer = dash.client.get("/export.csv", params={"genre": "Drum & Bass", "name": "dnb"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="dnb.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["title"] for r in rows] == ["Inner City Life", "Timeless"]
    assert rows[0]["genres"] == "Drum & Bass" and rows[0]["genres_before"] == "d&b"
    everything = list(csv.reader(io.StringIO(dash.client.get("/export.csv").text)))
    assert len(everything) == 9


# --------------------------------------------------------------------------- jobs, progress


def test_jobs_start_with_202_and_their_run_id_and_409_when_running(dash: Dashboard) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    started = dash.client.post("/api/jobs/decide", headers=auth)
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["job"] == "decide" and body["run"] == f"/api/runs/{body['run_id']}"
    with dash.client.stream("GET", f"/api/runs/{body['run_id']}/events") as events:
        lines = [line for line in events.iter_lines() if line]
    assert "event: done" in lines
    done = json.loads(next(x for x in lines if x.startswith("data:"))[5:])
    assert done["id"] == body["run_id"] and done["status"] == "ok" and done["job"] == "decide"
    assert dash.client.get(f"/api/runs/{body['run_id']}").json()["status"] == "ok"
    with locks.acquire(dash.config.data_dir, "decide", "cli"):
        busy = dash.client.post("/api/jobs/decide", headers=auth)
    assert busy.status_code == 409 and "already running" in busy.json()["message"]
    assert dash.client.post("/api/jobs/decide").status_code == 401
    assert dash.client.post("/api/jobs/revert", headers=auth).status_code == 422
    nothing = dash.client.post("/api/jobs/writeback", headers=auth)
    assert nothing.status_code == 409 and "no writeback target" in nothing.json()["message"]
    runs = dash.client.get("/api/runs", params={"job": "decide", "limit": 1}).json()
    assert [r["trigger"] for r in runs["items"]] == ["api"] and runs["next_cursor"] is None


def test_progress_streams_while_a_job_runs_and_ends_when_the_server_stops(
    dash: Dashboard,
) -> None:
    live = dash.worker.live
    live.begin("sync", "api")
    live.update("sync", "sync plex", 40, 100)
    assert dash.client.get("/api/progress").json()["running"][0]["done"] == 40
    seen: list[str] = []

    def read() -> None:
        with dash.client.stream("GET", "/api/progress/events") as events:
            for line in events.iter_lines():
                seen.append(line)
                if line.startswith("data:") and '"done":40' in line.replace(" ", ""):
                    dash.context.stop.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "the stream did not end when the server stopped"
    assert "event: progress" in seen and "event: bye" in seen


def test_an_open_event_stream_ends_with_the_server(dash: Dashboard) -> None:
    """uvicorn waits for open responses when it stops; the stream sees the stop event
    first and ends with `bye`, so a dashboard tab open does not hold the daemon's stop
    for uvicorn's graceful timeout (when that cuts a stream, no `bye` arrives)."""
    import httpx

    from genred.web import WebServer

    server = WebServer(dash.app, "127.0.0.1", 0, stopping=dash.context.stop)
    server.start()
    lines: list[str] = []
    connected = threading.Event()

    def read() -> None:
        url = f"http://127.0.0.1:{server.port}/api/progress/events"
        with httpx.Client(timeout=30) as client, client.stream("GET", url) as events:
            for line in events.iter_lines():
                lines.append(line)
                connected.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert connected.wait(10)
    server.stop(timeout=10)
    reader.join(10)
    assert not server.running and not reader.is_alive()
    assert "event: bye" in lines


# --------------------------------------------------------------------------- structure


def test_a_section_registered_beside_the_core_ones_gets_its_nav_entry_and_routes(
    dash: Dashboard,
) -> None:
    """The extension point the playlists section uses (and a further one would)."""

    def pages(ctx: WebContext) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/radio")
        def radio() -> HTMLResponse:
            return HTMLResponse("<p id='radio'>the radio</p>")

        return router

    sections = [*core_sections()]
    sections.insert(4, Section("radio", "Radio", "/radio", pages=pages))
    app = create_app([], None, web=dash.context, sections=sections)
    client = TestClient(app)
    nav = re.findall(r'<nav aria-label="Sections">(.*?)</nav>', client.get("/").text, re.S)[0]
    assert re.findall(r">(\w+)</a>", nav) == ["Overview", "Library", "Review", "Playlists",
                                              "Radio", "Settings"]  # fmt: skip
    assert client.get("/radio").text == "<p id='radio'>the radio</p>"


def test_the_openapi_schema_has_the_api_and_not_the_pages(dash: Dashboard) -> None:
    schema: dict[str, Any] = dash.client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/tracks", "/api/tracks/{track_id}", "/api/tracks/{track_id}/override",
            "/api/stats", "/api/genres", "/api/review", "/api/review/answers", "/api/runs",
            "/api/jobs/{stage}", "/api/config", "/api/progress"} <= paths  # fmt: skip
    assert all(p.startswith("/api/") for p in paths)
    assert "/api/progress/events" not in paths  # endless: kept out of the schema
    put = schema["paths"]["/api/tracks/{track_id}/override"]["put"]
    assert put["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Problem"
    )
    assert schema["paths"]["/api/jobs/{stage}"]["post"]["responses"]["202"]


def test_the_worker_says_why_a_job_cannot_start(dash: Dashboard) -> None:
    from genred.errors import GenredError

    with pytest.raises(GenredError, match="no stage"):
        dash.worker.start("revert")
    run_id = dash.worker.start("decide", "test")
    assert isinstance(run_id, int) and run_id > 0
