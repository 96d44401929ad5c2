"""Benchmark: enrollment (one INSERT ... SELECT) and advancing due enrollments, on a SQLite file.

N members are inserted with executemany, a fifth of them joined in the last 3 days, so the welcome
audience is N/5. Then the welcome journey is enrolled (timed), and every due enrollment advanced:
first tick = reserve, gate, render, deliver the welcome email and park on `wait(days=2, at=11:00)`;
second tick, 3 days later = exit check, device branch and the next wait (no sends). Rendering and
delivery are stubbed (a fixed message, a recording adapter) so the figures are the engine's own;
the gate is the real one unless --stub-gate.

    python -m tests.bench.bench_engine [--members 1000000] [--chunk 5000] [--stub-gate]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from audiences.models import Member
from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from channels.gate import Candidate, Send, Skip, Verdict
from channels.policy import SkipReason
from flows import migrate
from journeys.engine import advance, enroll_journey
from journeys.models import Enrollment, EnrollmentStatus
from journeys.registry import get_journey
from journeys.services import Services, services_for
from templates.rendered import Rendered, RenderedEmail, RenderedPush, RenderedSms

UTC = timezone.utc
NOW = datetime(2027, 3, 26, 9, 0, tzinfo=UTC)
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "Pacific/Auckland", "America/Los_Angeles")
LOCALES = ("en", "fr", "de", "es", "en-US")
BATCH = 50_000

FIXED: dict[str, Rendered] = {
    "email": RenderedEmail(subject="Welcome", preheader="Hello", html="<p>Hello</p>", text="Hello"),
    "sms": RenderedSms(text="Hello", encoding="GSM-7", segments=1),
    "push": RenderedPush(title="Hello", body="Open the app", deep_link="loyalflow://home"),
}


class FixedRenderer:
    """The same message for everyone: the step's channel is its name's prefix (email_, sms_, push_)."""

    def render(self, journey: str, step: str, locale: str, context: dict[str, Any]) -> Rendered:
        return FIXED[step.split("_", 1)[0]]


class CountingRecorder:
    """The recording adapter, counting instead of keeping messages (so RSS is the engine's)."""

    provider = "recorder"

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        self.sent.update(m.channel for m in messages)
        return [DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"id-{m.ledger_id}") for m in messages]


def stub_gate(session: Session, now: datetime, candidates: Sequence[Candidate]) -> list[Verdict]:
    return [Send(c.address) if c.address else Skip(SkipReason.no_contact) for c in candidates]


def member_rows(n: int) -> Iterator[list[dict[str, Any]]]:
    """Deterministic members; every fifth joined within the last 3 days."""
    batch: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        if i % 5 == 0:
            joined = NOW - timedelta(seconds=60 + (i * 7_919) % (3 * 86_400 - 120))
        else:
            joined = NOW - timedelta(days=30 + i % 900)
        batch.append({"id": i, "first_name": None, "last_name": None, "email": f"m{i}@example.com", "phone": None,
                      "locale": LOCALES[i % len(LOCALES)], "time_zone": ZONES[i % len(ZONES)], "country": "US",
                      "enrolled_at": joined, "status": "active", "tier_id": None})
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_members(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for batch in member_rows(n):
            conn.execute(insert(Member.__table__), batch)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="members to insert (default 1,000,000)")
    parser.add_argument("--chunk", type=int, default=5_000, help="enrollments claimed per chunk (default 5,000)")
    parser.add_argument("--stub-gate", action="store_true", help="a gate that lets every valid address through")
    parser.add_argument("--db", type=Path, help="SQLite file to create (default: a temporary folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if path.exists():
            parser.error(f"{path} exists: the benchmark needs a fresh database file")
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)

        start = time.perf_counter()
        insert_members(engine, args.members)
        insert_s = time.perf_counter() - start

        recorder = CountingRecorder()
        services: Services = services_for(recorder)
        services = dataclasses.replace(services, renderer=FixedRenderer())
        if args.stub_gate:
            services = dataclasses.replace(services, gate=stub_gate)
        factory = sessionmaker(engine, expire_on_commit=False)
        journey = get_journey("welcome")

        start = time.perf_counter()
        enrolled = enroll_journey(factory, journey, NOW)
        enroll_s = time.perf_counter() - start

        start = time.perf_counter()
        first = advance(factory, journey, NOW, services, chunk_size=args.chunk)
        first_s = time.perf_counter() - start

        later = NOW + timedelta(days=3)
        start = time.perf_counter()
        second = advance(factory, journey, later, services, chunk_size=args.chunk)
        second_s = time.perf_counter() - start

        with factory() as session:
            parked = session.scalar(select(func.count()).select_from(Enrollment).where(
                Enrollment.status == EnrollmentStatus.active, Enrollment.due_at > later)) or 0
        size_mib = path.stat().st_size / 2**20
        engine.dispose()

    gate = "stub" if args.stub_gate else "real"
    print(f"welcome journey on SQLite, {args.members:,} members, chunk {args.chunk:,}, gate {gate}, "
          f"render+delivery stubbed; database {size_mib:,.0f} MiB")
    print(f"{'phase':<44}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    print(f"{'insert members (executemany)':<44}{args.members:>10,}{insert_s:>10.2f}{args.members / insert_s:>12,.0f}")
    print(f"{'enroll (INSERT ... SELECT)':<44}{enrolled.enrolled:>10,}{enroll_s:>10.2f}"
          f"{enrolled.enrolled / enroll_s:>12,.0f}")
    print(f"{'advance 1: send email, park on wait':<44}{first.advanced:>10,}{first_s:>10.2f}"
          f"{first.advanced / first_s:>12,.0f}")
    print(f"{'advance 2: exit check, branch, wait':<44}{second.advanced:>10,}{second_s:>10.2f}"
          f"{second.advanced / second_s:>12,.0f}")
    print(f"sent {dict(first.sent + second.sent)}, skipped {dict(first.skipped + second.skipped)}, "
          f"failed {dict(first.failed + second.failed)}, adapter saw {dict(recorder.sent)}; parked after: {parked:,}")
    print(f"peak RSS {peak_rss_mib():,.0f} MiB; enrollment target < 10 s per 200,000: "
          f"{'met' if enroll_s / max(enrolled.enrolled, 1) * 200_000 < 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
