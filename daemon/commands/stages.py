"""`genred classify`, `decide`, `writeback`, `revert`: the stages after sync, by hand."""

from __future__ import annotations

import sys
from typing import Any

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


@click.command("classify")
@wait_option
@pass_state
def classify_cmd(state: AppState, wait: bool) -> None:
    """Run the enabled classifiers over tracks they have not seen (or that changed)."""
    from ..pipeline.classify import classify

    config = state.config()
    with open_store(config) as store:
        plugins = load_enabled_plugins(config, store)
        classifiers = plugins.of("classifiers")
        if not classifiers:
            click.echo("no classifier is enabled (plugins.classifiers in the config)", err=True)
            sys.exit(EXIT_FAILED)
        run_stage(
            store,
            "classify",
            lambda: classify(store, classifiers, for_terminal(), decide_config=config.decide),
            data_dir=config.data_dir,
            wait=wait,
        )


@click.command("decide")
@wait_option
@pass_state
def decide_cmd(state: AppState, wait: bool) -> None:
    """Turn predictions (and manual overrides) into one decision per track."""
    from ..pipeline.decide import decide

    config = state.config()
    with open_store(config) as store:
        run_stage(
            store,
            "decide",
            lambda: decide(store, config.decide, for_terminal()),
            data_dir=config.data_dir,
            wait=wait,
        )


def _writeback_plugin(state: AppState, store: Any, target: str | None) -> Any:
    plugins = load_enabled_plugins(state.config(), store).of("writeback")
    if not plugins:
        click.echo("no writeback target is enabled (plugins.writeback in the config)", err=True)
        sys.exit(EXIT_FAILED)
    if target is None:
        return next(iter(plugins.values()))
    if target not in plugins:
        click.echo(
            f"writeback target {target!r} is not enabled (enabled: {', '.join(plugins)})", err=True
        )
        sys.exit(EXIT_FAILED)
    return plugins[target]


def _print_edits(edits: list[Any], limit: int = 20) -> None:
    shown = 0
    for edit in edits:
        for item_id in edit.ids:
            if shown >= limit:
                rest = sum(len(e.ids) for e in edits) - shown
                click.echo(f"… and {rest} more")
                return
            before = ", ".join(edit.before.get(item_id, ())) or "(none)"
            after = ", ".join(edit.after.get(item_id, ())) or "(none)"
            click.echo(f"{edit.kind} {item_id} {edit.field}: {before} → {after}")
            shown += 1


@click.command("writeback")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option(
    "--target", default=None, help="Writeback plugin to use (default: the first enabled)."
)
@click.option("--resume", is_flag=True, help="Lift the pause left by `genred revert`, then write.")
@wait_option
@pass_state
def writeback_cmd(
    state: AppState, dry_run: bool, target: str | None, resume: bool, wait: bool
) -> None:
    """Write decided genres to the target (Plex), idempotently, keeping the originals."""
    from ..pipeline import writeback as wb

    config = state.config()
    with open_store(config) as store:
        plugin = _writeback_plugin(state, store, target)
        if resume:
            click.echo(
                f"writeback resumed; {wb.resume(store, plugin.name)} reverted items eligible again"
            )
        dry = dry_run or config.writeback.dry_run
        result: dict[str, Any] = {}

        def work() -> dict[str, int]:
            report = wb.writeback(
                store,
                plugin,
                config.writeback,
                max_values=config.decide.max_genres,
                dry_run=dry,
                progress=for_terminal(),
            )
            result["report"] = report
            return report.counts

        job = "writeback-dry-run" if dry else "writeback"
        counts = run_stage(store, job, work, data_dir=config.data_dir, wait=wait)
        if dry:
            _print_edits(result["report"].planned)
            click.echo(
                f"dry run: {counts['items']} items would change in {counts['edits']} requests"
            )


@click.command("revert")
@click.option("--since", default=None, help="Only writes made at or after this ISO time (UTC).")
@click.option(
    "--track", "tracks", multiple=True, help="Only this item (Plex ratingKey); repeatable."
)
@click.option("--force", is_flag=True, help="Also revert items a person changed after genred.")
@click.option("--dry-run", is_flag=True, help="Print what would be put back; change nothing.")
@click.option("--target", default=None, help="Writeback plugin (default: the first enabled).")
@wait_option
@pass_state
def revert_cmd(
    state: AppState,
    since: str | None,
    tracks: tuple[str, ...],
    force: bool,
    dry_run: bool,
    target: str | None,
    wait: bool,
) -> None:
    """Put back the genres items had before genred first wrote them.

    With no filter everything is reverted and writeback pauses until
    `genred writeback --resume`.
    """
    from ..pipeline import writeback as wb

    config = state.config()
    with open_store(config) as store:
        plugin = _writeback_plugin(state, store, target)
        result: dict[str, Any] = {}

        def work() -> dict[str, int]:
            report = wb.revert(
                store,
                plugin,
                since=since,
                items=list(tracks) or None,
                force=force,
                dry_run=dry_run,
                batch_size=config.writeback.batch_size,
                progress=for_terminal(),
            )
            result["report"] = report
            return report.counts

        counts = run_stage(store, "revert", work, data_dir=config.data_dir, wait=wait)
        if dry_run:
            _print_edits(result["report"].planned)
            click.echo(f"dry run: {counts['items']} items would be put back")


COMMANDS = [classify_cmd, decide_cmd, writeback_cmd, revert_cmd]
