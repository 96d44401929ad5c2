"""The production pass as a Prefect flow: the same pass the embedded scheduler runs, fanned out when large.

One deployment, `loyalflow-pass/every-minute`, runs it every minute (1,440 flow runs a day, one at a
time: a run that finds the previous one still going is cancelled, not queued). A run:

1. enrolls the journeys whose cron fired since they last enrolled (the database keeps each
   journey's last fire, so a late or skipped run catches up and a repeated one does nothing);
2. enrolls event-triggered journeys from the events that arrived (and any `passes.ENTRY_HOOKS`);
3. advances what is due, journey by journey in priority order (the cross-journey frequency cap
   goes to the higher priority): a journey with more than `chunk_size` due enrollments is split
   into id ranges (`engine.chunk_bounds`): deployed on a work pool (`range_deployment` set by
   `loyalflow deploy`), one run of `loyalflow-advance-range/fan-out` per range, which any free
   worker of the pool takes, on any machine (flows/fanout.py); otherwise one `advance-chunk` task
   per range, spread over threads. Smaller journeys run inline, so a quiet minute records no task
   runs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run as current_run

from flows import runtime
from flows.fanout import PICKUP_SECONDS, RangeRun, fan_out_to_pool
from flows.fanout import publish as publish_fan_out
from journeys.dsl import Journey
from journeys.stats import TickStats

DEFAULT_CHUNK = 20_000


def _instant(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def run_name() -> str:
    """`pass 2026-11-23T15:00Z`: the instant the run stands for (its parameter, else its scheduled start)."""
    now = (current_run.parameters or {}).get("now")
    instant = _instant(now) if now else (current_run.scheduled_start_time or datetime.now(timezone.utc))
    return f"pass {instant.astimezone(timezone.utc):%Y-%m-%dT%H:%MZ}"


@task(name="advance-chunk", retries=2, retry_delay_seconds=2,
      task_run_name="advance {journey} [{lo}, {hi})")
def advance_chunk(journey: str, now: str, lo: int, hi: int, worker: str) -> dict[str, Any]:
    """Advance due enrollments of one journey with ids in [lo, hi); a retry reuses `worker` (its own leases)."""
    from journeys.engine import advance
    from journeys.registry import get_journey

    return advance(runtime.session_factory(), get_journey(journey), _instant(now), runtime.services(),
                   id_range=(lo, hi), worker=worker).as_dict()


def fan_out(journey: str, now: datetime, chunk_size: int) -> TickStats:
    """One task per id range of about `chunk_size` due enrollments, all in parallel."""
    from journeys.engine import chunk_bounds

    with runtime.session_factory()() as session:
        bounds = chunk_bounds(session, journey, now, chunk_size)
    run_id = uuid.uuid4().hex[:8]
    iso = now.isoformat()
    futures = [advance_chunk.submit(journey, iso, lo, hi, f"{run_id}-{lo}") for lo, hi in bounds]
    stats = TickStats()
    for future in futures:
        stats.merge(TickStats.from_dict(future.result()))
    return stats


def pass_body(now: datetime, chunk_size: int, range_deployment: str | None = None,
              pickup_seconds: float = PICKUP_SECONDS) -> tuple[dict[str, TickStats], list[RangeRun]]:
    """`journeys.passes.run_pass`, with a journey of more than `chunk_size` due enrollments fanned out
    per id range: as runs of `range_deployment` on its work pool when given, else as tasks (the others
    run inline, so a quiet minute records no task run). Also returns the ranges run on the pool."""
    from journeys import passes
    from journeys.engine import advance
    from journeys.registry import journeys

    factory, services = runtime.session_factory(), runtime.services()
    ranges: list[RangeRun] = []

    def advance_journey(journey: Journey, due: int) -> TickStats:
        if due <= chunk_size:
            return advance(factory, journey, now, services, chunk_size=chunk_size)
        if range_deployment is None:
            return fan_out(journey.name, now, chunk_size)
        stats, runs = fan_out_to_pool(journey.name, now, chunk_size, range_deployment, pickup_seconds=pickup_seconds)
        ranges.extend(runs)
        return stats

    result = passes.run_pass(factory, journeys(), now, services, chunk_size=chunk_size,
                             advance_journey=advance_journey).journeys
    return result, ranges


def totals(per_journey: dict[str, TickStats]) -> dict[str, int]:
    total = TickStats()
    for stats in per_journey.values():
        total.merge(stats)
    return {"enrolled": total.enrolled, "advanced": total.advanced, "sent": total.messages,
            "skipped": sum(total.skipped.values()), "failed": sum(total.failed.values()),
            "exited": sum(total.exited.values())}


def split_line(ranges: list[RangeRun]) -> str:
    """`fanned out 8 ranges: host/worker-a 5, host/worker-b 3; overhead per run median 4.1 s`."""
    from collections import Counter
    from statistics import median

    by_worker = Counter(r.worker for r in ranges)
    return (f"fanned out {len(ranges)} ranges: " + ", ".join(f"{w} {n}" for w, n in sorted(by_worker.items()))
            + f"; overhead per run median {median(r.overhead_seconds for r in ranges):.1f} s")


@flow(name="loyalflow-pass", flow_run_name=run_name, log_prints=False)
def loyalflow_pass(now: str | None = None, chunk_size: int = DEFAULT_CHUNK, range_deployment: str | None = None,
                   pickup_seconds: float = PICKUP_SECONDS) -> dict[str, Any]:
    """Enroll the journeys whose cron fired and advance everything due, across journeys by priority
    (a journey of more than `chunk_size` due enrollments fanned out to `range_deployment`'s work pool)."""
    instant = _instant(now)
    scheduled = current_run.scheduled_start_time  # Prefect's own datetime type: take a plain UTC one from it
    start = datetime.fromtimestamp(scheduled.timestamp(), timezone.utc) if scheduled is not None else None
    if now is None and start is not None and start > instant:  # runners may start a run a moment early
        instant = start
    per_journey, ranges = pass_body(instant, chunk_size, range_deployment, pickup_seconds)
    publish_fan_out(ranges)
    counts = totals(per_journey)
    # one line per run, counts only (printed: a worker or serve-flows shows each run's output)
    print(f"loyalflow pass at {instant:%Y-%m-%dT%H:%M:%SZ}: "
          + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing due"), flush=True)
    if ranges:  # and the split of what was fanned out to the work pool
        print(split_line(ranges), flush=True)
    return {"now": instant.isoformat(), "totals": counts,
            "journeys": {n: s.as_dict() for n, s in sorted(per_journey.items())},
            "fan_out": [r.as_dict() for r in ranges]}
