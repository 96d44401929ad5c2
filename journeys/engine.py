"""The engine: enroll, then advance due enrollments chunk by chunk until none is due at `now`.

Plain Python, no Prefect: flows/ wraps `tick`, `enroll_journey` and `advance` (and journeys/passes.py,
which runs every journey's due steps in one pass) in flows and tasks. Time is always the injected
`now`; nothing here reads the wall clock, so a simulation is just a loop over instants.

Concurrency: a chunk is claimed with a lease (an UPDATE of due rows not leased by anyone; on
PostgreSQL the candidates are picked FOR UPDATE SKIP LOCKED), so workers never share an
enrollment. The send ledger's unique (enrollment, step) key and its reserved -> sending
transition are the second, independent guard against a double send.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from journeys.bulk import id_in, instant_writer, update_by_id
from journeys.conditions import Condition, Scope
from journeys.delivery import deliver
from journeys.dsl import End, ExitWhen, Journey, Send, Wait
from journeys.enroll import enroll
from journeys.models import Enrollment, EnrollmentStatus
from journeys.program import Instruction, Jump, JumpUnless, program_of
from journeys.send_time import wall_time
from journeys.services import Services
from journeys.settle import upgrade_from_events
from journeys.startup_heap import freeze_once
from journeys.state import Advance, Done, EnrollmentRow, Outcome, Park, State
from journeys.stats import TickStats
from journeys.table_stats import refresh_stale
from journeys.timing import (
    LATE_FOR_WALL_TIME,
    deadline,
    next_wall_time,
    parse_instant,
    wait_target,
    zone_of,
)
from journeys.triggers import enroll_triggered
from journeys.zones import Zone, resolve

log = logging.getLogger("loyalflow.engine")

SessionFactory = Callable[[], Session]
LEASE = timedelta(minutes=15)
DEFAULT_CHUNK = 5_000


def claim(session: Session, journey: str, now: datetime, limit: int, worker: str,
          id_range: tuple[int, int] | None = None) -> list[int]:
    """Lease up to `limit` due enrollments to `worker`; returns their ids."""
    # a retried task (same worker id) may take back its own leases
    free = or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now, Enrollment.lease_owner == worker)
    due = and_(Enrollment.journey == journey, Enrollment.status == EnrollmentStatus.active,
               Enrollment.due_at <= now, free)
    if id_range is not None:
        due = and_(due, Enrollment.id >= id_range[0], Enrollment.id < id_range[1])
    # oldest due first, in the order of ix_enrollments_journey_due: a range scan that stops at `limit`
    candidates = select(Enrollment.id).where(due).order_by(Enrollment.due_at, Enrollment.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = session.execute(
        update(Enrollment).where(Enrollment.id.in_(candidates.scalar_subquery()), free)
        .values(lease_owner=worker, lease_until=now + LEASE).returning(Enrollment.id),
        execution_options={"synchronize_session": False},
    ).scalars().all()
    session.commit()
    return sorted(ids)


def _evaluate(session: Session, condition: Condition, ids: list[int], scope: Scope) -> set[int]:
    found = session.connection().execute(select(Enrollment.id).where(id_in(session, Enrollment.id, ids), condition.build(scope)))
    return set(found.scalars())


def _next_send_deadline(journey: Journey, state: State) -> datetime | None:
    """The stale deadline of the send a wait leads to (None: no send before another wait, or none set)."""
    for instr in state.program[state.pc + 1:]:
        if isinstance(instr, Wait):
            return None
        if isinstance(instr, Send):
            return deadline(instr.stale or journey.stale, state.context, state.row.enrolled_at)
    return None


def _wait(journey: Journey, state: State, instr: Wait, now: datetime) -> Outcome:
    target = wait_target(instr, state.due, state.context, state.time_zone)
    if target is None:
        return Advance()
    if target > now:
        return Park(target, next_step=True)
    wall = wall_time(instr, state.context)  # at="best": the member's own hour when known
    if wall is not None and now - target > LATE_FOR_WALL_TIME:
        # today's wall time if it passed within the hour (a pass a little late), else the next one
        on_time = next_wall_time(now - LATE_FOR_WALL_TIME, wall, zone_of(state.time_zone))
        limit = _next_send_deadline(journey, state)
        if on_time > now and (limit is None or on_time < limit):
            return Park(on_time, next_step=True)
    return Advance(ended=target)


def _step(journey: Journey, state: State, instr: Instruction, truths: dict[int, set[int]], now: datetime) -> Outcome:
    """The outcome of one non-send instruction for one enrollment."""
    if isinstance(instr, Wait):
        return _wait(journey, state, instr, now)
    if isinstance(instr, ExitWhen):
        if state.row.id in truths[id(instr.condition)]:
            return Done(EnrollmentStatus.exited, instr.condition.name)
        return Advance()
    if isinstance(instr, JumpUnless):
        return Advance(to=state.pc + 1 if state.row.id in truths[id(instr.condition)] else instr.target)
    if isinstance(instr, Jump):
        return Advance(to=instr.target)
    assert isinstance(instr, End)
    return Advance(to=len(state.program))


# the instants and the context as the driver returns them (SQLite: text), parsed below: SQLAlchemy's
# SQLite DateTime processor is a regex per value and its JSON processor wraps json.loads (~8 µs a row in all)
_COLUMNS = (Enrollment.id, Enrollment.journey_version, Enrollment.recipient_kind, Enrollment.recipient_id,
            type_coerce(Enrollment.enrolled_at, NullType), Enrollment.step_index, type_coerce(Enrollment.due_at, NullType),
            type_coerce(Enrollment.context, NullType), Enrollment.status, Enrollment.exit_reason, Enrollment.variant)


def _context(raw: Any) -> dict[str, Any] | None:
    """An enrollment's context as stored: JSON text on SQLite, already decoded by psycopg."""
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw


def _load(session: Session, journey: Journey, ids: list[int], now: datetime, services: Services, worker: str,
          stats: TickStats) -> tuple[list[EnrollmentRow], list[State], dict[tuple[str, int], Zone]]:
    """The leased enrollments as plain rows (Core select, no ORM identity map), their states and the
    zones their times are computed in (resolved once per chunk; delivery reuses them)."""
    rows = [EnrollmentRow(i, version, kind, rid, parse_instant(enrolled), step, parse_instant(due), _context(ctx),
                          status, reason, variant)
            for i, version, kind, rid, enrolled, step, due, ctx, status, reason, variant in session.connection().execute(
                select(*_COLUMNS).where(id_in(session, Enrollment.id, ids), Enrollment.lease_owner == worker)
                .order_by(Enrollment.id))]  # Core: no ORM result machinery
    states: list[State] = []
    programs: dict[int, tuple[Instruction, ...] | None] = {}
    for row in rows:
        if row.journey_version not in programs:  # once per version per chunk
            programs[row.journey_version] = program_of(journey, row.journey_version)
        program = programs[row.journey_version]
        if program is None:
            row.status, row.exit_reason = EnrollmentStatus.failed, "journey_version_retired"
            stats.failed["journey_version_retired"] += 1
            continue
        states.append(State(row, program, row.step_index, row.due_at or now))
    zones = resolve(session, [(s.row.recipient_kind, s.row.recipient_id, s.context.get("time_zone")) for s in states],
                    services.default_time_zone)
    for s in states:  # waits count local days in the zone quiet hours use (own, store, default; else UTC)
        s.time_zone = zones[(s.row.recipient_kind, s.row.recipient_id)].name
    return rows, states, zones


def _write_back(session: Session, rows: list[EnrollmentRow], now: datetime) -> None:
    """Every row of the chunk in one UPDATE by primary key (journeys/bulk.py), its lease released."""
    instant = instant_writer(session)
    update_by_id(session, "enrollments",
                 [("step_index", "integer"), ("due_at", "timestamp"), ("status", "varchar"), ("exit_reason", "varchar")],
                 [(r.step_index, instant(r.due_at), r.status.value, r.exit_reason, r.id) for r in rows],
                 fixed="lease_owner = NULL, lease_until = NULL, updated_at = {p}", fixed_params=[instant(now)])


def run_chunk(session: Session, journey: Journey, ids: list[int], now: datetime, services: Services,
              worker: str) -> TickStats:
    stats = TickStats()
    rows, states, zones = _load(session, journey, ids, now, services, worker, stats)
    scope = Scope(now, journey.audience, dict(journey.audience_params))
    for _ in range(4 * max((len(s.program) for s in states), default=0) + 4):
        runnable = [s for s in states if not (s.parked or s.done)]
        for s in runnable:
            if s.pc >= len(s.program):
                s.row.status, s.done = EnrollmentStatus.completed, True
                stats.completed += 1
        runnable = [s for s in runnable if not s.done]
        if not runnable:
            break
        needed: dict[int, tuple[Condition, list[int]]] = {}
        for s in runnable:
            instr = s.program[s.pc]
            if isinstance(instr, (ExitWhen, JumpUnless)):
                needed.setdefault(id(instr.condition), (instr.condition, []))[1].append(s.row.id)
        truths = {key: _evaluate(session, cond, ids_, scope) for key, (cond, ids_) in needed.items()}
        by_step: dict[int, list[State]] = defaultdict(list)
        for s in runnable:
            instr = s.program[s.pc]
            if isinstance(instr, Send):
                by_step[id(instr)].append(s)
                continue
            outcome = _step(journey, s, instr, truths, now)
            if isinstance(outcome, Done):
                stats.exited[outcome.reason] += 1
            s.apply(outcome)
        for group in by_step.values():
            step = group[0].program[group[0].pc]
            assert isinstance(step, Send)
            outcomes = deliver(session, journey, step, [s.row for s in group], now, services, stats, zones)
            for s in group:
                # no outcome: another worker took the ledger row first; the next round reads what it did
                if (outcome := outcomes.get(s.row.id)) is not None:
                    s.apply(outcome)
    for s in states:
        s.row.step_index = s.pc
        if s.done:
            s.row.due_at = None
        elif s.parked:
            s.row.due_at = s.due
            stats.deferred += 1
        else:  # ran out of iterations: leave it due now, nothing lost
            s.row.due_at = now
        stats.advanced += 1
    _write_back(session, rows, now)
    session.commit()
    return stats


def advance(session_factory: SessionFactory, journey: Journey, now: datetime, services: Services, *,
            chunk_size: int = DEFAULT_CHUNK, worker: str | None = None,
            id_range: tuple[int, int] | None = None, max_chunks: int | None = None) -> TickStats:
    """Advance every enrollment due at `now` (optionally only ids in [lo, hi))."""
    worker = worker or uuid.uuid4().hex[:12]
    freeze_once()  # the process's startup heap (imports, compiled templates) leaves the collector's walks
    stats = TickStats()
    chunks = 0
    with session_factory() as session:  # late provider events: earlier `outcome_unknown` failures were sent
        if upgrade_from_events(session, journey.name, now):
            session.commit()
    while max_chunks is None or chunks < max_chunks:
        with session_factory() as session:
            refresh_stale(session)  # PostgreSQL: plans for this chunk see the rows the last ones added
            ids = claim(session, journey.name, now, chunk_size, worker, id_range)
            if not ids:
                break
            stats.merge(run_chunk(session, journey, ids, now, services, worker))
        chunks += 1
    return stats


def chunk_bounds(session: Session, journey: str, now: datetime, size: int) -> list[tuple[int, int]]:
    """[lo, hi) id ranges of about `size` due enrollments each, computed in SQL (for parallel tasks)."""
    due = (select(Enrollment.id.label("id"), func.row_number().over(order_by=Enrollment.id).label("rn"))
           .where(Enrollment.journey == journey, Enrollment.status == EnrollmentStatus.active,
                  Enrollment.due_at <= now).subquery())
    starts = list(session.scalars(select(due.c.id).where((due.c.rn - 1) % size == 0).order_by(due.c.id)))
    if not starts:
        return []
    last = session.scalar(select(func.max(due.c.id)))
    ends = starts[1:] + [int(last) + 1]
    return list(zip(starts, ends))


def enroll_journey(session_factory: SessionFactory, journey: Journey, now: datetime) -> TickStats:
    stats = TickStats()
    if journey.audience is not None:
        with session_factory() as session:
            result = enroll(session, journey, now)
            session.commit()
        stats = TickStats(enrolled=result.enrolled, held_out=result.held_out)
    if journey.trigger is not None:  # and whoever entered by an event since (journeys/triggers.py)
        stats.merge(enroll_triggered(session_factory, [journey], now).get(journey.name, TickStats()))
    return stats


def tick(session_factory: SessionFactory, journey: Journey, now: datetime, services: Services, *,
         chunk_size: int = DEFAULT_CHUNK, worker: str | None = None) -> TickStats:
    """One tick of one journey: enroll, then advance everything due."""
    stats = enroll_journey(session_factory, journey, now)
    return stats.merge(advance(session_factory, journey, now, services, chunk_size=chunk_size, worker=worker))
