"""Event-triggered entry: one INSERT ... SELECT from the events newer than the journey's cursor.

Each matching event enrolls its member once (the occurrence key is the event's idempotency key),
with the event's properties, id, type and time in the enrollment context (so templates say
`{{ amount|money }}`), `enrolled_at` = when the event happened (so a backfilled event past a
send's deadline is stale, and exit conditions look at what happened after it). The cursor (last
event id read, per journey) is moved in the same transaction; a re-run enrolls nothing twice
anyway (ON CONFLICT DO NOTHING on the occurrence). A pass with no new event costs one index seek
per event-triggered journey.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, case, cast, func, literal, literal_column, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.events import property_filter
from audiences.models import Event, EventCursor, Member, MemberStatus
from journeys.dsl import Journey
from journeys.holdout import bucket_sql, threshold
from journeys.models import Enrollment, EnrollmentStatus
from journeys.stats import TickStats

SessionFactory = Callable[[], Session]


def consumer(journey: Journey) -> str:
    return f"journey:{journey.name}"


def _cursor(journey: Journey) -> ColumnElement[int]:
    saved = select(EventCursor.last_event_id).where(EventCursor.consumer == consumer(journey)).scalar_subquery()
    return func.coalesce(saved, 0)


def newest_unread(session: Session, journey: Journey) -> tuple[int, int] | None:
    """(cursor, newest id of the trigger's type past it), or None when nothing new: one index seek."""
    assert journey.trigger is not None
    row = session.execute(select(_cursor(journey), func.max(Event.id))
                          .where(Event.type == journey.trigger.type, Event.id > _cursor(journey))).one()
    return None if row[1] is None else (int(row[0]), int(row[1]))


def _context(dialect: str) -> ColumnElement:
    """The event's properties plus event_id, event_type, occurred_at and the member's time zone."""
    pairs = [("event_id", Event.id), ("event_type", Event.type), ("occurred_at", Event.occurred_at),
             ("time_zone", Member.time_zone)]
    if dialect == "postgresql":
        extra = func.jsonb_build_object(*[a for k, v in pairs for a in (literal_column(f"'{k}'"), v)])
        return cast(cast(Event.properties, postgresql.JSONB).op("||")(extra), postgresql.JSON)
    extra = func.json_object(*[a for k, v in pairs for a in (literal_column(f"'{k}'"), v)])
    return func.json_patch(Event.properties, extra)


def enroll_from_events(session: Session, journey: Journey, now: datetime) -> TickStats:
    """Enroll the members of every new matching event; moves the journey's cursor. Commit is the caller's."""
    trigger = journey.trigger
    if trigger is None:
        return TickStats()
    found = newest_unread(session, journey)
    if found is None:
        return TickStats()
    cursor, newest = found
    dialect = session.get_bind().dialect.name
    holdout = bucket_sql(Event.member_id, journey.name, "holdout") < threshold(journey.holdout_percent)
    in_rollout = bucket_sql(Event.member_id, journey.name, "rollout") < threshold(journey.rollout_percent)
    fresh = Event.occurred_at > literal(now - trigger.max_age, Event.occurred_at.type) \
        if trigger.max_age is not None else true()
    source = select(
        literal(journey.name), literal(journey.version), literal("member"), Event.member_id,
        cast(Event.idempotency_key, String(128)), Event.occurred_at,
        case((holdout, literal(EnrollmentStatus.held_out.value)), else_=literal(EnrollmentStatus.active.value)),
        literal(0), case((holdout, None), else_=literal(now, Enrollment.due_at.type)),
        _context(dialect), literal(now, Enrollment.updated_at.type),
    ).select_from(Event).join(Member, Member.id == Event.member_id).where(
        Event.type == trigger.type, Event.id > cursor, Event.id <= newest, Member.status == MemberStatus.active,
        fresh, in_rollout, property_filter(trigger.match),
    )
    columns = ["journey", "journey_version", "recipient_kind", "recipient_id", "occurrence_key", "enrolled_at",
               "status", "step_index", "due_at", "context", "updated_at"]
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)
    statuses = session.execute(
        insert(Enrollment).from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["journey", "recipient_kind", "recipient_id", "occurrence_key"])
        .returning(Enrollment.status)).scalars().all()
    move = insert(EventCursor).values(consumer=consumer(journey), last_event_id=newest, updated_at=now)
    session.execute(move.on_conflict_do_update(
        index_elements=["consumer"], set_={"last_event_id": newest, "updated_at": now},
        where=EventCursor.last_event_id < newest))
    held = sum(1 for s in statuses if s == EnrollmentStatus.held_out)
    return TickStats(enrolled=len(statuses), held_out=held)


# per database (weakly held, as journeys/clocks.py does): the newest event id each journey has read
_read: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def _read_up_to(bind: Any) -> dict[str, int]:
    try:
        return _read.setdefault(bind, {})
    except TypeError:
        return {}


def enroll_triggered(session_factory: SessionFactory, journeys: Mapping[str, Journey] | list[Journey],
                     now: datetime, *, newest: int | None = None) -> dict[str, TickStats]:
    """The pass's entry hook: enroll every event-triggered journey from its new events.

    With no new event since this process last looked, it costs one query (the newest event id, by
    the primary key), however many journeys are event-triggered; none without such journeys, and
    none when the caller already read it (`newest`, from the pass's probe).
    """
    items = [j for j in (journeys.values() if isinstance(journeys, Mapping) else journeys) if j.trigger is not None]
    if not items:
        return {}
    out: dict[str, TickStats] = {}
    with session_factory() as session:
        if newest is None:
            newest = int(session.scalar(select(func.max(Event.id))) or 0)
        read = _read_up_to(session.get_bind())
    for journey in items:
        if read.get(journey.name, -1) >= newest:
            continue
        with session_factory() as session:
            stats = enroll_from_events(session, journey, now)
            session.commit()
        read[journey.name] = newest
        if stats.enrolled:
            out[journey.name] = stats
    return out


__all__ = ["consumer", "enroll_from_events", "enroll_triggered", "newest_unread"]
