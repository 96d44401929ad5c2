"""Benchmark: the cost of an empty pass (nothing fired, nothing due) over N enrollments.

N synthetic enrollments are inserted in bulk across the shipped journeys: 60% active and due at
some instant in the next 60 days, 30% completed, 10% held out. After one warm-up pass (which reads
the journey clocks), passes at instants where no cron fires and nothing is due are timed: each is
one query on ix_enrollments_due (counted here), plus `next_due`, the query a runtime sleeps on.

    python -m tests.bench.bench_pass [--enrollments 1000000] [--passes 50] [--postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import sessionmaker

from audiences.db import make_engine
from flows import migrate
from journeys.clocks import latest_fire
from journeys.models import Enrollment
from journeys.passes import due_journeys, next_due, run_pass
from journeys.registry import journeys
from journeys.services import Services

UTC = timezone.utc
NOW = datetime(2027, 3, 26, 9, 0, 30, tzinfo=UTC)
BATCH = 50_000


def rows(n: int, names: list[str]) -> Iterator[list[dict[str, Any]]]:
    rnd = random.Random(7)
    batch: list[dict[str, Any]] = []
    for i in range(n):
        roll = rnd.random()
        status, due = ("active", NOW + timedelta(minutes=5 + rnd.randrange(60 * 24 * 60))) if roll < 0.6 else \
            (("completed", None) if roll < 0.9 else ("held_out", None))
        batch.append({"journey": names[i % len(names)], "journey_version": 1, "recipient_kind": "member",
                      "recipient_id": i, "occurrence_key": "once", "enrolled_at": NOW - timedelta(days=3),
                      "status": status, "step_index": 1, "due_at": due, "context": {}, "updated_at": NOW})
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def populate(engine: Engine, n: int) -> float:
    started = time.perf_counter()
    names = sorted(journeys())
    with engine.begin() as conn:
        for batch in rows(n, names):
            conn.execute(insert(Enrollment), batch)
        conn.execute(text("ANALYZE") if engine.dialect.name == "sqlite" else text("ANALYZE enrollments"))
    return time.perf_counter() - started


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(engine: Engine, n: int, passes: int) -> dict[str, Any]:
    insert_s = populate(engine, n)
    factory = sessionmaker(engine, expire_on_commit=False)
    defs = journeys()
    services = Services(renderer=None, adapters={}, gate=lambda s, now, c: [])  # type: ignore[arg-type]
    run_pass(factory, defs, NOW, services)  # warm-up: reads the clocks, enrolls nobody (no members)
    # instants in the 25 minutes after NOW: no cron fires (welcome fires at :00, tier_up at :30)
    assert all(latest_fire(j.schedule, NOW + timedelta(minutes=25)) <= NOW for j in defs.values() if j.schedule)
    instants = iter(NOW + timedelta(seconds=i) for i in range(1, 1500))
    pass_ms = timed(lambda: run_pass(factory, defs, next(instants), services), passes)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    counted = 10
    for _ in range(counted):
        run_pass(factory, defs, next(instants), services)
    event.remove(engine, "before_cursor_execute", count)
    kinds = sorted({" ".join(s.split()[:4]) for s in statements})
    with factory() as session:
        due_ms = timed(lambda: due_journeys(session, NOW), passes)
        next_ms = timed(lambda: next_due(session), passes)
        plan = ""
        if engine.dialect.name == "sqlite":
            plan = " / ".join(str(r[-1]) for r in session.execute(text(
                "EXPLAIN QUERY PLAN SELECT +journey, count(*) FROM enrollments "
                "WHERE status = 'active' AND due_at <= :now GROUP BY +journey"), {"now": NOW.replace(tzinfo=None)}))
        else:
            plan = " / ".join(r[0].strip() for r in session.execute(text(
                "EXPLAIN SELECT journey, count(*) FROM enrollments WHERE status = 'active' AND due_at <= :now "
                "GROUP BY journey"), {"now": NOW.replace(tzinfo=None)}))
    return {"database": engine.dialect.name, "enrollments": n, "insert_s": round(insert_s, 1),
            "statements_per_empty_pass": len(statements) / counted, "statement_kinds": kinds,
            "empty_pass_ms_median": round(statistics.median(pass_ms), 3),
            "empty_pass_ms_p95": round(sorted(pass_ms)[int(0.95 * (len(pass_ms) - 1))], 3),
            "due_query_ms_median": round(statistics.median(due_ms), 3),
            "next_due_ms_median": round(statistics.median(next_ms), 3), "plan": plan}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="also on a local PostgreSQL (started here)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-pass-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'pass.db'}")
        migrate.upgrade(engine)
        print(measure(engine, args.enrollments, args.passes), flush=True)
        engine.dispose()
    if args.postgres:
        from tests.support.postgres import start_postgres

        server = start_postgres()
        if server is None:
            print("PostgreSQL binaries not found: skipped")
            return
        try:
            admin = make_engine(server.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("CREATE DATABASE bench_pass"))
            admin.dispose()
            engine = make_engine(server.url("bench_pass"))
            migrate.upgrade(engine)
            print(measure(engine, args.enrollments, args.passes), flush=True)
            engine.dispose()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
