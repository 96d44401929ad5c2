"""Benchmark: `loyalflow demo-data` into a fresh SQLite file (target: 1,000,000 members < 180 s).

Prints elapsed time, members/s, rows per table and rows/s, peak RSS of the process and the
machine's load, since the 2 cores may be shared with other work while it runs.

    python -m tests.bench.bench_demo_data [--members 1000000] [--seed 1] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from audiences.db import make_engine
from audiences.demo import generate
from flows import migrate

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def run(members: int, seed: int, path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    process = psutil.Process()
    cpu_before = process.cpu_times()
    load_before = os.getloadavg()
    rss_samples: list[int] = []
    marks: list[tuple[int, float]] = []
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        rss_samples.append(process.memory_info().rss)
        previous = marks[-1][0] if marks else 0
        if done == total or done * 10 // total > previous * 10 // total:
            marks.append((done, time.perf_counter() - started))
            print(f"  {done:>10,} members  {marks[-1][1]:7.1f} s  rss {rss_samples[-1] / 2**20:6.0f} MiB", flush=True)

    summary = generate(engine, members, seed, AS_OF, progress=progress)
    elapsed = time.perf_counter() - started
    cpu = process.cpu_times()
    engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(f"\nmembers {members:,} seed {seed} as_of {AS_OF.date()} into {path}")
    print(f"elapsed {elapsed:.1f} s  ({members / elapsed:,.0f} members/s, {summary.total_rows / elapsed:,.0f} rows/s)"
          f"  target < 180 s for 1,000,000: {'OK' if elapsed * 1_000_000 / members < 180 else 'MISSED'} (scaled)")
    print(f"cpu user {cpu.user - cpu_before.user:.1f} s, system {cpu.system - cpu_before.system:.1f} s;"
          f" cores {os.cpu_count()}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"peak RSS {peak / 2**20:.0f} MiB (max sampled per chunk {max(rss_samples) / 2**20:.0f} MiB);"
          f" database file {path.stat().st_size / 2**30:.2f} GiB")
    for table, count in sorted(summary.counts.items(), key=lambda kv: -kv[1]):
        print(f"  {table:<16} {count:>12,}")
    print(f"  {'total':<16} {summary.total_rows:>12,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="Write here and keep the file (default: temporary).")
    args = parser.parse_args()
    if args.keep:
        run(args.members, args.seed, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-") as folder:
        run(args.members, args.seed, Path(folder) / "demo.db")


if __name__ == "__main__":
    main()
