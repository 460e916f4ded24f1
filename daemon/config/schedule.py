"""`schedule:`: when each stage job runs in the daemon."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from .types import CrontabLine, Duration, StrictModel


class JobSchedule(StrictModel):
    """When a job runs: `every` (interval) or `cron` (crontab line), not both."""

    every: Duration | None = None
    cron: CrontabLine | None = None
    enabled: bool = True
    misfire_grace: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if self.enabled and (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' or 'cron'")
        return self


HOURLY = JobSchedule(every=timedelta(hours=1))


class ScheduleConfig(StrictModel):
    """One field per scheduled stage of `genred.stages.STAGES` (a test keeps them equal)."""

    sync: JobSchedule = HOURLY
    extract: JobSchedule = HOURLY
    classify: JobSchedule = HOURLY
    decide: JobSchedule = HOURLY
    writeback: JobSchedule = HOURLY
    train: JobSchedule = Field(
        JobSchedule(every=timedelta(days=1), enabled=False),
        description="when `train.auto` looks for new labels (on only with train.auto.enabled)",
    )
    first_sync_after: Duration = Field(
        timedelta(seconds=5), description="`genred run` syncs this long after it starts"
    )

    def of(self, stage: str) -> JobSchedule:
        """The schedule of `stage` (a scheduled stage's name)."""
        schedule = getattr(self, stage)
        assert isinstance(schedule, JobSchedule), stage
        return schedule
