"""`genred spotify login` and `genred spotify status`."""

from __future__ import annotations

import secrets
import stat
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
from pydantic import ValidationError

from genred.api import (
    EXIT_CONFIG,
    EXIT_FAILED,
    AppState,
    GenredError,
    PluginContext,
    open_store,
    pass_state,
    validation_issues,
)

from .settings import SCOPES, SpotifySettings
from .target import SpotifyPlaylists
from .tokens import token_path


@click.group("spotify")
def spotify() -> None:
    """Log in to Spotify (once, for the `spotify` playlist target) and check the login."""


def _target(state: AppState) -> SpotifyPlaylists:
    """The configured target (plugins.playlists.spotify), or exit 2 saying what to add."""
    config = state.config()
    entry = next((e for e in config.plugins.enabled("playlists") if e.name == "spotify"), None)
    if entry is None:
        click.echo(
            "error: the spotify playlist target is not enabled: add plugins.playlists.spotify "
            "with your app's client_id (README: Spotify)",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    try:
        settings = SpotifySettings.model_validate(entry.settings)
    except ValidationError as exc:
        for issue in validation_issues(exc, config.source, ("plugins", "playlists", "spotify")):
            click.echo(f"error: {issue}", err=True)
        sys.exit(EXIT_CONFIG)
    return SpotifyPlaylists(settings, PluginContext(config))


@spotify.command("login")
@click.option(
    "--redirected",
    metavar="URL",
    help="The address Spotify sent the browser to (or just its code); asked for when not given.",
)
@pass_state
def login(state: AppState, redirected: str | None) -> None:
    """Authorize genred on your Spotify account; the refresh token is kept in the data dir.

    Works without a browser on this machine: open the URL printed here anywhere, approve,
    and paste back the address the browser was sent to (the page itself may not load).
    """
    target = _target(state)
    want_state = secrets.token_urlsafe(12)
    url = target.tokens.authorize_url(want_state)
    flow = "PKCE, no client secret" if target.settings.pkce else "with the client secret"
    click.echo(f"1. Open this address in a browser, log in to Spotify and approve ({flow}):")
    click.echo(f"   {url}")
    click.echo(
        f"2. The browser is then sent to {target.settings.redirect_uri}?code=… — the page may "
        "not load, which is fine. Copy the whole address from the address bar."
    )
    answer = redirected or click.prompt("3. Paste it here", prompt_suffix=": ")
    if "state=" in answer:
        got = parse_qs(urlsplit(answer.strip()).query).get("state", [""])[0]
        if got != want_state:
            click.echo(
                "error: that address belongs to another login attempt (its state differs): "
                "open the address above and paste what it leads to",
                err=True,
            )
            sys.exit(EXIT_FAILED)
    try:
        target.tokens.log_in(answer)
        me = target.calls.call(lambda c: c.me(), "reading your profile")
    except GenredError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    path = token_path(target.data_dir)
    click.echo(
        f"logged in as {me.get('display_name') or me.get('id')} ({me.get('id')}); "
        f"the token is kept in {path} (mode {_mode(path)})"
    )


@spotify.command("status")
@pass_state
def status(state: AppState) -> None:
    """The Spotify login (account, scopes, token file), and what genred matched and pushed.

    Exits 1 when genred is not logged in or Spotify refuses the token.
    """
    target = _target(state)
    path = token_path(target.data_dir)
    cached = target.tokens.cache.get_cached_token()
    if not cached:
        click.echo(f"not logged in (no token in {path}): run `genred spotify login`")
        sys.exit(EXIT_FAILED)
    click.echo(f"token file: {path} (mode {_mode(path)})")
    granted = set(str(cached.get("scope") or "").split())
    missing = sorted(set(SCOPES) - granted)
    click.echo(
        f"scopes: {', '.join(sorted(granted)) or 'none'}"
        + (f" (missing: {', '.join(missing)})" if missing else "")
    )
    left = int(cached.get("expires_at") or 0) - int(time.time())
    click.echo(
        f"access token: {'expires in ' + str(left // 60) + ' min' if left > 0 else 'expired (refreshed when needed)'}"
    )
    try:
        me = target.calls.call(lambda c: c.me(), "reading your profile")
    except GenredError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"account: {me.get('display_name') or '-'} ({me.get('id')})")
    config = state.config()
    if config.db_path.exists():
        with open_store(config) as store:
            matched, missing_n = _counts(store)
            pushed = store.conn.execute(
                "SELECT COUNT(*) FROM playlist_remotes WHERE target = 'spotify'"
            ).fetchone()[0]
        click.echo(
            f"tracks looked up: {matched:,} on Spotify, {missing_n:,} not; playlists pushed: {pushed}"
        )


def _counts(store: Any) -> tuple[int, int]:
    row = store.conn.execute(
        "SELECT COALESCE(SUM(item IS NOT NULL), 0), COALESCE(SUM(item IS NULL), 0) "
        "FROM playlist_matches WHERE target = 'spotify'"
    ).fetchone()
    return int(row[0]), int(row[1])


def _mode(path: Any) -> str:
    try:
        return oct(stat.S_IMODE(path.stat().st_mode))[2:].rjust(4, "0")
    except OSError:
        return "missing"
