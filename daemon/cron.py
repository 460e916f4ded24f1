"""Crontab lines as APScheduler triggers, with weekdays counted as crontab counts them."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab: 0 (and 7) = Sunday


def crontab_trigger(line: str) -> CronTrigger:
    """A CronTrigger for a crontab line, weekdays as crontab counts them.

    APScheduler 3's `from_crontab` counts weekday numbers from 0 = Monday, so `1-5` would
    run Tuesday to Saturday; the weekday field is turned into names first (`1-5` →
    `mon,tue,wed,thu,fri`).
    """
    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, this one has {len(fields)}")
    fields[4] = _weekday_names(fields[4])
    return CronTrigger.from_crontab(" ".join(fields))


def _weekday(text: str) -> int:
    if text.isdigit():
        if int(text) > 7:
            raise ValueError(f"weekday {text} is not 0-7")
        return int(text)
    try:
        return WEEKDAYS.index(text.lower()[:3])
    except ValueError:
        raise ValueError(f"{text!r} is not a weekday") from None


def _weekday_names(field: str) -> str:
    """A crontab weekday field (numbers, names, ranges, steps, lists) as a list of names."""
    if field in ("*", "?"):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _slash, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            low, high = 0, 6
        elif "-" in span:
            low, high = (_weekday(x) for x in span.split("-", 1))
            high += 7 if high < low else 0  # fri-sun wraps past Saturday
        else:
            low = _weekday(span)
            high = 6 if step_text else low  # crontab `1/2`: from Monday, every other day
        days.update(day % 7 for day in range(low, high + 1, max(step, 1)))
    if len(days) == 7:
        return "*"
    return ",".join(WEEKDAYS[day] for day in sorted(days))
