"""Shared helpers of the reliability tests: a populated database, a fake SendGrid that fails a
share of requests at random, and the comparison of what the provider received with the ledger."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from audiences.models import Member, Tier
from journeys.models import Enrollment, Send, SendStatus
from tests.support.fake_providers import FakeSendGrid, FakeTwilio, Fault, twilio_error
from tests.support.fake_providers.sendgrid import rate_limited, server_error

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York: no quiet hours
LEASE_PLUS = timedelta(minutes=20)  # past the engine's 15-minute lease: a crashed worker's claims are free


def populate(engine: Engine, members: int, start: int = 1) -> None:
    """`members` new members (enrolled within the welcome journey's 3 days), one bulk insert."""
    with Session(engine) as s:
        if s.get(Tier, 1) is None:
            s.add(Tier(id=1, code="bronze", name="Bronze", rank=1, threshold_spend=0, benefits=[]))
            s.flush()
        rows = [{"id": i, "first_name": f"Name{i}", "last_name": "Test", "email": f"m{i}@example.com",
                 "phone": None, "locale": "en-US", "time_zone": "America/New_York", "country": "US",
                 "enrolled_at": NOW - timedelta(hours=1 + i % 48), "tier_id": 1}
                for i in range(start, start + members)]
        for lo in range(0, len(rows), 5000):
            s.execute(insert(Member), rows[lo:lo + 5000])
        s.commit()


class Flaky:
    """Mixin for a fake provider: answers a share of requests with 429, 500 or a timeout (an
    answer slower than the client waits, which the fake does not count as accepted), chosen by a
    seeded generator; per-recipient faults (permanent errors) still apply."""

    _lock: Any
    per_recipient: dict[str, Fault]

    def __init__(self, *, fault_rate: float, timeout_delay: float, seed: int = 7, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[call-arg]
        self.fault_rate = fault_rate
        self.timeout_delay = timeout_delay
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()

    def next_fault(self, recipient: str | None = None) -> Fault | None:
        with self._lock:
            if recipient is not None and recipient in self.per_recipient:
                return self.per_recipient[recipient]
            if self.rng.random() >= self.fault_rate:
                return None
            kind = self.rng.choice(["429", "500", "timeout"])
            self.injected[kind] += 1
        return self.fault(kind)

    def fault(self, kind: str) -> Fault:
        raise NotImplementedError


class FlakySendGrid(Flaky, FakeSendGrid):
    def fault(self, kind: str) -> Fault:
        if kind == "429":
            return rate_limited(0)
        if kind == "500":
            return server_error(500)
        return Fault(503, {"errors": [{"message": "slow"}]}, delay=self.timeout_delay)


class FlakyTwilio(Flaky, FakeTwilio):
    def fault(self, kind: str) -> Fault:
        if kind == "429":
            return twilio_error(20429, 429, {"Retry-After": "0"})
        if kind == "500":
            return twilio_error(20500, 500)
        return Fault(503, twilio_error(20503, 503).body, delay=self.timeout_delay)


def accepted_ids(fake: FakeSendGrid) -> list[int]:
    """Ledger ids of the messages the fake accepted (2xx), from the custom_args SendGrid carries."""
    return [int(r.body["custom_args"]["ledger_id"]) for r in fake.accepted]


@dataclass
class Reconciliation:
    """What the provider received against what the ledger says."""

    accepted: int
    duplicates: int
    ledger: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    sent_not_received: int = 0
    received_not_sent: int = 0
    """received by the provider but not `sent` on the ledger: only allowed for outcome_unknown rows"""
    unknown_received: int = 0
    unknown_not_received: int = 0
    enrollments: int = 0
    missing_rows: int = 0
    open_rows: int = 0

    def figures(self) -> str:
        return (f"accepted={self.accepted} duplicates={self.duplicates} ledger={dict(self.ledger)} "
                f"failed_reasons={dict(self.reasons)} outcome_unknown(received={self.unknown_received}, "
                f"not_received={self.unknown_not_received}) sent_not_received={self.sent_not_received} "
                f"received_not_sent={self.received_not_sent} missing_rows={self.missing_rows}")


def reconcile(engine: Engine, received: list[int], journey: str = "welcome", step: str | None = None) -> Reconciliation:
    with Session(engine) as s:
        q = select(Send.id, Send.status, Send.reason).where(Send.journey == journey)
        if step is not None:
            q = q.where(Send.step_key == step)
        rows = s.execute(q).all()
        enrollments = int(s.scalar(select(func.count()).select_from(Enrollment).where(Enrollment.journey == journey)) or 0)
    got = set(received)
    status = {r.id: SendStatus(r.status) for r in rows}
    sent = {i for i, st in status.items() if st is SendStatus.sent}
    unknown = {r.id for r in rows if r.status == SendStatus.failed and r.reason == "outcome_unknown"}
    rec = Reconciliation(accepted=len(received), duplicates=len(received) - len(got))
    rec.ledger = Counter(SendStatus(r.status).value for r in rows)
    rec.reasons = Counter(r.reason for r in rows if r.status == SendStatus.failed)
    rec.sent_not_received = len(sent - got)
    rec.received_not_sent = len(got - sent - unknown)
    rec.unknown_received = len(unknown & got)
    rec.unknown_not_received = len(unknown - got)
    rec.enrollments = enrollments
    rec.missing_rows = enrollments - len(rows)
    rec.open_rows = sum(1 for st in status.values() if st not in (SendStatus.sent, SendStatus.failed, SendStatus.skipped))
    return rec
