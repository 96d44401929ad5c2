"""Helpers of the security tests (imported by test modules; fixtures stay in conftest.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from audiences.models import Member

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


BASE = "https://loyalflow.test"


def add_member(session, member_id: int, phone: str | None = "+12015550123", locale: str = "en") -> int:  # type: ignore[no-untyped-def]
    session.add(Member(id=member_id, first_name=f"M{member_id}", email=f"member{member_id}@example.com", phone=phone,
                       locale=locale, time_zone="America/New_York", country="US", enrolled_at=NOW))
    session.flush()
    return member_id
