"""CPU per message of one loyalflow tick (points-expiring and win-back), for profiling the per-message path.

The fakes run in a process of their own, so this process's CPU time (all its threads) divided by
the messages sent is loyalflow's own cost per message: enroll, advance, gate, render, ledger, HTTP.

    python -m tests.bench.profile_tick [--members 20000] [--postgres] [--cprofile FILE]
    py-spy record -o tick.svg -- python -m tests.bench.profile_tick --members 20000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import tempfile
import time
from pathlib import Path

from tests.bench.bench_pipeline import (
    RESULTS,
    SEED,
    environment,
    run_loyalflow,
    run_postgres,
)
from tests.bench.pipeline_data import cached_sqlite, fresh_copy
from tests.bench.pipeline_fakes import Fakes


class GcTime:
    """CPU seconds spent in the cyclic garbage collector (all generations) while installed."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._start = 0.0, 0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds += time.process_time() - self._start
            self.collections += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--postgres", action="store_true", help="also the same tick on PostgreSQL")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() once set up (what a tick worker could do): collections skip the startup heap")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile of the SQLite tick (main thread) here")
    args = parser.parse_args()
    source = cached_sqlite(args.members, SEED)
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile_tick_", dir=RESULTS) as tmp, Fakes(args.latency) as fakes, \
            environment(fakes.environment(args.concurrency)):
        db = fresh_copy(source, Path(tmp))
        from journeys.services import default_services

        cpu0 = time.process_time()
        default_services()  # what run_loyalflow builds first (templates compiled): reported apart
        setup_cpu = time.process_time() - cpu0
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        profiler = cProfile.Profile() if args.cprofile else None
        collector = GcTime()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        figures, _, _ = run_loyalflow(f"sqlite:///{db}", keep=0)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        out = {"members": args.members, "gc_freeze": args.gc_freeze, "messages": figures["messages"], "cpu_s": round(cpu, 2),
               "wall_s": round(wall, 2), "cpu_us_per_msg": round(cpu / max(figures["messages"], 1) * 1e6, 1),
               "services_setup_cpu_s": round(setup_cpu, 2),
               "tick_cpu_us_per_msg": round((cpu - setup_cpu) / max(figures["messages"], 1) * 1e6, 1),
               "enroll_s": figures["enroll_s"], "advance_s": figures["advance_s"], "advanced": figures["advanced"],
               "msgs_per_s": figures["messages_per_s"], "peak_rss_mib": figures["peak_rss_mib"],
               "gc_cpu_s": round(collector.seconds, 2), "gc_collections": collector.collections,
               "fakes": fakes.counts()}
        if args.postgres:
            fakes.reset()
            cpu0 = time.process_time()
            pg = run_postgres(db=source, keep=0)
            if pg is not None:  # includes the load into PostgreSQL: compare the tick figures, not cpu here
                out["postgresql"] = {"messages": pg["messages"], "total_s": pg["total_s"],
                                     "msgs_per_s": pg["messages_per_s"], "fakes": fakes.counts()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
