"""`genred playlist …`: playlists from plain words, by hand (the daemon keeps the saved ones).

Every command that changes a playlist runs under the `playlists` stage lock and is recorded
in `runs` as `playlists:NAME`, as the daemon's jobs are; each calls one function of
`genred.playlists` and prints the record it returns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .context import (
    EXIT_BUSY,
    EXIT_FAILED,
    AppState,
    load_enabled_plugins,
    open_store,
    pass_state,
    table,
    wait_option,
)

T = TypeVar("T")
UNMATCHED_SHOWN = 10


def _targets(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [t.strip() for t in value.split(",") if t.strip()]


def _work(
    state: AppState, job: str, work: Callable[[Any], T], *, wait: bool = True, record: bool = True
) -> T:
    """Run `work(ctx)` with the store and plugins, under the playlists lock, as `job`."""
    from ..errors import GenredError, StageBusy
    from ..pipeline.jobs import run_job
    from ..playlists import PlaylistContext
    from ..progress import for_terminal

    config = state.config()
    with open_store(config) as store:
        plugins = load_enabled_plugins(config, store)
        ctx = PlaylistContext(store, config, plugins, for_terminal())
        result: list[T] = []

        def run() -> dict[str, Any]:
            result.append(work(ctx))
            return {}

        try:
            if record:
                run_job(
                    store, job, "cli", run, lock="playlists", data_dir=config.data_dir, wait=wait
                )
            else:
                run()
        except StageBusy as exc:
            click.echo(f"busy: {exc}", err=True)
            sys.exit(EXIT_BUSY)
        except GenredError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo("interrupted; what was committed is kept, run it again to go on", err=True)
            sys.exit(130)
        return result[0]


@click.group("playlist")
def playlist_group() -> None:
    """Playlists of your own music from plain words, pushed to Spotify and Plex."""


@playlist_group.command("create")
@click.argument("prompt")
@click.option("--name", default=None, help="Its name (default: the title read from the prompt).")
@click.option("--size", type=click.IntRange(1, 1000), default=None, help="Tracks.")
@click.option(
    "--minutes", type=click.IntRange(1, 6000), default=None, help="Length instead of a size."
)
@click.option(
    "--to",
    "to",
    default=None,
    metavar="TARGETS",
    help="Push to these (spotify,plex); default: playlists.targets.",
)
@click.option("--dry-run", is_flag=True, help="Show what it would be; store and push nothing.")
@click.option("--no-push", is_flag=True, help="Store it; push later with `genred playlist push`.")
@wait_option
@pass_state
def create_cmd(
    state: AppState,
    prompt: str,
    name: str | None,
    size: int | None,
    minutes: int | None,
    to: str | None,
    dry_run: bool,
    no_push: bool,
    wait: bool,
) -> None:
    """Make a playlist from PROMPT ("relaxing jazz for reading", "90s hip hop, no skits")."""
    from ..playlists import create

    if size is not None and minutes is not None:
        raise click.UsageError("give --size or --minutes, not both")
    outcome = _work(
        state,
        f"playlists:{name or 'new'}",
        lambda ctx: create(
            ctx,
            prompt,
            name=name,
            size=size,
            minutes=minutes,
            targets=_targets(to),
            dry_run=dry_run,
            push=not no_push,
        ),
        wait=wait,
        record=not dry_run,
    )
    _print_outcome(outcome, full=True)
    _exit_for(outcome.pushes)


@playlist_group.command("refine")
@click.argument("name")
@click.argument("change")
@click.option("--no-push", is_flag=True, help="Do not push the new version.")
@wait_option
@pass_state
def refine_cmd(state: AppState, name: str, change: str, no_push: bool, wait: bool) -> None:
    """Change NAME in a few words ("more upbeat, no vocals", "drop the Christmas songs")."""
    from ..playlists import refine

    outcome = _work(
        state,
        f"playlists:{name}",
        lambda ctx: refine(ctx, name, change, push=not no_push),
        wait=wait,
    )
    _print_outcome(outcome)
    _exit_for(outcome.pushes)


@playlist_group.command("undo")
@click.argument("name")
@click.option("--no-push", is_flag=True, help="Do not push the version it goes back to.")
@wait_option
@pass_state
def undo_cmd(state: AppState, name: str, no_push: bool, wait: bool) -> None:
    """Go back to the version NAME was made from (every version is kept)."""
    from ..playlists import undo

    outcome = _work(
        state, f"playlists:{name}", lambda ctx: undo(ctx, name, push=not no_push), wait=wait
    )
    _print_outcome(outcome)
    _exit_for(outcome.pushes)


@playlist_group.command("refresh")
@click.argument("name", required=False)
@click.option(
    "--keep", type=click.FloatRange(0, 1), default=None, help="Share of the tracks to keep."
)
@click.option("--no-push", is_flag=True, help="Do not push the new version.")
@wait_option
@pass_state
def refresh_cmd(
    state: AppState, name: str | None, keep: float | None, no_push: bool, wait: bool
) -> None:
    """Rebuild NAME from its stored intent on today's library (no LLM); without NAME, run
    every saved playlist of the config, as the daemon does."""
    from ..playlists import refresh

    if name is None:
        from .context import run_stage

        counts, _run = run_stage(state, "playlists", {}, wait=wait)
        click.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        return
    outcome = _work(
        state,
        f"playlists:{name}",
        lambda ctx: refresh(ctx, name, keep=keep, push=not no_push),
        wait=wait,
    )
    _print_outcome(outcome)
    _exit_for(outcome.pushes)


@playlist_group.command("edit")
@click.argument("name")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Set a field (lists: comma-separated; empty: clear it).",
)
@click.option("--add", "adds", multiple=True, metavar="FIELD=VALUE", help="Add to a list field.")
@click.option(
    "--remove", "removes", multiple=True, metavar="FIELD=VALUE", help="Remove from a list field."
)
@click.option("--no-push", is_flag=True)
@wait_option
@pass_state
def edit_cmd(
    state: AppState, name: str, sets: tuple[str, ...], adds: tuple[str, ...], removes: tuple[str, ...],
    no_push: bool, wait: bool,
) -> None:  # fmt: skip
    """Edit NAME's intent yourself (`--set year_min=1960 --add genres=Soul`); no LLM."""
    from ..playlists import IntentPatch, edit
    from ..playlists.intent import LIST_FIELDS

    try:
        patch = IntentPatch(
            set={k: _value(k, v, LIST_FIELDS) for k, v in map(_pair, sets)},
            add={k: _list(v) for k, v in map(_pair, adds)},
            remove={k: _list(v) for k, v in map(_pair, removes)},
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    outcome = _work(
        state, f"playlists:{name}", lambda ctx: edit(ctx, name, patch, push=not no_push), wait=wait
    )
    _print_outcome(outcome)
    _exit_for(outcome.pushes)


def _position_command(verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("name")
    @click.argument("positions", nargs=-1, type=click.IntRange(min=1), required=True)
    @click.option("--no-push", is_flag=True)
    @wait_option
    @pass_state
    def command(
        state: AppState, name: str, positions: tuple[int, ...], no_push: bool, wait: bool
    ) -> None:
        from ..playlists import drop, pin

        def work(ctx: Any) -> Any:
            if verb == "drop":
                return drop(ctx, name, list(positions), push=not no_push)
            return pin(ctx, name, list(positions), pinned=verb == "pin", push=not no_push)

        outcome = _work(state, f"playlists:{name}", work, wait=wait)
        _print_outcome(outcome)
        _exit_for(outcome.pushes)

    return command


for _verb, _help in (
    (
        "pin",
        "Pin tracks of NAME by position (as `show` numbers them): they stay through refines and refreshes.",
    ),
    ("unpin", "Unpin tracks of NAME by position."),
    ("drop", "Remove tracks of NAME by position: they never come back; others take their place."),
):
    playlist_group.add_command(_position_command(_verb, _help))


@playlist_group.command("show")
@click.argument("name")
@click.option(
    "--version", "version", type=int, default=None, help="Another version than the current."
)
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON.")
@pass_state
def show_cmd(state: AppState, name: str, version: int | None, as_json: bool) -> None:
    """NAME's tracks, why each was chosen, where each was matched, and its versions."""
    from ..playlists import show

    view = _work(state, "", lambda ctx: show(ctx, name, version=version), record=False)
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, ensure_ascii=False))
        return
    _print_view(view)


@playlist_group.command("list")
@pass_state
def list_cmd(state: AppState) -> None:
    """Every playlist: tracks, length, version, targets."""
    from ..playlists import list_playlists

    config = state.config()
    if not config.db_path.exists():
        click.echo("no playlists yet")
        return
    with open_store(config) as store:
        rows = list_playlists(store)
    if not rows:
        click.echo('no playlists yet: genred playlist create "…"')
        return
    table(
        ("name", "tracks", "min", "version", "targets", "saved", "prompt"),
        [
            (
                r.name,
                r.tracks,
                r.minutes,
                f"{r.version}/{r.versions}",
                ",".join(r.targets) or "-",
                "yes" if r.saved else "",
                _short(r.prompt, 50),
            )
            for r in rows
        ],
    )


@playlist_group.command("push")
@click.argument("name")
@click.option("--to", "to", default=None, metavar="TARGETS", help="Only these targets.")
@click.option("--verify", is_flag=True, help="Read the remote playlists even when nothing changed.")
@wait_option
@pass_state
def push_cmd(state: AppState, name: str, to: str | None, verify: bool, wait: bool) -> None:
    """Push NAME to its targets: by diff, in place; nothing is sent when nothing changed."""
    from ..playlists import push_playlist

    reports = _work(
        state,
        f"playlists:{name}",
        lambda ctx: push_playlist(ctx, name, targets=_targets(to), verify=verify),
        wait=wait,
    )
    if not reports:
        click.echo(f"{name!r} has no targets: genred playlist push {name} --to spotify,plex")
    _print_pushes(reports)
    _exit_for(reports)


@playlist_group.command("delete")
@click.argument("name")
@click.option("--keep-remote", is_flag=True, help="Leave the Spotify and Plex playlists alone.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting remote playlists.")
@pass_state
def delete_cmd(state: AppState, name: str, keep_remote: bool, yes: bool) -> None:
    """Forget NAME; its remote playlists are deleted too, after asking (--keep-remote: kept)."""
    from ..playlists import delete, show

    remote = not keep_remote
    if remote and not yes:
        view = _work(state, "", lambda ctx: show(ctx, name), record=False)
        if view.remotes:
            where = ", ".join(f"{r.target} ({r.remote_id})" for r in view.remotes)
            if not click.confirm(f"Also delete the playlist at {where}?", default=False):
                remote = False
    said = _work(state, f"playlists:{name}", lambda ctx: delete(ctx, name, remote=remote))
    for line in said:
        click.echo(line)


@playlist_group.command("index")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many tracks.")
@pass_state
def index_cmd(state: AppState, limit: int | None) -> None:
    """Embed the profiles of tracks for semantic search (playlists.semantic; genred[semantic])."""
    from ..playlists.semantic import unavailable, update_index

    why = unavailable()
    if why:
        click.echo(f"error: {why}", err=True)
        sys.exit(EXIT_FAILED)
    done = _work(
        state,
        "playlists:index",
        lambda ctx: update_index(ctx.store, limit=limit, progress=ctx.progress),
    )
    click.echo(f"{done:,} track profiles embedded")


# --------------------------------------------------------------------------- printing


def _print_outcome(outcome: Any, *, full: bool = False) -> None:
    view = outcome.playlist
    tracks = outcome.preview
    minutes = sum(t.duration_ms or 0 for t in tracks) // 60_000
    if view is None:
        click.echo(f"dry run: {len(tracks)} tracks, {minutes} min (nothing stored or pushed)")
    else:
        click.echo(f"{view.name}: {len(tracks)} tracks, {minutes} min (version {view.version})")
    click.echo(f"intent: {outcome.intent.summary()}")
    for line in outcome.intent_changes:
        click.echo(f"  changed {line}")
    _print_report(outcome.report, outcome.notes)
    if full or view is None:
        _print_tracks(tracks)
    else:
        for t in outcome.added:
            click.echo(f"  + {_track(t)}  ({t.why})")
        for t in outcome.removed:
            click.echo(f"  − {_track(t)}")
        if not outcome.added and not outcome.removed:
            click.echo("  (the same tracks)")
    if outcome.llm_requests:
        click.echo(f"LLM requests: {outcome.llm_requests}")
    _print_pushes(outcome.pushes)


def _print_report(report: Any, notes: list[str]) -> None:
    for note in notes:
        click.echo(f"note: {note}")
    for line in report.relaxed:
        click.echo(f"relaxed: {line}")
    if report.shortfall:
        click.echo(f"short: {report.shortfall}")
    for line in report.closest:
        click.echo(f"  {line}")


def _print_tracks(tracks: list[Any]) -> None:
    for t in tracks:
        pin = " [pinned]" if t.pinned else ""
        click.echo(f"{t.position:4}. {_track(t)}{pin}")
        if t.why:
            click.echo(f"      {t.why}")


def _print_view(view: Any) -> None:
    click.echo(
        f"{view.name}: {len(view.tracks)} tracks, {view.minutes} min (version {view.version})"
    )
    click.echo(f"prompt: {view.prompt}")
    click.echo(f"intent: {view.intent.summary()}")
    sources = sorted({v for v in view.intent.sources.values()})
    if sources:
        click.echo(f"  read by: {', '.join(sources)}")
    _print_report(view.report, view.report.notes)
    for t in view.tracks:
        pin = " [pinned]" if t.pinned else ""
        click.echo(f"{t.position:4}. {_track(t)}{pin}")
        if t.why:
            click.echo(f"      {t.why}")
        for target, where in sorted(t.matches.items()):
            click.echo(f"      {target}: {where}")
    for r in view.remotes:
        state = "in sync" if r.in_sync else f"pushed version {r.pushed_version}"
        click.echo(f"{r.target}: {r.link or r.remote_id} ({state})")
    click.echo("versions:")
    for v in view.versions:
        mark = "*" if v.head else " "
        click.echo(
            f" {mark}{v.number:3}  {v.created_at[:19].replace('T', ' ')}  {v.tracks:4} tracks  {v.reason}"
        )


def _print_pushes(reports: list[Any]) -> None:
    for r in reports:
        where = f" {r.link or r.remote_id}" if (r.link or r.remote_id) else ""
        click.echo(f"{r.target}: {r.status}{where}: {r.message}")
        for note in r.notes:
            click.echo(f"  note: {note}")
        if r.unmatched:
            click.echo(f"  {len(r.unmatched)} tracks are not at {r.target}:")
            for track_id, why in r.unmatched[:UNMATCHED_SHOWN]:
                click.echo(f"    track {track_id}: {why}")
            if len(r.unmatched) > UNMATCHED_SHOWN:
                click.echo(
                    f"    … and {len(r.unmatched) - UNMATCHED_SHOWN} more (genred playlist show)"
                )


def _exit_for(reports: list[Any]) -> None:
    if any(r.status == "failed" for r in reports):
        sys.exit(EXIT_FAILED)
    if any(r.status == "deferred" for r in reports):
        sys.exit(EXIT_BUSY)


def _track(t: Any) -> str:
    year = f", {t.year}" if t.year else ""
    return f"{t.artist} – {t.title} ({t.album}{year})"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.UsageError(f"expected FIELD=VALUE, not {text!r}")
    return key.strip(), value.strip()


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _value(key: str, value: str, lists: tuple[str, ...]) -> Any:
    if value == "":
        return None
    if key in lists:
        return _list(value)
    if key in ("year_min", "year_max", "size", "minutes", "per_artist", "per_album"):
        try:
            return int(value)
        except ValueError:
            raise click.UsageError(f"{key} takes a whole number, not {value!r}") from None
    if key == "versions":
        return value.lower() in ("1", "true", "yes", "on")
    return value


COMMANDS = [playlist_group]
