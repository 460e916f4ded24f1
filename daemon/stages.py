"""The stages, in one registry the daemon, the CLI and the scheduler share.

Each stage is wired here once: its name (the job in `runs`, the CLI command, the key in
`schedule:`), the plugin kind it needs, its lock, whether it runs after a sync that
brought changes, and the function that does one run. The daemon's worker and the CLI
commands both call `Stage.run` with a `StageRun`; they differ only in the options they
pass (`genred sync --full`, `genred extract --limit 10`, …) and in how they report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from threading import Event
from typing import TYPE_CHECKING, Any

from .errors import GenredError
from .logs import get_logger

if TYPE_CHECKING:
    from .config import Config, JobSchedule
    from .hookspecs import PluginLookup
    from .progress import Progress
    from .store import Store

log = get_logger("genred.stages")


@dataclass
class StageRun:
    """Everything one run of a stage gets; `results` carries back more than the counts
    (a dry run's planned edits) for the command that asked."""

    store: Store
    config: Config
    plugins: PluginLookup
    progress: Progress
    trigger: str = "cli"
    cancel: Event | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def enabled(self, kind: str) -> dict[str, Any]:
        return dict(self.plugins.of(kind))


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline."""

    name: str
    run: Callable[[StageRun], dict[str, Any]]
    needs: str | None = None  # the plugin kind; with none enabled the stage has nothing to do
    lock: str | None = None  # the stage lock its runs take (None: takes none)
    scheduled: bool = True  # a job of the daemon, with a `schedule:` entry
    chained: bool = True  # runs right after a sync that brought new or changed tracks
    nothing_enabled: str = ""  # what the CLI says when no plugin of `needs` is enabled
    # Jobs of the stage's own from the config, each with its schedule and options (a saved
    # playlist each: `playlists:Focus`); the daemon schedules them, recorded by job name.
    jobs: Callable[[Config], Mapping[str, tuple[JobSchedule, dict[str, Any]]]] | None = None

    def has_work(self, plugins: PluginLookup) -> bool:
        return self.needs is None or bool(plugins.of(self.needs))


# --------------------------------------------------------------------------- run functions


def _sync(run: StageRun) -> dict[str, Any]:
    from .pipeline.sync import sync, sync_requested

    sources = run.enabled("sources")
    wanted = run.options.get("source")
    if wanted is not None:
        sources = {n: p for n, p in sources.items() if n == wanted}
    requests = run.options.get("requests")
    totals: dict[str, int] = {}
    for name, plugin in sources.items():
        if requests is not None:
            counts = sync_requested(run.store, name, plugin, requests, run.progress, run.cancel)
        else:
            result = sync(
                run.store,
                name,
                plugin,
                full=run.options.get("full"),
                progress=run.progress,
                cancel=run.cancel,
            )
            counts = result.counts()
        add_counts(totals, counts)
    return totals


def _extract(run: StageRun) -> dict[str, Any]:
    from .pipeline.extract import extract

    extractors = run.enabled("extractors")
    names = run.options.get("extractors")
    chosen = {n: extractors[n] for n in names} if names else extractors
    return extract(
        run.store,
        chosen,
        run.config,
        sources=run.enabled("sources"),
        progress=run.progress,
        cancel=run.cancel,
        limit=run.options.get("limit"),
        executors=run.enabled("executors"),
    )


def _classify(run: StageRun) -> dict[str, Any]:
    from .pipeline.classify import FileStage, classify

    return classify(
        run.store,
        run.enabled("classifiers"),
        run.progress,
        cancel=run.cancel,
        decide_config=run.config.decide,
        files=FileStage(run.config, run.enabled("sources"), run.enabled("executors")),
    )


def _decide(run: StageRun) -> dict[str, Any]:
    from .pipeline.decide import decide

    return decide(run.store, run.config.decide, run.progress, cancel=run.cancel)


def _writeback_targets(run: StageRun) -> dict[str, Any]:
    targets = run.enabled("writeback")
    wanted = run.options.get("target")
    if wanted is None:
        return targets
    if wanted not in targets:
        raise GenredError(
            f"writeback target {wanted!r} is not enabled (enabled: {', '.join(targets)})"
        )
    return {wanted: targets[wanted]}


def _writeback(run: StageRun) -> dict[str, Any]:
    from .pipeline import writeback as wb

    dry_run = bool(run.options.get("dry_run")) or run.config.writeback.dry_run
    pause = wb.paused(run.store)
    if pause and not dry_run and run.trigger != "cli":
        log.info("writeback is paused by `genred revert`; skipped", since=pause["at"])
        return {"paused": 1}
    totals: dict[str, int] = {}
    planned: list[Any] = []
    for plugin in _writeback_targets(run).values():
        report = wb.writeback(
            run.store,
            plugin,
            run.config.writeback,
            max_values=run.config.decide.max_genres,
            dry_run=dry_run,
            progress=run.progress,
            cancel=run.cancel,
        )
        planned += report.planned
        add_counts(totals, report.counts)
    run.results["planned"] = planned
    return totals


def _revert(run: StageRun) -> dict[str, Any]:
    from .pipeline import writeback as wb

    totals: dict[str, int] = {}
    planned: list[Any] = []
    for plugin in _writeback_targets(run).values():
        report = wb.revert(
            run.store,
            plugin,
            since=run.options.get("since"),
            items=run.options.get("items"),
            force=bool(run.options.get("force")),
            dry_run=bool(run.options.get("dry_run")),
            batch_size=run.config.writeback.batch_size,
            progress=run.progress,
        )
        planned += report.planned
        add_counts(totals, report.counts)
    run.results["planned"] = planned
    return totals


# The daemon's own train jobs follow `train.auto` (enough new labels, or nothing); a
# person asking (the CLI, the dashboard, a test) trains now.
AUTO_TRAIN_TRIGGERS = ("schedule", "resume")


def _train(run: StageRun) -> dict[str, Any]:
    from .training.train import train_audio_model

    if run.trigger in AUTO_TRAIN_TRIGGERS:
        return _auto_train(run)
    trained = train_audio_model(
        run.store,
        run.config,
        features=run.options.get("features"),
        progress=run.progress,
        say=run.options.get("say", lambda text: log.info(text)),
        force=bool(run.options.get("force")),
    )
    run.results["trained"] = trained
    card = trained.card
    if not trained.activated:
        log.warning(
            "trained model not activated", version=card.version, why=trained.activation.reason
        )
    return {
        "classes": len(card.labels),
        "train": card.split.train_tracks,
        "test": card.split.test_tracks,
        "activated": int(trained.activated),
    }


def _playlists(run: StageRun) -> dict[str, Any]:
    from .pipeline.playlists import run_saved

    return run_saved(run)


def _playlist_jobs(config: Config) -> Mapping[str, tuple[JobSchedule, dict[str, Any]]]:
    from .pipeline.playlists import saved_jobs

    return saved_jobs(config)


def _auto_train(run: StageRun) -> dict[str, Any]:
    """The daemon's train job (`train.auto`): only with enough new labels, kept if not worse."""
    from .training.auto import retrain_if_due

    result = retrain_if_due(
        run.store, run.config, progress=run.progress, say=lambda text: log.info(text)
    )
    run.results["auto"] = result
    log.info("train.auto", reason=result.reason, new_labels=result.labels.new)
    return {
        "new_labels": result.labels.new,
        "trained": int(result.trained is not None),
        "kept": int(result.kept),
    }


# --------------------------------------------------------------------------- the registry

STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "sync",
            _sync,
            needs="sources",
            lock="sync",
            chained=False,
            nothing_enabled="no source plugin is enabled (plugins.sources in the config)",
        ),
        Stage(
            "extract",
            _extract,
            needs="extractors",
            lock="extract",
            nothing_enabled="no extractor is enabled (plugins.extractors in the config)",
        ),
        Stage(
            "classify",
            _classify,
            needs="classifiers",
            lock="classify",
            nothing_enabled="no classifier is enabled (plugins.classifiers in the config)",
        ),
        Stage("decide", _decide, lock="decide"),
        Stage(
            "writeback",
            _writeback,
            needs="writeback",
            lock="writeback",
            nothing_enabled="no writeback target is enabled (plugins.writeback in the config)",
        ),
        Stage(
            "revert",
            _revert,
            needs="writeback",
            lock="writeback",
            scheduled=False,
            chained=False,
            nothing_enabled="no writeback target is enabled (plugins.writeback in the config)",
        ),
        # Training reads the store and writes only files (the model directory, replaced
        # atomically); its lock keeps two trainings apart, classify runs on beside it and
        # picks the new model up on its next run. Scheduled only with `train.auto`.
        Stage("train", _train, lock="train", chained=False),
        # Saved prompts (`playlists.saved`), each on its own schedule: job `playlists:NAME`.
        Stage(
            "playlists",
            _playlists,
            lock="playlists",
            scheduled=False,
            chained=False,
            jobs=_playlist_jobs,
        ),
    )
}
SCHEDULED = tuple(name for name, stage in STAGES.items() if stage.scheduled)
CHAINED = tuple(name for name, stage in STAGES.items() if stage.chained)


def lock_of(job: str) -> str | None:
    """The stage lock a recorded job takes; a dry run writes nothing and takes none. A
    stage's own job (`playlists:Focus`) takes its stage's lock."""
    stage = STAGES.get(job) or stage_of_job(job)
    return stage.lock if stage is not None else None


def stage_of_job(job: str) -> Stage | None:
    """The stage whose own jobs include `job` (`playlists:Focus` → playlists)."""
    name, sep, _item = job.partition(":")
    stage = STAGES.get(name) if sep else None
    return stage if stage is not None and stage.jobs is not None else None


def item_jobs(config: Config) -> dict[str, tuple[Stage, JobSchedule, dict[str, Any]]]:
    """Every stage's own jobs in `config`: job → (stage, schedule, options)."""
    out: dict[str, tuple[Stage, JobSchedule, dict[str, Any]]] = {}
    for stage in STAGES.values():
        if stage.jobs is not None:
            for job, (schedule, options) in stage.jobs(config).items():
                out[job] = (stage, schedule, options)
    return out


def add_counts(totals: dict[str, int], counts: Mapping[str, Any]) -> None:
    for key, value in counts.items():
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
