"""Calendar arithmetic done once per run so the generators can stay vectorised.

Instants are int64 seconds since the Unix epoch (UTC). Local calendar days are indexes into a grid
of days around `as_of`; for each time zone the grid holds the UTC offset at local midnight and at
local noon. DST changes happen at night, so the noon offset is the one in force during store hours
and the midnight offset gives the instant a local day starts (when points expire).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from audiences.demo.catalogue import ZONES

DAY = 86_400
HISTORY_YEARS = 3
"""Members enrolled over the last three years; purchases cover the last two."""
PURCHASE_YEARS = 2


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Timeline:
    as_of: datetime
    as_of_s: int
    first_day: date
    """Local calendar day of grid index 0."""
    day_epoch: np.ndarray
    """Per grid day: days since 1970-01-01 of that calendar date (int64)."""
    offset_midnight: np.ndarray
    """(zones, days): UTC offset in seconds at the start of the local day."""
    offset_noon: np.ndarray
    """(zones, days): UTC offset in seconds at local noon (store hours)."""
    next_year: np.ndarray
    """Per grid day: the grid index of the same calendar day a year later."""
    season: np.ndarray
    """Per grid day: relative shopping activity (mean ~1); December peak, summer bump, weekday pattern."""
    enroll_start: int
    purchase_start: int
    last_day: int
    """Exclusive end of the days on which store-hour activity is before `as_of` in every zone."""

    @classmethod
    def build(cls, as_of: datetime) -> Timeline:
        as_of = as_of.astimezone(timezone.utc)
        today = as_of.date()
        first = add_years(today, -HISTORY_YEARS) - timedelta(days=3)
        end = add_years(today, 1) + timedelta(days=5)
        days = [first + timedelta(days=i) for i in range((end - first).days)]
        n = len(days)
        day_epoch = np.array([d.toordinal() - date(1970, 1, 1).toordinal() for d in days], dtype=np.int64)
        off_mid = np.zeros((len(ZONES), n), dtype=np.int64)
        off_noon = np.zeros((len(ZONES), n), dtype=np.int64)
        for z in ZONES:
            tz = ZoneInfo(z.name)
            for i, d in enumerate(days):
                off_mid[z.index, i] = int(datetime.combine(d, time(0), tz).utcoffset().total_seconds())  # type: ignore[union-attr]
                off_noon[z.index, i] = int(datetime.combine(d, time(12), tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        index = {d: i for i, d in enumerate(days)}
        next_year = np.array([index.get(add_years(d, 1), n - 1) for d in days], dtype=np.int64)
        return cls(
            as_of=as_of,
            as_of_s=int(as_of.timestamp()),
            first_day=first,
            day_epoch=day_epoch,
            offset_midnight=off_mid,
            offset_noon=off_noon,
            next_year=next_year,
            season=_seasonality(days),
            enroll_start=index[add_years(today, -HISTORY_YEARS)],
            purchase_start=index[add_years(today, -PURCHASE_YEARS)],
            last_day=index[today - timedelta(days=1)],
        )

    def local_instant(self, zone: np.ndarray, day: np.ndarray, second_of_day: np.ndarray) -> np.ndarray:
        """UTC seconds of a local day-time during opening hours."""
        return self.day_epoch[day] * DAY + second_of_day - self.offset_noon[zone, day]

    def local_midnight(self, zone: np.ndarray, day: np.ndarray) -> np.ndarray:
        """UTC seconds at which local day `day` starts in `zone`."""
        return self.day_epoch[day] * DAY - self.offset_midnight[zone, day]

    def expiry(self, zone: np.ndarray, earn_day: np.ndarray) -> np.ndarray:
        """Points earned on a local day expire when that day a year later has ended (next local midnight)."""
        return self.local_midnight(zone, self.next_year[earn_day] + 1)


def _seasonality(days: list[date]) -> np.ndarray:
    month = np.array([d.month for d in days])
    dom = np.array([d.day for d in days])
    weekday = np.array([d.weekday() for d in days])
    by_month = np.array([0, 0.85, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2, 1.15, 0.95, 0.95, 1.15, 1.6])
    by_weekday = np.array([0.8, 0.85, 0.9, 0.95, 1.15, 1.45, 0.9])  # Monday .. Sunday
    weight = by_month[month] * by_weekday[weekday]
    weight = np.where((month == 12) & (dom >= 10) & (dom <= 24), weight * 1.5, weight)  # the run-up to Christmas
    weight = np.where((month == 12) & (dom == 25), 0.05, weight)  # stores closed on Christmas Day
    return weight / weight.mean()


_TABLE_DAYS = (date(2200, 1, 1) - date(1970, 1, 1)).days


@lru_cache(maxsize=1)
def _text_tables() -> tuple[np.ndarray, np.ndarray]:
    """'YYYY-MM-DD ' for every day 1970-2199 and 'HH:MM:SS.000000' for every second of a day."""
    epoch = date(1970, 1, 1)
    days = np.array([(epoch + timedelta(days=d)).isoformat() + " " for d in range(_TABLE_DAYS)], dtype=object)
    seconds = np.array([f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)],
                       dtype=object)
    return days, seconds


def format_instants(seconds: np.ndarray) -> list[str]:
    """UTC seconds -> 'YYYY-MM-DD HH:MM:SS.ffffff', byte for byte SQLAlchemy's SQLite DATETIME format
    (so raw-inserted rows compare correctly with ORM-bound parameters), also valid PostgreSQL input.
    Two table look-ups and a concatenation: four times faster than numpy's datetime_as_string."""
    if len(seconds) == 0:
        return []
    days, second_of_day = np.divmod(seconds, DAY)
    if days.min() < 0 or days.max() >= _TABLE_DAYS:
        raise ValueError("demo data instants must fall between 1970 and 2199")
    day_text, time_text = _text_tables()
    return (day_text[days] + time_text[second_of_day]).tolist()  # type: ignore[no-any-return]
