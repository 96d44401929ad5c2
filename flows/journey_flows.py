"""Prefect flows over the engine: thin wrappers, coarse tasks.

A task costs 5-9 ms of client CPU and a server records ~25-30 task runs a second here, so a
journey tick is: one enroll task, one advance task per chunk of 10,000-50,000 due enrollments
(given by id bounds, never a list of members), one summary. A simulation is one flow run whose
days are tasks.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context

from flows import runtime
from journeys.engine import advance, chunk_bounds, enroll_journey
from journeys.locks import held
from journeys.registry import get_journey, journeys
from journeys.stats import TickStats

DEFAULT_CHUNK = 20_000


def _instant(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


@task(name="enroll", retries=2, retry_delay_seconds=2)
def enroll_task(journey: str, now: str) -> dict[str, Any]:
    return enroll_journey(runtime.session_factory(), get_journey(journey), _instant(now)).as_dict()


@task(name="chunk-bounds")
def bounds_task(journey: str, now: str, chunk_size: int) -> list[tuple[int, int]]:
    with runtime.session_factory()() as session:
        return chunk_bounds(session, journey, _instant(now), chunk_size)


@task(name="advance-chunk", retries=2, retry_delay_seconds=2)
def advance_task(journey: str, now: str, lo: int, hi: int, worker: str) -> dict[str, Any]:
    """Advance due enrollments with ids in [lo, hi); a retry reuses `worker`, so it resumes its own claims."""
    return advance(runtime.session_factory(), get_journey(journey), _instant(now), runtime.services(),
                   id_range=(lo, hi), worker=worker).as_dict()


def publish(journey: str, stats: TickStats, now: datetime) -> None:
    key = journey.replace("_", "-")
    rows = [{"kind": "sent", "detail": ch, "count": n} for ch, n in sorted(stats.sent.items()) if n]
    rows += [{"kind": "skipped", "detail": r, "count": n} for r, n in sorted(stats.skipped.items()) if n]
    rows += [{"kind": "failed", "detail": r, "count": n} for r, n in sorted(stats.failed.items()) if n]
    rows += [{"kind": "exited", "detail": r, "count": n} for r, n in sorted(stats.exited.items()) if n]
    create_table_artifact(key=f"{key}-counts", table=rows or [{"kind": "none", "detail": "", "count": 0}],
                          description=f"{journey} at {now.isoformat()}: counts per channel, skip reason and exit")
    create_markdown_artifact(key=f"{key}-summary", markdown=(
        f"### {journey} at {now.isoformat()}\n\n"
        f"- enrolled **{stats.enrolled}** (held out {stats.held_out})\n"
        f"- sent **{stats.messages}** ({', '.join(f'{c} {n}' for c, n in sorted(stats.sent.items()) if n) or 'none'})\n"
        f"- skipped {sum(stats.skipped.values())}, failed {sum(stats.failed.values())}, "
        f"exited {sum(stats.exited.values())}, completed {stats.completed}\n"))


def run_tick(journey: str, now: datetime, chunk_size: int) -> TickStats:
    """The body of a journey tick, inside a flow run; tasks in parallel per chunk."""
    iso = now.isoformat()
    stats = TickStats.from_dict(enroll_task(journey, iso))
    bounds = bounds_task(journey, iso, chunk_size)
    run_id = uuid.uuid4().hex[:8]
    futures = [advance_task.submit(journey, iso, lo, hi, f"{run_id}-{lo}") for lo, hi in bounds]
    for future in futures:
        stats.merge(TickStats.from_dict(future.result()))
    return stats


def tick_run_name() -> str:
    """`welcome 2026-11-23T15:00Z`: the journey and the instant the run ticks at."""
    from prefect.runtime import flow_run as current

    params = current.parameters or {}
    instant = _instant(params.get("now")) if params.get("now") else (current.scheduled_start_time or _instant(None))
    return f"{params.get('journey', 'journey')} {instant.astimezone(timezone.utc):%Y-%m-%dT%H:%MZ}"


@flow(name="journey-tick", flow_run_name=tick_run_name)
def journey_tick(journey: str, now: str | None = None, chunk_size: int = DEFAULT_CHUNK) -> dict[str, Any]:
    """One tick of one journey: enroll, advance due enrollments in chunks, publish counts."""
    instant = _instant(now)
    definition = get_journey(journey)
    owner = str(getattr(get_run_context(), "flow_run", None) and get_run_context().flow_run.id or uuid.uuid4())
    with held(runtime.engine(), f"journey:{definition.name}", owner, datetime.now(timezone.utc)):
        stats = run_tick(definition.name, instant, chunk_size)
    publish(definition.name, stats, instant)
    get_run_logger().info("%s: enrolled %s, sent %s", journey, stats.enrolled, stats.messages)
    return stats.as_dict()


@flow(name="tick-all")
def tick_all(now: str | None = None, chunk_size: int = DEFAULT_CHUNK) -> dict[str, dict[str, Any]]:
    """A tick of every journey, highest priority first (it wins the frequency cap)."""
    ordered = sorted(journeys().values(), key=lambda j: (-j.priority, j.name))
    return {j.name: journey_tick(j.name, now, chunk_size) for j in ordered}


@task(name="simulated-day")
def day_task(day: str, names: list[str], replay_purchases: bool = False) -> dict[str, dict[str, Any]]:
    """One simulated day of the given journeys: the pass a runtime runs every minute, at every
    instant in the day at which it has work (cron fires, due steps), in time order. With
    `replay_purchases` (the demo), members' first purchases of the day arrive as `purchase` events."""
    from journeys.simulate import EventFeed, run_clock

    start = _instant(day)
    end = start + timedelta(days=1)
    definitions = {n: get_journey(n) for n in names}
    out = {n: TickStats() for n in names}
    feed = None
    if replay_purchases:
        from audiences.demo.purchase_events import first_purchase_events

        with runtime.session_factory()() as session:
            feed = EventFeed(first_purchase_events(session, start, end), source="demo-pos")
    for _, result in run_clock(runtime.session_factory(), definitions, start, end, runtime.services(), feed):
        for name, stats in result.journeys.items():
            out.setdefault(name, TickStats()).merge(stats)
    return {n: s.as_dict() for n, s in out.items()}


@flow(name="simulate-program")
def simulate_program(start: str, days: int, names: list[str] | None = None,
                     replay_purchases: bool = False) -> list[dict[str, Any]]:
    """Run journeys over simulated days against the real database and adapters: a task per day."""
    from journeys.simulate import start_clocks

    names = names or sorted(journeys())
    first = _instant(start)
    start_clocks(runtime.session_factory(), names, first)  # entry starts at the first day's first cron fire
    results = []
    for i in range(days):
        day = (first + timedelta(days=i)).isoformat()
        results.append({"date": day[:10], "journeys": day_task(day, names, replay_purchases)})
        runtime.progress(f"day {i + 1}/{days} ({day[:10]}) replayed")  # the demo shows it per day
    return results
