"""Quiet hours per channel in the recipient's own time zone: a send in them is deferred, never dropped.

The window is wall-clock time (21:00-08:00 means what the recipient's clock shows), so DST shifts
the UTC instants; zoneinfo does the arithmetic. A window end that falls in a spring-forward gap
resolves to the first instant after the gap; one in a fall-back overlap to its first occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True, slots=True)
class QuietWindow:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # wraps past midnight

    @classmethod
    def parse(cls, text: str) -> QuietWindow | None:
        """'21:00-08:00' -> a window; '' -> None (never quiet)."""
        text = text.strip()
        if not text:
            return None
        try:
            start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise ValueError(f"quiet hours {text!r} are not HH:MM-HH:MM") from None
        return cls(start, end)


QuietRules = Mapping[str, QuietWindow | None]

DEFAULT_RULES: QuietRules = {
    "email": None,
    "sms": QuietWindow(time(21, 0), time(8, 0)),
    "push": QuietWindow(time(21, 0), time(8, 0)),
}


class UnknownTimeZone(ValueError):
    pass


@lru_cache(maxsize=1024)  # per message in the gate; an unknown name raises and is not cached
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as "America"
        raise UnknownTimeZone(f"unknown time zone {name!r}") from None


def next_allowed(now_utc: datetime, time_zone: str, channel: str, rules: QuietRules = DEFAULT_RULES) -> datetime:
    """`now_utc` itself when a send is allowed now, else the first allowed instant (aware, UTC)."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    window = rules.get(channel)
    if window is None:
        return now_utc
    tz = zone(time_zone)
    local = now_utc.astimezone(tz)
    if not window.contains(local.time().replace(tzinfo=None)):
        return now_utc
    end_day = local.date()
    if window.start > window.end and local.time() >= window.start:
        end_day += timedelta(days=1)  # evening part of an overnight window: it ends tomorrow morning
    end_utc = _first_instant_at_or_after(datetime.combine(end_day, window.end), tz)
    return max(end_utc, now_utc)


def _first_instant_at_or_after(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first UTC instant whose local wall time is >= `wall` (naive), DST gaps included."""
    early = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    if early.astimezone(tz).replace(tzinfo=None) == wall:
        return early  # the wall time exists (fold=0 is its first occurrence in an overlap)
    # `wall` falls in a spring-forward gap: the answer is the transition instant, found by bisection
    low = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    high = early
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    whole = high.replace(microsecond=0)  # transitions fall on whole seconds
    return whole if whole.astimezone(tz).utcoffset() == after else whole + timedelta(seconds=1)


def rules_from_settings(email: str, sms: str, push: str) -> dict[str, QuietWindow | None]:
    return {"email": QuietWindow.parse(email), "sms": QuietWindow.parse(sms), "push": QuietWindow.parse(push)}
