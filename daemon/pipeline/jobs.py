"""Run a stage as a recorded job: a row in `runs` with start, end, counts and error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import GenredError
from ..logs import get_logger
from ..store import Store, runs

log = get_logger("genred.jobs")


def run_job(
    store: Store, job: str, trigger: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run `work`, record the run; the counts it returns are stored and returned.

    A GenredError or any other exception marks the run failed (logged once, here) and
    is re-raised so the caller can set an exit code; KeyboardInterrupt marks it
    interrupted.
    """
    run_id = runs.start(store, job, trigger)
    try:
        counts = work()
    except KeyboardInterrupt:
        runs.finish(store, run_id, "interrupted", {})
        raise
    except GenredError as exc:
        runs.finish(store, run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        log.error("job failed", job=job, error=str(exc), error_type=type(exc).__name__)
        raise
    except Exception as exc:
        runs.finish(store, run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        log.exception("job crashed", job=job)
        raise
    runs.finish(store, run_id, "ok", counts)
    return counts
