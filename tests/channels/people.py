"""Members and staff to address in the channels tests, the instant they joined, and a stand-in for sleeping."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from audiences.models import Member, Staff, StaffRole

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def add_staff(session: Session, staff_id: int = 1) -> int:
    session.add(Staff(id=staff_id, first_name="S", last_name="T", role=StaffRole.associate, email="s@example.com"))
    session.flush()
    return staff_id


class SleepRecorder:
    """Stands in for waiting between retries: records each delay, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def add_members(session: Session, count: int, start_id: int = 1) -> list[int]:
    ids = list(range(start_id, start_id + count))
    session.add_all(
        Member(
            id=i,
            first_name=f"M{i}",
            email=f"member{i}@example.com",
            phone="+12015550123",
            locale="en",
            time_zone="America/New_York",
            country="US",
            enrolled_at=T0,
        )
        for i in ids
    )
    session.flush()
    return ids
