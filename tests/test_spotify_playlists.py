"""The `spotify` playlist target end to end: the real spotipy against the Spotify emulator,
through genred's playlist operations. What crossed the wire is asserted (the request log),
and every request and answer is checked against Spotify's OpenAPI spec."""

from __future__ import annotations

import builtins
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from genred.cli import cli
from genred.playlists import PlaylistContext, create, push_playlist, refine, refresh, show
from genred.store import playlists as q
from genred.testing import Harness
from genred_plugins.spotify.settings import SpotifySettings
from genred_plugins.spotify.target import SpotifyPlaylists
from genred_plugins.spotify.tokens import TokenFile, token_path
from tests.emulators.spotify import Catalogue, FaultRule, SpotifyEmulator
from tests.playlist_setup import (
    catalogue_records,
    context,
    decided,
    spotify_settings,
    spotify_target,
)


@pytest.fixture(autouse=True)
def no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon must never reach spotipy's input() fallback."""

    def refuse(prompt: str = "") -> str:
        raise AssertionError(f"input() was called: {prompt!r}")

    monkeypatch.setattr(builtins, "input", refuse)


@pytest.fixture(scope="module")
def spotify_catalogue() -> Catalogue:
    """The first 3,000 freemusi.cc rows (searches scan the catalogue: a small one is quick)."""
    return Catalogue.from_freemusicc(limit=3000)


@pytest.fixture
def spotify_emulator(spotify_catalogue: Catalogue) -> Iterator[SpotifyEmulator]:
    with SpotifyEmulator(spotify_catalogue.copy()) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def lib(
    tmp_path: Path, spotify_emulator: SpotifyEmulator, spotify_catalogue: Catalogue
) -> Iterator[tuple[Harness, SpotifyPlaylists, PlaylistContext]]:
    """600 library tracks that Spotify has (70 % with an ISRC), decided, and the target."""
    with Harness(tmp_path) as harness:
        harness.add_tracks(catalogue_records(spotify_catalogue, 600), source="folder")
        decided(harness)
        target = spotify_target(harness, spotify_emulator)
        spotify_emulator.clear_requests()
        yield harness, target, context(harness)
    assert spotify_emulator.violations() == []


def remote_uris(emu: SpotifyEmulator, remote_id: str) -> list[str]:
    return [f"spotify:track:{t}" for t in emu.playlists[remote_id].track_ids]


def wanted_uris(ctx: PlaylistContext, name: str, target: str = "spotify") -> list[str]:
    row = q.find(ctx.store, name)
    assert row is not None
    view = show(ctx, name)
    cached = q.matches(ctx.store, target, [t.track_id for t in view.tracks])
    return [
        str(cached[t.track_id].match.item) for t in view.tracks if cached[t.track_id].match.item
    ]


def searches(emu: SpotifyEmulator) -> list[str]:
    return [r.query["q"][0] for r in emu.api_requests() if r.path == "/v1/search"]


def test_first_push_creates_one_playlist_with_uris_in_the_body_and_a_second_sends_nothing(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    _h, _target, ctx = lib
    emu = spotify_emulator
    out = create(ctx, "electronic, 50 songs", name="Electric", targets=["spotify"])
    (push,) = out.pushes
    assert push.status == "created" and push.unmatched == []
    assert remote_uris(emu, push.remote_id) == wanted_uris(ctx, "Electric")
    assert len(remote_uris(emu, push.remote_id)) == 50
    playlist = emu.playlists[push.remote_id]
    assert playlist.name == "Electric" and not playlist.public
    assert playlist.description.startswith("Made by genred from “electronic, 50 songs”")
    writes = [(r.method, r.path) for r in emu.writes()]
    assert writes == [
        ("POST", "/v1/me/playlists"),
        ("POST", f"/v1/playlists/{push.remote_id}/items"),
    ]
    body = emu.writes()[1].body
    assert isinstance(body, dict) and len(body["uris"]) == 50  # {"uris": …}, not a bare array
    assert len(searches(emu)) == 50  # one search a track: by ISRC, or the field search found it
    emu.clear_requests()
    (again,) = push_playlist(ctx, "Electric")
    assert again.status == "unchanged" and again.edits == 0
    assert emu.api_requests() == []  # not even a read


def test_refine_edits_the_same_remote_playlist_in_place(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    _h, _target, ctx = lib
    emu = spotify_emulator
    made = create(ctx, "rock, 30 songs", name="R", targets=["spotify"])
    remote_id = made.pushes[0].remote_id
    emu.clear_requests()
    refined = refine(ctx, "R", "no indie rock")
    (push,) = refined.pushes
    assert push.status == "updated" and push.remote_id == remote_id
    assert remote_uris(emu, remote_id) == wanted_uris(ctx, "R")
    paths = {r.path for r in emu.writes()}
    assert paths <= {f"/v1/playlists/{remote_id}/items", f"/v1/playlists/{remote_id}"}
    assert ("POST", "/v1/me/playlists") not in [(r.method, r.path) for r in emu.writes()]
    assert len(emu.playlists) == 1


def test_matches_by_isrc_then_by_search_and_reports_what_spotify_lacks(
    tmp_path: Path, spotify_emulator: SpotifyEmulator, spotify_catalogue: Catalogue
) -> None:
    emu = spotify_emulator
    records = catalogue_records(spotify_catalogue, 40, start=1000)
    absent = [t.id for t in list(spotify_catalogue.tracks.values())[1030:1040]]
    emu.catalogue.mark_absent(*absent)
    with Harness(tmp_path) as harness:
        harness.add_tracks(records, source="folder")
        decided(harness)
        spotify_target(harness, emu)
        ctx = context(harness)
        genres = sorted({g for r in records for g in r.genres})
        emu.clear_requests()
        out = create(ctx, f"{' '.join(genres[:6])}, 40 songs", name="All", targets=["spotify"])
        push = out.pushes[0]
        chosen = {t.track_id for t in out.preview}
        cached = q.matches(harness.store, "spotify", list(chosen))
        by_isrc = [m for m in cached.values() if m.match.how == "isrc"]
        assert by_isrc and all(m.match.item for m in by_isrc)
        isrc_queries = [s for s in searches(emu) if s.startswith("isrc:")]
        assert len(isrc_queries) == sum(
            1 for r in records if r.isrc and harness_id(harness, r) in chosen
        )
        missing = {m.match.track_id for m in cached.values() if m.match.item is None}
        assert missing and {t for t, _ in push.unmatched} == missing
        assert all("not on Spotify" in why for _, why in push.unmatched)
        assert all(not f.startswith("track:") or '"' in f for f in searches(emu))
        # The answers are cached, "not on Spotify" too: pushing again asks nothing.
        emu.clear_requests()
        push_playlist(ctx, "All", verify=True)
        assert searches(emu) == []


def harness_id(harness: Harness, record: Any) -> int:
    return int(
        harness.store.conn.execute(
            "SELECT id FROM tracks WHERE source_id = ?", (record.source_id,)
        ).fetchone()[0]
    )


def test_a_refresh_searches_only_for_tracks_it_has_not_asked_about(
    lib: Any, spotify_emulator: SpotifyEmulator, spotify_catalogue: Catalogue
) -> None:
    harness, _target, ctx = lib
    emu = spotify_emulator
    create(ctx, "electronic, 50 songs", name="E", targets=["spotify"])
    asked = set(searches(emu))
    harness.add_tracks(catalogue_records(spotify_catalogue, 500, start=600), source="folder")
    decided(harness)
    emu.clear_requests()
    out = refresh(ctx, "E")
    new = {t.track_id for t in out.added}
    assert len(searches(emu)) == len(new) and not set(searches(emu)) & asked
    assert remote_uris(emu, out.pushes[0].remote_id) == wanted_uris(ctx, "E")


def test_a_playlist_deleted_by_hand_is_made_again_and_said(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    _h, target, ctx = lib
    emu = spotify_emulator
    made = create(ctx, "folk, 20 songs", name="F", targets=["spotify"])
    old = made.pushes[0].remote_id
    target.delete(old)  # unfollowing is Spotify's delete; the playlist stays readable
    (push,) = push_playlist(ctx, "F", verify=True)
    assert push.status == "recreated" and push.remote_id != old
    assert any("was deleted by hand" in n for n in push.notes)
    assert remote_uris(emu, push.remote_id) == wanted_uris(ctx, "F")
    assert show(ctx, "F").remotes[0].remote_id == push.remote_id


def test_a_short_429_is_waited_out(lib: Any, spotify_emulator: SpotifyEmulator) -> None:
    _h, _target, ctx = lib
    spotify_emulator.faults.add(FaultRule.throttle("/v1/search", retry_after=1, times=1))
    started = time.monotonic()
    out = create(ctx, "pop, 10 songs", name="P", targets=["spotify"])
    assert out.pushes[0].status == "created"
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in spotify_emulator.api_requests() if r.fault] == [429]


@pytest.mark.parametrize(
    ("rule", "seconds"),
    [
        (FaultRule.throttle("/v1/search", retry_after=3600, times=1, after=5), 3600),
        (FaultRule.throttle("/v1/search", retry_after=None, times=1, after=5), 600),
        (
            FaultRule.throttle("/v1/search", retry_after=None, empty_body=True, times=1, after=5),
            600,
        ),
    ],
)
def test_a_long_429_defers_and_the_next_push_goes_on(
    lib: Any, spotify_emulator: SpotifyEmulator, rule: FaultRule, seconds: int
) -> None:
    harness, _target, ctx = lib
    emu = spotify_emulator
    emu.faults.add(rule)
    before = datetime.now(UTC)
    out = create(ctx, "rock, 20 songs", name="Later", targets=["spotify"])
    (push,) = out.pushes
    assert push.status == "deferred" and push.retry_at is not None
    waited = (datetime.fromisoformat(push.retry_at) - before).total_seconds()
    assert seconds - 5 <= waited <= seconds + 60
    assert "deferred until" in push.message
    assert emu.writes() == []  # matching broke off before any write
    assert harness.store.conn.execute("SELECT COUNT(*) FROM playlist_matches").fetchone()[0] == 5
    emu.clear_requests()
    (done,) = push_playlist(ctx, "Later")
    assert done.status == "created"
    assert len(searches(emu)) == 15  # the five found before the 429 are not asked again


def test_5xx_and_dropped_connections_are_retried(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    _h, _target, ctx = lib
    emu = spotify_emulator
    emu.faults.add(
        FaultRule.server_error("/v1/me/playlists", status=503, times=1, methods=("POST",))
    )
    emu.faults.add(FaultRule.drop("/v1/playlists/*/items", times=1))
    out = create(ctx, "jazz, 10 songs", name="J", targets=["spotify"])
    assert out.pushes[0].status == "created"
    assert remote_uris(emu, out.pushes[0].remote_id) == wanted_uris(ctx, "J")
    assert sorted(r.fault for r in emu.api_requests() if r.fault) == ["5xx", "drop"]
    assert len(emu.playlists) == 1


def test_spotify_down_is_a_failed_push_with_its_reason(
    tmp_path: Path, spotify_emulator: SpotifyEmulator, spotify_catalogue: Catalogue
) -> None:
    with Harness(tmp_path) as harness:
        harness.add_tracks(catalogue_records(spotify_catalogue, 50), source="folder")
        decided(harness)
        spotify_target(harness, spotify_emulator)
        ctx = context(harness)
        create(ctx, "electronic, 10 songs", name="Down", push=False, targets=["spotify"])
        spotify_emulator.faults.add(FaultRule.server_error("*", status=503, times=None))
        (push,) = push_playlist(ctx, "Down")
        assert push.status == "failed"
        assert push.message.startswith("matching tracks failed: Spotify kept failing (3 tries)")


def test_an_expired_access_token_is_refreshed(lib: Any, spotify_emulator: SpotifyEmulator) -> None:
    _h, _target, ctx = lib
    emu = spotify_emulator
    emu.auth.expire_access_tokens()  # the server's view; the token file still trusts it
    out = create(ctx, "pop, 5 songs", name="Fresh", targets=["spotify"])
    assert out.pushes[0].status == "created"
    grants = [r.body.get("grant_type") for r in emu.token_requests()]
    assert grants == ["refresh_token"]


def test_a_token_revoked_mid_push_says_log_in_again_and_the_push_resumes_without_duplicates(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    harness, target, ctx = lib
    emu = spotify_emulator
    create(
        ctx,
        "electronic, rock, pop, folk, jazz",
        name="Big",
        size=150,
        push=False,
        targets=["spotify"],
    )
    emu.faults.add(FaultRule.revoke_token("/v1/playlists/*/items", methods=("POST",), after=1))
    (push,) = push_playlist(ctx, "Big")
    assert push.status == "failed"
    assert (
        "Spotify refused the token" in push.message and "run `genred spotify login`" in push.message
    )
    row = q.find(harness.store, "Big")
    assert row is not None
    last = q.last_push(harness.store, row.id, "spotify")
    assert last is not None and (last.status, last.chunks, last.sent) == ("failed", 2, 1)
    remote_id = push.remote_id
    assert remote_id is not None and len(emu.playlists[remote_id].track_ids) == 100
    from tests.emulators.spotify.clients import authorization_code

    target.tokens.log_in(authorization_code(target.tokens.manager))  # the person logs in again
    (resumed,) = push_playlist(ctx, "Big")
    wanted = wanted_uris(ctx, "Big")
    assert resumed.status == "updated" and resumed.remote_id == remote_id
    assert any("resuming a push that was cut short (1 of 2" in n for n in resumed.notes)
    assert remote_uris(emu, remote_id) == wanted and len(set(wanted)) == len(wanted) > 120


def test_a_refresh_token_spotify_no_longer_takes_is_a_clear_message(
    lib: Any, spotify_emulator: SpotifyEmulator
) -> None:
    _h, _target, ctx = lib
    spotify_emulator.auth.expire_refresh_tokens()  # six months after the first consent
    spotify_emulator.auth.expire_access_tokens()
    out = create(ctx, "pop, 5 songs", name="Old", targets=["spotify"])
    (push,) = out.pushes
    assert push.status == "failed"
    assert push.message.startswith("matching tracks failed: Spotify refused the token (")
    assert push.message.endswith("run `genred spotify login`")


def test_without_a_login_or_with_too_few_scopes_nothing_is_asked(
    tmp_path: Path, spotify_emulator: SpotifyEmulator, spotify_catalogue: Catalogue
) -> None:
    with Harness(tmp_path) as harness:
        harness.add_tracks(catalogue_records(spotify_catalogue, 30), source="folder")
        decided(harness)
        target = spotify_target(harness, spotify_emulator, log_in=False)
        ctx = context(harness)
        out = create(ctx, "pop, 5 songs", name="None", targets=["spotify"])
        assert out.pushes[0].message.endswith(
            "genred is not logged in to Spotify: run `genred spotify login`"
        )
        target.tokens.cache.save_token_to_cache(
            {
                "access_token": "x",
                "refresh_token": "y",
                "expires_at": 0,
                "scope": "playlist-read-private",
            }
        )
        (push,) = push_playlist(ctx, "None")
        assert "lacks the scopes playlist-modify-private, playlist-modify-public" in push.message
        assert spotify_emulator.api_requests() == []


def test_the_token_file_is_private_and_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenFile(token_path(tmp_path))
    cache.save_token_to_cache({"access_token": "a", "refresh_token": "r1"})
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", broken)
    with pytest.raises(OSError, match="disk full"):
        cache.save_token_to_cache({"access_token": "b", "refresh_token": "r2"})
    monkeypatch.undo()
    assert cache.get_cached_token() == {"access_token": "a", "refresh_token": "r1"}
    assert os.listdir(cache.path.parent) == ["token.json"]  # no temporary file left


def test_redirect_uris_spotify_refuses_are_config_errors() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("Spotify refuses 'localhost' redirect URIs: use http://127.0.0.1:8888/cb"),
    ):
        SpotifySettings(client_id="x", redirect_uri="http://localhost:8888/cb")
    with pytest.raises(ValueError, match=re.escape("must be on 127.0.0.1")):
        SpotifySettings(client_id="x", redirect_uri="http://myhost:8888/cb")
    assert SpotifySettings(client_id="x").pkce


def write_config(tmp_path: Path, emu: SpotifyEmulator, **extra: Any) -> Path:
    settings = spotify_settings(emu, **extra)
    settings["retries"] = dict(settings["retries"])
    path = tmp_path / "genred.yaml"
    path.write_text(
        json.dumps(
            {"data_dir": str(tmp_path / "data"), "plugins": {"playlists": {"spotify": settings}}}
        )
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("pkce", [False, True])
def test_login_and_status_commands(
    tmp_path: Path, spotify_emulator: SpotifyEmulator, monkeypatch: pytest.MonkeyPatch, pkce: bool
) -> None:
    emu = spotify_emulator
    config = write_config(tmp_path, emu, **({"client_secret": None} if pkce else {}))
    asked: list[str] = []

    def browser_then_paste(text: str, **kwargs: Any) -> str:
        """The person opens the printed address and pastes where the browser went."""
        url = next(line.strip() for line in printed.splitlines() if line.strip().startswith("http"))
        asked.append(text)
        answer = requests.get(url, allow_redirects=False, timeout=5)
        return str(answer.headers["Location"])

    printed = ""
    import click

    real_echo = click.echo

    def echo(message: Any = None, **kwargs: Any) -> None:
        nonlocal printed
        printed += f"{message}\n"
        real_echo(message, **kwargs)

    monkeypatch.setattr("genred_plugins.spotify.commands.click.prompt", browser_then_paste)
    monkeypatch.setattr("genred_plugins.spotify.commands.click.echo", echo)
    runner = CliRunner()
    result = runner.invoke(cli, ["spotify", "login", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "logged in as Joost Lekkerkerker (1112264649)" in result.output
    assert "(mode 0600)" in result.output and asked == ["3. Paste it here"]
    grants = [r.body for r in emu.token_requests()]
    assert grants[0]["grant_type"] == "authorization_code"
    assert ("code_verifier" in grants[0]) is pkce
    status = runner.invoke(cli, ["spotify", "status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    assert "account: Joost Lekkerkerker (1112264649)" in status.output
    assert "playlist-modify-private" in status.output


def test_a_pasted_address_of_another_login_is_refused(
    tmp_path: Path, spotify_emulator: SpotifyEmulator
) -> None:
    config = write_config(tmp_path, spotify_emulator)
    result = CliRunner().invoke(
        cli,
        ["spotify", "login", "--config", str(config), "--redirected",
         "http://127.0.0.1:8888/callback?code=abc&state=someone-else"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "belongs to another login attempt" in result.output
    assert spotify_emulator.token_requests() == []


def test_the_spotify_target_keeps_the_contract() -> None:
    from genred.testing import check_plugin

    assert check_plugin(SpotifyPlaylists, "playlists") == []


def test_a_push_killed_mid_way_resumes_without_duplicates(
    lib: Any, spotify_emulator: SpotifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after kill -9: the push row stays `running`, nothing more is recorded."""
    harness, _target, ctx = lib
    emu = spotify_emulator
    create(
        ctx,
        "electronic, rock, pop, folk, jazz",
        name="K",
        size=150,
        push=False,
        targets=["spotify"],
    )
    real_apply = SpotifyPlaylists.apply

    def dies_on_the_second_chunk(self: Any, remote_id: str, edit: Any, **kwargs: Any) -> None:
        if edit.position is None and len(emu.playlists[remote_id].track_ids) == 100:
            real_apply(self, remote_id, edit, **kwargs)  # it lands, and the process dies
            raise SystemExit("killed")
        real_apply(self, remote_id, edit, **kwargs)

    monkeypatch.setattr(SpotifyPlaylists, "apply", dies_on_the_second_chunk)
    monkeypatch.setattr("genred.playlists.push._Push._broke_off", lambda *args: None)
    with pytest.raises(SystemExit):
        push_playlist(ctx, "K")
    monkeypatch.undo()
    row = q.find(harness.store, "K")
    assert row is not None
    last = q.last_push(harness.store, row.id, "spotify")
    assert last is not None and (last.status, last.chunks, last.sent) == ("running", 2, 1)
    (remote_id,) = emu.playlists
    assert len(emu.playlists[remote_id].track_ids) == 150  # the second chunk had landed
    (resumed,) = push_playlist(ctx, "K")
    assert any("resuming a push that was cut short (1 of 2" in n for n in resumed.notes)
    wanted = wanted_uris(ctx, "K")
    assert remote_uris(emu, remote_id) == wanted and len(set(wanted)) == len(wanted)
    assert resumed.status == "updated" and resumed.edits == 0  # read, found complete


def test_search_hits_are_scored_on_normalised_titles_artists_and_length() -> None:
    from genred.records import TrackRecord
    from genred_plugins.spotify.matching import score_hit

    mine = TrackRecord("folder", "x", title="So What (Remastered 2009)", artist="Miles Davis feat. John Coltrane",
                       album="Kind of Blue", duration_ms=562_000, id=1)  # fmt: skip

    def hit(
        name: str, artist: str, album: str = "Kind of Blue", ms: int = 563_000
    ) -> dict[str, Any]:
        return {
            "name": name,
            "artists": [{"name": artist}],
            "album": {"name": album},
            "duration_ms": ms,
        }

    assert score_hit(mine, hit("So What", "Miles Davis")) >= 0.95
    assert score_hit(mine, hit("So What - Live", "Miles Davis", "Live at Newport", 700_000)) < 0.75
    assert score_hit(mine, hit("So Whatever", "Someone Else")) < 0.75
    odd = TrackRecord("folder", "y", title="Phon", artist="%", album="Number Stations", id=2)
    assert score_hit(odd, hit("Phon", "%", "Number Stations Part II")) >= 0.9
