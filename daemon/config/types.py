"""Value types every config section (and every plugin's settings model) uses."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..cron import crontab_trigger


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: Any) -> timedelta:
    """`90`, `"90s"`, `"15m"`, `"1h30m"`, `"2d"` → timedelta (plain numbers are seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 1h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 15m, 1h, 1d)")
        d, h, m, s = match.groups()
        seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


# A positive duration written as `30s`, `15m`, `1h30m`, `2d` or a number of seconds.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def check_crontab(value: str) -> str:
    """`value` if it is a crontab line (5 fields, weekdays 0 = Sunday), else a ValueError."""
    try:
        crontab_trigger(value)
    except ValueError as exc:
        raise ValueError(f"not a valid crontab line: {exc}") from None
    return value


# A crontab line such as "30 3 * * *", checked when the config is read.
CrontabLine = Annotated[str, AfterValidator(check_crontab)]


class RetrySettings(StrictModel):
    """How hard a plugin tries a remote service (Plex, an LLM) before giving up on a request.

    `attempts` counts requests, the first included; waits grow from `backoff_initial` to
    `backoff_max` seconds, with jitter.
    """

    attempts: int = Field(5, ge=1, le=20, description="requests at most, the first included")
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)


SECRET_KEY = re.compile(r"(token|secret|password|passwd|api[_-]?key|authorization)", re.I)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))
