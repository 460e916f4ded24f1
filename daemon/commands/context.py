"""What every command shares: the config (loaded once, lazily), --config, exit codes, output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..config import Config, ConfigError, load_config
from ..logs import configure_logging
from ..store import Store, StoreError

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: the stage is running elsewhere, try again later


class AppState:
    """What the group resolves once for every subcommand: the config path, loaded lazily."""

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                for issue in exc.issues:
                    click.echo(f"error: {issue}", err=True)
                sys.exit(EXIT_CONFIG)
            configure_logging(
                self._config.logging.level, self._config.logging.format, self._config.secrets()
            )
        return self._config


pass_state = click.make_pass_decorator(AppState, ensure=True)
CONFIG_HELP = (
    "Config file (default: $GENRED_CONFIG, /etc/genred/genred.yaml, ./config/genred.yaml)."
)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(AppState).config_path = value


def config_option(func: Any) -> Any:
    """`--config` is accepted before or after the subcommand: `genred config check --config X`."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        is_eager=True,
        callback=_set_config,
        help=CONFIG_HELP,
    )(func)


def with_config_option(cmd: click.Command) -> click.Command:
    """Give `cmd` (and, for a group, each of its subcommands) the --config option once."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            with_config_option(sub)
    elif not any("--config" in p.opts for p in cmd.params):
        config_option(cmd)
    return cmd


class GenredGroup(click.Group):
    """A group whose every subcommand, at any depth, takes --config."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(with_config_option(cmd), name)

    def group(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", GenredGroup)
        return super().group(*args, **kwargs)


def open_store(config: Config) -> Store:
    """Open the database, or exit 1 with the reason."""
    try:
        return Store.open(config.db_path)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)


def table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """A plain aligned table: readable on a terminal, greppable in a pipe."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


def load_enabled_plugins(config: Config, store: Store, *, warn: bool = True) -> Any:
    """Build the enabled plugins; config errors exit 2, unavailable ones are warned about."""
    from ..plugins import PluginContext, load_plugins

    try:
        loaded = load_plugins(PluginContext(config, store))
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(EXIT_CONFIG)
    for (kind, name), reason in loaded.unavailable.items() if warn else ():
        click.echo(f"warning: plugin {name!r} ({kind}) is not available: {reason}", err=True)
    return loaded


wait_option = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="When the daemon (or another command) is running this stage: wait for it, "
    f"or exit at once with code {EXIT_BUSY}.",
)


def run_stage(store: Store, job: str, work: Any, *, data_dir: Path, wait: bool = True) -> Any:
    """Run a stage as a recorded job from the CLI, under its stage lock.

    A GenredError exits 1 with its message; a stage busy elsewhere waits (saying so) or,
    with --no-wait, exits 75.
    """
    from ..errors import GenredError, StageBusy
    from ..pipeline.jobs import run_job

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder else "another process"
        click.echo(
            f"{job} is running in {who}; waiting for it to finish (--no-wait: exit)", err=True
        )

    try:
        return run_job(store, job, "cli", work, data_dir=data_dir, wait=wait, on_wait=waiting)
    except StageBusy as exc:
        click.echo(f"busy: {exc}", err=True)
        sys.exit(EXIT_BUSY)
    except GenredError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo(f"{job} interrupted; committed work is kept, run it again to go on", err=True)
        sys.exit(130)
