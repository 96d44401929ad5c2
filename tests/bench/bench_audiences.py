"""Benchmark: every audience count on demo data (default 1,000,000 members on SQLite).

    python -m tests.bench.bench_audiences [--members N] [--db PATH] [--url URL]

Reuses PATH when it already holds N members (generating 1M takes a couple of minutes); prints
the time of each count (best of 3, after one warm-up run) and the count itself.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.db import make_engine
from audiences.demo import generate
from audiences.models import Member
from audiences.queries import AUDIENCES
from flows import migrate

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("bench-results/audiences-{members}.db"))
    parser.add_argument("--url", help="use this database instead (e.g. PostgreSQL); generated if empty")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{str(args.db).format(members=args.members)}"
    if not args.url:
        Path(str(args.db).format(members=args.members)).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as s:
        have = s.scalar(select(func.count()).select_from(Member)) or 0
    if have != args.members:
        started = time.perf_counter()
        generate(engine, args.members, 1, AS_OF, reset=have > 0)
        print(f"generated {args.members:,} members in {time.perf_counter() - started:.1f} s")
    print(f"audience counts on {engine.dialect.name}, {args.members:,} members, now = {AS_OF.date()}")
    print(f"{'audience':<18}{'count':>12}{'best s':>10}{'median s':>10}")
    for name, audience in AUDIENCES.items():
        times = []
        with Session(engine) as s:
            total = audience.count(s, AS_OF)  # warm-up: page cache, statement compile
            for _ in range(args.runs):
                started = time.perf_counter()
                total = audience.count(s, AS_OF)
                times.append(time.perf_counter() - started)
        print(f"{name:<18}{total:>12,}{min(times):>10.3f}{statistics.median(times):>10.3f}")


if __name__ == "__main__":
    main()
