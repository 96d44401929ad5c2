"""Cron expressions as APScheduler 3 triggers that fire exactly when cron (and croniter) would.

Two differences from `CronTrigger.from_crontab` are corrected: day-of-week numbers (cron's 0 and 7
are Sunday, APScheduler's 0 is Monday, so `0 7 * * 1` fired on Tuesday), and a cron with both a day
of month and a day of week fires on either (cron's rule), where APScheduler would require both.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter

from audiences.errors import LoyalflowError

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class UnsupportedCron(LoyalflowError):
    """A cron the embedded scheduler cannot express exactly (it would fire at other times than cron)."""


def _cron_days(expr: str) -> str:
    """Cron's day-of-week field as APScheduler names (cron counts 0 = Sunday, APScheduler 0 = Monday)."""
    field = expr.split()[4]
    if field in ("*", "?"):
        return "*"
    if "#" in field or re.search(r"\d[lL]", field):  # nth or last weekday of the month
        raise UnsupportedCron(f"cron {expr!r}: day of week {field!r} (nth or last weekday) is not supported")
    days = croniter(expr).expanded[4]  # croniter's own reading: numbers 0-6 (7 folded into 0), names resolved
    if days == ["*"]:
        return "*"
    return ",".join(CRON_DAYS[int(d) % 7] for d in sorted({int(d) % 7 for d in days}))


def cron_trigger(expr: str, tz: Any = timezone.utc) -> BaseTrigger:
    """The APScheduler trigger that fires exactly when cron (and croniter) would.

    Two differences from `CronTrigger.from_crontab` are corrected: day-of-week numbers (cron's
    0 and 7 are Sunday, APScheduler's 0 is Monday), and a cron with both a day of month and a day
    of week fires on either (cron's rule), where APScheduler would require both.
    """
    if not croniter.is_valid(expr):
        raise UnsupportedCron(f"cron {expr!r} is not a valid 5-field cron expression")
    minute, hour, day, month, _ = expr.split()
    days = _cron_days(expr)
    if day not in ("*", "?") and days != "*":
        return OrTrigger([CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                          CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=tz)])
    return CronTrigger(minute=minute, hour=hour, day="*" if day == "?" else day, month=month,
                       day_of_week=days, timezone=tz)


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """A trigger's own fire times in [start, end), as APScheduler computes them (for checks and tests)."""
    out: list[datetime] = []
    previous: datetime | None = None
    moment = start
    while (fire := trigger.get_next_fire_time(previous, moment)) is not None and fire < end:
        out.append(fire)
        previous, moment = fire, fire + timedelta(microseconds=1)
    return out
