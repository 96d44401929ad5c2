"""Entry clocks: when each journey's cron last fired for enrollment, so a pass enrolls each fire once.

The database row (journey_clocks) is the truth; a per-database cache of the next fire instant
lets a pass in which no cron fired skip the table entirely (an empty pass costs one query, the due
count). A fire is claimed with a compare-and-set on the row in the same transaction as its
enrollment, so two runtimes never both enroll it, and a crash between the two loses nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from croniter import croniter
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from journeys.models import JourneyClock

UTC = timezone.utc


def latest_fire(schedule: str, now: datetime) -> datetime:
    """The latest fire instant of `schedule` (cron, UTC) at or before `now`."""
    now = now.astimezone(UTC)
    prev = croniter(schedule, now).get_prev(datetime)
    after = croniter(schedule, prev).get_next(datetime)
    return after if after <= now else prev


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first fire instant of `schedule` strictly after `after`."""
    return croniter(schedule, after.astimezone(UTC)).get_next(datetime)


def fires(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    """Fire instants in [start, end)."""
    out, fire = [], next_fire(schedule, start - timedelta(microseconds=1))
    while fire < end:
        out.append(fire)
        fire = next_fire(schedule, fire)
    return out


@dataclass(frozen=True, slots=True)
class _Known:
    schedule: str
    next_fire: datetime


# per database (the session's bind, weakly held: a disposed engine takes its cache with it)
_cache: weakref.WeakKeyDictionary[Any, dict[str, _Known]] = weakref.WeakKeyDictionary()


def _known(bind: Any) -> dict[str, _Known]:
    try:
        return _cache.setdefault(bind, {})
    except TypeError:  # not weak-referenceable: no cache, always read the table
        return {}


def fired(session: Session, schedules: Mapping[str, str], now: datetime) -> dict[str, tuple[datetime | None, datetime]]:
    """Journeys whose cron fired after their last enrolled fire: name -> (last enrolled fire or None,
    the latest fire at or before `now`). Reads the table only for journeys the cache cannot rule out."""
    known = _known(session.get_bind())
    unsure = [n for n, s in schedules.items() if not ((k := known.get(n)) and k.schedule == s and k.next_fire > now)]
    if not unsure:
        return {}
    rows = dict(session.execute(select(JourneyClock.journey, JourneyClock.last_fire_at)
                                .where(JourneyClock.journey.in_(unsure))).all())
    out: dict[str, tuple[datetime | None, datetime]] = {}
    for name in unsure:
        schedule, last = schedules[name], rows.get(name)
        latest = latest_fire(schedule, now)
        if last is None or latest > last:
            out[name] = (last, latest)
        else:
            known[name] = _Known(schedule, next_fire(schedule, last))
    return out


def claim(session: Session, journey: str, last: datetime | None, fire: datetime) -> bool:
    """Move the journey's clock from `last` to `fire` (not committed: the caller commits it with the
    enrollment). False when another runtime moved it first."""
    if last is None:
        dialect = session.get_bind().dialect.name
        first = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(JourneyClock)
        made = session.execute(first.values(journey=journey, last_fire_at=fire)
                               .on_conflict_do_nothing(index_elements=["journey"]).returning(JourneyClock.journey))
        return made.first() is not None  # RETURNING, not rowcount: drivers differ on ON CONFLICT counts
    moved = session.execute(update(JourneyClock).where(JourneyClock.journey == journey,
                                                       JourneyClock.last_fire_at == last)
                            .values(last_fire_at=fire).returning(JourneyClock.journey))
    return moved.first() is not None


def remember(session: Session, journey: str, schedule: str, fire: datetime) -> None:
    """After the commit: the next pass need not look before the fire after `fire`."""
    _known(session.get_bind())[journey] = _Known(schedule, next_fire(schedule, fire))


def set_clocks(session: Session, last_fires: Mapping[str, datetime]) -> None:
    """Set journeys' last enrolled fire (simulation starts its clocks here); committed."""
    for journey, at in last_fires.items():
        if session.get(JourneyClock, journey) is None:
            session.add(JourneyClock(journey=journey, last_fire_at=at))
        else:
            session.execute(update(JourneyClock).where(JourneyClock.journey == journey).values(last_fire_at=at))
    session.commit()
    known = _known(session.get_bind())
    for journey in last_fires:
        known.pop(journey, None)
