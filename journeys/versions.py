"""Journey versions in flight: find enrollments a deploy would strand, and move them to another version.

An enrollment runs the steps of the version it started on (`earlier_versions={1: steps_v1}` keeps
them). Deploying a journey whose file no longer has those steps fails every such enrollment with
`journey_version_retired`, so `loyalflow check` refuses it first, naming the count and the two ways out:
keep the old steps, or move the enrollments with `loyalflow migrate-version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from audiences.errors import InvalidParameter, LoyalflowError
from journeys.dsl import Journey
from journeys.models import Enrollment, EnrollmentStatus
from templates.problems import Problem


@dataclass(frozen=True)
class Stranded:
    journey: str
    version: int
    count: int


def stranded(session: Session, journeys: dict[str, Journey]) -> list[Stranded]:
    """Active enrollments of a defined journey on a version whose steps the journey no longer has."""
    rows = session.execute(
        select(Enrollment.journey, Enrollment.journey_version, func.count())
        .where(Enrollment.status == EnrollmentStatus.active, Enrollment.journey.in_(list(journeys)))
        .group_by(Enrollment.journey, Enrollment.journey_version)).all()
    return [Stranded(name, int(version), int(count)) for name, version, count in sorted(rows)
            if journeys[name].steps_for(int(version)) is None]


def stranded_problems(journeys: dict[str, Journey], engine: object | None = None) -> list[Problem]:
    """The check's view: one problem per stranded version, at the journey's file:line. Without a
    database (nothing is in flight yet) there is nothing to strand."""
    from audiences.db import make_engine, session_scope

    if not journeys:
        return []
    owned = engine is None
    try:
        engine = engine or make_engine(create=False)
    except LoyalflowError:
        return []
    try:
        with session_scope(engine) as session:  # type: ignore[arg-type]
            found = stranded(session, journeys)
    except SQLAlchemyError:  # no enrollments table yet (not migrated): nothing in flight
        return []
    finally:
        if owned:
            engine.dispose()  # type: ignore[union-attr]
    problems = []
    for s in found:
        journey = journeys[s.journey]
        problems.append(Problem(journey.where.path, journey.where.line, (
            f"journey {s.journey!r}: {s.count} active enrollment(s) are on version {s.version}, whose steps this "
            f"file no longer has; deploying it would fail them (journey_version_retired). Keep them: add "
            f"earlier_versions={{{s.version}: <the v{s.version} steps>}}; or move them: `loyalflow "
            f"migrate-version {s.journey} --from {s.version} --to {journey.version}`")))
    return problems


def migrate_version(session: Session, journey: Journey, from_version: int, to_version: int, now: datetime) -> int:
    """Move `journey`'s active enrollments from one version to another, restarting them at its first step
    (due now). Steps already sent are not sent again (the ledger's key is enrollment + step key); waits
    before the steps still to come apply again. Returns how many moved."""
    if journey.steps_for(to_version) is None:
        raise InvalidParameter(f"journey {journey.name!r} has no version {to_version} (current: {journey.version}, "
                               f"earlier: {sorted(journey.earlier_versions) or 'none'})")
    if from_version == to_version:
        raise InvalidParameter(f"journey {journey.name!r}: --from and --to are both {from_version}")
    result = session.execute(
        update(Enrollment)
        .where(Enrollment.journey == journey.name, Enrollment.journey_version == from_version,
               Enrollment.status == EnrollmentStatus.active)
        .values(journey_version=to_version, step_index=0, due_at=now, updated_at=now)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)
