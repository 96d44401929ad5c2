"""One loyalflow tick worker process for the paired benchmark (tests/bench/bench_versus.py).

Imports only the engine's path (no fakes, no Prefect, no web stack: what a tick worker needs),
builds its services (templates compiled once), says `ready` with its RSS, waits for `go` on stdin,
runs its role at the tick's instant and prints one JSON line: messages, CPU seconds and wall interval
of the work (imports and start-up excluded), and the process's peak RSS (VmHWM: its whole life).

    python -m tests.bench.tick_worker URL ROLE NOW [CHUNK]    # ROLE: tick (enroll + advance), enroll, advance
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import datetime

JOURNEYS = ("points_expiring", "win_back")


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """VmHWM: this process image's peak RSS (ru_maxrss survives execve, so a child would report its
    parent's peak when that is higher)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(url: str, role: str, now_text: str, chunk: str | None = None) -> None:
    from sqlalchemy.orm import sessionmaker

    from audiences.db import make_engine
    from journeys.engine import DEFAULT_CHUNK, advance, enroll_journey
    from journeys.registry import get_journey
    from journeys.services import default_services
    from journeys.stats import TickStats

    now = datetime.fromisoformat(now_text)
    chunk_size = int(chunk) if chunk else DEFAULT_CHUNK
    journeys = [get_journey(name) for name in JOURNEYS]
    started = time.perf_counter()
    # a worker's start-up, like its imports: every template compiled once (MJML), adapters built
    services = default_services() if role in ("tick", "advance") else None
    startup_s = time.perf_counter() - started
    print(json.dumps({"ready": True, "pid": os.getpid(), "rss_ready_mib": round(_rss_mib(), 1),
                      "startup_s": round(startup_s, 3),
                      "modules": sorted(m for m in ("starlette", "uvicorn", "fastapi", "prefect", "httpx")
                                        if m in sys.modules)}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    cpu0, wall0 = _cpu(), time.time()
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    totals = TickStats()
    per_journey: dict[str, dict[str, object]] = {}
    enroll_s = enroll_cpu_s = 0.0
    for journey in journeys:
        stats = TickStats()
        if role in ("tick", "enroll"):
            started, cpu = time.perf_counter(), _cpu()
            stats.merge(enroll_journey(factory, journey, now))
            enroll_s += time.perf_counter() - started
            enroll_cpu_s += _cpu() - cpu
        if services is not None:
            stats.merge(advance(factory, journey, now, services, chunk_size=chunk_size))
        totals.merge(stats)
        per_journey[journey.name] = stats.as_dict()
    engine.dispose()
    wall1, cpu1 = time.time(), _cpu()
    print(json.dumps({
        "role": role, "pid": os.getpid(), "enrolled": totals.enrolled, "advanced": totals.advanced,
        "messages": totals.messages, "cpu_s": round(cpu1 - cpu0, 4), "enroll_s": round(enroll_s, 3),
        "enroll_cpu_s": round(enroll_cpu_s, 4), "wall_start": wall0, "wall_end": wall1,
        "peak_rss_mib": round(peak_rss_mib(), 1), "journeys": per_journey,
    }), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
