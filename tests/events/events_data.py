"""Helpers of the events tests (imported by test modules; fixtures stay in conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Event, Member
from journeys.models import Enrollment, Send

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


KEY = "test-events-key-0123456789"


AUTH = {"Authorization": f"Bearer {KEY}"}


def add_members(engine: Engine, count: int, *, zone: str = "Europe/Paris", locale: str = "fr") -> list[int]:
    with Session(engine) as s:
        s.add_all(Member(id=i, first_name=f"M{i}", email=f"member{i}@example.com", phone=None, locale=locale,
                         time_zone=zone, country="FR", enrolled_at=NOW - timedelta(days=30)) for i in range(1, count + 1))
        s.commit()
    return list(range(1, count + 1))


def purchase(key: str, member_id: int, occurred_at: datetime, **properties: Any) -> dict[str, Any]:
    props = {"amount": 54.9, "currency": "EUR", "store_name": "Lyon Part-Dieu", "points_earned": 55,
             "first_purchase": True} | properties
    return {"type": "purchase", "member_id": member_id, "occurred_at": occurred_at.isoformat(),
            "idempotency_key": key, "properties": props}


def counts(engine: Engine) -> tuple[int, int, int]:
    """(events, enrollments, ledger rows)"""
    with Session(engine) as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0) for t in (Event, Enrollment, Send))  # type: ignore[return-value]


def factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
