"""Time travel: run journeys pass by pass on a simulated clock over the current data, sending nothing.

The clock jumps from instant to instant: the next cron fire of any journey, the next due step
(rounded up to the minute, as a runtime passing every minute sees it), or the end; at each instant
it runs the same `run_pass` a runtime runs. That is what passing every minute does, without the
empty passes, so a simulation agrees with a real run.

The database is never changed: SQLite is copied (the backup API, consistent even while others
write) and the copy is thrown away; PostgreSQL runs inside one transaction, every engine commit
becoming a savepoint, rolled back at the end. Messages go to a dry-run adapter that accepts them
without sending, after the real consent checks and the real template rendering.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from audiences.db import make_engine
from audiences.events import EventIn, store
from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from journeys.clocks import fires, latest_fire, next_fire, set_clocks
from journeys.dsl import Journey
from journeys.engine import SessionFactory
from journeys.models import Enrollment, SendStatus
from journeys.models import Send as LedgerRow
from journeys.passes import PassResult, cron_schedules, next_due, run_pass
from journeys.services import Services
from journeys.stats import TickStats
from journeys.variants import arms_of


class DryRunAdapter:
    """Accepts every message and sends nothing; counts what would have gone."""

    provider = "dry-run"

    def __init__(self) -> None:
        self.count = 0

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        self.count += len(messages)
        return [DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"dry-run-{m.ledger_id}") for m in messages]


@contextmanager
def sandbox(engine: Engine) -> Iterator[SessionFactory]:
    """Sessions on a throwaway version of the database."""
    if engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="loyalflow-sim-") as folder:
            copy = Path(folder) / "simulation.db"
            source = sqlite3.connect(engine.url.database or ":memory:")
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)
            source.close()
            target.close()
            sim_engine = make_engine(f"sqlite:///{copy}")
            try:
                yield sessionmaker(sim_engine, expire_on_commit=False)
            finally:
                sim_engine.dispose()
        return
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        finally:
            outer.rollback()


@dataclass
class Day:
    day: date
    stats: TickStats = field(default_factory=TickStats)
    variants: Counter[str] | None = None
    """Sends per A/B variant (None: the journey has no variants)."""

    def row(self) -> dict[str, Any]:
        s = self.stats
        out = {"date": self.day.isoformat(), "enrolled": s.enrolled, "held_out": s.held_out,
               "sent": dict(sorted((k, v) for k, v in s.sent.items() if v)),
               "skipped": dict(sorted((k, v) for k, v in s.skipped.items() if v)),
               "failed": dict(sorted((k, v) for k, v in s.failed.items() if v)),
               "exited": dict(sorted((k, v) for k, v in s.exited.items() if v)),
               "completed": s.completed}
        if self.variants is not None:
            out["variants"] = dict(sorted(self.variants.items()))
        return out


def count_variants(session_factory: SessionFactory, journey: Journey, days: Mapping[date, Day]) -> None:
    """The A/B split of what was sent, per day (UTC) and variant, into `days` (a journey without variants: nothing)."""
    arms = arms_of(journey)
    if not arms:
        return
    for d in days.values():
        d.variants = Counter({a.name: 0 for a in arms})
    with session_factory() as session:
        rows = session.execute(select(LedgerRow.sent_at, Enrollment.variant)
                               .join(Enrollment, Enrollment.id == LedgerRow.enrollment_id)
                               .where(LedgerRow.journey == journey.name, LedgerRow.status == SendStatus.sent,
                                      Enrollment.variant.is_not(None)))
        for sent_at, variant in rows:
            if sent_at is not None and (d := days.get(sent_at.date())) is not None and d.variants is not None:
                d.variants[variant] += 1


def tick_times(schedule: str, start: datetime, days: int) -> list[datetime]:
    """The cron fires of `schedule` in the `days` days from `start`."""
    return fires(schedule, start, start + timedelta(days=days))


def _minute_ceiling(instant: datetime) -> datetime:
    floor = instant.replace(second=0, microsecond=0)
    return floor if floor == instant else floor + timedelta(minutes=1)


class EventFeed:
    """Events to arrive during a simulation, each stored at its `occurred_at` (as `POST /v1/events`
    would store it then), so event-triggered journeys enter when a real runtime would wake."""

    def __init__(self, events: Iterable[EventIn], source: str = "simulation") -> None:
        self._events = sorted(events, key=lambda e: e.occurred_at)
        self._next = 0
        self.source = source

    def next_at(self, after: datetime) -> datetime | None:
        """The first arrival after `after` not yet stored."""
        for event in self._events[self._next:]:
            if event.occurred_at > after:
                return event.occurred_at
        return None

    def release(self, session_factory: SessionFactory, until: datetime) -> int:
        """Store every event that has occurred by `until`; how many."""
        due: list[EventIn] = []
        while self._next < len(self._events) and self._events[self._next].occurred_at <= until:
            due.append(self._events[self._next])
            self._next += 1
        if due:
            with session_factory() as session:
                store(session, list(enumerate(due)), until, self.source)
                session.commit()
        return len(due)


def run_clock(session_factory: SessionFactory, journeys: Mapping[str, Journey], start: datetime, end: datetime,
              services: Services, feed: EventFeed | None = None) -> Iterator[tuple[datetime, PassResult]]:
    """`run_pass` at every instant in [start, end) at which a runtime passing every minute does work
    (and, with a feed, at each event's arrival: the embedded runtime wakes on an event)."""
    now = start
    while now < end:
        if feed is not None:
            feed.release(session_factory, now)
        yield now, run_pass(session_factory, journeys, now, services)
        with session_factory() as session:
            due = next_due(session, journeys)
        following = [next_fire(schedule, now) for schedule in cron_schedules(journeys).values()]
        if due is not None:  # something still due now (e.g. leased by a crashed worker): a minute later
            following.append(max(_minute_ceiling(due), _minute_ceiling(now + timedelta(seconds=1))))
        if feed is not None and (arrival := feed.next_at(now)) is not None:
            following.append(arrival)
        now = min([end, *following])


def start_clocks(session_factory: SessionFactory, journeys: Iterable[str], start: datetime) -> None:
    """Make `start` the beginning of entry: each journey's first enrollment is at its first fire at or after it."""
    with session_factory() as session:
        set_clocks(session, {name: start - timedelta(microseconds=1) for name in journeys})


def simulate(engine: Engine, journey: Journey, start: datetime, days: int,
             services_for: Callable[[DryRunAdapter], Services],
             on_tick: Callable[[datetime], None] | None = None) -> list[Day]:
    """Days of `journey` from `start` in a sandbox; `on_tick` is called at each of its cron fires."""
    adapter = DryRunAdapter()
    services = services_for(adapter)
    by_day = {start.date() + timedelta(days=i): Day(start.date() + timedelta(days=i)) for i in range(days)}
    end = start + timedelta(days=days)
    with sandbox(engine) as factory:
        start_clocks(factory, [journey.name], start)
        for now, result in run_clock(factory, {journey.name: journey}, start, end, services):
            by_day[now.date()].stats.merge(result.total)
            if on_tick and journey.schedule and latest_fire(journey.schedule, now) == now:
                on_tick(now)
        count_variants(factory, journey, by_day)
    return list(by_day.values())


__all__ = ["DryRunAdapter", "Day", "count_variants", "run_clock", "sandbox", "simulate", "start_clocks", "tick_times"]
