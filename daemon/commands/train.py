"""`genred train [--features a,b] [--force] [--report]`: fit the `audio-model` classifier,
or show it.

A new model becomes current only when it is good enough (`training.activation`); else it
is stored, not activated, the reason is printed and the command exits 4
(EXIT_NOT_ACTIVATED). `--force` activates it whatever its figures.

Training reads the store and writes only files (the model directory, replaced
atomically), so it takes only the `train` lock (two trainings never overlap): classify
keeps running on the model it loaded and picks up the new one on its next run. The run is recorded in `runs` (job "train")
so `genred status` shows it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .context import EXIT_FAILED, EXIT_NOT_ACTIVATED, AppState, pass_state, run_stage

if TYPE_CHECKING:
    from ..training.card import ModelCard


@click.command("train")
@click.option(
    "--features",
    default=None,
    metavar="NAMES",
    help="Comma-separated extractor names, e.g. handcrafted,tagger-msd-musicnn "
    "(default: train.features in the config).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Make the new model current even if it does not beat the majority-class baseline "
    "or the current model.",
)
@click.option("--report", is_flag=True, help="Print the current model's card; train nothing.")
@pass_state
def train_cmd(state: AppState, features: str | None, force: bool, report: bool) -> None:
    """Train the audio-model classifier on stored features and the library's own labels.

    Evaluates on whole albums it never saw (train.split_by), calibrates its
    probabilities, stores the model as a new version in the data dir and prints its card.
    It becomes the current model only if its held-out macro-F1 beats always guessing the
    most common class and is not worse than the current model's on the same tracks; else
    it is stored, not activated, and the command exits 4 (--force activates it anyway).
    """
    config = state.config()
    if report:
        _print_current(config.data_dir)
        return
    names = [n.strip() for n in features.split(",") if n.strip()] if features else None
    if features is not None and not names:
        click.echo("error: --features names no extractor", err=True)
        sys.exit(EXIT_FAILED)
    _require_torch()
    options = {"features": names, "force": force, "say": lambda text: click.echo(text, err=True)}
    _counts, run = run_stage(state, "train", options)
    trained = run.results["trained"]
    click.echo(f"stored audio model {trained.card.version} in {trained.path}")
    for line in card_lines(trained.card):
        click.echo(line)
    if not trained.activated:
        kept = trained.activation.current_version
        click.echo(
            f"not activated: {trained.activation.reason}; "
            + (f"the current model stays {kept}" if kept else "there is no current model")
            + "; `genred train --force` activates a new model anyway",
            err=True,
        )
        sys.exit(EXIT_NOT_ACTIVATED)


def _require_torch() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("numpy") is None:
        click.echo(
            "error: training needs torch: install it with pip install 'genred[ml]'", err=True
        )
        sys.exit(EXIT_FAILED)


def _print_current(data_dir: Any) -> None:
    from ..errors import ModelUnavailable
    from ..training import registry

    try:
        version = registry.current_version(data_dir)
        if version is None:
            click.echo(
                f"no audio model trained yet (in {registry.models_dir(data_dir)}): "
                "run `genred train`",
                err=True,
            )
            sys.exit(EXIT_FAILED)
        card = registry.read_card(data_dir, version)
    except ModelUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    for line in card_lines(card):
        click.echo(line)
    others = [v for v in registry.versions(data_dir) if v != version]
    if others:
        click.echo(f"other versions kept: {', '.join(others)}")
    for other in others:
        try:
            activation = registry.read_card(data_dir, other).activation
        except ModelUnavailable:
            continue
        if activation is not None and not activation.activated:
            click.echo(f"  {other}: not activated: {activation.reason}")


def card_lines(card: ModelCard) -> list[str]:
    """The card as text: what a person checks before trusting a model."""
    m, c, s = card.metrics, card.calibration, card.split
    lines = [
        f"audio model {card.version}, trained {card.created_at} (genred {card.genred_version})",
        f"task: {card.task}",
        "features: " + ", ".join(f"{f.extractor} {f.version} ({f.dims})" for f in card.features),
        "labels from: " + ", ".join(f"{k} {v}" for k, v in card.label_sources.items()),
        f"split by {s.by} (seed {s.seed}): {s.train_tracks} tracks in {s.train_groups} "
        f"{s.by}s to train ({s.validation_tracks} of them to stop early), {s.test_tracks} in "
        f"{s.test_groups} {s.by}s held out",
        f"held-out accuracy {m.accuracy:.3f}, macro-F1 {m.macro_f1:.3f} ({m.test_tracks} tracks)",
        f"calibration: temperature {c.temperature:.3f}, ECE {c.ece_before:.3f} before, "
        f"{c.ece_after:.3f} after ({c.method})"
        if c.applied
        else f"calibration: none ({c.dropped})",
        f"training: {card.training.epochs} epochs, weights of epoch {card.training.best_epoch}",
    ]
    a = card.activation
    if a is not None:
        lines.append(
            ("activated: " if a.activated else "NOT activated: ")
            + a.reason
            + (
                f" ({a.current_unclassified} of them it could not classify)"
                if a.current_unclassified
                else ""
            )
        )
    if card.dropped_labels:
        lines.append(
            "dropped (too few tracks, or all from one album): "
            + ", ".join(f"{k} {v}" for k, v in card.dropped_labels.items())
        )
    lines.append("")
    lines.extend(
        _table(
            ("class", "train", "test", "F1"),
            [
                (
                    name,
                    card.counts[name].train,
                    card.counts[name].test,
                    f"{m.f1.get(name, 0.0):.3f}",
                )
                for name in card.labels
            ],
        )
    )
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted)")
    short = [str(i + 1) for i in range(len(card.labels))]
    lines.extend(
        _table(
            ("", "true \\ predicted", *short),
            [(short[i], name, *m.confusion[i]) for i, name in enumerate(card.labels)],
        )
    )
    return lines


def _table(headers: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    return [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip()
        for row in (headers, *rows)
    ]
