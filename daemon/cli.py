"""The `genred` command line. Exit codes: 0 ok, 1 the work failed, 2 bad config or usage."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import __version__
from .commands.context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    AppState,
    RootGroup,
    config_option,
    pass_state,
    table,
)
from .config import (
    ConfigError,
    is_empty_yaml,
    load_config,
    locate,
    world_readable_secret_warning,
)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genred")
@config_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """genred keeps a music library's genres clean: sync, classify, decide, write back."""
    ctx.ensure_object(AppState)


# --------------------------------------------------------------------------- config


@cli.group("config")
def config_group() -> None:
    """Inspect and validate the config file."""


@config_group.command("check")
@pass_state
def config_check(state: AppState) -> None:
    """Validate the config file and every enabled plugin's section.

    Exits 0 when the file is usable, 2 with one line per problem (file:line key: reason).
    """
    from .checks import check_config, config_warnings
    from .hookspecs import PluginContext
    from .loader import discover, load_plugins

    try:
        path = locate(state.config_path)
        config = load_config(path)
        infos = discover()
        check_config(config, infos)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(EXIT_CONFIG)
    text = path.read_text(encoding="utf-8")
    warning = world_readable_secret_warning(path, text)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if is_empty_yaml(text):
        click.echo(
            f"warning: {path}: the file is empty: every setting has its default "
            "(a running daemon refuses to reload an empty file)",
            err=True,
        )
    plugins = load_plugins(PluginContext(config), infos)
    for (kind, name), reason in plugins.unavailable.items():
        if not any(i.kind == kind and i.name == name and i.error for i in infos):
            click.echo(f"warning: plugin {name!r} ({kind}) is not available: {reason}", err=True)
    for text in config_warnings(config, infos, plugins):
        click.echo(f"warning: {text}", err=True)
    click.echo(f"{path}: ok")


# --------------------------------------------------------------------------- plugins


@cli.command("plugins")
@pass_state
def plugins_cmd(state: AppState) -> None:
    """List every installed plugin: kind, name, enabled, import status.

    Needs no config file: without one it shows what the defaults enable (and says so).
    """
    from .loader import discover

    config = state.config(defaults_ok=True)
    rows = []
    for info in discover():
        enabled = any(e.name == info.name for e in config.plugins.enabled(info.kind))
        status = "ok" if info.available else f"unavailable: {info.error}"
        notice = getattr(info.cls, "notice", None)  # a licence to know of (audio-llm's)
        if isinstance(notice, str) and notice:
            status += f"; note: {notice}"
        rows.append((info.kind, info.name, "yes" if enabled else "no", status))
    table(("kind", "name", "enabled", "status"), rows)


# --------------------------------------------------------------------------- status


@cli.command("status")
@pass_state
def status_cmd(state: AppState) -> None:
    """Track counts by state, failures, and the last run of each job (no config file
    needed: without one, the default data dir is looked at)."""
    from . import locks
    from .store import Store, StoreError
    from .store import failures as failures_q
    from .store import runs as runs_q
    from .store import tracks as tracks_q

    config = state.config(defaults_ok=True)
    if not config.db_path.exists():
        click.echo(f"no database yet at {config.db_path}: run `genred sync` first")
        return
    try:
        store = Store.open(config.db_path)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    with store:
        counts = tracks_q.counts(store)
        click.echo(f"database: {config.db_path} (schema v{store.version})")
        daemon = locks.holder(config.data_dir, locks.INSTANCE)
        if daemon is None:
            click.echo("daemon: not running")
        else:
            click.echo(f"daemon: running (pid {daemon.pid or 'unknown'})")
        click.echo(
            f"tracks: {counts.active} active, {counts.removed} removed; "
            f"{counts.with_predictions} classified, {counts.decided} decided, "
            f"{counts.needs_review} need review, {counts.written} written back"
        )
        _show_failures(failures_q.summary(store))
        runs = runs_q.latest(store)
        if not runs:
            click.echo("no job has run yet")
            return
        rows = [
            (
                r.job,
                _shown_status(r, config.data_dir),
                r.trigger,
                r.started_at[:19].replace("T", " "),
                r.ended_at[:19].replace("T", " ") if r.ended_at else "",
                " ".join(f"{k}={v}" for k, v in sorted(r.counts.items())),
                r.error or "",
            )
            for r in runs
        ]
        table(("job", "status", "trigger", "started (UTC)", "ended", "counts", "error"), rows)


def _show_failures(groups: list[Any]) -> None:
    """Failed items by stage, kind and error: permanent ones wait for their file to change,
    transient ones for their next retry."""
    if not groups:
        click.echo("failures: none")
        return
    permanent = sum(g.items for g in groups if g.kind == "permanent")
    transient = sum(g.items for g in groups if g.kind == "transient")
    click.echo(
        f"failures: {permanent} permanent (skipped until the file changes), "
        f"{transient} transient (tried again later); `genred retry` tries them all again"
    )
    rows = []
    for g in groups:
        item = f"track {g.example_item}" if g.example_item.isdigit() else g.example_item
        example = f"{item}: {g.example}"
        rows.append(
            (
                "  " + g.stage,
                g.kind,
                g.error_type,
                g.items,
                (g.next_retry_at or "")[:19].replace("T", " "),
                example if len(example) <= 160 else example[:159] + "…",
            )
        )
    table(("  stage", "kind", "error", "items", "next retry (UTC)", "for example"), rows)


def _shown_status(run: Any, data_dir: Any) -> str:
    """A 'running' run whose stage lock is free was left by a process that died."""
    from . import locks
    from .stages import lock_of

    stage = lock_of(run.job)
    if run.status == "running" and stage and locks.holder(data_dir, stage) is None:
        return "interrupted"
    return str(run.status)


from .commands.corrections import COMMANDS as _CORRECTION_COMMANDS  # noqa: E402
from .commands.playlists import COMMANDS as _PLAYLIST_COMMANDS  # noqa: E402
from .commands.retry import retry_cmd as _retry_command  # noqa: E402
from .commands.run import run_cmd as _run_command  # noqa: E402
from .commands.stages import COMMANDS as _STAGE_COMMANDS  # noqa: E402
from .commands.train import train_cmd as _train_command  # noqa: E402

for _command in (
    _run_command,
    *_STAGE_COMMANDS,
    _retry_command,
    _train_command,
    *_PLAYLIST_COMMANDS,
    *_CORRECTION_COMMANDS,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="genred")


if __name__ == "__main__":  # pragma: no cover
    main()
