"""Run a stage as a recorded job: its stage lock, then a row in `runs` with counts and error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from threading import Event
from typing import Any

from .. import locks
from ..errors import Cancelled, GenredError
from ..logs import get_logger
from ..store import Store, runs

log = get_logger("genred.jobs")


def failed_items(counts: Mapping[str, Any]) -> int:
    """How many items a run failed: its `failed` count plus every `<name>.failed` one."""
    return sum(
        value
        for key, value in counts.items()
        if isinstance(value, int) and (key == "failed" or key.endswith(".failed"))
    )


def run_job(
    store: Store,
    job: str,
    trigger: str,
    work: Callable[[], dict[str, Any]],
    *,
    lock: str | None = None,
    data_dir: Path | None = None,
    by: str = "cli",
    wait: bool = True,
    cancel: Event | None = None,
    on_wait: Callable[[locks.Holder | None], None] | None = None,
    on_run: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run `work` under the stage lock `lock` (when `data_dir` is given) and record the run.

    The lock is taken before the run is recorded, so a run waiting for it is not shown as
    running. A GenredError or any other exception marks the run failed (logged once, here)
    and is re-raised; Cancelled and KeyboardInterrupt mark it interrupted. A run that
    finished but failed some items (`failed_items`) is `partial`, else `ok`. StageBusy
    (the lock is taken and `wait` is False) is raised before anything is recorded.
    """
    held = (
        locks.acquire(data_dir, lock, by, wait=wait, cancel=cancel, on_wait=on_wait)
        if lock and data_dir is not None
        else nullcontext()
    )
    with held:
        return _recorded(store, job, trigger, work, on_run)


def _recorded(
    store: Store,
    job: str,
    trigger: str,
    work: Callable[[], dict[str, Any]],
    on_run: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    run_id = runs.start(store, job, trigger)
    if on_run is not None:
        on_run(run_id)
    try:
        counts = work()
    except (KeyboardInterrupt, Cancelled) as exc:
        runs.finish(store, run_id, "interrupted", {}, error=str(exc) or None)
        log.info("job interrupted; committed work is kept", job=job)
        raise
    except GenredError as exc:
        runs.finish(store, run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        log.error("job failed", job=job, error=str(exc), error_type=type(exc).__name__)
        raise
    except Exception as exc:
        runs.finish(store, run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        log.exception("job crashed", job=job)
        raise
    status = "partial" if failed_items(counts) else "ok"
    runs.finish(store, run_id, status, counts)
    if status == "partial":
        log.warning("job finished with failed items", job=job, failed=failed_items(counts))
    return counts


def close_stale_runs(store: Store, data_dir: Path, lock_of: Callable[[str], str | None]) -> int:
    """Runs left 'running' by a process that died (its stage lock is free) become
    interrupted; `lock_of(job)` names the lock a job's runs hold."""
    jobs = [
        row[0]
        for row in store.conn.execute("SELECT DISTINCT job FROM runs WHERE status = 'running'")
    ]
    dead = [j for j in jobs if (lock := lock_of(j)) is None or locks.holder(data_dir, lock) is None]
    return runs.mark_interrupted(store, dead) if dead else 0


def interrupted_last(store: Store) -> list[str]:
    """Jobs whose most recent run was interrupted (to be resumed)."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT job FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY job) "
            "AND status = 'interrupted' ORDER BY id"
        )
    ]
