"""The Spotify emulator, driven by the real spotipy: OAuth (client secret, PKCE, refresh),
playlists and items, search, faults, the request log, and spec validation of every answer.

Each test asserts values and what crossed the wire (`emu.requests`), and that no spec
violation happened (`emu.violations() == []`) or exactly the ones it provoked.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

spotipy = pytest.importorskip("spotipy")
pytest.importorskip("openapi_core")

from spotipy.exceptions import SpotifyException, SpotifyOauthError  # noqa: E402

from tests.emulators.spotify import (  # noqa: E402
    Catalogue,
    FaultRule,
    SpotifyEmulator,
    redirect_uri_problem,
)
from tests.emulators.spotify.auth import code_challenge  # noqa: E402
from tests.emulators.spotify.clients import authorization_code, log_in, oauth, spotify  # noqa: E402
from tests.emulators.spotify.ids import ISRC_PATTERN, snapshot_id  # noqa: E402
from tests.emulators.spotify.search import fold  # noqa: E402
from tests.emulators.spotify.validation import FIXTURES  # noqa: E402

pytest_plugins = ["tests.emulators.spotify.fixtures"]

REPO = Path(__file__).resolve().parent.parent
RECORDED = FIXTURES / "spotifyaio"
JAVA = FIXTURES / "spotify-web-api-java"


def recorded(name: str, folder: Path = RECORDED) -> Any:
    return json.loads((folder / name).read_text("utf-8"))


def uris_of(tracks: list[Any]) -> list[str]:
    return [t.uri for t in tracks]


def plain(emu: SpotifyEmulator, manager: Any) -> Any:
    """spotipy on a plain requests.Session: no urllib3 Retry, so errors keep status+headers."""
    return spotify(emu, manager, requests_session=requests.Session())


def add_in_chunks(sp: Any, playlist_id: str, uris: list[str], position: int | None = None) -> list:
    """What the genred plugin must do: `{"uris": [...]}` bodies of ≤ 100 (see README)."""
    snapshots = []
    for start in range(0, len(uris), 100):
        payload: dict[str, Any] = {"uris": uris[start : start + 100]}
        if position is not None:
            payload["position"] = position + start
        snapshots.append(sp._post(f"playlists/{playlist_id}/items", payload=payload))
    return snapshots


def all_items(sp: Any, playlist_id: str) -> list[str]:
    page = sp.playlist_items(playlist_id, limit=50)
    uris = []
    while page:
        uris += [row["item"]["uri"] for row in page["items"]]
        page = sp.next(page)
    return uris


@pytest.fixture
def tracks(spotify_emulator: SpotifyEmulator) -> list[Any]:
    """300 catalogue tracks in a fixed order."""
    return list(spotify_emulator.catalogue.tracks.values())[:300]


# -- catalogue -------------------------------------------------------------------------------


def test_catalogue_ids_isrcs_and_durations_are_stable(spotify_catalogue: Catalogue) -> None:
    small_a = Catalogue.from_freemusicc(limit=200)
    small_b = Catalogue.from_freemusicc(limit=200)
    assert list(small_a.tracks) == list(small_b.tracks)
    assert [t.isrc for t in small_a.tracks.values()] == [t.isrc for t in small_b.tracks.values()]
    first = spotify_catalogue.by_source("hprccmix001", 0)
    assert first == small_a.by_source("hprccmix001", 0)
    assert (first.name, first.duration_ms // 1000, first.isrc) == ("#CCmixtape 1", 2568, first.isrc)
    assert re.fullmatch(r"[0-9A-Za-z]{22}", first.id)
    assert len(spotify_catalogue) == 21_502
    with_isrc = [t for t in spotify_catalogue.tracks.values() if t.isrc]
    assert 0.68 < len(with_isrc) / len(spotify_catalogue) < 0.72
    assert all(ISRC_PATTERN.fullmatch(t.isrc) for t in with_isrc)
    # A recording re-released on a compilation shares its ISRC; distinct recordings do not.
    shared = [
        isrc for isrc in {t.isrc for t in with_isrc} if len(spotify_catalogue.by_isrc(isrc)) > 1
    ]
    for isrc in shared[:50]:
        same = spotify_catalogue.by_isrc(isrc)
        names = {(fold(spotify_catalogue.artist_names(t)[0]), fold(t.name)) for t in same}
        assert len(names) == 1
    assert {a.album_type for a in spotify_catalogue.albums.values()} == {
        "album",
        "single",
        "compilation",
    }


def test_absent_fraction_marks_tracks_absent() -> None:
    cat = Catalogue.from_freemusicc(limit=1000, absent_fraction=0.25)
    assert 200 < len(cat.absent) < 300
    gone = next(iter(cat.absent))
    assert gone not in {t.id for t in cat.search(cat.tracks[gone].name)}


# -- recorded shapes -------------------------------------------------------------------------


def test_answers_have_the_recorded_key_sets(spotify_emulator, spotify_client, tracks) -> None:
    emu, sp = spotify_emulator, spotify_client
    assert set(sp.me()) == set(recorded("current_user.json"))
    created = sp.current_user_playlist_create("Shapes", public=False)
    assert set(recorded("new_playlist.json")) <= set(created)
    assert set(created["tracks"]) == set(recorded("new_playlist.json")["tracks"])
    added = add_in_chunks(sp, created["id"], uris_of(tracks[:2]))[0]
    assert set(added) == set(recorded("playlist_update_items.json"))
    rows = sp.playlist_items(created["id"])
    rec_rows = recorded("playlist_items.json")
    assert set(rows) == set(rec_rows)
    assert set(rows["items"][0]) == set(rec_rows["items"][0])
    assert set(rows["items"][0]["item"]) == set(rec_rows["items"][0]["item"])
    assert set(rows["items"][0]["item"]["album"]) == set(rec_rows["items"][0]["item"]["album"])
    assert rows["items"][0]["track"] == rows["items"][0]["item"]
    mine = sp.current_user_playlists()
    rec_mine = recorded("current_user_playlist_1.json")
    assert set(mine) == set(rec_mine)
    assert set(mine["items"][0]) == set(rec_mine["items"][0])
    name = tracks[0].name
    hit = sp.search(f'track:"{name}"', limit=1)["tracks"]
    rec_search = recorded("search.json")["tracks"]
    assert set(hit) == set(rec_search)
    assert set(hit["items"][0]) == set(rec_search["items"][0])
    assert set(hit["items"][0]["album"]) == set(rec_search["items"][0]["album"])
    snap = created["snapshot_id"]
    assert len(snap) == 32 and snap.startswith("AAAAA") and snap == snapshot_id(created["id"], 1)
    assert emu.violations() == []


def test_error_and_token_bodies_match_the_recordings(spotify_emulator) -> None:
    emu = spotify_emulator
    emu.faults.add(FaultRule.throttle("/v1/me"))
    token, refresh = emu.auth.issue_tokens(emu.client_id, ["user-read-private"])
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{emu.api_url}/me", headers=bearer).json() == recorded("rate_limit.json")
    missing = requests.get(f"{emu.api_url}/playlists/{'A' * 22}", headers=bearer)
    assert (missing.status_code, missing.json()) == (404, recorded("playlist_not_found.json"))
    bad_client = requests.post(
        emu.token_url, data={"grant_type": "client_credentials"}, auth=("nobody", "x")
    )
    assert (bad_client.status_code, bad_client.json()) == (
        400,
        recorded("auth-invalid-client.json", JAVA),
    )
    refreshed = requests.post(
        emu.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(emu.client_id, emu.client_secret),
    ).json()
    assert set(refreshed) == set(recorded("AuthorizationCodeRefresh.json", JAVA))
    creds = requests.post(
        emu.token_url,
        data={"grant_type": "client_credentials"},
        auth=(emu.client_id, emu.client_secret),
    ).json()
    assert set(creds) == set(recorded("ClientCredentials.json", JAVA))
    # The 404 is a real answer the spec does not list for GET /playlists/{id}.
    assert [(v.status, v.error) for v in emu.violations()] == [(404, "ResponseNotFound")]


# -- OAuth -----------------------------------------------------------------------------------


def test_authorization_code_flow_with_client_secret(spotify_emulator) -> None:
    emu = spotify_emulator
    manager = oauth(emu, state="xyz")
    code = authorization_code(manager)
    authorize = emu.requests[-1]
    assert (authorize.path, authorize.status) == ("/authorize", 302)
    assert authorize.query["redirect_uri"] == ["http://127.0.0.1:8888/callback"]
    location = authorize.response_headers["Location"]
    assert location == f"http://127.0.0.1:8888/callback?code={code}&state=xyz"
    manager.get_access_token(code, as_dict=False, check_cache=False)
    token_request = emu.requests[-1]
    assert token_request.authorization == "Basic"
    assert token_request.body["grant_type"] == "authorization_code"
    assert token_request.body["code"] == code
    assert token_request.body["redirect_uri"] == "http://127.0.0.1:8888/callback"
    assert set(token_request.response) == set(recorded("AuthorizationCode.json", JAVA))
    assert token_request.response["scope"].split() == manager.scope.split()
    sp = spotify(emu, manager)
    assert sp.me()["id"] == "1112264649"
    assert emu.requests[-1].raw_path == "/v1/me/" and emu.requests[-1].path == "/v1/me"
    # A code works once.
    with pytest.raises(SpotifyOauthError) as reused:
        manager.get_access_token(code, as_dict=False, check_cache=False)
    assert (reused.value.error, reused.value.error_description) == (
        "invalid_grant",
        "Invalid authorization code",
    )
    assert emu.violations() == []


def test_spotipy_local_redirect_server_gets_the_code(spotify_emulator, monkeypatch) -> None:
    """spotipy's own path: it opens the browser and listens on the loopback redirect port."""
    emu = spotify_emulator
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redirect = f"http://127.0.0.1:{port}/callback"
    emu.auth.add_redirect_uri(emu.client_id, redirect)
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}).start()
        return True

    monkeypatch.setattr("spotipy.oauth2.webbrowser.open", browser)
    manager = oauth(emu, redirect_uri=redirect)
    manager.open_browser = True
    token = manager.get_access_token(as_dict=False)
    assert opened and opened[0].startswith(emu.authorize_url)
    assert token == emu.auth.events[-1].access_token
    assert spotify(emu, manager).me()["id"] == "1112264649"


def test_pkce_flow_and_refresh(spotify_emulator) -> None:
    emu = spotify_emulator
    manager = oauth(emu, pkce=True)
    info = log_in(manager)
    authorize, token_request = emu.requests[-2], emu.requests[-1]
    assert authorize.query["code_challenge_method"] == ["S256"]
    assert token_request.authorization == ""  # no client secret anywhere
    assert "client_secret" not in token_request.body
    verifier = token_request.body["code_verifier"]
    assert authorize.query["code_challenge"] == [code_challenge(verifier)]
    assert token_request.body["client_id"] == emu.client_id
    sp = spotify(emu, manager)
    assert sp.me()["display_name"] == "Joost Lekkerkerker"
    first_refresh = info["refresh_token"]
    refreshed = manager.refresh_access_token(first_refresh)
    refresh_request = emu.requests[-1]
    assert refresh_request.body == {
        "refresh_token": first_refresh,
        "grant_type": "refresh_token",
        "client_id": emu.client_id,
    }
    assert set(refresh_request.response) == set(recorded("AuthorizationCodePKCERefresh.json", JAVA))
    assert refreshed["refresh_token"] != first_refresh  # a PKCE refresh rotates it
    assert refreshed["access_token"] != info["access_token"]
    assert sp.me()["id"] == "1112264649"
    assert emu.requests[-1].authorization == "Bearer"
    with pytest.raises(SpotifyOauthError) as old:
        manager.refresh_access_token(first_refresh)
    assert (old.value.error, old.value.error_description) == (
        "invalid_grant",
        "Invalid refresh token",
    )
    assert emu.violations() == []


def test_pkce_wrong_verifier_is_refused(spotify_emulator) -> None:
    emu = spotify_emulator
    manager = oauth(emu, pkce=True)
    code = authorization_code(manager)
    manager.code_verifier = "not-the-verifier-" + "x" * 40
    with pytest.raises(SpotifyOauthError) as refused:
        manager.get_access_token(code, check_cache=False)
    assert (refused.value.error, refused.value.error_description) == (
        "invalid_grant",
        "code_verifier was incorrect",
    )
    assert emu.token_requests()[-1].status == 400


def test_redirect_uri_rules(spotify_emulator) -> None:
    emu = spotify_emulator
    assert redirect_uri_problem("http://127.0.0.1:8888/callback") is None
    assert redirect_uri_problem("http://[::1]:8888/callback") is None
    assert redirect_uri_problem("https://genred.example/callback") is None
    assert "localhost" in redirect_uri_problem("http://localhost:8888/callback")
    assert "loopback" in redirect_uri_problem("http://192.168.1.2:8888/callback")
    with pytest.raises(ValueError, match="not secure"):
        emu.auth.register_client("other", "s", ["http://localhost:8888/callback"])
    for uri, text in (
        ("http://localhost:8888/callback", "INVALID_CLIENT: Insecure redirect URI"),
        ("http://127.0.0.1:9999/callback", "INVALID_CLIENT: Invalid redirect URI"),
    ):
        with pytest.raises(RuntimeError, match="authorize answered 400") as raised:
            authorization_code(oauth(emu, redirect_uri=uri))
        assert text in str(raised.value)
    emu.auth.approve = False
    with pytest.raises(SpotifyOauthError) as denied:
        authorization_code(oauth(emu))
    assert denied.value.error == "access_denied"
    assert [r.status for r in emu.requests] == [400, 400, 302]


def test_expired_access_token_gives_401_then_refresh_works(spotify_emulator, spotify_oauth):
    emu, manager = spotify_emulator, spotify_oauth
    sp = spotify(emu, manager)
    assert sp.me()["id"] == "1112264649"
    assert emu.auth.expire_access_tokens() == 1
    with pytest.raises(SpotifyException) as expired:
        sp.me()
    assert expired.value.http_status == 401
    assert "The access token expired" in expired.value.msg
    assert emu.requests[-1].response_headers["WWW-Authenticate"] == (
        'Bearer realm="spotify", error="invalid_token", '
        'error_description="The access token expired"'
    )
    # spotipy trusts its own expires_at: it does not refresh on a 401. The caller must.
    assert emu.token_requests()[-1].body["grant_type"] == "authorization_code"
    cached = manager.cache_handler.get_cached_token()
    manager.refresh_access_token(cached["refresh_token"])
    assert emu.token_requests()[-1].body["grant_type"] == "refresh_token"
    assert emu.token_requests()[-1].authorization == "Basic"
    assert "refresh_token" not in emu.token_requests()[-1].response  # not rotated
    assert sp.me()["id"] == "1112264649"
    assert manager.cache_handler.get_cached_token()["refresh_token"] == cached["refresh_token"]
    assert emu.violations() == []


def test_access_token_lifetime_is_settable(spotify_catalogue) -> None:
    """The server's lifetime and the advertised expires_in are separate: here tokens die
    after 0.3 s while spotipy, told 3600, keeps using them."""
    with SpotifyEmulator(
        spotify_catalogue.copy(), access_token_lifetime_s=0.3, expires_in=3600
    ) as emu:
        manager = oauth(emu)
        assert log_in(manager)["expires_in"] == 3600
        sp = spotify(emu, manager)
        assert sp.me()["id"] == "1112264649"
        time.sleep(0.4)
        with pytest.raises(SpotifyException) as expired:
            sp.me()
        assert expired.value.http_status == 401 and "The access token expired" in expired.value.msg
        assert [r.status for r in emu.api_requests()] == [200, 401]


def test_short_token_lifetime_makes_spotipy_refresh_before_every_call(spotify_emulator) -> None:
    emu = spotify_emulator
    emu.auth.expires_in = 30  # spotipy refreshes whatever expires within 60 s
    manager = oauth(emu)
    log_in(manager)
    sp = spotify(emu, manager)
    for _ in range(3):
        sp.me()
    grant_types = [r.body["grant_type"] for r in emu.token_requests()]
    # Twice per call: validate_token() refreshes, then get_access_token() finds the new
    # token "expired" too (it also has < 60 s) and refreshes again.
    assert grant_types == ["authorization_code"] + ["refresh_token"] * 6
    assert len(emu.api_requests()) == 3


def test_revoked_refresh_token_gives_invalid_grant(spotify_emulator, spotify_oauth) -> None:
    emu, manager = spotify_emulator, spotify_oauth
    cached = manager.cache_handler.get_cached_token()
    emu.auth.revoke_refresh_token(cached["refresh_token"])
    with pytest.raises(SpotifyOauthError) as revoked:
        manager.refresh_access_token(cached["refresh_token"])
    assert (revoked.value.error, revoked.value.error_description) == (
        "invalid_grant",
        "Refresh token revoked",
    )
    # The same through spotipy's own refresh: its cache says the token is about to expire.
    cached["expires_at"] = int(time.time())
    manager.cache_handler.save_token_to_cache(cached)
    with pytest.raises(SpotifyOauthError, match="Refresh token revoked"):
        spotify(emu, manager).me()
    assert [r.status for r in emu.token_requests()] == [200, 400, 400]
    assert emu.api_requests() == []  # it never got as far as the API


def test_expired_refresh_token(spotify_emulator, spotify_oauth) -> None:
    emu, manager = spotify_emulator, spotify_oauth
    emu.auth.expire_refresh_tokens()
    with pytest.raises(SpotifyOauthError) as expired:
        manager.refresh_access_token(manager.cache_handler.get_cached_token()["refresh_token"])
    assert expired.value.error == "invalid_grant"


# -- playlists -------------------------------------------------------------------------------


def test_create_add_250_in_chunks_replace_reorder_remove(
    spotify_emulator, spotify_client, tracks
) -> None:
    emu, sp = spotify_emulator, spotify_client
    created = sp.current_user_playlist_create("genred: Dub", public=False, description="auto")
    pid = created["id"]
    assert (created["name"], created["public"], created["items"]["total"]) == (
        "genred: Dub",
        False,
        0,
    )
    assert created["owner"]["id"] == "1112264649"
    emu.clear_requests()
    wanted = uris_of(tracks[:250])
    snapshots = add_in_chunks(sp, pid, wanted)
    writes = emu.writes()
    assert [(w.method, w.path, w.status) for w in writes] == [
        ("POST", f"/v1/playlists/{pid}/items", 201)
    ] * 3
    assert [len(w.body["uris"]) for w in writes] == [100, 100, 50]
    assert [w.body["uris"] for w in writes] == [wanted[:100], wanted[100:200], wanted[200:]]
    ids = [s["snapshot_id"] for s in snapshots]
    assert len({*ids, created["snapshot_id"]}) == 4
    assert all_items(sp, pid) == wanted
    pages = [r for r in emu.requests if r.method == "GET" and r.path.endswith("/items")]
    assert [r.query["offset"] for r in pages] == [["0"], ["50"], ["100"], ["150"], ["200"]]
    full = sp.playlist(pid)
    assert full["items"]["total"] == 250 and full["snapshot_id"] == ids[-1]
    assert len(full["items"]["items"]) == 100

    # Insert two at position 1.
    add_in_chunks(sp, pid, uris_of(tracks[250:252]), position=1)
    now = all_items(sp, pid)
    assert now[:4] == [wanted[0], tracks[250].uri, tracks[251].uri, wanted[1]]
    assert len(now) == 252

    # Replace: exactly these, in this order.
    five = uris_of(tracks[260:265])
    sp.playlist_replace_items(pid, five)
    assert emu.writes()[-1].body == {"uris": five}
    assert all_items(sp, pid) == five

    # Reorder: move items 0-1 to the end (insert_before indexes the playlist before the move).
    snap = sp.playlist_reorder_items(pid, range_start=0, insert_before=5, range_length=2)
    assert emu.writes()[-1].body == {"range_start": 0, "range_length": 2, "insert_before": 5}
    assert all_items(sp, pid) == five[2:] + five[:2]
    sp.playlist_reorder_items(pid, range_start=4, insert_before=0, snapshot_id=snap["snapshot_id"])
    assert all_items(sp, pid) == [five[1], five[2], five[3], five[4], five[0]]

    # Remove: all occurrences of one, a specific occurrence of another.
    add_in_chunks(sp, pid, [five[2]])  # now twice: positions 1 and 5
    sp.playlist_remove_specific_occurrences_of_items(pid, [{"uri": five[2], "positions": [5]}])
    assert all_items(sp, pid) == [five[1], five[2], five[3], five[4], five[0]]
    sp.playlist_remove_all_occurrences_of_items(pid, [five[1], five[4]])
    assert emu.writes()[-1].body == {"items": [{"uri": five[1]}, {"uri": five[4]}]}
    assert all_items(sp, pid) == [five[2], five[3], five[0]]

    # Details and the user's playlist list.
    sp.playlist_change_details(pid, name="genred: Dub (2)", description="new")
    assert emu.writes()[-1].body == {"name": "genred: Dub (2)", "description": "new"}
    mine = sp.current_user_playlists()
    assert mine["items"][0]["id"] == pid
    assert (mine["items"][0]["name"], mine["items"][0]["items"]["total"]) == ("genred: Dub (2)", 3)
    assert sp.playlist(pid, fields="name,items.total") == {
        "name": "genred: Dub (2)",
        "items": {"total": 3},
    }
    # Only the fields-filtered answer broke the spec (required keys left out), as expected.
    assert emu.violations() == []
    assert {v.expected for v in emu.violations(include_expected=True)} == {"fields"}


def test_second_push_sends_no_write(spotify_emulator, spotify_client, tracks) -> None:
    """A minimal sync as the plugin will do it: write only when the contents differ."""
    emu, sp = spotify_emulator, spotify_client
    pid = sp.current_user_playlist_create("genred: Jazz", public=False)["id"]
    wanted = uris_of(tracks[:120])
    emu.clear_requests()

    def push() -> None:
        if all_items(sp, pid) != wanted:
            sp.playlist_replace_items(pid, wanted[:100])
            add_in_chunks(sp, pid, wanted[100:])

    push()
    assert [(w.method, len(w.body["uris"])) for w in emu.writes()] == [("PUT", 100), ("POST", 20)]
    emu.clear_requests()
    push()
    assert emu.writes() == []
    assert [r.method for r in emu.requests] == ["GET", "GET", "GET"]
    assert emu.violations() == []


def test_playlist_add_items_sends_a_bare_array_which_spotify_rejects(
    spotify_emulator, spotify_client, tracks
) -> None:
    """spotipy 2.26 `playlist_add_items` posts the list itself; the spec wants an object."""
    emu, sp = spotify_emulator, spotify_client
    pid = sp.current_user_playlist_create("bare", public=False)["id"]
    before = sp.playlist(pid)["snapshot_id"]
    emu.clear_requests()
    with pytest.raises(SpotifyException) as rejected:
        sp.playlist_add_items(pid, uris_of(tracks[:3]), position=0)
    assert rejected.value.http_status == 400 and "No uris provided" in rejected.value.msg
    sent = emu.requests[0]
    assert (sent.method, sent.path, sent.query) == (
        "POST",
        f"/v1/playlists/{pid}/items",
        {"position": ["0"]},
    )
    assert sent.body == uris_of(tracks[:3])  # a JSON array, not {"uris": [...]}
    assert sent.content_type == "application/json"
    assert sp.playlist(pid)["snapshot_id"] == before
    problems = [(v.kind, v.error) for v in emu.violations()]
    assert problems == [("request", "InvalidRequestBody"), ("response", "ResponseNotFound")]
    assert "is not of type 'object'" in emu.violations()[0].message

    # With bare_array_body="accept" the emulator adds them, and still reports the body.
    emu.bare_array_body = "accept"
    emu.clear_violations()
    sp.playlist_add_items(pid, uris_of(tracks[:3]))
    assert all_items(sp, pid) == uris_of(tracks[:3])
    assert [(v.kind, v.error) for v in emu.violations()] == [("request", "InvalidRequestBody")]


def test_item_limits_and_bad_uris(spotify_emulator, spotify_client, tracks) -> None:
    emu, sp = spotify_emulator, spotify_client
    pid = sp.current_user_playlist_create("limits", public=False)["id"]
    cases = [
        ({"uris": uris_of(tracks[:101])}, "Too many ids requested"),
        ({"uris": []}, "No uris provided"),
        ({"uris": ["spotify:album:" + tracks[0].album_id]}, "Invalid base62 id"),
        ({"uris": ["spotify:track:" + "0" * 22]}, "Payload contains a non-existing ID"),
        ({"uris": [tracks[0].uri], "position": 5}, "Index out of bounds"),
    ]
    for payload, message in cases:
        with pytest.raises(SpotifyException) as refused:
            sp._post(f"playlists/{pid}/items", payload=payload)
        assert (refused.value.http_status, refused.value.msg.split("\n ")[-1]) == (400, message)
    with pytest.raises(SpotifyException) as old_key:
        sp._delete(f"playlists/{pid}/items", payload={"tracks": [{"uri": tracks[0].uri}]})
    assert "No uris provided" in old_key.value.msg
    # Query-string form, and uris in the query win over the body.
    sp._post(f"playlists/{pid}/items", payload={"uris": [tracks[5].uri]}, uris=tracks[1].uri)
    assert all_items(sp, pid) == [tracks[1].uri]
    assert sp.playlist(pid)["items"]["total"] == 1
    # 400s are real answers the spec does not list: one response violation each; the old
    # DELETE body ({"tracks": …}) also breaks the spec's request schema (items required).
    found = [(v.kind, v.status, v.error) for v in emu.violations()]
    assert found == [("response", 400, "ResponseNotFound")] * 5 + [
        ("request", None, "InvalidRequestBody"),
        ("response", 400, "ResponseNotFound"),
    ]


def test_other_users_playlists(spotify_emulator, spotify_client, tracks) -> None:
    emu, sp = spotify_emulator, spotify_client
    emu.add_user("someone", "Someone Else")
    theirs = emu.create_playlist("Theirs", [t.id for t in tracks[:2]], owner_id="someone")
    meta = sp.playlist(theirs.id)
    assert meta["owner"]["id"] == "someone" and "items" not in meta and "tracks" not in meta
    with pytest.raises(SpotifyException) as forbidden:
        sp.playlist_items(theirs.id)
    assert forbidden.value.http_status == 403
    with pytest.raises(SpotifyException):
        add_in_chunks(sp, theirs.id, [tracks[3].uri])
    assert [t.track_id for t in theirs.entries] == [tracks[0].id, tracks[1].id]
    # Followed (spotipy 2.26: PUT /me/library?uris=…), it shows in /me/playlists.
    assert sp.current_user_playlists()["total"] == 0
    sp.current_user_follow_playlist(theirs.id)
    assert (emu.requests[-1].method, emu.requests[-1].path) == ("PUT", "/v1/me/library")
    assert emu.requests[-1].query == {"uris": [theirs.uri]}
    listed = sp.current_user_playlists()["items"]
    assert [(p["id"], p["owner"]["display_name"], p["items"]["total"]) for p in listed] == [
        (theirs.id, "Someone Else", 2)
    ]
    assert emu.violations() == []  # 403 is in these operations' responses


def test_me_playlists_paging(spotify_emulator, spotify_client) -> None:
    emu, sp = spotify_emulator, spotify_client
    made = [sp.current_user_playlist_create(f"P{n}", public=False)["id"] for n in range(7)]
    first = sp.current_user_playlists(limit=3)
    assert (first["total"], first["limit"], first["offset"]) == (7, 3, 0)
    seen = []
    page = first
    while page:
        seen += [p["id"] for p in page["items"]]
        page = sp.next(page)
    assert seen == made[::-1]  # newest first
    sp.current_user_unfollow_playlist(made[0])
    assert sp.current_user_playlists()["total"] == 6
    assert sp.playlist(made[0])["id"] == made[0]  # unfollowed, not gone
    assert emu.violations() == []


# -- tracks and search -----------------------------------------------------------------------


def test_get_track_and_absent_tracks(spotify_emulator, spotify_client) -> None:
    emu, sp = spotify_emulator, spotify_client
    track = emu.catalogue.by_source("hprccmix001", 0)
    got = sp.track(track.id)
    assert (got["name"], got["duration_ms"], got["external_ids"]) == (
        "#CCmixtape 1",
        track.duration_ms,
        {"isrc": track.isrc},
    )
    assert got["artists"][0]["name"] == "#CCmixtape"
    assert (got["album"]["name"], got["album"]["release_date"]) == ("#CCmixtape 1", "2013")
    emu.catalogue.mark_absent(track.id)
    with pytest.raises(SpotifyException) as absent:
        sp.track(track.id)
    assert (absent.value.http_status, "Resource not found" in absent.value.msg) == (404, True)
    assert sp.search(f"isrc:{track.isrc}")["tracks"]["total"] == 0
    emu.catalogue.mark_present(track.id)
    assert sp.search(f"isrc:{track.isrc}")["tracks"]["items"][0]["id"] == track.id
    added = emu.catalogue.add_track(
        "Brand New Song", ["Test Artist", "Guest"], "Test Album", year=2024, isrc="QZABC2400001"
    )
    found = sp.search('track:"brand new song" artist:guest year:2024')["tracks"]["items"]
    assert [t["id"] for t in found] == [added.id]
    assert [a["name"] for a in found[0]["artists"]] == ["Test Artist", "Guest"]
    emu.catalogue.remove_track(added.id)
    assert sp.search("isrc:QZABC2400001")["tracks"]["total"] == 0
    assert {(v.status, v.error) for v in emu.violations()} == {(404, "ResponseNotFound")}


def test_search_field_filters(spotify_emulator, spotify_client) -> None:
    emu, sp = spotify_emulator, spotify_client
    cat = emu.catalogue
    target = cat.by_source("GrahamCastronovo-ACryIntoTheCosmos", 0)
    artist = cat.artist_names(target)[0]
    album = cat.albums[target.album_id]

    def ids(q: str, **kw: Any) -> list[str]:
        return [t["id"] for t in sp.search(q, **kw)["tracks"]["items"]]

    assert ids(f"isrc:{target.isrc}") == [target.id]
    assert ids(f'track:"{target.name}" artist:"{artist}"') == [target.id]
    by_artist = sp.search(f'artist:"{artist}"', limit=10)["tracks"]
    everything = {t.id for t in cat.find(artist=artist)}
    assert by_artist["total"] == len(everything)
    assert {t["id"] for t in by_artist["items"]} <= everything
    on_album = set(ids(f'album:"{album.name}" artist:"{artist}"'))
    assert target.id in on_album
    assert all(cat.tracks[i].album_id == album.id for i in on_album)
    assert target.id in ids(f'artist:"{artist}" year:{album.year}')
    assert target.id in ids(f'artist:"{artist}" year:{album.year - 1}-{album.year + 1}')
    assert ids(f'artist:"{artist}" year:1950') == []
    assert ids(f"{target.name} {artist}")[0] == target.id  # free keywords, exact title first
    assert ids("upc:609008295069") == []  # an album-only filter
    search_requests = [r for r in emu.requests if r.path == "/v1/search"]
    assert search_requests[0].query == {
        "q": [f"isrc:{target.isrc}"],
        "limit": ["10"],
        "offset": ["0"],
        "type": ["track"],
    }
    assert emu.violations() == []


def test_search_cap_of_ten_and_paging(spotify_emulator, spotify_client) -> None:
    emu, sp = spotify_emulator, spotify_client
    page = sp.search("love")["tracks"]
    assert (page["limit"], len(page["items"])) == (10, 10) and page["total"] > 100
    assert page["next"] == (
        f"{emu.api_url}/search?offset=10&limit=10&query=love&type=track"
    )  # the real API writes query=, not q=, in its links
    second = sp.next(page)["tracks"]
    assert second["offset"] == 10 and not {t["id"] for t in second["items"]} & {
        t["id"] for t in page["items"]
    }
    # Following `next` sends `query=` without `q`, which the spec calls a violation.
    assert [(v.kind, v.error) for v in emu.violations()] == [
        ("request", "MissingRequiredParameter")
    ]
    emu.clear_violations()
    for kwargs, message in (
        ({"limit": 11}, "Invalid limit"),
        ({"limit": 50}, "Invalid limit"),
        ({"limit": 10, "offset": 995}, "Limit + Offset exceeds maximum of 1000"),
    ):
        with pytest.raises(SpotifyException) as refused:
            sp.search("love", **kwargs)
        assert refused.value.http_status == 400 and message in refused.value.msg
    assert [(v.kind, v.error) for v in emu.violations() if v.kind == "request"] == [
        ("request", "InvalidParameter"),
        ("request", "InvalidParameter"),
    ]
    no_limit = requests.get(
        f"{emu.api_url}/search",
        params={"q": "love", "type": "track"},
        headers={"Authorization": _bearer(sp)},
    ).json()
    assert no_limit["tracks"]["limit"] == 5  # Development Mode's default


def _bearer(sp: Any) -> str:
    return sp._auth_headers()["Authorization"]


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "headers", "body"),
    [
        (FaultRule.throttle("/v1/me", retry_after=1), {"Retry-After": "1"}, "rate_limit"),
        (FaultRule.throttle("/v1/me", retry_after=3600), {"Retry-After": "3600"}, "rate_limit"),
        (FaultRule.throttle("/v1/me", retry_after=None), {}, "rate_limit"),
        (FaultRule.throttle("/v1/me", retry_after=None, empty_body=True), {}, "empty"),
    ],
    ids=["retry-after-1", "retry-after-3600", "no-header", "empty-body"],
)
def test_429_kinds(spotify_emulator, spotify_oauth, rule, headers, body) -> None:
    emu = spotify_emulator
    emu.faults.add(rule)
    with pytest.raises(SpotifyException) as raised:
        plain(emu, spotify_oauth).me()
    error = raised.value
    assert error.http_status == 429
    assert error.headers.get("Retry-After") == headers.get("Retry-After")
    record = emu.requests[-1]
    assert (record.status, record.fault) == (429, "429")
    if body == "empty":
        assert error.headers["Content-Length"] == "0" and "Content-Type" not in error.headers
        assert error.msg.endswith("None")
        assert [(v.error, v.expected) for v in emu.violations(include_expected=True)] == [
            ("MissingData", "fault:429")
        ]
    else:
        assert record.response == recorded("rate_limit.json")
        assert error.msg.endswith("API rate limit exceeded")
        assert emu.violations(include_expected=True) == []
    assert plain(emu, spotify_oauth).me()["id"] == "1112264649"  # times=1: then it passes


def test_429_through_spotipys_own_session_loses_the_headers(spotify_emulator, spotify_oauth):
    """retries=0/status_retries=0 still mounts urllib3's Retry with status_forcelist: the 429
    becomes RetryError, spotipy raises 429 "Max Retries" with no headers (and does not sleep
    for Retry-After: 3600, since no retry is left)."""
    emu = spotify_emulator
    emu.faults.add(FaultRule.throttle("/v1/me", retry_after=3600))
    started = time.monotonic()
    with pytest.raises(SpotifyException) as raised:
        spotify(emu, spotify_oauth).me()
    assert time.monotonic() - started < 2
    assert raised.value.http_status == 429
    assert "Max Retries" in raised.value.msg
    assert raised.value.headers == {}
    assert str(raised.value.reason) == "too many 429 error responses"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx(spotify_emulator, spotify_oauth, tracks, status) -> None:
    emu = spotify_emulator
    sp = plain(emu, spotify_oauth)
    pid = sp.current_user_playlist_create("5xx", public=False)["id"]
    emu.faults.add(
        FaultRule.server_error("/v1/playlists/*/items", status=status, methods=("POST",))
    )
    with pytest.raises(SpotifyException) as raised:
        add_in_chunks(sp, pid, uris_of(tracks[:2]))
    assert raised.value.http_status == status
    assert emu.requests[-1].response["error"]["status"] == status
    assert sp.playlist(pid)["items"]["total"] == 0  # a faulted write changes nothing
    # Through spotipy's session the 5xx turns into a "429" too.
    emu.faults.add(FaultRule.server_error("/v1/me", status=status))
    with pytest.raises(SpotifyException) as hidden:
        spotify(emu, spotify_oauth).me()
    assert (hidden.value.http_status, str(hidden.value.reason)) == (
        429,
        f"too many {status} error responses",
    )
    expected = [(v.status, v.error, v.expected) for v in emu.violations(include_expected=True)]
    assert expected == [(status, "ResponseNotFound", "fault:5xx")] * 2
    assert emu.violations() == []


def test_dropped_connection(spotify_emulator, spotify_oauth) -> None:
    emu = spotify_emulator
    emu.faults.add(FaultRule.drop("/v1/me", after=1))
    sp = plain(emu, spotify_oauth)
    assert sp.me()["id"] == "1112264649"  # after=1: the first passes
    with pytest.raises(requests.exceptions.ConnectionError):
        sp.me()
    assert sp.me()["id"] == "1112264649"
    assert [(r.status, r.fault) for r in emu.api_requests()] == [
        (200, None),
        (0, "drop"),
        (200, None),
    ]
    assert emu.violations(include_expected=True) == []


def test_token_revoked_mid_session(spotify_emulator, spotify_oauth, tracks) -> None:
    emu, manager = spotify_emulator, spotify_oauth
    sp = plain(emu, manager)
    pid = sp.current_user_playlist_create("revoked", public=False)["id"]
    emu.faults.add(FaultRule.revoke_token("/v1/playlists/*/items"))
    with pytest.raises(SpotifyException) as raised:
        add_in_chunks(sp, pid, uris_of(tracks[:2]))
    assert raised.value.http_status == 401 and "Invalid access token" in raised.value.msg
    with pytest.raises(SpotifyException):
        sp.me()  # the grant is gone: every token of it
    with pytest.raises(SpotifyOauthError) as refresh:
        manager.refresh_access_token(manager.cache_handler.get_cached_token()["refresh_token"])
    assert refresh.value.error_description == "Refresh token revoked"
    assert emu.playlists[pid].entries == []


def test_fault_rules_match_by_pattern_method_and_count(spotify_emulator, spotify_oauth) -> None:
    emu = spotify_emulator
    emu.faults.add(
        FaultRule.throttle("/v1/search", times=2),
        FaultRule.server_error("/api/token", methods=("POST",)),
    )
    sp = plain(emu, spotify_oauth)
    assert sp.me()["id"] == "1112264649"  # another path: no fault
    for _ in range(2):
        with pytest.raises(SpotifyException):
            sp.search("love")
    assert sp.search("love")["tracks"]["total"] > 0
    with pytest.raises(SpotifyOauthError):
        spotify_oauth.refresh_access_token(
            spotify_oauth.cache_handler.get_cached_token()["refresh_token"]
        )
    assert [r.fired for r in emu.faults.rules] == [2, 1]
    assert [(r.path, r.status, r.fault) for r in emu.requests[-5:]] == [
        ("/v1/me", 200, None),
        ("/v1/search", 429, "429"),
        ("/v1/search", 429, "429"),
        ("/v1/search", 200, None),
        ("/api/token", 500, "5xx"),
    ]


# -- validation ------------------------------------------------------------------------------


def test_validator_rejects_removed_paths(spotify_emulator, spotify_client) -> None:
    emu, sp = spotify_emulator, spotify_client
    validator = emu.validator
    headers = {"Content-Type": "application/json"}
    for method, path, body in (
        ("POST", "/v1/users/1112264649/playlists", b'{"name": "x"}'),
        ("GET", f"/v1/playlists/{'A' * 22}/tracks", b""),
        ("POST", f"/v1/playlists/{'A' * 22}/tracks", b'{"uris": []}'),
    ):
        assert [e for e, _ in validator.request_errors(method, path, [], headers, body)] == [
            "PathNotFound"
        ]
    assert validator.request_errors("POST", "/v1/me/playlists", [], headers, b'{"name": "x"}') == []
    # And the emulator answers them as the live API does for Development-Mode apps.
    with pytest.warns(DeprecationWarning), pytest.raises(SpotifyException) as removed:
        sp.user_playlist_create("1112264649", "old way")
    assert removed.value.http_status == 403 and "Forbidden" in removed.value.msg
    assert emu.playlists == {}
    pid = sp.current_user_playlist_create("new way", public=False)["id"]
    for method in ("get", "post", "put", "delete"):
        answer = requests.request(
            method, f"{emu.api_url}/playlists/{pid}/tracks", headers={"Authorization": _bearer(sp)}
        )
        assert (answer.status_code, answer.json()) == (
            403,
            {"error": {"status": 403, "message": "Forbidden"}},
        )
    found = [(v.kind, v.method, v.error) for v in emu.violations()]
    assert found == [
        ("request", "POST", "PathNotFound"),
        ("response", "POST", "PathNotFound"),
    ] + [
        (kind, m, "PathNotFound")
        for m in ("GET", "POST", "PUT", "DELETE")
        for kind in ("request", "response")
    ]


def test_recorded_responses_pass_the_patched_spec(spotify_emulator) -> None:
    validator = spotify_emulator.validator
    ok = {"Content-Type": "application/json"}
    for name, method, path, status in (
        ("current_user.json", "GET", "/v1/me", 200),
        ("search.json", "GET", "/v1/search", 200),
        ("playlist_items.json", "GET", f"/v1/playlists/{'A' * 22}/items", 200),
        ("new_playlist.json", "POST", "/v1/me/playlists", 201),
        ("playlist_update_items.json", "POST", f"/v1/playlists/{'A' * 22}/items", 201),
        ("rate_limit.json", "GET", "/v1/me", 429),
    ):
        query = [("q", "x"), ("type", "track")] if path == "/v1/search" else []
        body = (RECORDED / name).read_bytes()
        assert validator.response_errors(method, path, query, ok, b"", status, ok, body) == [], name
    # Without the discriminator patch the recorded playlist rows would fail: it is needed.
    mapping = validator.spec["components"]["schemas"]["PlaylistTrackObject"]["properties"]["item"]
    assert mapping["discriminator"]["mapping"] == {
        "track": "#/components/schemas/TrackObject",
        "episode": "#/components/schemas/EpisodeObject",
    }


def test_zero_violations_across_a_whole_session(spotify_emulator, tracks) -> None:
    emu = spotify_emulator
    for pkce in (False, True):
        manager = oauth(emu, pkce=pkce)
        log_in(manager)
        sp = spotify(emu, manager)
        sp.me()
        pid = sp.current_user_playlist_create("whole", public=pkce, description="x")["id"]
        add_in_chunks(sp, pid, uris_of(tracks[:230]))
        sp.playlist(pid)
        all_items(sp, pid)
        sp.playlist_replace_items(pid, uris_of(tracks[:10]))
        sp.playlist_reorder_items(pid, range_start=2, insert_before=0, range_length=3)
        sp.playlist_remove_all_occurrences_of_items(pid, uris_of(tracks[:2]))
        sp.playlist_change_details(pid, name="whole 2", public=False)
        sp.current_user_playlists(limit=50)
        sp.search(f'artist:"{emu.catalogue.artist_names(tracks[0])[0]}"', limit=5)
        sp.track(tracks[3].id)
        manager.refresh_access_token(manager.cache_handler.get_cached_token()["refresh_token"])
        sp.me()
        sp.current_user_unfollow_playlist(pid)
    assert len(emu.api_requests()) == 40
    assert {r.status for r in emu.api_requests()} == {200, 201}
    assert emu.violations(include_expected=True) == []


def test_standalone_server_prints_its_url_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.spotify", "--port", "0", "--tracks", "50"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        answer = requests.get(f"{url}/v1/me", timeout=5)
        assert (answer.status_code, answer.json()["error"]["message"]) == (401, "No token provided")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "50 tracks" in err and "0 spec violations" in err


# -- spotipy traps the genred plugin must avoid --------------------------------------------


def test_scope_change_makes_spotipy_fall_back_to_input(spotify_emulator, monkeypatch) -> None:
    """A cached token whose scope lacks a newly asked one is thrown away and spotipy starts a
    new authorization: with open_browser=False it prints the URL and calls input(); a daemon
    without a terminal gets EOFError (or blocks, with a terminal)."""
    emu = spotify_emulator
    narrow = oauth(emu, scope=["playlist-read-private"])
    log_in(narrow)
    wider = oauth(emu, cache_handler=narrow.cache_handler)  # the default, wider scope
    prompts: list[str] = []

    def no_terminal(prompt: str = "") -> str:
        prompts.append(prompt)
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    emu.clear_requests()
    with pytest.raises(EOFError):
        spotify(emu, wider).me()
    assert len(prompts) == 1 and prompts[0].startswith(
        f"Go to the following URL: {emu.authorize_url}"
    )
    assert emu.requests == []  # nothing reached the server: it wanted a human


def test_file_cache_is_not_written_atomically(spotify_emulator, tmp_path, monkeypatch) -> None:
    """CacheFileHandler opens the file with "w" (truncating it) before serialising: a failure
    while writing leaves an empty cache, and the next start has no refresh token (and goes
    to input(), as above)."""
    from spotipy.cache_handler import CacheFileHandler

    emu = spotify_emulator
    path = tmp_path / "token.json"
    manager = oauth(emu, cache_handler=CacheFileHandler(cache_path=str(path)))
    log_in(manager)
    assert json.loads(path.read_text())["refresh_token"]

    def disk_full(*args: Any, **kwargs: Any) -> str:
        raise OSError(28, "No space left on device")

    fake_json = SimpleNamespace(dumps=disk_full, loads=json.loads, JSONDecodeError=ValueError)
    monkeypatch.setattr("spotipy.cache_handler.json", fake_json)
    manager.refresh_access_token(manager.cache_handler.get_cached_token()["refresh_token"])
    assert path.read_text() == ""  # the good token is gone
    monkeypatch.undo()
    assert CacheFileHandler(cache_path=str(path)).get_cached_token() is None


def test_without_legacy_fields_and_with_a_fields_filter(spotify_emulator, spotify_client, tracks):
    emu, sp = spotify_emulator, spotify_client
    pid = sp.current_user_playlist_create("renamed", public=False)["id"]
    add_in_chunks(sp, pid, uris_of(tracks[:3]))
    emu.legacy_fields = False
    row = sp.playlist_items(pid)["items"][0]
    assert "track" not in row and row["item"]["uri"] == tracks[0].uri
    full = sp.playlist(pid)
    assert "tracks" not in full and full["items"]["total"] == 3
    assert "tracks" not in sp.current_user_playlists()["items"][0]
    cut = sp.playlist_items(pid, fields="total,items(item(name,uri))")
    assert cut == {
        "total": 3,
        "items": [{"item": {"name": t.name, "uri": t.uri}} for t in tracks[:3]],
    }
    assert emu.violations() == []
    assert [v.expected for v in emu.violations(include_expected=True)] == ["fields"]
