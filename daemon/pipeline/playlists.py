"""The `playlists` stage: the saved prompts of the config (`playlists.saved`), each created
the first time, refreshed afterwards (no LLM), and pushed to its targets.

The daemon runs one job per saved playlist (`playlists:NAME`) on the playlist's own
`every:`/`cron:` schedule, under the stage's lock, recorded in `runs` like every stage;
`genred playlist refresh` runs the same function by hand. A saved playlist that fails
(an empty library, a target that is not enabled) is recorded in `failures` and the
others go on. When a target asks to wait (a long 429) or the LLM's budget is spent, the
rest is done first and then RetryLater goes up: the daemon runs the job again then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import Config, JobSchedule
from ..errors import GenredError, LibraryEmpty, RetryLater
from ..logs import get_logger
from ..store import failures

log = get_logger("genred.playlists")

STAGE = "playlists"
JOB_PREFIX = "playlists:"
EMPTY_LIBRARY_RETRY = timedelta(minutes=10)


def job_name(name: str) -> str:
    return f"{JOB_PREFIX}{name}"


def saved_jobs(config: Config) -> dict[str, tuple[JobSchedule, dict[str, Any]]]:
    """The daemon's jobs for the saved playlists that have a schedule: job → (schedule, options)."""
    jobs: dict[str, tuple[JobSchedule, dict[str, Any]]] = {}
    for name, saved in config.playlists.saved.items():
        if not saved.enabled or (saved.every is None and saved.cron is None):
            continue
        schedule = JobSchedule(every=saved.every, cron=saved.cron)
        jobs[job_name(name)] = (schedule, {"name": name})
    return jobs


def run_saved(run: Any) -> dict[str, Any]:
    """One run of the stage (a `StageRun`): the saved playlist `options["name"]`, or all."""
    from ..playlists import PlaylistContext, sync_saved

    config = run.config
    wanted = run.options.get("name")
    names = [wanted] if wanted else [n for n, s in config.playlists.saved.items() if s.enabled]
    ctx = PlaylistContext(run.store, config, run.plugins, run.progress, run.cancel)
    counts = {"playlists": 0, "tracks": 0, "pushed": 0, "unchanged": 0, "failed": 0, "deferred": 0}
    counts["indexed"] = _index(run, config)
    later: RetryLater | None = None
    for name in names:
        stage = f"{STAGE}:{name}"
        try:
            outcome = sync_saved(ctx, name)
        except LibraryEmpty as exc:  # at a first start the sync may not be done yet
            counts["deferred"] += 1
            when = datetime.now(UTC) + EMPTY_LIBRARY_RETRY
            later = _later(later, RetryLater(f"{exc}; tried again at {when:%H:%M} UTC", when))
            continue
        except RetryLater as exc:
            counts["deferred"] += 1
            later = _later(later, exc)
            continue
        except GenredError as exc:
            counts["failed"] += 1
            failures.record(run.store, STAGE, name, exc)
            log.error("saved playlist failed", playlist=name, error=str(exc))
            continue
        failures.clear(run.store, STAGE, [name])
        counts["playlists"] += 1
        counts["tracks"] += len(outcome.preview)
        for push in outcome.pushes:
            if push.status == "deferred" and push.retry_at:
                counts["deferred"] += 1
                later = _later(
                    later, RetryLater(push.message, datetime.fromisoformat(push.retry_at))
                )
            elif push.status == "failed":
                counts["failed"] += 1
                log.error("push failed", playlist=name, target=push.target, error=push.message)
            elif push.status == "unchanged":
                counts["unchanged"] += 1
            elif push.status != "skipped":
                counts["pushed"] += 1
            for track_id, why in push.unmatched[:5]:
                log.info("not pushed", playlist=name, target=push.target, track=track_id, why=why)
        log.info(
            "saved playlist done",
            job=stage,
            tracks=len(outcome.preview),
            version=outcome.playlist.version if outcome.playlist else None,
            pushes={p.target: p.status for p in outcome.pushes},
        )
    if later is not None:
        raise later
    return counts


def _index(run: Any, config: Config) -> int:
    if not config.playlists.semantic.enabled:
        return 0
    from ..playlists.semantic import unavailable, update_index

    why = unavailable()
    if why:
        log.warning("semantic index not updated", reason=why)
        return 0
    return update_index(
        run.store,
        limit=config.playlists.semantic.index_batch,
        progress=run.progress,
        cancel=run.cancel,
    )


def _later(current: RetryLater | None, new: RetryLater) -> RetryLater:
    """The later of two deferrals: running before it would only be refused again."""
    if current is None:
        return new
    when = new.retry_at if new.retry_at.tzinfo else new.retry_at.replace(tzinfo=UTC)
    was = current.retry_at if current.retry_at.tzinfo else current.retry_at.replace(tzinfo=UTC)
    return new if when > was else current


def options_of(
    job: str, jobs: Mapping[str, tuple[JobSchedule, dict[str, Any]]]
) -> dict[str, Any] | None:
    """The options of a saved playlist's job, or None when it is not one."""
    if job in jobs:
        return dict(jobs[job][1])
    if job.startswith(JOB_PREFIX):
        return {"name": job[len(JOB_PREFIX) :]}
    return None
