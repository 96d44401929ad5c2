"""The engine: enroll, then advance due enrollments chunk by chunk until none is due at `now`.

Plain Python, no Prefect: flows/ wraps `tick` (or `enroll` and `advance_range`) in flows and tasks.
Time is always the injected `now`; nothing here reads the wall clock, so a simulation is just a
loop over instants.

Concurrency: a chunk is claimed with a lease (an UPDATE of due rows not leased by anyone; on
PostgreSQL the candidates are picked FOR UPDATE SKIP LOCKED), so workers never share an
enrollment. The send ledger's unique (enrollment, step) key and its reserved -> sending
transition are the second, independent guard against a double send.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from journeys.conditions import Condition, Scope
from journeys.delivery import deliver
from journeys.dsl import End, ExitWhen, Journey, Send, Wait
from journeys.enroll import enroll
from journeys.models import Enrollment, EnrollmentStatus
from journeys.program import Instruction, Jump, JumpUnless, compile_steps
from journeys.services import Services
from journeys.stats import TickStats
from journeys.timing import parse_instant, wait_target

log = logging.getLogger("loyalflow.engine")

SessionFactory = Callable[[], Session]
LEASE = timedelta(minutes=15)
DEFAULT_CHUNK = 5_000


@dataclass
class State:
    """An enrollment being advanced in memory; written back once per chunk."""

    row: Enrollment
    program: tuple[Instruction, ...]
    pc: int
    due: datetime
    parked: bool = False
    done: bool = False

    @property
    def context(self) -> dict[str, Any]:
        return self.row.context or {}


_programs: dict[tuple[str, int, int], tuple[Instruction, ...]] = {}


def program_of(journey: Journey, version: int) -> tuple[Instruction, ...] | None:
    steps = journey.steps_for(version)
    if steps is None:
        return None
    key = (journey.name, version, id(steps))
    if key not in _programs:
        _programs[key] = compile_steps(steps)
    return _programs[key]


def claim(session: Session, journey: str, now: datetime, limit: int, worker: str,
          id_range: tuple[int, int] | None = None) -> list[int]:
    """Lease up to `limit` due enrollments to `worker`; returns their ids."""
    # a retried task (same worker id) may take back its own leases
    free = or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now, Enrollment.lease_owner == worker)
    due = and_(Enrollment.journey == journey, Enrollment.status == EnrollmentStatus.active,
               Enrollment.due_at <= now, free)
    if id_range is not None:
        due = and_(due, Enrollment.id >= id_range[0], Enrollment.id < id_range[1])
    candidates = select(Enrollment.id).where(due).order_by(Enrollment.id).limit(limit)
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
    found = session.execute(select(Enrollment.id).where(Enrollment.id.in_(ids), condition.build(scope)))
    return set(found.scalars())


def _step(state: State, instr: Instruction, truths: dict[int, set[int]], now: datetime, stats: TickStats) -> None:
    """Run one non-send instruction for one enrollment."""
    row = state.row
    if isinstance(instr, Wait):
        target = wait_target(instr, state.due, state.context, row.context.get("time_zone") if row.context else None)
        state.pc += 1
        if target is not None and target > now:
            state.due, state.parked = target, True
        elif target is not None:
            state.due = max(state.due, target)
    elif isinstance(instr, ExitWhen):
        if row.id in truths[id(instr.condition)]:
            row.status, row.exit_reason, state.done = EnrollmentStatus.exited, instr.condition.name, True
            stats.exited[instr.condition.name] += 1
        else:
            state.pc += 1
    elif isinstance(instr, JumpUnless):
        state.pc = state.pc + 1 if row.id in truths[id(instr.condition)] else instr.target
    elif isinstance(instr, Jump):
        state.pc = instr.target
    elif isinstance(instr, End):
        state.pc = len(state.program)


def run_chunk(session: Session, journey: Journey, ids: list[int], now: datetime, services: Services,
              worker: str) -> TickStats:
    stats = TickStats()
    rows = session.execute(select(Enrollment).where(Enrollment.id.in_(ids), Enrollment.lease_owner == worker)
                           .order_by(Enrollment.id)).scalars().all()
    states: list[State] = []
    for row in rows:
        program = program_of(journey, row.journey_version)
        if program is None:
            row.status, row.exit_reason = EnrollmentStatus.failed, "journey_version_retired"
            stats.failed["journey_version_retired"] += 1
            continue
        states.append(State(row, program, row.step_index, parse_instant(row.due_at) or now))
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
        sending = []
        for s in runnable:
            instr = s.program[s.pc]
            if isinstance(instr, Send):
                sending.append(s)
            else:
                _step(s, instr, truths, now, stats)
        if sending:
            by_step: dict[int, list[State]] = defaultdict(list)
            for s in sending:
                by_step[id(s.program[s.pc])].append(s)
            for group in by_step.values():
                deliver(session, journey, group, now, services, stats)
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
    for row in rows:
        row.lease_owner, row.lease_until, row.updated_at = None, None, now
    session.commit()
    return stats


def advance(session_factory: SessionFactory, journey: Journey, now: datetime, services: Services, *,
            chunk_size: int = DEFAULT_CHUNK, worker: str | None = None,
            id_range: tuple[int, int] | None = None, max_chunks: int | None = None) -> TickStats:
    """Advance every enrollment due at `now` (optionally only ids in [lo, hi))."""
    worker = worker or uuid.uuid4().hex[:12]
    stats = TickStats()
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        with session_factory() as session:
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
    with session_factory() as session:
        result = enroll(session, journey, now)
        session.commit()
    return TickStats(enrolled=result.enrolled, held_out=result.held_out)


def tick(session_factory: SessionFactory, journey: Journey, now: datetime, services: Services, *,
         chunk_size: int = DEFAULT_CHUNK, worker: str | None = None) -> TickStats:
    """One tick of one journey: enroll, then advance everything due."""
    stats = enroll_journey(session_factory, journey, now)
    return stats.merge(advance(session_factory, journey, now, services, chunk_size=chunk_size, worker=worker))
