"""What every command shares: the config (loaded once, lazily), --config, exit codes, output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..config import Config, ConfigError, ConfigNotFound, load_config
from ..logs import configure_logging
from ..store import Store, StoreError

if TYPE_CHECKING:
    from ..loader import LoadedPlugins
    from ..stages import StageRun

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_PARTIAL = 3  # the stage finished, but some items failed (listed, with the reason)
EXIT_NOT_ACTIVATED = 4  # `genred train`: the model is stored but not good enough to use
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: the stage is running elsewhere, try again later
SHOWN_FAILURES = 20  # failed items a stage command lists; `genred status` counts them all


class AppState:
    """What the group resolves once for every subcommand: the config path, loaded lazily."""

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    def config(self, *, defaults_ok: bool = False) -> Config:
        """The config; an invalid file exits 2. `defaults_ok` (read-only commands such as
        `genred plugins`): with no config file anywhere, the defaults, and a note saying so."""
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigNotFound as exc:
                if not defaults_ok:
                    _exit_config(exc)
                self._config = Config()
                click.echo(
                    f"note: {exc.issues[0].message}: showing the defaults "
                    f"(data dir {self._config.data_dir})",
                    err=True,
                )
            except ConfigError as exc:
                _exit_config(exc)
            configure_logging(
                self._config.logging.level, self._config.logging.format, self._config.secrets()
            )
        return self._config


def _exit_config(exc: ConfigError) -> NoReturn:
    for issue in exc.issues:
        click.echo(f"error: {issue}", err=True)
    sys.exit(EXIT_CONFIG)


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


class RootGroup(GenredGroup):
    """The `genred` group: its own commands plus those plugins register under
    ``genred.commands`` (loaded when the command line first needs them)."""

    _plugin_commands: dict[str, click.Command] | None = None

    def _plugins(self) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            from ..loader import discover_commands

            found: dict[str, click.Command] = {}
            for item in discover_commands():
                if isinstance(item.command, click.Command) and item.name not in self.commands:
                    found[item.name] = with_config_option(item.command)
                elif item.error:
                    found[item.name] = _unavailable_command(item.name, item.error)
            self._plugin_commands = found
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugins().get(cmd_name)


def _unavailable_command(name: str, error: str) -> click.Command:
    """Stands in for a plugin command that cannot be loaded: says why, exits 1."""

    @click.command(
        name, help=f"(unavailable: {error})", context_settings={"ignore_unknown_options": True}
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_FAILED)

    return unavailable


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


def load_enabled_plugins(config: Config, store: Store, *, warn: bool = True) -> LoadedPlugins:
    """Build the enabled plugins; config errors exit 2, unavailable ones are warned about."""
    from ..hookspecs import PluginContext
    from ..loader import load_plugins

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


def run_stage(
    state: AppState,
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    wait: bool = True,
    job: str | None = None,
    check: Callable[[LoadedPlugins], None] | None = None,
) -> tuple[dict[str, Any], StageRun]:
    """Run the registered stage `name` from the CLI, recorded as `job` (default: `name`)
    under the stage's lock; `check` sees the built plugins first (and may exit).

    No plugin for it: exit 1 saying what to enable. A GenredError exits 1 with its
    message; a stage busy elsewhere waits (saying so) or, with --no-wait, exits 75. A run
    that failed some items lists them (which, and why) and exits 3.
    """
    from ..errors import GenredError, StageBusy
    from ..loader import LoadedPlugins
    from ..pipeline.jobs import failed_items, run_job
    from ..progress import for_terminal
    from ..stages import STAGES, StageRun
    from ..store import utcnow

    stage = STAGES[name]
    job = job or name
    config = state.config()
    with open_store(config) as store:
        plugins = (
            load_enabled_plugins(config, store, warn=check is None)
            if stage.needs
            else LoadedPlugins()
        )
        if check is not None:
            check(plugins)
        if not stage.has_work(plugins):
            click.echo(stage.nothing_enabled, err=True)
            sys.exit(EXIT_FAILED)
        run = StageRun(store, config, plugins, for_terminal(), "cli", options=options or {})

        def waiting(holder: Any) -> None:
            who = holder.describe() if holder else "another process"
            click.echo(
                f"{job} is running in {who}; waiting for it to finish (--no-wait: exit)",
                err=True,
            )

        lock = stage.lock if job == name else None  # a dry run writes nothing, locks nothing
        started = utcnow()
        try:
            counts = run_job(
                store,
                job,
                "cli",
                lambda: stage.run(run),
                lock=lock,
                data_dir=config.data_dir,
                wait=wait,
                on_wait=waiting,
            )
        except StageBusy as exc:
            click.echo(f"busy: {exc}", err=True)
            sys.exit(EXIT_BUSY)
        except GenredError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo(
                f"{job} interrupted; committed work is kept, run it again to go on", err=True
            )
            sys.exit(130)
        failed = failed_items(counts)
        if failed:
            report_failed(store, name, failed, since=started)
            sys.exit(EXIT_PARTIAL)
    return counts, run


def report_failed(store: Store, stage: str, failed: int, *, since: str) -> None:
    """Which items a run of `stage` failed, and why (on stderr)."""
    from ..store import failures

    recorded = failures.listed(store, stage, since=since, limit=SHOWN_FAILURES)
    click.echo(f"{failed} {'item' if failed == 1 else 'items'} failed:", err=True)
    for failure in recorded:
        item = f"track {failure.item}" if failure.item.isdigit() else failure.item
        message = failure.message if len(failure.message) <= 300 else failure.message[:299] + "…"
        click.echo(
            f"  {failure.stage} {item.replace(':', ' ', 1)} [{failure.kind}]: "
            f"{failure.error_type}: {message}",
            err=True,
        )
    if failed > len(recorded):
        click.echo(f"  … and {failed - len(recorded)} more (genred status)", err=True)
    click.echo(
        "permanent failures wait until the file changes, transient ones are tried again "
        "later; `genred retry` tries them all on the next run",
        err=True,
    )
