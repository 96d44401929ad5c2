"""Benchmark: one pass fanned out to a Prefect work pool: the split between workers and the overhead
per fanned-out run.

A real Prefect server, `loyalflow deploy` onto a process work pool, N `prefect worker start --limit L`
processes and one PostgreSQL database; `members` new members are all welcomed by one pass, whose
welcome journey is fanned out as one `loyalflow-advance-range/fan-out` run per `chunk` due enrollments.
Per range run: which worker ran it, its engine time (inside the run, around `engine.advance`), how
long it queued for a free worker slot (created -> a worker took it), and its overhead: the run's wall
time from the worker taking it to its end, minus engine time (a new process, imports, loading the
flow from the checkout, Prefect's flow-run engine and API calls). Duplicates are counted in the
ledger and in the ranges' own counts.

    python -m tests.bench.bench_fanout [--members 4000] [--chunk 500] [--workers 2] [--limit 2]
                                       [--query-seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from audiences.db import make_engine
from flows import migrate
from journeys.models import Send, SendStatus
from tests.flows.work_pool import members, prefect_pool, run_pass
from tests.support.postgres import start_postgres

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


def _seconds(run: dict[str, Any], start: str, end: str) -> float:
    return (datetime.fromisoformat(run[end]) - datetime.fromisoformat(run[start])).total_seconds()


def measure(root: Path, url: str, n: int, chunk: int, workers: int, limit: int, query_seconds: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    members(engine, n, NOW)
    names = [f"worker-{chr(ord('a') + i)}" for i in range(workers)]
    with prefect_pool(root, url, names, limit=limit, query_seconds=query_seconds) as pool:
        ids = pool.identities()
        run = run_pass(pool, NOW, chunk)
        ranges = pool.artifact_table("loyalflow-fan-out", run["id"])
    with Session(engine) as s:
        pairs = s.execute(select(Send.enrollment_id, Send.step_key, func.count())
                          .group_by(Send.enrollment_id, Send.step_key)).all()
        sent = int(s.scalar(select(func.count()).where(Send.status == SendStatus.sent)) or 0)
    engine.dispose()

    def name(r: dict[str, Any]) -> str:
        return ids.get(r["worker"].split("/", 1)[-1], r["worker"])

    split: dict[str, dict[str, Any]] = {}
    for w in sorted({name(r) for r in ranges}):
        mine = [r for r in ranges if name(r) == w]
        split[w] = {"ranges": len(mine), "advanced": sum(r["advanced"] for r in mine),
                    "median_overhead_s": round(statistics.median(r["overhead_seconds"] for r in mine), 2)}
    col = {k: [float(r[k]) for r in ranges] for k in ("engine_seconds", "cpu_seconds", "queued_seconds",
                                                      "launch_seconds", "run_seconds", "overhead_seconds")}
    pass_s = _seconds(run, "start_time", "end_time")
    return {
        "members": n, "chunk": chunk, "workers": workers, "limit": limit, "query_seconds": query_seconds,
        "pass_state": run["state_type"], "pass_seconds": round(pass_s, 2),
        "end_to_end_msgs_per_s": round(sent / pass_s, 1) if pass_s else None,
        "ranges": len(ranges), "states": dict(Counter(r["state"] for r in ranges)), "split": split,
        "median": {k: round(statistics.median(v), 3) for k, v in col.items()},
        "max": {k: round(max(v), 3) for k, v in col.items()},
        "engine_share": round(sum(col["engine_seconds"]) / sum(col["run_seconds"]), 3),
        "sent": sent, "ranges_sent": sum(r["sent"] for r in ranges),
        "duplicates": sum(c - 1 for _, _, c in pairs if c > 1) + max(0, sum(r["sent"] for r in ranges) - sent),
        "per_range": [{"worker": name(r), "range": [r["lo"], r["hi"]], "engine_s": r["engine_seconds"],
                       "queued_s": r["queued_seconds"], "launch_s": r["launch_seconds"], "run_s": r["run_seconds"],
                       "overhead_s": r["overhead_seconds"]} for r in ranges],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=2, help="flow runs at once per worker (the pass takes one)")
    parser.add_argument("--query-seconds", type=int, default=2, help="PREFECT_WORKER_QUERY_SECONDS (Prefect: 10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server = start_postgres()
    if server is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with create_engine(server.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        with tempfile.TemporaryDirectory(prefix="loyalflow-fanout-") as root:
            result = measure(Path(root), server.url(name), args.members, args.chunk, args.workers, args.limit,
                             args.query_seconds)
    finally:
        server.stop()
    if args.json:
        print(json.dumps(result))
        return
    print(f"one pass, {result['members']:,} due welcome emails, chunk {result['chunk']}, {result['workers']} workers "
          f"(--limit {result['limit']}, PREFECT_WORKER_QUERY_SECONDS={result['query_seconds']}), PostgreSQL")
    print(f"pass {result['pass_state']} in {result['pass_seconds']} s ({result['end_to_end_msgs_per_s']} msg/s); "
          f"{result['ranges']} range runs {result['states']}; sent {result['sent']:,}; "
          f"duplicates {result['duplicates']}")
    for w, s in result["split"].items():
        print(f"  {w}: {s['ranges']} ranges, {s['advanced']:,} enrollments, median overhead {s['median_overhead_s']} s")
    m, x = result["median"], result["max"]
    print(f"per run (median / max): engine {m['engine_seconds']} / {x['engine_seconds']} s, "
          f"run (worker took it -> end) {m['run_seconds']} / {x['run_seconds']} s, "
          f"overhead (run - engine) {m['overhead_seconds']} / {x['overhead_seconds']} s, of which launch "
          f"{m['launch_seconds']} / {x['launch_seconds']} s; queued for a worker {m['queued_seconds']} / "
          f"{x['queued_seconds']} s; engine share of run time {result['engine_share']:.0%}")
    print(f"{'worker':<10} {'range':>14} {'engine s':>9} {'queued s':>9} {'launch s':>9} {'run s':>7} {'overhead s':>10}")
    for r in result["per_range"]:
        print(f"{r['worker']:<10} {str(r['range']):>14} {r['engine_s']:>9} {r['queued_s']:>9} {r['launch_s']:>9} "
              f"{r['run_s']:>7} {r['overhead_s']:>10}")


if __name__ == "__main__":
    main()
