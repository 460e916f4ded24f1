"""`genred presets list|export|import`: share prompt presets as files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from genred.api import EXIT_FAILED, AppState, ConfigError, pass_state, table


@click.group("presets")
def presets() -> None:
    """Prompt presets: your own labels ("Focus", "Happy Vocal") for the llm-labels classifier."""


@presets.command("list")
@pass_state
def presets_list(state: AppState) -> None:
    """The presets in the presets folder; malformed ones with file, key and reason."""
    from .presets import load_presets, presets_dir

    folder = presets_dir(state.config())
    found, problems = load_presets(folder)
    click.echo(f"presets folder: {folder}")
    if found:
        table(
            ("name", "kind", "label", "model", "file"),
            [
                (p.name, p.preset.kind, p.preset.target_label, p.preset.model or "", p.file.name)
                for p in found
            ],
        )
    elif not problems:
        click.echo("no presets yet: `genred presets import FILE` adds one")
    for problem in problems:
        click.echo(f"invalid: {problem}", err=True)
    if problems:
        sys.exit(EXIT_FAILED)


@presets.command("export")
@click.argument("name")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@pass_state
def presets_export(state: AppState, name: str, output: Path | None) -> None:
    """Print preset NAME as YAML (or write it to --output) to share it."""
    from .presets import SUFFIX, dump_preset, load_preset, presets_dir

    file = presets_dir(state.config()) / f"{name}{SUFFIX}"
    if not file.is_file():
        click.echo(f"error: no preset {name!r} ({file} does not exist)", err=True)
        sys.exit(EXIT_FAILED)
    try:
        text = dump_preset(load_preset(file).preset)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@presets.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Save under this name (default: the file's name).")
@click.option("--force", is_flag=True, help="Replace a preset of the same name.")
@pass_state
def presets_import(state: AppState, file: Path, name: str | None, force: bool) -> None:
    """Check FILE and add it to the presets folder; a malformed preset is refused."""
    from .presets import import_preset, presets_dir

    folder = presets_dir(state.config())
    try:
        named = import_preset(file, folder, name=name, force=force)
    except ConfigError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except (ValueError, FileExistsError) as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    p = named.preset
    click.echo(f"imported {named.name}: {p.kind} {p.target_label!r} → {named.file}")
