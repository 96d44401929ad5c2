"""The demo's point of sale: members' first purchases replayed as `purchase` events at their instants,
so `first_purchase` thanks them within the same second, as a real runtime woken by the event would."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.demo.purchase_events import first_purchase_events
from audiences.models import Event
from channels.adapters import MemoryAdapter
from journeys.models import Enrollment, Send as LedgerRow, SendStatus
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import EventFeed, run_clock, start_clocks
from tests.audiences import builders as b

UTC = timezone.utc
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def test_first_purchases_arrive_as_events_and_are_thanked_at_that_instant(sqlite_engine: Engine) -> None:
    b.reset_ids()
    first_at = DAY + timedelta(hours=14, minutes=7, seconds=31)
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.tiers(s)
        newcomer = b.member(s, 1, enrolled_at=DAY - timedelta(days=3))
        regular = b.member(s, 2, enrolled_at=DAY - timedelta(days=300))
        b.buy(s, newcomer, "23.50", first_at)
        b.buy(s, newcomer, "10.00", first_at + timedelta(hours=2))  # a second purchase: no event
        b.buy(s, regular, "40.00", DAY - timedelta(days=20))
        b.buy(s, regular, "12.00", DAY + timedelta(hours=9))  # not a first purchase
        s.commit()
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    with factory() as s:
        events = first_purchase_events(s, DAY, DAY + timedelta(days=1))
    assert [(e.member_id, e.occurred_at, e.properties["amount"]) for e in events] == [(1, first_at, 23.5)]

    memory = MemoryAdapter()
    journey = get_journey("first_purchase")
    start_clocks(factory, [journey.name], DAY)
    instants = [now for now, _ in run_clock(factory, {journey.name: journey}, DAY, DAY + timedelta(days=1),
                                            services_for(memory), EventFeed(events, source="demo-pos"))]
    assert first_at in instants  # the runtime woke at the event
    with factory() as s:
        assert s.scalars(select(Event.source)).all() == ["demo-pos"]
        [(member_id, row)] = s.execute(select(Enrollment.recipient_id, LedgerRow)
                                       .join(LedgerRow, LedgerRow.enrollment_id == Enrollment.id)).all()
    assert member_id == 1 and row.step_key == "thanks" and row.status == SendStatus.sent
    assert row.sent_at == first_at
    assert [m.recipient_id for m in memory.requests] == [1]
