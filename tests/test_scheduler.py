"""The daemon's scheduler (genred.scheduler): stage jobs, reschedules, one-off runs, heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from genred.config import JobSchedule, ScheduleConfig
from genred.scheduler import HEARTBEAT, JobScheduler, describe, make_trigger
from genred.stages import SCHEDULED as STAGES
from tests.waiting import wait_for

OFF = JobSchedule(enabled=False)
ALL_OFF = ScheduleConfig(sync=OFF, extract=OFF, classify=OFF, decide=OFF, writeback=OFF)
# Stages on by default (train runs only with train.auto).
DEFAULT_ON = {s for s in STAGES if ScheduleConfig().of(s).enabled}


def every(text: str, **kw: Any) -> JobSchedule:
    return JobSchedule(every=text, **kw)


def in_about(when: datetime | None, seconds: float, slack: float = 5.0) -> bool:
    assert when is not None
    assert when.tzinfo is not None
    delta = (when - datetime.now().astimezone()).total_seconds()
    return seconds - slack <= delta <= seconds + slack


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, stage: str, trigger: str) -> None:
        with self.lock:
            self.calls.append((stage, trigger))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def scheduler(recorder: Recorder) -> Iterator[JobScheduler]:
    s = JobScheduler(recorder)
    yield s
    s.shutdown()


# --------------------------------------------------------------------------- describe / triggers


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (every("90m"), "every 1h30m"),
        (every("1h"), "every 1h"),
        (every("3600s"), "every 1h"),
        (every("2d"), "every 2d"),
        (every("1d1h1m1s"), "every 1d1h1m1s"),
        (every("1h0m30s"), "every 1h30s"),
        (every("45s"), "every 45s"),
        (every("25h"), "every 1d1h"),
        (JobSchedule(cron="30 3 * * *"), "cron 30 3 * * *"),
        (JobSchedule(enabled=False), "disabled"),
        (JobSchedule(every="1h", enabled=False), "disabled"),
    ],
)
def test_describe(schedule: JobSchedule, text: str) -> None:
    assert describe(schedule) == text


def test_make_trigger_interval() -> None:
    trigger = make_trigger(every("1h30m"))
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=90)


def test_make_trigger_cron() -> None:
    trigger = make_trigger(JobSchedule(cron="30 3 * * *"))
    assert isinstance(trigger, CronTrigger)
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day"]) == ("30", "3", "*")
    start = datetime(2024, 1, 6, 12, 0, tzinfo=trigger.timezone)
    assert trigger.get_next_fire_time(None, start) == datetime(
        2024, 1, 7, 3, 30, tzinfo=trigger.timezone
    )


def test_make_trigger_cron_weekday_names() -> None:
    trigger = make_trigger(JobSchedule(cron="0 3 * * sun"))
    monday = datetime(2024, 1, 1, 12, 0, tzinfo=trigger.timezone)
    assert trigger.get_next_fire_time(None, monday).strftime("%a %d") == "Sun 07"


@pytest.mark.parametrize(
    ("cron", "start", "expected"),
    [
        ("0 3 * * 1-5", datetime(2024, 1, 6, 12, 0), "Mon 08"),  # from a Saturday
        ("0 3 * * 0", datetime(2024, 1, 1, 12, 0), "Sun 07"),  # from a Monday
    ],
)
def test_make_trigger_cron_weekday_numbers_are_crontabs(
    cron: str, start: datetime, expected: str
) -> None:
    trigger = make_trigger(JobSchedule(cron=cron))
    nxt = trigger.get_next_fire_time(None, start.replace(tzinfo=trigger.timezone))
    assert nxt.strftime("%a %d") == expected


def test_cron_sunday_as_7_is_a_valid_crontab_line() -> None:
    assert JobSchedule(cron="0 3 * * 7").cron == "0 3 * * 7"


# --------------------------------------------------------------------------- start


def test_start_adds_every_enabled_stage_and_runs_the_first_sync_soon(
    scheduler: JobScheduler, recorder: Recorder
) -> None:
    schedule = ScheduleConfig(
        sync=every("1h"),
        classify=every("30m"),
        decide=JobSchedule(cron="30 3 * * *"),
        writeback=OFF,
        extract=OFF,
    )
    scheduler.start(schedule, first_sync_in=0.2)
    runs = scheduler.next_runs()
    assert set(runs) == {"sync", "classify", "decide"}
    assert in_about(runs["sync"], 0.2, slack=2)
    assert in_about(runs["classify"], 30 * 60)
    assert runs["decide"] is not None and (runs["decide"].hour, runs["decide"].minute) == (3, 30)
    assert scheduler.trigger_of("writeback") is None
    assert scheduler.trigger_of("decide") is not None and "cron" in scheduler.trigger_of("decide")

    wait_for(lambda: recorder.calls, what="the first sync")
    time.sleep(0.2)
    assert recorder.calls == [("sync", "schedule")]
    assert in_about(scheduler.next_runs()["sync"], 3600)  # then back on its interval


def test_start_without_first_sync_keeps_the_interval(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(), first_sync_in=None)
    runs = scheduler.next_runs()
    assert set(runs) == DEFAULT_ON
    assert all(in_about(runs[s], 3600) for s in DEFAULT_ON)


def test_start_with_sync_disabled_ignores_first_sync_in(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(sync=OFF), first_sync_in=0.1)
    assert set(scheduler.next_runs()) == {"extract", "classify", "decide", "writeback"}


def test_start_with_everything_disabled_has_no_jobs(
    scheduler: JobScheduler, recorder: Recorder
) -> None:
    scheduler.start(ALL_OFF, first_sync_in=0.0)
    assert scheduler.next_runs() == {}
    time.sleep(0.2)
    assert recorder.calls == []


def test_sub_second_misfire_grace_is_accepted(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(sync=every("1h", misfire_grace="0.5s")), first_sync_in=None)
    assert "sync" in scheduler.next_runs()


# --------------------------------------------------------------------------- apply


def test_apply_reports_and_reschedules_only_what_changed(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(), first_sync_in=None)
    before = scheduler.next_runs()
    changes = scheduler.apply(
        ScheduleConfig(classify=every("30m"), writeback=OFF, decide=JobSchedule(cron="0 4 * * *"))
    )
    assert changes == [
        "classify: every 1h → every 30m",
        "decide: every 1h → cron 0 4 * * *",
        "writeback: every 1h → disabled",
    ]
    after = scheduler.next_runs()
    assert set(after) == {"sync", "extract", "classify", "decide"}
    assert after["sync"] == before["sync"]  # untouched
    assert in_about(after["classify"], 30 * 60)
    assert after["decide"] is not None and (after["decide"].hour, after["decide"].minute) == (4, 0)


def test_apply_the_same_schedule_changes_nothing(scheduler: JobScheduler) -> None:
    schedule = ScheduleConfig(classify=every("30m"))
    scheduler.start(schedule, first_sync_in=None)
    before = scheduler.next_runs()
    assert scheduler.apply(ScheduleConfig(classify=every("30m"))) == []
    assert scheduler.next_runs() == before


def test_apply_enables_a_disabled_stage_again(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(writeback=OFF), first_sync_in=None)
    assert "writeback" not in scheduler.next_runs()
    assert scheduler.apply(ScheduleConfig(writeback=every("15m"))) == [
        "writeback: disabled → every 15m"
    ]
    assert in_about(scheduler.next_runs()["writeback"], 15 * 60)


def test_apply_misfire_grace_change_is_a_change(scheduler: JobScheduler) -> None:
    scheduler.start(ScheduleConfig(), first_sync_in=None)
    changes = scheduler.apply(ScheduleConfig(sync=every("1h", misfire_grace="1m")))
    assert changes == ["sync: every 1h → every 1h"]
    assert set(scheduler.next_runs()) == DEFAULT_ON


def test_a_rescheduled_stage_still_runs_the_stage(
    scheduler: JobScheduler, recorder: Recorder
) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    scheduler.apply(ScheduleConfig(sync=OFF, classify=every("0.3s"), decide=OFF, writeback=OFF))
    wait_for(lambda: recorder.calls, what="the rescheduled classify")
    assert recorder.calls[0] == ("classify", "schedule")


# --------------------------------------------------------------------------- soon


def test_soon_runs_once_with_its_args(scheduler: JobScheduler) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    got: list[tuple[Any, ...]] = []
    scheduler.soon("sync-requested", lambda *a: got.append(a), 0.1, "x", 2)
    wait_for(lambda: got, what="the one-off run")
    time.sleep(0.3)
    assert got == [("x", 2)]
    assert scheduler.next_runs() == {}  # gone once it ran


def test_soon_keeps_an_earlier_pending_run(scheduler: JobScheduler) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    calls: list[str] = []
    scheduler.soon("req", lambda: calls.append("a"), 100)
    first = scheduler.next_runs()["req"]
    scheduler.soon("req", lambda: calls.append("b"), 500)  # later: the earlier one stays
    assert scheduler.next_runs()["req"] == first
    scheduler.soon("req", lambda: calls.append("c"), 0.1)  # earlier: replaces it
    assert in_about(scheduler.next_runs()["req"], 0.1, slack=2)
    wait_for(lambda: calls, what="the earlier run")
    time.sleep(0.2)
    assert calls == ["c"]
    assert "req" not in scheduler.next_runs()


def test_soon_and_remove(scheduler: JobScheduler) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    scheduler.soon("req", lambda: None, 100)
    scheduler.remove("req")
    assert scheduler.next_runs() == {}
    scheduler.remove("req")  # unknown: harmless


def test_soon_while_the_same_job_runs_is_not_lost(scheduler: JobScheduler) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    release = threading.Event()
    runs: list[int] = []

    def slow(n: int) -> None:
        runs.append(n)
        release.wait(5)

    scheduler.soon("sync-requested", slow, 0.0, 1)
    wait_for(lambda: runs, what="the first run")
    scheduler.soon("sync-requested", slow, 0.1, 2)  # a new request while it runs
    time.sleep(0.5)
    release.set()
    wait_for(lambda: len(runs) == 2, timeout=1.5, what="the second run")
    assert runs == [1, 2]


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_pings_and_is_not_a_listed_job(scheduler: JobScheduler) -> None:
    scheduler.start(ALL_OFF, first_sync_in=None)
    pings: list[float] = []
    scheduler.heartbeat(lambda: pings.append(time.monotonic()), timedelta(seconds=0.1))
    wait_for(lambda: len(pings) >= 3, what="three pings")
    assert HEARTBEAT not in scheduler.next_runs()
    scheduler.heartbeat(lambda: None, timedelta(seconds=30))  # replaced, not added twice
    assert HEARTBEAT not in scheduler.next_runs()


def test_heartbeat_goes_on_while_stage_jobs_fill_every_worker(recorder: Recorder) -> None:
    release = threading.Event()
    busy: list[int] = []

    def stage(stage: str, trigger: str) -> None:
        busy.append(1)
        release.wait(10)

    s = JobScheduler(stage, workers=1)
    try:
        s.start(
            ScheduleConfig(sync=every("1h"), classify=OFF, decide=OFF, writeback=OFF),
            first_sync_in=0,
        )
        wait_for(lambda: busy, what="the stage job to block the only worker")
        pings: list[int] = []
        s.heartbeat(lambda: pings.append(1), timedelta(seconds=0.1))
        wait_for(lambda: len(pings) >= 3, timeout=3, what="pings while the stage runs")
        assert busy == [1]
    finally:
        release.set()
        s.shutdown()


def test_shutdown_twice_and_before_start_is_harmless(recorder: Recorder) -> None:
    s = JobScheduler(recorder)
    s.shutdown()
    s.start(ALL_OFF)
    s.shutdown()
    s.shutdown()
