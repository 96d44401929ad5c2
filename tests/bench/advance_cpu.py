"""loyalflow's own CPU for one first tick, without HTTP: for comparing two versions of the engine.

The paired benchmark (`loyalflow bench`) measures the whole path against the competent script, but its
wall and CPU figures move ±10% from run to run on a shared machine (the fake, 128 sending threads and
the scheduler all count). Here the tick runs in this one process with every channel delivering to an
in-memory adapter, so what is left is enrollment and the advance (claims, state, gate, ledger, render):
run it in two checkouts, alternately, to see what a change did.

    python -m tests.bench.advance_cpu [--members 100000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_versus import NOW, SEED
from tests.bench.pipeline_data import cached_sqlite, fresh_copy
from tests.bench.tick_worker import JOURNEYS


def measure(members: int) -> dict[str, Any]:
    from sqlalchemy.orm import sessionmaker

    from audiences.db import make_engine
    from channels.adapters import MemoryAdapter
    from journeys.engine import advance, enroll_journey
    from journeys.registry import get_journey
    from journeys.services import services_for

    source = cached_sqlite(members, SEED, log=False)
    adapter = MemoryAdapter()
    services = services_for(adapter)  # templates compiled here, before the clock starts
    with tempfile.TemporaryDirectory(prefix="advance_cpu_") as tmp:
        engine = make_engine(f"sqlite:///{fresh_copy(source, Path(tmp))}")
        factory = sessionmaker(engine, expire_on_commit=False)
        enroll_cpu = advance_cpu = 0.0
        messages = advanced = 0
        for name in JOURNEYS:
            journey = get_journey(name)
            started = time.process_time()
            enroll_journey(factory, journey, NOW)
            enroll_cpu += time.process_time() - started
            started = time.process_time()
            stats = advance(factory, journey, NOW, services)
            advance_cpu += time.process_time() - started
            messages += sum(stats.sent.values())
            advanced += stats.advanced
        engine.dispose()
    return {"members": members, "messages": messages, "delivered": len(adapter.requests), "advanced": advanced,
            "enroll_cpu_s": round(enroll_cpu, 2), "advance_cpu_s": round(advance_cpu, 2),
            "advance_cpu_us_per_msg": round(advance_cpu / max(messages, 1) * 1e6, 1),
            "advance_cpu_us_per_enrollment": round(advance_cpu / max(advanced, 1) * 1e6, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = [measure(args.members) for _ in range(args.runs)]
    result = {**runs[-1], "runs": runs,
              "advance_cpu_us_per_msg_median": statistics.median(r["advance_cpu_us_per_msg"] for r in runs),
              "enroll_cpu_s_median": statistics.median(r["enroll_cpu_s"] for r in runs)}
    if args.json:
        print(json.dumps(result))
    else:
        for r in runs:
            print(f"members {r['members']:,}: {r['messages']:,} messages, {r['advanced']:,} enrollments advanced; "
                  f"enroll {r['enroll_cpu_s']} s CPU, advance {r['advance_cpu_s']} s CPU = "
                  f"{r['advance_cpu_us_per_msg']:,} µs a message ({r['advance_cpu_us_per_enrollment']} µs an enrollment)")
        print(f"median advance CPU per message: {result['advance_cpu_us_per_msg_median']:,} µs")
    return result


if __name__ == "__main__":
    main()
