"""When waits end and sends go stale, in the recipient's own time zone (DST-safe via zoneinfo)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journeys.dsl import Deadline, FieldTime, Wait

UTC = timezone.utc


def zone_of(name: str | None) -> ZoneInfo:
    """The recipient's zone; an unknown or missing one schedules in UTC (the gate then skips
    channels that need a valid zone, with its reason)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_instant(value: Any) -> datetime | None:
    """A datetime from an enrollment context value (ISO text from JSON, naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def at_local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """`wall` o'clock on `day` in `zone`, as UTC. In a spring-forward gap the wall time does not
    exist and we take the instant just after the gap; in a fall-back fold, the first one."""
    local = datetime.combine(day, wall, tzinfo=zone)
    roundtrip = local.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):  # in a gap
        return datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC)
    return local.astimezone(UTC)


def resolve_field_time(ft: FieldTime, context: dict[str, Any]) -> datetime | None:
    base = parse_instant(context.get(ft.field))
    return None if base is None else base + ft.offset


def wait_target(step: Wait, base: datetime, context: dict[str, Any], time_zone: str | None) -> datetime | None:
    """When the wait ends, or None if the field it needs is missing (the wait is then skipped)."""
    zone = zone_of(time_zone)
    if step.until is not None:
        anchor = parse_instant(context.get(step.until.field))
        if anchor is None:
            return None
        if step.at is None:
            return anchor + step.until.offset
        # calendar days in the recipient's zone, then the local wall time
        local_day = anchor.astimezone(zone).date() + timedelta(days=step.until.offset.days)
        return at_local(local_day, step.at, zone)
    duration = step.duration or timedelta(0)
    if step.at is None:
        return base + duration
    whole_days = timedelta(days=duration.days)
    local_day = (base.astimezone(zone) + (duration - whole_days)).date() + whole_days
    return at_local(local_day, step.at, zone)


def deadline(stale: Deadline | None, context: dict[str, Any], enrolled_at: datetime) -> datetime | None:
    if stale is None:
        return None
    if isinstance(stale, timedelta):
        return enrolled_at + stale
    return resolve_field_time(stale, context)
