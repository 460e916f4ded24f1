"""`genred extract`: the extract stage in the foreground, with a progress bar."""

from __future__ import annotations

import sys

import click

from ..progress import for_terminal
from .context import (
    EXIT_FAILED,
    AppState,
    load_enabled_plugins,
    open_store,
    pass_state,
    run_stage,
    wait_option,
)


@click.command("extract")
@click.option(
    "--extractor",
    "names",
    multiple=True,
    help="Only this extractor (plugins.extractors); repeatable. Default: every enabled one.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many tracks each."
)
@wait_option
@pass_state
def extract_cmd(state: AppState, names: tuple[str, ...], limit: int | None, wait: bool) -> None:
    """Compute audio features for tracks that have none (or whose file changed).

    Files that fail (unreadable, too slow, crashing the decoder) are recorded and tried
    again later; the rest go on. Interrupted, it keeps what it stored and goes on from there.
    """
    from ..pipeline.extract import extract

    config = state.config()
    with open_store(config) as store:
        extractors = load_enabled_plugins(config, store).of("extractors")
        unknown = [n for n in names if n not in extractors]
        if unknown:
            enabled = ", ".join(extractors) or "none"
            click.echo(
                f"extractor {', '.join(unknown)} is not enabled or not available "
                f"(enabled: {enabled}; see plugins.extractors in the config)",
                err=True,
            )
            sys.exit(EXIT_FAILED)
        if not extractors:
            click.echo("no extractor is enabled (plugins.extractors in the config)", err=True)
            sys.exit(EXIT_FAILED)
        chosen = {n: extractors[n] for n in names} if names else extractors
        run_stage(
            store,
            "extract",
            lambda: extract(store, chosen, config, progress=for_terminal(), limit=limit),
            data_dir=config.data_dir,
            wait=wait,
        )
