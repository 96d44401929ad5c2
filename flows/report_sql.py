"""SQL pieces both parts of the report use: date arithmetic per dialect and "converted within N days"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, or_, select, text

from audiences.models import PointsEntry, PointsKind, Purchase


def plus_days(column: Any, days: int, dialect: str) -> Any:
    """`column + days` in SQL: SQLite has datetime() modifiers, PostgreSQL intervals."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{int(days):+d} days")
    return column + text(f"interval '{int(days)} days'")


def converted(member: Any, after: Any, days: int, dialect: str) -> Any:
    """A purchase or a redemption by `member` in (after, after + days]."""
    until = plus_days(after, days, dialect)
    bought = exists(select(Purchase.id).where(Purchase.member_id == member, Purchase.purchased_at > after,
                                              Purchase.purchased_at <= until))
    redeemed = exists(select(PointsEntry.id).where(PointsEntry.member_id == member, PointsEntry.kind == PointsKind.redeem,
                                                   PointsEntry.occurred_at > after, PointsEntry.occurred_at <= until))
    return or_(bought, redeemed)
