"""10,000 events through the real ASGI app, 5% repeated idempotency keys and 1% invalid: exactly
the valid distinct ones are stored and enrolled, each invalid one gets its error, and passes send
each enrollment's message once (the recording adapter agrees with the ledger)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences.models import Event
from journeys.models import Enrollment, Send, SendStatus
from journeys.passes import run_pass
from journeys.registry import get_journey
from tests.events.events_data import AUTH, NOW, add_members, factory, purchase

TOTAL, MEMBERS, BATCH = 10_000, 2_000, 500
INVALID = [  # (fault, field the error must name)
    (lambda e: {k: v for k, v in e.items() if k != "type"}, "type"),
    (lambda e: {**e, "occurred_at": "2026-12-01T11:00:00"}, "occurred_at"),
    (lambda e: {**e, "member_id": 10_000_000}, "member_id"),
    (lambda e: {**e, "properties": ["not", "an", "object"]}, "properties"),
    (lambda e: {**e, "idempotency_key": ""}, "idempotency_key"),
]


def build() -> tuple[list[dict], set[str], dict[int, str]]:
    """(events in posting order, the valid distinct keys, the field each invalid event's error names, by id())"""
    rng = random.Random(11)
    valid = [purchase(f"pos-{i:05d}", i % MEMBERS + 1, NOW - timedelta(seconds=i % 900), amount=round(5 + i % 90, 2))
             for i in range(TOTAL - TOTAL // 20 - TOTAL // 100)]
    repeats = [dict(rng.choice(valid)) for _ in range(TOTAL // 20)]
    invalid, faults = [], {}
    for i in range(TOTAL // 100):
        fault, field_name = INVALID[i % len(INVALID)]
        event = fault(purchase(f"bad-{i:03d}", i % MEMBERS + 1, NOW))
        invalid.append(event)
        faults[id(event)] = field_name
    events = valid + repeats + invalid
    rng.shuffle(events)
    assert len(events) == TOTAL
    return events, {e["idempotency_key"] for e in valid}, faults


@pytest.mark.slow
def test_ten_thousand_events_enroll_exactly_the_valid_distinct_ones_and_nothing_is_sent_twice(
        engine: Engine, client_for, services, recorder) -> None:  # type: ignore[no-untyped-def]
    add_members(engine, MEMBERS)
    events, distinct, faults = build()
    client = client_for(engine)
    statuses: Counter[str] = Counter()
    for start in range(0, TOTAL, BATCH):
        batch = events[start:start + BATCH]
        answer = client.post("/v1/events", json=batch, headers=AUTH)
        assert answer.status_code in (200, 207)
        for result in answer.json()["results"]:
            statuses[result["status"]] += 1
            if result["status"] == "error":
                sent = batch[result["index"]]
                assert faults[id(sent)] in {e["field"] for e in result["errors"]}, (sent, result)
    assert statuses == {"accepted": len(distinct), "duplicate": TOTAL // 20, "error": TOTAL // 100}
    with Session(engine) as s:
        stored = set(s.scalars(select(Event.idempotency_key)))
    assert stored == distinct

    journey = get_journey("first_purchase")
    sessions = factory(engine)
    journeys = {journey.name: journey}
    first = run_pass(sessions, journeys, NOW, services).total
    assert first.enrolled == len(distinct) and first.sent["email"] == len(distinct)
    again = client.post("/v1/events", json=events[:BATCH], headers=AUTH).json()  # a client retries a batch
    assert again["accepted"] == 0
    second = run_pass(sessions, journeys, NOW + timedelta(minutes=1), services).total
    assert second.enrolled == 0 and second.messages == 0

    with Session(engine) as s:
        enrolled = set(s.scalars(select(Enrollment.occurrence_key).where(Enrollment.journey == "first_purchase")))
        ledger_sent = set(s.scalars(select(Send.id).where(Send.status == SendStatus.sent)))
        ledger_rows = int(s.scalar(select(func.count()).select_from(Send)) or 0)
    assert enrolled == distinct
    handed = recorder.ledger_ids()
    assert len(handed) == len(set(handed)) == len(distinct)  # no ledger row went to the adapter twice
    assert set(handed) == ledger_sent and ledger_rows == len(distinct)
