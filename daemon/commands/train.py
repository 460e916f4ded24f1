"""`genred train [--features a,b] [--report]`: fit the `audio-model` classifier, or show it.

Training reads the store and writes only files (the model directory, replaced
atomically), so it takes only the `train` lock (two trainings never overlap): classify
keeps running on the model it loaded and picks up the new one on its next run. The run is recorded in `runs` (job "train")
so `genred status` shows it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .context import EXIT_FAILED, AppState, pass_state, run_stage

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
@click.option("--report", is_flag=True, help="Print the current model's card; train nothing.")
@pass_state
def train_cmd(state: AppState, features: str | None, report: bool) -> None:
    """Train the audio-model classifier on stored features and the library's own labels.

    Evaluates on whole albums it never saw (train.split_by), calibrates its
    probabilities, stores the model as a new version in the data dir and prints its card.
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
    options = {"features": names, "say": lambda text: click.echo(text, err=True)}
    _counts, run = run_stage(state, "train", options)
    trained = run.results["trained"]
    click.echo(f"stored audio model {trained.card.version} in {trained.path}")
    for line in card_lines(trained.card):
        click.echo(line)


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
        click.echo(f"older versions kept: {', '.join(others)}")


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
        f"{c.ece_after:.3f} after ({c.method})",
        f"training: {card.training.epochs} epochs, weights of epoch {card.training.best_epoch}",
    ]
    if card.auto_train:
        lines.append(card.auto_train)
    if card.dropped_labels:
        lines.append(
            "dropped (too few tracks): "
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
