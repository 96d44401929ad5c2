"""A pass: the one unit every runtime repeats (about every minute) to keep journeys on time.

Two clocks. *Entry*: a journey enrolls when its cron fires (the audience diff, evaluated at the
fire instant) or when an event arrives (an `ENTRY_HOOKS` entry). *Progress*: every enrollment
whose step is due (`due_at <= now`: a wait's end, an `at="10:00"`, the end of quiet hours, a retry)
is advanced, whatever its journey's cron, across journeys in priority order so the cross-journey
frequency cap gives the slot to the higher priority.

A pass in which nothing fired and nothing is due costs one indexed query (`due_journeys`).
`next_due` tells a runtime how long it may sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from audiences.models import Event
from journeys import broadcasts, clocks
from journeys.dsl import Journey
from journeys.engine import DEFAULT_CHUNK, SessionFactory, advance
from journeys.enroll import enroll
from journeys.models import Enrollment, EnrollmentStatus
from journeys.services import Services
from journeys.stats import TickStats
from journeys.triggers import enroll_triggered

AdvanceJourney = Callable[[Journey, int], TickStats]
"""How one journey's due enrollments are advanced, given its due count (a runtime may fan a large one out)."""
EntryHook = Callable[[SessionFactory, Mapping[str, Journey], datetime], dict[str, TickStats]]
ENTRY_HOOKS: list[EntryHook] = []
"""Other ways in, run by `run_pass` after cron and event entry and before progress."""
_EVENTS = "<events>"  # the probe's row for the newest event id (not a journey name: those are identifiers)


@dataclass
class PassResult:
    journeys: dict[str, TickStats] = field(default_factory=dict)
    """Per journey: what entered and what progressed in this pass."""

    @property
    def total(self) -> TickStats:
        total = TickStats()
        for stats in self.journeys.values():
            total.merge(stats)
        return total

    def add(self, per_journey: Mapping[str, TickStats]) -> None:
        for name, stats in per_journey.items():
            self.journeys.setdefault(name, TickStats()).merge(stats)


def due_journeys(session: Session, now: datetime) -> dict[str, int]:
    """Due active enrollments per journey: one query on ix_enrollments_due (status, due_at)."""
    return {name: n for name, n in session.execute(_due_query(session, now)) if name != _EVENTS}


@dataclass(frozen=True)
class Probe:
    due: dict[str, int]
    newest_event: int | None
    """The newest event id (None: not asked, no journey starts from an event)."""


def probe(session: Session, now: datetime, *, events: bool) -> Probe:
    """What a pass must do, in ONE statement: due enrollments per journey (the due index) and, when
    some journey starts from an event, the newest event id (the primary key), so an empty pass is
    one indexed query however many runtimes and journeys there are."""
    query: Any = _due_query(session, now)
    if events:
        query = union_all(query, select(literal(_EVENTS), func.coalesce(func.max(Event.id), 0)))
    rows = {name: int(n) for name, n in session.execute(query)}
    newest = rows.pop(_EVENTS, None) if events else None
    return Probe(rows, newest)


def _due_query(session: Session, now: datetime) -> Any:
    journey: Any = Enrollment.journey
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's planner takes the (journey, status) index to group without sorting: a walk over every
        # active row (143 ms at 200,000). A unary + keeps the column out of index choice, so it seeks
        # the due index and reads only what is due (nothing, in an empty pass: 0.01 ms).
        journey = literal_column("+enrollments.journey")
    return (select(journey, func.count()).where(Enrollment.status == EnrollmentStatus.active, Enrollment.due_at <= now)
            .group_by(journey))


def next_due(session: Session, journeys: Iterable[str] | None = None) -> datetime | None:
    """The earliest due instant of any active enrollment (of these journeys): one query on the same index."""
    query = select(func.min(Enrollment.due_at)).where(Enrollment.status == EnrollmentStatus.active)
    if journeys is not None:
        query = query.where(or_(Enrollment.journey.in_(list(journeys)),  # and broadcasts: every pass runs them
                                Enrollment.journey.startswith(broadcasts.PREFIX, autoescape=True)))
    return session.scalar(query)


def by_priority(journeys: Mapping[str, Journey]) -> list[Journey]:
    """Higher priority first, then by name: the order the frequency cap is handed out in."""
    return sorted(journeys.values(), key=lambda j: (-j.priority, j.name))


def cron_schedules(journeys: Mapping[str, Journey]) -> dict[str, str]:
    """The journeys that enter on a cron (an audience diff), with their crons; event-only ones have none."""
    return {name: j.schedule for name, j in journeys.items() if j.schedule and j.audience is not None}


def enroll_due(session_factory: SessionFactory, journeys: Mapping[str, Journey], now: datetime) -> dict[str, TickStats]:
    """Enroll every journey whose cron fired since its last enrolled fire, once, at the latest such
    fire instant (missed fires coalesce; the audience is evaluated at that instant, so a late pass
    enrolls whom an on-time one would have). A journey never enrolled before starts at its latest
    fire at or before `now`; history is not replayed."""
    out: dict[str, TickStats] = {}
    schedules = cron_schedules(journeys)
    with session_factory() as session:
        fired = clocks.fired(session, schedules, now)
    for journey in by_priority({n: journeys[n] for n in fired}):
        last, fire = fired[journey.name]
        with session_factory() as session:
            if not clocks.claim(session, journey.name, last, fire):
                session.rollback()  # another runtime enrolled this fire
                continue
            result = enroll(session, journey, fire)
            session.commit()
            clocks.remember(session, journey.name, journey.schedule, fire)
        out[journey.name] = TickStats(enrolled=result.enrolled, held_out=result.held_out)
    return out


def advance_due(session_factory: SessionFactory, journeys: Mapping[str, Journey], now: datetime, services: Services,
                *, chunk_size: int = DEFAULT_CHUNK, worker: str | None = None,
                due: Mapping[str, int] | None = None,
                advance_journey: AdvanceJourney | None = None) -> dict[str, TickStats]:
    """Advance every due enrollment of these journeys, highest priority first (`due`: already counted;
    `advance_journey`: how, default `engine.advance` in this process)."""
    if due is None:
        with session_factory() as session:
            due = due_journeys(session, now)
    out: dict[str, TickStats] = {}
    for journey in by_priority(journeys):
        count = due.get(journey.name)
        if not count:
            continue
        if advance_journey is not None:
            out[journey.name] = advance_journey(journey, count)
        else:
            out[journey.name] = advance(session_factory, journey, now, services, chunk_size=chunk_size, worker=worker)
    return out


def run_pass(session_factory: SessionFactory, journeys: Mapping[str, Journey], now: datetime, services: Services,
             *, chunk_size: int = DEFAULT_CHUNK, worker: str | None = None,
             advance_journey: AdvanceJourney | None = None) -> PassResult:
    """Entry (cron fires, events, every ENTRY_HOOKS entry), then progress (everything due), at `now`."""
    with session_factory() as session:
        seen = probe(session, now, events=any(j.trigger is not None for j in journeys.values()))
    journeys = {**journeys, **broadcasts.journeys_for(session_factory, seen.due)}  # due broadcasts: one-step journeys
    result = PassResult()
    result.add(enroll_due(session_factory, journeys, now))  # no query unless a cron fired (clocks cache)
    result.add(enroll_triggered(session_factory, journeys, now, newest=seen.newest_event))
    for hook in ENTRY_HOOKS:
        result.add(hook(session_factory, journeys, now))
    entered = result.total.enrolled + result.total.held_out
    result.add(advance_due(session_factory, journeys, now, services, chunk_size=chunk_size, worker=worker,
                           due=None if entered else seen.due, advance_journey=advance_journey))
    return result
