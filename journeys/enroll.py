"""Enroll: one INSERT ... SELECT from the audience query, idempotent on the occurrence key.

No Python loop over members: the audience runs in the database, the holdout and rollout
buckets are computed there too (and, for journeys that use them, the A/B variant and the member's
best send hour), and a re-run inserts nothing already enrolled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, func, literal, literal_column, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import NullType

from audiences.queries import get_audience
from journeys import send_time, variants
from journeys.dsl import ONCE, WEEKLY, Journey
from journeys.holdout import bucket_sql, threshold
from journeys.models import Enrollment, EnrollmentStatus


@dataclass(frozen=True)
class EnrollResult:
    journey: str
    enrolled: int
    held_out: int


def occurrence_value(journey: Journey, now: datetime, row_field: object) -> object:
    if journey.occurrence_key == ONCE:
        return literal("once")
    if journey.occurrence_key == WEEKLY:
        year, week, _ = now.isocalendar()
        return literal(f"{year}-W{week:02d}")
    return cast(row_field, String(128))


def _json_object(dialect: str, pairs: list[tuple[str, object]]) -> object:
    args: list[object] = []
    for key, value in pairs:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise ValueError(f"audience field name {key!r} is not a plain identifier")
        args += [literal_column(f"'{key}'"), value]  # inline: PostgreSQL cannot type a bound key
    return func.json_build_object(*args) if dialect == "postgresql" else func.json_object(*args)


def enroll(session: Session, journey: Journey, now: datetime) -> EnrollResult:
    """Enroll everyone in the journey's audience at `now` who is not enrolled for this occurrence."""
    audience = get_audience(journey.audience)
    rows = audience.query(now, **journey.audience_params).select().order_by(None).subquery("audience_rows")
    dialect = session.get_bind().dialect.name
    field_names = [c.name for c in rows.c if c.name != "recipient_id"]
    occurrence_field = rows.c[journey.occurrence_key] if journey.occurrence_key in rows.c else None
    holdout = bucket_sql(rows.c.recipient_id, journey.name, "holdout") < threshold(journey.holdout_percent)
    in_rollout = bucket_sql(rows.c.recipient_id, journey.name, "rollout") < threshold(journey.rollout_percent)
    status = case((holdout, literal(EnrollmentStatus.held_out.value)), else_=literal(EnrollmentStatus.active.value))
    pairs = [(name, rows.c[name]) for name in field_names]
    sources: Any = rows
    if send_time.uses_best(journey) and audience.recipient == "member":  # each member's own hour, set-based
        best = send_time.best_hours_query(session, now)
        sources = rows.outerjoin(best, best.c.member_id == rows.c.recipient_id)
        withheld = bucket_sql(rows.c.recipient_id, journey.name, "send_time") < threshold(send_time.holdout_percent(journey))
        pairs += [("best_hour", case((withheld, None), else_=best.c.hour)), ("send_time_rule", case(
            (best.c.hour.is_(None), literal(send_time.FALLBACK)), (withheld, literal(send_time.HOLDOUT)),
            else_=literal(send_time.BEST)))]
    variants.promote(session, journey, now)  # a winner met its rule: everyone entering from now gets it
    variant = variants.variant_sql(session, journey, rows.c.recipient_id)
    extra = [] if variant is None else [case((holdout, None), else_=variant)]
    source = select(
        literal(journey.name),
        literal(journey.version),
        literal(audience.recipient),
        rows.c.recipient_id,
        occurrence_value(journey, now, occurrence_field),
        literal(now, Enrollment.enrolled_at.type),
        status,
        literal(0),
        case((holdout, None), else_=literal(now, Enrollment.due_at.type)),
        _json_object(dialect, pairs),
        literal(now, Enrollment.updated_at.type),
        *extra,
    ).select_from(sources).where(in_rollout)
    if journey.version > 1:  # a new version takes members over once their earlier version's run ends
        source = source.where(~_in_flight_on_earlier_version(journey, audience.recipient, rows.c.recipient_id))
    columns = ["journey", "journey_version", "recipient_kind", "recipient_id", "occurrence_key", "enrolled_at",
               "status", "step_index", "due_at", "context", "updated_at"] + (["variant"] if extra else [])
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Enrollment)
    statement = insert.from_select(columns, source).on_conflict_do_nothing(
        index_elements=["journey", "recipient_kind", "recipient_id", "occurrence_key"])
    # the inserted rows' statuses (not rowcount: drivers report -1 for INSERT ... SELECT inside savepoints;
    # not a count of the journey's enrollments before and after: that grows with every occurrence ever run)
    statuses = session.execute(statement.returning(type_coerce(Enrollment.status, NullType))).scalars().all()
    return EnrollResult(journey.name, len(statuses), statuses.count(EnrollmentStatus.held_out.value))


def _in_flight_on_earlier_version(journey: Journey, kind: str, recipient_id: Any) -> Any:
    """The member still has an active enrollment of an earlier version of this journey. A version that
    changes the occurrence key (points_expiring v2 keys by expiry window, v1 by batch) would otherwise
    send a second reminder for the same points while v1's run goes on; the audience is evaluated again
    at every fire, so the member enters as soon as that run ends (later, never twice)."""
    earlier = aliased(Enrollment)
    return (select(earlier.id).where(earlier.recipient_kind == kind, earlier.recipient_id == recipient_id,
                                     earlier.journey == journey.name, earlier.status == EnrollmentStatus.active,
                                     earlier.journey_version < journey.version).exists())
