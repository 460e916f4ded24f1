"""`genred plex check`: can genred read the audio files Plex reports (after `plex.path_map`)?"""

from __future__ import annotations

import os
import sys

import click

from genred.api import EXIT_FAILED, AppState, open_store, pass_state

from .paths import map_path


@click.group("plex")
def plex() -> None:
    """Checks of the Plex connection and library."""


@plex.command("check")
@click.option("--sample", default=10, show_default=True, help="How many unreadable files to list.")
@pass_state
def plex_check(state: AppState, sample: int) -> None:
    """Can genred read the audio files Plex reports (after plex.path_map)?

    Reads the paths stored by the last sync. Exits 1 when some files are unreadable.
    """
    config = state.config()
    if config.plex is None:
        click.echo("error: the config has no `plex:` section", err=True)
        sys.exit(EXIT_FAILED)
    if not config.db_path.exists():
        click.echo(
            f"nothing synced from Plex yet (no database at {config.db_path}): run `genred sync`"
        )
        sys.exit(EXIT_FAILED)
    with open_store(config) as store:
        paths = [
            r[0]
            for r in store.conn.execute(
                "SELECT path FROM tracks WHERE source = 'plex' AND removed = 0 ORDER BY id"
            )
        ]
    if not paths:
        click.echo("nothing synced from Plex yet: run `genred sync` first")
        sys.exit(EXIT_FAILED)
    path_map = config.plex.path_map
    unreadable: list[tuple[str | None, str | None, str]] = []
    for path in paths:
        local = map_path(path, path_map)
        problem = _unreadable(local)
        if problem:
            unreadable.append((path, local, problem))
    readable = len(paths) - len(unreadable)
    rules = ", ".join(f"{k} → {v}" for k, v in path_map.items()) or "none"
    click.echo(f"{readable:,} of {len(paths):,} tracks readable (path_map: {rules})")
    if unreadable:
        click.echo(f"{len(unreadable):,} unreadable, for example:")
        for path, local, problem in unreadable[:sample]:
            shown = path if local == path else f"{path} → {local}"
            click.echo(f"  {shown} ({problem})")
        sys.exit(EXIT_FAILED)


def _unreadable(local: str | None) -> str | None:
    """Why genred cannot read `local`, or None when it can."""
    if not local:
        return "no file path"
    if not os.path.exists(local):
        return "missing"
    if not os.path.isfile(local):
        return "not a file"
    if not os.access(local, os.R_OK):
        return "no read permission"
    return None
