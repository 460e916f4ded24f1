"""`genred sync` (sources → store) and `genred plex check` (can genred read Plex's files?)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .context import (
    EXIT_FAILED,
    AppState,
    load_enabled_plugins,
    open_store,
    pass_state,
    run_stage,
    wait_option,
)

if TYPE_CHECKING:
    from ..config import PluginEntry
    from ..plugins import LoadedPlugins


@click.command("sync")
@click.option(
    "--full/--incremental",
    default=None,
    help="Full scan (marks removals; an interrupted one is continued) or only what changed "
    "since the last sync. Default: full when the last full scan is over a day old.",
)
@click.option("--source", "source_name", metavar="NAME", help="Sync only this source plugin.")
@wait_option
@pass_state
def sync(state: AppState, full: bool | None, source_name: str | None, wait: bool) -> None:
    """Bring genred's copy of the library up to date with its sources."""
    from ..pipeline.sync import sync as sync_stage
    from ..progress import for_terminal

    config = state.config()
    with open_store(config) as store:
        loaded = load_enabled_plugins(config, store, warn=False)  # sources: errors below
        sources = _chosen_sources(loaded, config.plugins.enabled("sources"), source_name)
        progress = for_terminal()  # prints each source's summary line when it finishes

        def work() -> dict[str, Any]:
            totals: dict[str, int] = {}
            for name, plugin in sources.items():
                result = sync_stage(store, name, plugin, full=full, progress=progress)
                for key, value in result.counts().items():
                    totals[key] = totals.get(key, 0) + value
            return totals

        run_stage(store, "sync", work, data_dir=config.data_dir, wait=wait)


def _chosen_sources(
    loaded: LoadedPlugins, enabled: list[PluginEntry], wanted: str | None
) -> dict[str, Any]:
    """The built source plugins to run; exit 1 naming why when there are none."""
    built: dict[str, Any] = loaded.of("sources")
    names = [e.name for e in enabled]
    if wanted is not None and wanted not in names:
        listed = ", ".join(names) or "none"
        click.echo(f"error: source {wanted!r} is not enabled (enabled: {listed})", err=True)
        sys.exit(EXIT_FAILED)
    for name in [wanted] if wanted else names:
        reason = loaded.unavailable.get(("sources", name))
        if reason:
            click.echo(f"error: source {name!r} cannot be used: {reason}", err=True)
            sys.exit(EXIT_FAILED)
    chosen = {n: p for n, p in built.items() if wanted is None or n == wanted}
    if not chosen:
        click.echo("error: no source plugin is enabled (plugins.sources in the config)", err=True)
        sys.exit(EXIT_FAILED)
    return chosen


# --------------------------------------------------------------------------- plex


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
    from ..paths import map_path

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
