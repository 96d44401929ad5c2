"""When waits end and sends go stale, in the recipient's own time zone (DST-safe via zoneinfo).

A wait's whole days (24 h each, however written) are calendar days in the recipient's zone: the
local wall time is kept across a DST change, as RFC 5545 and JavaScript's Temporal do for days.
What is left over (under 24 h) is elapsed time.

The calendar functions are pure and memoised: a chunk's thousands of enrollments share a few
hundred (instant, zone, wall time) combinations (an expiry date, an enrollment instant).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from channels.quiet_hours import UnknownTimeZone, zone
from journeys.dsl import Deadline, FieldTime, Wait
from journeys.send_time import wall_time

UTC = timezone.utc


@lru_cache(maxsize=1024)
def zone_of(name: str | None) -> ZoneInfo:
    """The recipient's zone; an unknown or missing one schedules in UTC (the gate then skips
    channels that need a valid zone, with its reason). Cached: called for every wait of every
    enrollment, and a program has a few hundred zones at most."""
    try:
        return zone(name) if name else ZoneInfo("UTC")
    except UnknownTimeZone:  # the gate's own lookup (channels/quiet_hours.py) says which names are zones
        return ZoneInfo("UTC")


def parse_instant(value: Any) -> datetime | None:
    """A datetime from an enrollment context value (ISO text from JSON, naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return _parse_text(str(value))


@lru_cache(maxsize=8192)
def _parse_text(text: str) -> datetime:
    """Cached: a chunk's enrollments share few distinct instants (expiry days, enrollment time),
    and each is read several times per enrollment (wait, stale deadline). Datetimes are immutable."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@lru_cache(maxsize=65_536)
def at_local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """`wall` o'clock on `day` in `zone`, as UTC. In a spring-forward gap the wall time does not
    exist: it is moved forward by the gap's length (02:30 -> 03:30, as RFC 5545 does), so the
    instant is real and never earlier than asked. In a fall-back fold, the first one."""
    # fold=0 maps a gap time with the offset before the transition, i.e. forward by the gap
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)


@lru_cache(maxsize=65_536)
def shift(instant: datetime, offset: timedelta, zone: ZoneInfo) -> datetime:
    """`instant` moved by `offset`: its whole days on the calendar of `zone` (same local wall
    time), then the rest as elapsed time."""
    whole_days = timedelta(days=offset.days)
    if not whole_days:
        return instant + offset  # no calendar step: keep the instant (even inside a fold)
    local = instant.astimezone(zone).replace(tzinfo=None) + whole_days
    return at_local(local.date(), local.time(), zone) + (offset - whole_days)


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
        offset = step.until.offset
    else:
        anchor, offset = base, step.duration or timedelta(0)
    landed = shift(anchor, offset, zone)
    wall = wall_time(step, context)  # at="best": the member's own hour when known (journeys/send_time.py)
    if wall is None:
        return landed
    # the local calendar day the wait lands on, at the local wall time
    return at_local(landed.astimezone(zone).date(), wall, zone)


LATE_FOR_WALL_TIME = timedelta(hours=1)
"""A wait `at` a local time whose instant passed longer ago than this (a member who joined after it,
or a runtime that was down) is moved to the next such local time, unless that is past the stale
deadline of the send it leads to: a promised 10:00 means 10:00, not 01:00 the same day."""


@lru_cache(maxsize=65_536)
def next_wall_time(after: datetime, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant strictly after `after` at which the clock in `zone` reads `wall`."""
    day = after.astimezone(zone).date()
    for offset in range(3):  # today, tomorrow, or (after a gap day in far zones) the day after
        candidate = at_local(day + timedelta(days=offset), wall, zone)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within three calendar days")


def deadline(stale: Deadline | None, context: dict[str, Any], enrolled_at: datetime) -> datetime | None:
    if stale is None:
        return None
    if isinstance(stale, timedelta):
        return enrolled_at + stale
    return resolve_field_time(stale, context)
