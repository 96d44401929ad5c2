"""Shared helpers of the reliability tests: a populated database, fake providers that fail a share
of requests at random and answer another share too late, a CPU burner per core (the runs must hold
on a loaded machine), the webhook events the fakes post, and the comparison of what the provider
received with the ledger."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from audiences.models import Member, Tier
from journeys.models import Enrollment, Send, SendStatus
from tests.support.fake_providers import FakeSendGrid, FakeTwilio, Fault, twilio_error
from tests.support.fake_providers.sendgrid import rate_limited, server_error
from tests.support.fake_providers.server import slow_answer

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
    """Mixin for a fake provider: answers a share (`fault_rate`) of requests with 429, 500 or, when
    `late_faults`, a 503 after the client stopped waiting (the provider refused it, the client cannot
    know); and answers another share (`slow_rate`) too late although it took the message (the slow
    provider of a loaded host). Chosen by a seeded generator; per-recipient faults (permanent
    errors) still apply."""

    _lock: Any
    per_recipient: dict[str, Fault]

    def __init__(self, *, fault_rate: float, timeout_delay: float, slow_rate: float = 0.0, late_faults: bool = True,
                 seed: int = 7, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[call-arg]
        self.fault_rate = fault_rate
        self.slow_rate = slow_rate
        self.timeout_delay = timeout_delay
        self.late_faults = late_faults
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()

    def next_fault(self, recipient: str | None = None) -> Fault | None:
        with self._lock:
            if recipient is not None and recipient in self.per_recipient:
                return self.per_recipient[recipient]
            draw = self.rng.random()
            if draw < self.slow_rate:
                self.injected["slow"] += 1
                return slow_answer(self.timeout_delay)
            if draw >= self.slow_rate + self.fault_rate:
                return None
            kind = self.rng.choice(["429", "500", "timeout"] if self.late_faults else ["429", "500"])
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


@contextmanager
def cpu_burners(count: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A busy machine for the duration: one spinning process per core (killed by pid afterwards)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(count or os.cpu_count() or 2)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


class EventPump:
    """What the providers' webhooks would deliver: the fakes' SendGrid events and Twilio status
    callbacks, handed to the real webhook code (`apply_events`, `handle_status`) every `period`
    seconds in a thread, and on `flush()`."""

    def __init__(self, engine: Engine, sendgrid: FakeSendGrid | None = None, twilio: FakeTwilio | None = None,
                 period: float = 0.3) -> None:
        self.engine, self.sendgrid, self.twilio, self.period = engine, sendgrid, twilio, period
        self.applied = 0
        self.refused = 0
        self._retry_events: list[dict[str, Any]] = []
        self._retry_statuses: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def flush(self) -> int:
        """Deliver what the fakes posted. A batch the database refused (SQLite: another writer) is
        kept and delivered again on the next flush, as the providers retry a webhook that failed;
        events are idempotent (by provider event id), so a repeat changes nothing."""
        from sqlalchemy.exc import OperationalError

        from channels.webhooks.sendgrid_events import apply_events
        from channels.webhooks.twilio_sms import handle_status

        with self._lock:
            events = self._retry_events + (self.sendgrid.drain_events() if self.sendgrid else [])
            statuses = self._retry_statuses + (self.twilio.drain_status_events() if self.twilio else [])
            self._retry_events, self._retry_statuses = [], []
            if not events and not statuses:
                return 0
            now = datetime.now(UTC)
            try:
                with Session(self.engine) as s:
                    if events and getattr(apply_events(s, events, now), "skipped", 0):
                        raise OperationalError("apply_events", {}, Exception("an event was refused"))
                    for params in statuses:
                        ledger = params.get("ledger_id")
                        handle_status(s, {k: str(v) for k, v in params.items() if v is not None},
                                      int(ledger) if ledger else None, now)
                    s.commit()
            except OperationalError:
                self._retry_events, self._retry_statuses = events, statuses
                self.refused += 1
                return 0
            self.applied += len(events) + len(statuses)
            return len(events) + len(statuses)

    def pending(self) -> int:
        with self._lock:
            return len(self._retry_events) + len(self._retry_statuses)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.flush()

    def __enter__(self) -> EventPump:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.drain()

    def drain(self, tries: int = 50) -> None:
        """Flush until nothing is left to deliver (the database may refuse a batch a few times)."""
        self.flush()
        for _ in range(tries):
            if not self.pending():
                return
            time.sleep(0.05)
            self.flush()


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
    """failed `outcome_unknown`: settled without evidence, never resent (visible, not silent)"""
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
