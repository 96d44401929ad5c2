"""RFM scoring as a reusable subquery: recency, frequency and monetary quintiles (5 is best).

Quintiles are NTILE(5) over active members with a purchase in the lookback window. Ties are broken
by member id, so SQLite and PostgreSQL assign the same scores; monetary is rounded to cents first
because SQLite sums NUMERIC as floating point.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Subquery, func, select

from audiences.models import Member, MemberStatus, Purchase


def rfm_scores(now: datetime, lookback_days: int = 730) -> Subquery:
    """member_id, last_purchase_at, frequency, monetary, r_score, f_score, m_score."""
    start = now - timedelta(days=lookback_days)
    grouped = (  # grouped first, from the covering index alone; members joined once per member after
        select(
            Purchase.member_id.label("member_id"),
            func.max(Purchase.purchased_at).label("last_purchase_at"),
            func.count().label("frequency"),
            func.round(func.sum(Purchase.amount), 2).label("monetary"),
        )
        .where(Purchase.purchased_at > start, Purchase.purchased_at <= now)
        .group_by(Purchase.member_id)
        .subquery("purchase_groups")
    )
    stats = (
        select(grouped)
        .join(Member, Member.id == grouped.c.member_id)
        .where(Member.status == MemberStatus.active)
        .subquery("purchase_stats")
    )

    def quintile(column: object) -> object:
        return func.ntile(5).over(order_by=(column, stats.c.member_id))

    return select(
        stats.c.member_id,
        stats.c.last_purchase_at,
        stats.c.frequency,
        stats.c.monetary,
        quintile(stats.c.last_purchase_at).label("r_score"),
        quintile(stats.c.frequency).label("f_score"),
        quintile(stats.c.monetary).label("m_score"),
    ).subquery("rfm")
