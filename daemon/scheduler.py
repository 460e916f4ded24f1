"""APScheduler 3 wiring: the configured stage jobs, one-off runs soon, the watchdog heartbeat.

Every job runs at most once at a time, missed runs are coalesced into one, and a run
later than its `misfire_grace` is skipped. The heartbeat runs on its own one-thread
executor, dispatched by the scheduler's loop: if that loop hangs, the pings stop and
systemd's watchdog restarts the service; long stage jobs on the default executor do not
delay it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import JobSchedule, ScheduleConfig
from .cron import crontab_trigger
from .logs import get_logger
from .stages import SCHEDULED

log = get_logger("genred.scheduler")

HEARTBEAT = "heartbeat"


def make_trigger(schedule: JobSchedule) -> BaseTrigger:
    if schedule.cron is not None:
        return crontab_trigger(schedule.cron)
    assert schedule.every is not None  # the config model guarantees one of the two
    return IntervalTrigger(seconds=schedule.every.total_seconds())


def describe(schedule: JobSchedule) -> str:
    """`every 1h30m`, `cron 30 3 * * *` or `disabled`, as the config file says it."""
    if not schedule.enabled:
        return "disabled"
    if schedule.cron:
        return f"cron {schedule.cron}"
    assert schedule.every is not None
    seconds = int(schedule.every.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "m")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n) + (
        f"{seconds % 60}s" if seconds % 60 else ""
    )
    return f"every {text or '0s'}"


class JobScheduler:
    """The daemon's scheduler. `run(stage, trigger)` does the work of a stage job,
    `run_item(job, trigger)` that of a stage's own job (a saved playlist)."""

    def __init__(
        self,
        run: Callable[[str, str], Any],
        *,
        workers: int = 2,
        run_item: Callable[[str, str], Any] | None = None,
    ) -> None:
        self._run = run
        self._run_item = run_item
        self._scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(workers),
                HEARTBEAT: ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._schedule: ScheduleConfig | None = None
        self._items: dict[str, JobSchedule] = {}

    def start(
        self,
        schedule: ScheduleConfig,
        *,
        first_sync_in: float | None = 5.0,
        items: Mapping[str, JobSchedule] | None = None,
    ) -> None:
        """Add the configured jobs and start; the first sync runs `first_sync_in` s from now.
        `items`: the stages' own jobs (job name → schedule)."""
        self._schedule = schedule
        for stage in SCHEDULED:
            self._add(stage, schedule.of(stage))
        self._items = dict(items or {})
        for job, item_schedule in self._items.items():
            self._add_item(job, item_schedule)
        self._scheduler.start()
        if first_sync_in is not None and schedule.sync.enabled:
            self._scheduler.modify_job("sync", next_run_time=_in(first_sync_in))

    def _add(self, stage: str, schedule: JobSchedule) -> None:
        if not schedule.enabled:
            return
        self._scheduler.add_job(
            self._run,
            make_trigger(schedule),
            args=(stage, "schedule"),
            id=stage,
            name=stage,
            misfire_grace_time=max(1, math.ceil(schedule.misfire_grace.total_seconds())),
            replace_existing=True,
        )

    def _add_item(self, job: str, schedule: JobSchedule) -> None:
        if not schedule.enabled or self._run_item is None:
            return
        self._scheduler.add_job(
            self._run_item,
            make_trigger(schedule),
            args=(job, "schedule"),
            id=job,
            name=job,
            misfire_grace_time=max(1, math.ceil(schedule.misfire_grace.total_seconds())),
            replace_existing=True,
        )

    def apply_items(self, items: Mapping[str, JobSchedule]) -> list[str]:
        """Add, drop and reschedule the stages' own jobs; what changed, for the log."""
        changed: list[str] = []
        for job in sorted(set(self._items) | set(items)):
            before, after = self._items.get(job), items.get(job)
            if before == after:
                continue
            self.remove(job)
            if after is not None:
                self._add_item(job, after)
            changed.append(
                f"{job}: {describe(before) if before else 'none'} → "
                f"{describe(after) if after else 'none'}"
            )
        self._items = dict(items)
        return changed

    def apply(self, schedule: ScheduleConfig) -> list[str]:
        """Reschedule the jobs whose schedule changed; returns what changed, for the log."""
        old = self._schedule
        changed: list[str] = []
        for stage in SCHEDULED:
            before = old.of(stage) if old else None
            after = schedule.of(stage)
            if before == after:
                continue
            if self._scheduler.get_job(stage) is not None:
                self._scheduler.remove_job(stage)
            self._add(stage, after)
            changed.append(f"{stage}: {describe(before) if before else 'none'} → {describe(after)}")
        self._schedule = schedule
        return changed

    def heartbeat(self, ping: Callable[[], Any], every: timedelta) -> None:
        self._scheduler.add_job(
            ping,
            IntervalTrigger(seconds=every.total_seconds()),
            id=HEARTBEAT,
            executor=HEARTBEAT,
            replace_existing=True,
            misfire_grace_time=None,
        )

    def soon(self, job_id: str, func: Callable[..., Any], delay: float, *args: Any) -> None:
        """Run `func(*args)` once, `delay` s from now; an earlier pending run of it is kept.

        A one-off job is no longer pending while it runs, so a new one may start beside it
        (max_instances 2) rather than be skipped; the stage lock keeps their work apart.
        """
        when = _in(delay)
        job = self._scheduler.get_job(job_id)
        if job is not None and job.next_run_time is not None and job.next_run_time <= when:
            return
        self._scheduler.add_job(
            func,
            DateTrigger(run_date=when),
            args=args,
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,
        )

    def next_runs(self) -> dict[str, datetime | None]:
        return {
            job.id: job.next_run_time for job in self._scheduler.get_jobs() if job.id != HEARTBEAT
        }

    def trigger_of(self, stage: str) -> str | None:
        job = self._scheduler.get_job(stage)
        return str(job.trigger) if job is not None else None

    def shutdown(self) -> None:
        """Stop dispatching; running jobs are left to finish (the service waits for them)."""
        with suppress(SchedulerNotRunningError):
            self._scheduler.shutdown(wait=False)

    def remove(self, job_id: str) -> None:
        with suppress(JobLookupError):
            self._scheduler.remove_job(job_id)


def _in(seconds: float) -> datetime:
    return datetime.now().astimezone() + timedelta(seconds=seconds)
