"""What each page (and its API twin) shows, gathered from the store and the daemon: plain
data, no HTML and no HTTP, so the pages and the API cannot tell different stories."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from genred.checks import check_config, config_warnings
from genred.config import Config, ConfigError, is_secret_key
from genred.loader import discover
from genred.progress import JobProgress
from genred.store import review, runs
from genred.store.runs import Run
from genred.store.stats import Failing, Overview, failing
from genred.training.auto import LabelsSince, labels_since_current

from .context import WebContext

MASK = "********"
STARTABLE = ("sync", "extract", "classify", "decide", "writeback")


@dataclass(frozen=True)
class OverviewData:
    stats: Overview
    runs: list[Run]
    running: list[JobProgress]
    next_runs: dict[str, str | None]
    failures: list[Failing]
    failures_by_stage: dict[str, int]
    labels: LabelsSince
    auto_train: bool
    min_new_labels: int
    review_waiting: int
    startable: list[str] = field(default_factory=list)


def overview_data(ctx: WebContext) -> OverviewData:
    config = ctx.config()
    with ctx.db.reading() as store:
        latest = runs.latest(store, 20)
        fails, by_stage = failing(store)
        labels = labels_since_current(store, config)
        waiting = review.waiting(store)
    running = ctx.live.snapshot()[1] if ctx.live is not None else []
    status = ctx.status() if ctx.status is not None else {}
    startable = [s for s in STARTABLE if s == "decide" or _has_plugins(ctx, s)]
    return OverviewData(
        stats=ctx.stats.get(),
        runs=latest,
        running=running,
        next_runs=dict(status.get("next_runs") or {}),
        failures=fails,
        failures_by_stage=by_stage,
        labels=labels,
        auto_train=config.train.auto.enabled,
        min_new_labels=config.train.auto.min_new_labels,
        review_waiting=waiting,
        startable=startable if ctx.jobs is not None else [],
    )


def _has_plugins(ctx: WebContext, stage: str) -> bool:
    kind = {"sync": "sources", "extract": "extractors", "classify": "classifiers"}.get(
        stage, "writeback"
    )
    if ctx.plugins is not None:
        return bool(ctx.plugins().of(kind))
    return bool(ctx.config().plugins.enabled(kind))


def progress_item(job: JobProgress) -> dict[str, Any]:
    return {
        "job": job.job,
        "trigger": job.trigger,
        "run_id": job.run_id,
        "step": job.step,
        "done": job.done,
        "total": job.total,
        "seconds": round(time.time() - job.started_at, 1),
    }


# --------------------------------------------------------------------------- settings


def masked_config(config: Config) -> dict[str, Any]:
    """The config as the daemon runs it, every secret replaced by a mask: secret fields,
    keys named like secrets in plugin sections, and any text holding a secret's value."""
    secrets = sorted(config.secrets(), key=len, reverse=True)

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str):
            if node and is_secret_key(key):
                return MASK
            for secret in secrets:
                node = node.replace(secret, MASK)
            return node
        return node

    data: dict[str, Any] = walk(config.model_dump(mode="json"))
    return data


@dataclass(frozen=True)
class PluginRow:
    kind: str
    name: str
    enabled: bool
    status: str


@dataclass(frozen=True)
class SettingsData:
    config: dict[str, Any]
    config_path: str | None
    plugins: list[PluginRow]
    problems: list[str]
    warnings: list[str]


def settings_data(ctx: WebContext) -> SettingsData:
    config = ctx.config()
    infos = discover()
    problems: list[str] = []
    warnings: list[str] = []
    try:
        check_config(config, infos)
    except ConfigError as exc:
        problems = [str(issue) for issue in exc.issues]
    unavailable: dict[tuple[str, str], str] = {}
    if ctx.plugins is not None:
        loaded = ctx.plugins()
        unavailable = dict(loaded.unavailable)
        warnings = config_warnings(config, infos, loaded)
    rows = []
    for info in infos:
        enabled = any(e.name == info.name for e in config.plugins.enabled(info.kind))
        reason = unavailable.get((info.kind, info.name)) or info.error
        rows.append(
            PluginRow(info.kind, info.name, enabled, f"unavailable: {reason}" if reason else "ok")
        )
    secrets = config.secrets()
    scrub = [*problems, *warnings]
    for secret in secrets:
        scrub = [text.replace(secret, MASK) for text in scrub]
    return SettingsData(
        config=masked_config(config),
        config_path=str(ctx.config_path) if ctx.config_path else None,
        plugins=rows,
        problems=scrub[: len(problems)],
        warnings=scrub[len(problems) :],
    )
