"""The demo's point-of-sale: each member's first purchase as the `purchase` event a till would post.

`loyalflow demo` replays these at their instants, so the event-triggered `first_purchase` journey
runs beside the cron journeys as it would in production (`POST /v1/events`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from audiences.events import EventIn
from audiences.models import Purchase, Store


def first_purchase_events(session: Session, start: datetime, end: datetime) -> list[EventIn]:
    """Members' first purchases ever made in [start, end), oldest first."""
    earlier = aliased(Purchase)
    rows = session.execute(
        select(Purchase.id, Purchase.member_id, Purchase.purchased_at, Purchase.amount, Purchase.currency, Store.name)
        .outerjoin(Store, Store.id == Purchase.store_id)
        .where(Purchase.purchased_at >= start, Purchase.purchased_at < end,
               ~exists().where(and_(earlier.member_id == Purchase.member_id,
                                    earlier.purchased_at < Purchase.purchased_at)))
        .order_by(Purchase.purchased_at, Purchase.id))
    return [EventIn(type="purchase", member_id=member_id, occurred_at=at, idempotency_key=f"demo-purchase-{pid}",
                    properties={"first_purchase": True, "amount": float(amount), "currency": currency,
                                "store_name": store or "online", "points_earned": int(amount)})
            for pid, member_id, at, amount, currency, store in rows]
