"""`genred run`: the daemon (what systemd starts)."""

from __future__ import annotations

import logging
import os
import sys

import click

from ..config import ConfigError, locate
from .context import EXIT_CONFIG, AppState, pass_state


@click.command("run")
@pass_state
def run_cmd(state: AppState) -> None:
    """Run the daemon: scheduled jobs, folder watcher, Plex webhook, reload on SIGHUP.

    Stops on SIGTERM or Ctrl-C within seconds, after the request in hand, and exits 0
    (also when the signal comes while it starts). Exits 1 when another daemon already runs
    on the same data dir, 2 when the config is invalid.
    """
    from ..early_stop import StopRequested, stop_interrupts, stop_requested
    from ..service import Service

    config = state.config()
    try:
        with stop_interrupts():  # building the plugins can take seconds: a stop cuts it short
            service = Service(locate(state.config_path), config)
    except StopRequested:  # asked to stop while loading: nothing started, nothing to stop
        sys.exit(0)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(EXIT_CONFIG)
    if stop_requested():
        sys.exit(0)
    code = service.run()
    if service.worker.busy:
        # A job overran the stop grace (a request hung on a dead server): do not let the
        # interpreter wait for its thread. Its uncommitted item is rolled back by SQLite.
        logging.shutdown()
        os._exit(code)
    sys.exit(code)
