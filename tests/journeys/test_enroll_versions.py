"""A new version of a journey whose occurrence key changed (points_expiring v2 keys reminders by expiry
window, v1 by batch) must not message a member a second time while their earlier version's run goes on:
they enter the new version at the first fire after that run ends, never twice at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from journeys.dsl import WEEKLY, Journey, email, send, wait
from journeys.enroll import enroll
from journeys.models import Enrollment, EnrollmentStatus
from tests.audiences import builders as b

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


def journey(version: int) -> Journey:
    steps = [wait(days=3), send(email("welcome/email_welcome"))]
    return Journey(name="versioned", description="test", version=version, purpose="transactional",
                   audience="members", occurrence_key=WEEKLY if version == 2 else "recipient_id",
                   steps=steps, earlier_versions={1: steps} if version == 2 else {})


def test_a_member_in_flight_on_v1_enters_v2_only_when_that_run_ends(engine: Engine) -> None:
    b.reset_ids()
    with Session(engine) as s:
        for mid in (1, 2, 3):
            b.member(s, mid, enrolled_at=T0 - timedelta(days=30))
        s.commit()
        assert enroll(s, journey(1), T0).enrolled == 3
        # member 1's v1 run ends; 2 and 3 are still on their way (active)
        first = s.scalars(select(Enrollment).where(Enrollment.recipient_id == 1)).one()
        first.status, first.due_at = EnrollmentStatus.completed, None
        s.commit()

        later = T0 + timedelta(days=1)
        assert enroll(s, journey(2), later).enrolled == 1  # only member 1: 2 and 3 are in flight on v1
        v2 = set(s.scalars(select(Enrollment.recipient_id).where(Enrollment.journey_version == 2)))
        assert v2 == {1}
        for e in s.scalars(select(Enrollment).where(Enrollment.journey_version == 1, Enrollment.recipient_id == 2)):
            e.status, e.due_at = EnrollmentStatus.exited, None
        s.commit()
        assert enroll(s, journey(2), later + timedelta(hours=1)).enrolled == 1  # member 2, now free
        v2 = set(s.scalars(select(Enrollment.recipient_id).where(Enrollment.journey_version == 2)))
        assert v2 == {1, 2}
