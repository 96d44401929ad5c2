"""One pass fanned out to a work pool: a real Prefect server, `loyalflow deploy`, two `prefect worker
start` processes and one PostgreSQL database. Each worker takes a share of the ranges, every
enrollment is advanced and sent exactly once, and the pass reports the split and each run's overhead.
Also: a range no worker takes is finished by the pass itself, and the counts survive the artifact."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.fanout import RangeRun, parse_rows, stats_rows
from journeys.models import Enrollment, Send, SendStatus
from journeys.stats import TickStats
from tests.flows.work_pool import members, prefect_pool, run_pass

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
MEMBERS = 3_000
CHUNK = 300


def test_a_ranges_counts_survive_its_artifact_table() -> None:
    stats = TickStats(advanced=7, completed=2, deferred=1)
    stats.sent.update({"email": 5})
    stats.skipped.update({"no_consent": 2})
    back, meta = parse_rows(stats_rows(stats, {"worker": "host/abc", "engine_seconds": 1.25}))
    assert back.as_dict() == stats.as_dict() and meta == {"worker": "host/abc", "engine_seconds": 1.25}
    assert RangeRun("welcome", 1, 9, "x", run_seconds=3.0, engine_seconds=1.25).overhead_seconds == 1.75


@pytest.mark.slow
def test_a_range_no_worker_takes_is_finished_by_the_pass(prefect_api: None, sqlite_engine: Engine,
                                                         flow_env: Path) -> None:
    """A pool without a free worker (here: none at all): after `pickup_seconds` the pass cancels the
    range runs and advances their ranges itself, so the minute is not lost and nothing is sent twice."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from flows.fanout import RANGE_DEPLOYMENT, advance_range
    from flows.pass_flows import loyalflow_pass

    async def pool() -> None:
        async with get_client() as client:
            try:
                await client.create_work_pool(WorkPoolCreate(name="nobody-home", type="process"))
            except ObjectAlreadyExists:
                pass

    asyncio.run(pool())
    deployment_id = advance_range.to_deployment(name=RANGE_DEPLOYMENT, work_pool_name="nobody-home").apply()
    members(sqlite_engine, 250, NOW)
    result = loyalflow_pass(NOW.isoformat(), chunk_size=100, range_deployment=f"loyalflow-advance-range/{RANGE_DEPLOYMENT}",
                            pickup_seconds=0)
    assert deployment_id is not None
    ranges = result["fan_out"]
    assert len(ranges) == 3 and {r["state"] for r in ranges} == {"CANCELLED"}, ranges
    assert {r["worker"] for r in ranges} == {"the pass (cancelled run)"}
    assert sum(r["sent"] for r in ranges) == 250 == result["totals"]["sent"]
    with Session(sqlite_engine) as s:
        assert s.scalar(select(func.count()).where(Send.status == SendStatus.sent)) == 250
    assert len(list((flow_env / "email").glob("*.eml"))) == 250


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_one_pass_on_postgresql(postgres_engine: Engine, postgres_url: str, tmp_path: Path) -> None:
    members(postgres_engine, MEMBERS, NOW)
    with prefect_pool(tmp_path, postgres_url, ["fanout-a", "fanout-b"]) as pool:
        workers = pool.identities()  # what a range records as its worker -> the worker's name
        run = run_pass(pool, NOW, CHUNK)
        assert run["state_type"] == "COMPLETED", run["state"]
        ranges = pool.artifact_table("loyalflow-fan-out", run["id"])
        outputs = {name: pool.worker_output(name) for name in pool.workers}

    # the split: one range run per CHUNK due enrollments, each completed by a worker of the pool, both took some
    assert len(ranges) == math.ceil(MEMBERS / CHUNK), ranges
    assert {r["state"] for r in ranges} == {"COMPLETED"}, ranges
    by_name = Counter(workers[r["worker"].split("/", 1)[1]] for r in ranges)
    assert set(by_name) == {"fanout-a", "fanout-b"}, by_name
    assert sum(r["advanced"] for r in ranges) == MEMBERS == sum(r["sent"] for r in ranges)  # nobody sent twice
    assert all(r["run_seconds"] >= r["launch_seconds"] > 0 and r["queued_seconds"] >= 0 for r in ranges), ranges
    assert all(r["run_seconds"] > r["engine_seconds"] > 0 and r["overhead_seconds"] > 0 for r in ranges), ranges
    # the pass's own line, and the split line, in the output of the worker that ran it
    ran_pass = [o for o in outputs.values() if "loyalflow pass at" in o]
    assert len(ran_pass) == 1, outputs
    assert re.search(rf"loyalflow pass at 2026-11-23T15:00:00Z: enrolled {MEMBERS}, advanced {MEMBERS}, "
                     rf"sent {MEMBERS}", ran_pass[0]), ran_pass[0][-3000:]
    assert re.search(rf"fanned out {len(ranges)} ranges: .+; overhead per run median [\d.]+ s", ran_pass[0])

    # the database: every enrollment advanced once, one ledger row per (enrollment, step), one email each
    with Session(postgres_engine) as s:
        enrollments = s.scalar(select(func.count()).select_from(Enrollment).where(Enrollment.journey == "welcome"))
        per_step = s.execute(select(Send.enrollment_id, Send.step_key, func.count())
                             .group_by(Send.enrollment_id, Send.step_key)).all()
        per_enrollment = Counter(e for e, _, _ in per_step)
        sent = s.scalars(select(Send.id).where(Send.status == SendStatus.sent)).all()
        leased = s.scalar(select(func.count()).select_from(Enrollment).where(Enrollment.lease_owner.is_not(None)))
    assert enrollments == MEMBERS == len(per_step) == len(sent)
    assert max(n for _, _, n in per_step) == 1 and set(per_enrollment.values()) == {1}
    assert leased == 0  # every range released its leases
    mails = list((tmp_path / "outbox" / "email").glob("*.eml"))
    assert sorted(int(p.stem) for p in mails) == sorted(sent)
