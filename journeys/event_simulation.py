"""Time travel for an event-triggered journey, fed from a JSON Lines file of events.

On a throwaway copy of the database (journeys/simulate.py's sandbox), each event is stored when
its `occurred_at` comes and the real `run_pass` runs at that instant (the embedded runtime wakes on
an event) and at the first minute at or after each due step (it passes every minute). Nothing is
sent (the dry-run adapter) and nothing is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from audiences.errors import LoyalflowError
from audiences.events import EventIn, store, validate
from audiences.models import Member
from journeys.dsl import Journey
from journeys.models import Enrollment, EnrollmentStatus
from journeys.passes import run_pass
from journeys.services import Services
from journeys.simulate import Day, DryRunAdapter, count_variants, sandbox
from journeys.stats import TickStats


class EventFileInvalid(LoyalflowError):
    """The events file has lines that are not valid events; the message lists them by line."""


@dataclass(frozen=True)
class Timed:
    line: int
    event: EventIn


def _listing(problems: list[str]) -> str:
    return "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")


def read_events(path: str, now: datetime) -> list[Timed]:
    """Every event of the file, validated as `loyalflow events import` would (at `now`); any bad
    line refuses the whole file, naming up to five of them as file:line."""
    good: list[Timed] = []
    bad: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                checked = validate(json.loads(line), now)
            except ValueError as exc:
                bad.append(f"{path}:{number}: not valid JSON ({exc})")
                continue
            if isinstance(checked, EventIn):
                good.append(Timed(number, checked))
            else:
                bad.append(f"{path}:{number}: " + "; ".join(f"{e.field or 'event'} {e.message}" for e in checked))
    if bad:
        raise EventFileInvalid(_listing(bad))
    return sorted(good, key=lambda t: (t.event.occurred_at, t.line))


def _minute_ceiling(instant: datetime) -> datetime:
    floor = instant.replace(second=0, microsecond=0)
    return floor if floor == instant else floor + timedelta(minutes=1)


def simulate_events(engine: Engine, journey: Journey, events_path: str, start: datetime, days: int,
                    services_for: Callable[[DryRunAdapter], Services],
                    on_pass: Callable[[datetime], None] | None = None) -> list[Day]:
    """Days of what the journey would do with these events from `start`, counted per day of the pass."""
    if journey.trigger is None:
        raise LoyalflowError(f"journey {journey.name!r} has no event trigger; simulate it without --events")
    end = start + timedelta(days=days)
    timed = [t for t in read_events(events_path, end) if start <= t.event.occurred_at < end]
    adapter = DryRunAdapter()
    services = services_for(adapter)
    by_day = {start.date() + timedelta(days=i): Day(start.date() + timedelta(days=i)) for i in range(days)}
    with sandbox(engine) as factory:
        with factory() as session:
            known = set(session.scalars(select(Member.id).where(Member.id.in_({t.event.member_id for t in timed}))))
        unknown = [f"{events_path}:{t.line}: member_id no member has this id" for t in timed
                   if t.event.member_id not in known]
        if unknown:
            raise EventFileInvalid(_listing(unknown))
        index = 0
        last: datetime | None = None
        while True:
            with factory() as session:
                due = session.scalar(select(func.min(Enrollment.due_at)).where(
                    Enrollment.journey == journey.name, Enrollment.status == EnrollmentStatus.active))
            due = _minute_ceiling(due) if due is not None else None  # the runtime passes every minute
            candidates = [t for t in (due, timed[index].event.occurred_at if index < len(timed) else None) if t]
            if not candidates:
                break
            now = max(min(candidates), start)
            if last is not None and now <= last:  # still due after its pass: the next minute pass retries it
                now = _minute_ceiling(last + timedelta(seconds=1))
            last = now
            if now >= end:
                break
            arriving = []
            while index < len(timed) and timed[index].event.occurred_at <= now:
                arriving.append((timed[index].line, timed[index].event))
                index += 1
            if arriving:
                with factory() as session:
                    store(session, arriving, now, "file")
                    session.commit()
            result = run_pass(factory, {journey.name: journey}, now, services)  # what the runtime's wake runs
            by_day[now.date()].stats.merge(result.journeys.get(journey.name, TickStats()))
            if on_pass:
                on_pass(now)
        count_variants(factory, journey, by_day)  # an A/B step's split, as `simulate` without events shows it
    return list(by_day.values())


__all__ = ["EventFileInvalid", "read_events", "simulate_events"]
