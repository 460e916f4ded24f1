"""`genred sync`, `extract`, `classify`, `decide`, `writeback`, `revert`: the stages by hand.

Each command only turns its options into the stage's options; the work is the registered
stage (`genred.stages`), exactly as the daemon runs it.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..loader import LoadedPlugins
from .context import EXIT_FAILED, AppState, pass_state, run_stage, wait_option


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
def sync_cmd(state: AppState, full: bool | None, source_name: str | None, wait: bool) -> None:
    """Bring genred's copy of the library up to date with its sources."""
    enabled = [e.name for e in state.config().plugins.enabled("sources")]

    def check(plugins: LoadedPlugins) -> None:
        if source_name is not None and source_name not in enabled:
            listed = ", ".join(enabled) or "none"
            _fail(f"error: source {source_name!r} is not enabled (enabled: {listed})")
        for name in [source_name] if source_name else enabled:
            reason = plugins.unavailable.get(("sources", name))
            if reason:
                _fail(f"error: source {name!r} cannot be used: {reason}")

    run_stage(state, "sync", {"full": full, "source": source_name}, wait=wait, check=check)


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

    def check(plugins: LoadedPlugins) -> None:
        extractors = plugins.of("extractors")
        unknown = [n for n in names if n not in extractors]
        if unknown:
            _fail(
                f"extractor {', '.join(unknown)} is not enabled or not available "
                f"(enabled: {', '.join(extractors) or 'none'}; see plugins.extractors "
                "in the config)"
            )

    options = {"extractors": list(names), "limit": limit}
    run_stage(state, "extract", options, wait=wait, check=check)


@click.command("classify")
@wait_option
@pass_state
def classify_cmd(state: AppState, wait: bool) -> None:
    """Run the enabled classifiers over tracks they have not seen (or that changed)."""
    run_stage(state, "classify", wait=wait)


@click.command("decide")
@wait_option
@pass_state
def decide_cmd(state: AppState, wait: bool) -> None:
    """Turn predictions (and manual overrides) into one decision per track."""
    run_stage(state, "decide", wait=wait)


target_option = click.option(
    "--target", default=None, help="Writeback plugin to use (default: the first enabled)."
)


def _first_target(state: AppState, target: str | None) -> str | None:
    """`--target`, else the first enabled writeback plugin (None: none is enabled)."""
    if target is not None:
        return target
    enabled = state.config().plugins.enabled("writeback")
    return enabled[0].name if enabled else None


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
@target_option
@click.option("--resume", is_flag=True, help="Lift the pause left by `genred revert`, then write.")
@wait_option
@pass_state
def writeback_cmd(
    state: AppState, dry_run: bool, target: str | None, resume: bool, wait: bool
) -> None:
    """Write decided genres to the target (Plex, or the files' tags), idempotently,
    keeping the originals."""
    from ..pipeline import writeback as wb

    config = state.config()
    chosen = _first_target(state, target)
    dry = dry_run or config.writeback.dry_run

    def check(plugins: LoadedPlugins) -> None:
        if resume and chosen in plugins.of("writeback"):
            from .context import open_store

            with open_store(config) as store:
                count = wb.resume(store, chosen)
            click.echo(f"writeback resumed; {count} reverted items eligible again")

    options = {"dry_run": dry, "target": chosen}
    job = "writeback-dry-run" if dry else "writeback"
    counts, run = run_stage(state, "writeback", options, wait=wait, job=job, check=check)
    if dry:
        _print_edits(run.results["planned"])
        click.echo(f"dry run: {counts['items']} items would change in {counts['edits']} requests")


@click.command("revert")
@click.option("--since", default=None, help="Only writes made at or after this ISO time (UTC).")
@click.option(
    "--track",
    "tracks",
    multiple=True,
    help="Only this item (a Plex ratingKey; a file's path for tags); repeatable.",
)
@click.option("--force", is_flag=True, help="Also revert items a person changed after genred.")
@click.option("--dry-run", is_flag=True, help="Print what would be put back; change nothing.")
@target_option
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
    options = {
        "since": since,
        "items": list(tracks) or None,
        "force": force,
        "dry_run": dry_run,
        "target": _first_target(state, target),
    }
    counts, run = run_stage(state, "revert", options, wait=wait)
    if dry_run:
        _print_edits(run.results["planned"])
        click.echo(f"dry run: {counts['items']} items would be put back")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(EXIT_FAILED)


COMMANDS = [sync_cmd, extract_cmd, classify_cmd, decide_cmd, writeback_cmd, revert_cmd]
