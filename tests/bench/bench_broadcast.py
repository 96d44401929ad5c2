"""Benchmark: a broadcast to N members (default 100,000) on a fresh SQLite file (or --url).

    python -m tests.bench.bench_broadcast [--members N] [--consent-every K] [--over 2h] [--url URL]

Prints the time to enroll the audience (one INSERT ... SELECT, due instants spread in SQL) and the
time of the passes that deliver it to an in-memory adapter (every message through the real gate,
renderer and ledger), with the messages per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from channels.adapters import MemoryAdapter
from flows import migrate
from journeys import broadcasts
from journeys.passes import run_pass
from journeys.services import services_for
from templates import TemplateLibrary
from tests.journeys.test_broadcasts import members

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--consent-every", type=int, default=1, help="every K-th member opted in (1: all)")
    parser.add_argument("--over", default="", help="throttle window, e.g. 2h (default: all at once)")
    parser.add_argument("--url", help="an empty migrated-or-not database (default: a new SQLite file)")
    parser.add_argument("--chunk-size", type=int, default=5_000)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-broadcast-')}/b.db"
    engine = make_engine(url, create=True)
    migrate.upgrade(engine)
    started = time.perf_counter()
    members(engine, args.members, consent_every=args.consent_every)
    print(f"data: {args.members:,} members in {time.perf_counter() - started:.1f} s")
    over = broadcasts.parse_over(args.over)
    with Session(engine, expire_on_commit=False) as s:
        broadcasts.create(s, "bench", templates=["broadcasts/newsletter"], now=NOW, library=TemplateLibrary.load())
        started = time.perf_counter()
        row = broadcasts.schedule(s, "bench", NOW, over=over)
    enroll_s = time.perf_counter() - started
    print(f"enroll: {row.enrolled:,} enrollments in {enroll_s:.2f} s ({row.enrolled / enroll_s:,.0f}/s)")
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    step = timedelta(minutes=15) if over else timedelta(0)
    now, passes = NOW, 0
    started = time.perf_counter()
    while True:
        run_pass(factory, {}, now, services, chunk_size=args.chunk_size)
        passes += 1
        if now >= NOW + over:
            break
        now += step
    deliver_s = time.perf_counter() - started
    sent = len(recorder.requests)
    print(f"deliver: {sent:,} sent, {row.enrolled - sent:,} skipped, in {passes} pass(es), {deliver_s:.1f} s "
          f"({row.enrolled / deliver_s:,.0f} enrollments/s, {sent / deliver_s:,.0f} messages/s)")
    engine.dispose()


if __name__ == "__main__":
    main()
