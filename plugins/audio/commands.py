"""`genred models list` and `genred models fetch NAME`: the audio tagger models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from genred.api import EXIT_FAILED, AppState, pass_state, table

if TYPE_CHECKING:
    from .tagging.spec import LoadedSpec


@click.group("models")
def models() -> None:
    """Audio tagger models: the shipped ones and those genred can download."""


@models.command("list")
@pass_state
def list_cmd(state: AppState) -> None:
    """Every known model, whether it is ready, and how to get it if not.

    Needs no config file: without one, the default data dir is looked at (and said).
    """
    from .tagging.spec import ModelSpecError, shipped_specs

    data_dir = state.config(defaults_ok=True).data_dir
    try:
        specs = shipped_specs()
    except ModelSpecError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    rows = []
    for name, loaded in sorted(specs.items()):
        origin = "fetch" if any(f.url for f in loaded.spec.files()) else "shipped"
        rows.append((name, origin, _state(loaded, data_dir), loaded.spec.description))
    table(("name", "origin", "state", "description"), rows)
    click.echo(
        "use one with plugins.classifiers.tagger.model: NAME (or the path of a spec file)",
        err=True,
    )


def _state(loaded: LoadedSpec, data_dir: Path) -> str:
    from .tagging.spec import file_sha256

    for item in loaded.spec.files():
        path = loaded.locate(item, data_dir)
        if path is None:
            if item.url:
                return f"not downloaded: genred models fetch {loaded.name}"
            return f"missing {item.file}: reinstall genred"
        if item.sha256 and file_sha256(path) != item.sha256:
            return f"{item.file} does not match its checksum: genred models fetch {loaded.name}"
    return "ready" if loaded.spec.status == "verified" else "ready (unverified preprocessing)"


@models.command("fetch")
@click.argument("name")
@pass_state
def fetch_cmd(state: AppState, name: str) -> None:
    """Download model NAME (from `genred models list`, or a spec file's path) into the data
    dir, checking each file's sha256. Without internet, says where to copy it by hand."""
    from .tagging.fetch import ModelFetchError, fetch_model
    from .tagging.spec import ModelSpecError, resolve_spec

    data_dir = state.config().data_dir
    try:
        loaded = resolve_spec(name)
        if not any(item.url for item in loaded.spec.files()):
            click.echo(f"{loaded.name} ships with genred: nothing to download")
            return
        fetched = fetch_model(loaded, data_dir)
    except (ModelSpecError, ModelFetchError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    for item in fetched:
        what = "downloaded" if item.downloaded else "already there"
        click.echo(f"{item.file}: {what}, checksum ok ({item.path})")
    if loaded.spec.status != "verified":
        click.echo(
            f"note: {loaded.name}'s preprocessing is not verified against its reference "
            f"(see {loaded.path})",
            err=True,
        )
