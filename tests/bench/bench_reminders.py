"""Benchmark: points-expiry reminders per member per 30 days, per batch (before) and digested (after).

Demo data (the `loyalflow demo` generator and its consents) in a SQLite file, then the points_expiring
journey replayed for `--days` days from the demo's today on the simulation clock (journeys/simulate.py:
the real engine, gate and templates, a dry-run adapter), twice in sandboxes of the same data:

- before: version 1, one enrollment per earn batch, no cap (`earlier_versions[1]` of the journey);
- after: the shipped journey, batches expiring in the same 7-day window merged, at most 4 in 30 days.

For every member who got a reminder: the most reminders they got in any 30 days (a rolling window
starting at each of their reminders). Printed: members reminded, reminders sent, and the max, p95
and median of that figure.

    python -m tests.bench.bench_reminders [--members 3000] [--days 90] [--seed 7] [--today 2026-11-30]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from audiences.db import make_engine
from audiences.demo import generate
from flows import migrate
from flows.demo import seed_consent
from journeys.dsl import Journey
from journeys.models import Send, SendStatus
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import DryRunAdapter, run_clock, sandbox, start_clocks

WINDOW = timedelta(days=30)


def per_batch(journey: Journey) -> Journey:
    """The journey as it was before the digest: version 1's steps, one enrollment per batch."""
    return dataclasses.replace(journey, steps=journey.earlier_versions[1], earlier_versions={},
                               audience_params={"within_days": 31}, occurrence_key="batch_id")


def most_in_30_days(times: list[datetime]) -> int:
    times = sorted(times)
    return max(bisect_right(times, t + WINDOW - timedelta(microseconds=1)) - i for i, t in enumerate(times))


def replay(engine, journey: Journey, start: datetime, days: int) -> dict[int, list[datetime]]:  # type: ignore[no-untyped-def]
    services = services_for(DryRunAdapter())
    sent: dict[int, list[datetime]] = defaultdict(list)
    with sandbox(engine) as factory:
        start_clocks(factory, [journey.name], start)
        for _ in run_clock(factory, {journey.name: journey}, start, start + timedelta(days=days), services):
            pass
        with factory() as session:
            for member, at in session.execute(select(Send.recipient_id, Send.sent_at).where(
                    Send.journey == journey.name, Send.status == SendStatus.sent)):
                sent[member].append(at)
    return sent


def figures(sent: dict[int, list[datetime]]) -> dict[str, float]:
    peaks = sorted(most_in_30_days(times) for times in sent.values())
    if not peaks:
        return {"members": 0, "reminders": 0, "max": 0, "p95": 0, "median": 0}
    p95 = peaks[min(len(peaks) - 1, int(round(0.95 * (len(peaks) - 1))))]
    return {"members": len(peaks), "reminders": sum(len(t) for t in sent.values()), "max": peaks[-1],
            "p95": p95, "median": statistics.median(peaks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--today", default="2026-11-30")
    args = parser.parse_args()
    today = datetime.fromisoformat(args.today).replace(tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}", create=True)
        migrate.upgrade(engine)
        generate(engine, args.members, args.seed, today)
        seed_consent(engine)
        after = get_journey("points_expiring")
        print(f"demo data: {args.members:,} members (seed {args.seed}), points_expiring replayed "
              f"{args.days} days from {today.date()}")
        print(f"{'':28}{'members':>9}{'reminders':>11}{'max/30d':>9}{'p95/30d':>9}{'median/30d':>12}{'seconds':>9}")
        for label, journey in (("before (one per batch)", per_batch(after)),
                               ("after (7-day digest, cap 4)", after)):
            started = time.perf_counter()
            f = figures(replay(engine, journey, today, args.days))
            print(f"{label:28}{f['members']:>9,}{f['reminders']:>11,}{f['max']:>9}{f['p95']:>9}"
                  f"{f['median']:>12}{time.perf_counter() - started:>9.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
