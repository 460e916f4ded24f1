"""`genred presets list|export|import`: share prompt presets as files; `genred doctor llm`:
does the configured model answer in a usable form?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from genred.api import (
    EXIT_FAILED,
    AppState,
    ConfigError,
    PluginContext,
    PluginUnavailable,
    load_enabled_plugins,
    open_store,
    pass_state,
    table,
)


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


@click.group("doctor")
def doctor() -> None:
    """Checks of an integration against the real service, before a long run."""


@doctor.command("llm")
@click.option("--llm", "llm_name", help="The LLM plugin to ask (default: llm-metadata's).")
@pass_state
def doctor_llm(state: AppState, llm_name: str | None) -> None:
    """Ask the configured model three test questions with llm-metadata's prompt: which
    output mode the server takes, how fast it answers, and whether the answers validate.

    Nothing is cached or stored. Exits 1 when no answer validates.
    """
    from .doctor import diagnose
    from .metadata import LLMMetadataClassifier, LLMMetadataSettings

    config = state.config()
    with open_store(config) as store:
        loaded = load_enabled_plugins(config, store)
        classifier = loaded.by_kind["classifiers"].get("llm-metadata")
        if classifier is None or (llm_name and llm_name != classifier.settings.llm):
            enabled = list(loaded.by_kind["llm"])
            name = llm_name or (enabled[0] if len(enabled) == 1 else "groq")
            context = PluginContext(config, store)
            context.plugins = loaded
            classifier = LLMMetadataClassifier(LLMMetadataSettings(llm=name), context)
        try:
            llm = classifier.llm()
        except PluginUnavailable as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        click.echo(f"asking {classifier.model()} three test questions …")
        checks = diagnose(llm, classifier)
    table(
        ("track", "mode", "seconds", "valid", "answer"),
        [
            (c.track, c.mode or "-", f"{c.seconds:.1f}", "yes" if c.valid else "no",
             ", ".join(c.genres) if c.valid else c.problem)
            for c in checks
        ],
    )  # fmt: skip
    good = sum(c.valid for c in checks)
    click.echo(f"{good} of {len(checks)} answers validated")
    if good == 0:
        click.echo("this model gives no usable answer: classify would fail every track", err=True)
        sys.exit(EXIT_FAILED)
