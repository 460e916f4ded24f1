"""`genred retry`: forget recorded failures, so their items are tried on the next run."""

from __future__ import annotations

import sys

import click

from .context import EXIT_CONFIG, AppState, open_store, pass_state


@click.command("retry")
@click.option(
    "--stage",
    metavar="STAGE",
    default=None,
    help="Only this stage's failures (extract, classify, writeback, revert) or one plugin's "
    "(extract:handcrafted, classify:tagger). Default: every stage.",
)
@click.option(
    "--permanent", "kind", flag_value="permanent", default=None, help="Only the permanent ones."
)
@click.option("--transient", "kind", flag_value="transient", help="Only the transient ones.")
@pass_state
def retry_cmd(state: AppState, stage: str | None, kind: str | None) -> None:
    """Try failed items again: clear their failures, permanent ones (skipped until the file
    changes) and transient ones (waiting for their backoff).

    The next run of the stage, by hand or the daemon's, takes them up again.
    """
    from ..stages import STAGES
    from ..store import failures

    if stage is not None and stage.split(":", 1)[0] not in STAGES:
        click.echo(
            f"error: no stage {stage!r} (stages: {', '.join(STAGES)}; a plugin's failures: "
            "extract:NAME, classify:NAME)",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    config = state.config()
    if not config.db_path.exists():
        click.echo(f"no database yet at {config.db_path}: nothing has failed")
        return
    with open_store(config) as store:
        cleared = failures.remove(store, stage, kind)
    what = f"{kind} " if kind else ""
    if not cleared:
        click.echo(f"no {what}failures to clear" + (f" in {stage}" if stage else ""))
        return
    total = sum(cleared.values())
    detail = ", ".join(f"{name} {n}" for name, n in sorted(cleared.items()))
    click.echo(
        f"cleared {total} {what}{'failure' if total == 1 else 'failures'} ({detail}); "
        "they are tried again on the next run of their stage"
    )
