"""Small hand-built loyalty data for audience tests: explicit rows, no randomness."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from audiences.models import (
    DeviceToken, Member, MemberStatus, PointsEntry, PointsKind, Purchase, Staff, StaffRole, Store, Tier, TierChange,
)

UTC = timezone.utc
_ids = count(1000)


def reset_ids() -> None:
    """Start row ids afresh, so the same build gives the same ids in another database."""
    global _ids
    _ids = count(1000)


def local_midnight(day: str, zone: str) -> datetime:
    """The UTC instant at which `day` starts in `zone` (how points expiry instants are stored)."""
    return datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def tiers(session: Session) -> dict[str, Tier]:
    made = {
        code: Tier(id=rank, code=code, name=code.title(), rank=rank, threshold_spend=threshold, benefits=[f"{code} perk"])
        for rank, (code, threshold) in enumerate([("bronze", 0), ("silver", 500), ("gold", 1500), ("platinum", 4000)], 1)
    }
    session.add_all(made.values())
    session.flush()
    return made


def member(session: Session, member_id: int, *, enrolled_at: datetime, zone: str = "America/New_York",
           status: MemberStatus = MemberStatus.active, tier: Tier | None = None, locale: str = "en-US") -> Member:
    row = Member(id=member_id, first_name=f"M{member_id}", last_name="Test", email=f"m{member_id}@example.com",
                 phone=None, locale=locale, time_zone=zone, country="US", enrolled_at=enrolled_at, status=status,
                 tier_id=tier.id if tier else None)
    session.add(row)
    session.flush()
    return row


def earn(session: Session, m: Member, points: int, at: datetime, expires_at: datetime | None) -> PointsEntry:
    row = PointsEntry(id=next(_ids), member_id=m.id, kind=PointsKind.earn, points=points, occurred_at=at,
                      expires_at=expires_at)
    session.add(row)
    session.flush()
    return row


def spend(session: Session, m: Member, points: int, at: datetime, kind: PointsKind = PointsKind.redeem) -> PointsEntry:
    row = PointsEntry(id=next(_ids), member_id=m.id, kind=kind, points=-points, occurred_at=at)
    session.add(row)
    session.flush()
    return row


def buy(session: Session, m: Member, amount: str, at: datetime) -> Purchase:
    row = Purchase(id=next(_ids), member_id=m.id, amount=Decimal(amount), currency="USD", purchased_at=at)
    session.add(row)
    session.flush()
    return row


def device(session: Session, m: Member, at: datetime, revoked_at: datetime | None = None) -> DeviceToken:
    row = DeviceToken(id=next(_ids), member_id=m.id, platform="android", token=f"tok-{m.id}-{next(_ids)}",
                      created_at=at, revoked_at=revoked_at)
    session.add(row)
    session.flush()
    return row


def tier_change(session: Session, m: Member, old: Tier | None, new: Tier, at: datetime) -> TierChange:
    row = TierChange(id=next(_ids), member_id=m.id, from_tier_id=old.id if old else None, to_tier_id=new.id,
                     changed_at=at, reason="spend")
    session.add(row)
    m.tier_id = new.id
    session.flush()
    return row


def store(session: Session, store_id: int, name: str) -> Store:
    row = Store(id=store_id, code=f"S{store_id}", name=name, country="US", time_zone="America/New_York")
    session.add(row)
    session.flush()
    return row


def staff(session: Session, staff_id: int, role: StaffRole, store_row: Store | None, active: bool = True) -> Staff:
    row = Staff(id=staff_id, first_name=f"S{staff_id}", last_name="Staff", role=role,
                store_id=store_row.id if store_row else None, email=f"s{staff_id}@example.com", locale="en-US",
                time_zone="America/New_York", active=active)
    session.add(row)
    session.flush()
    return row


def days(n: float) -> timedelta:
    return timedelta(days=n)
