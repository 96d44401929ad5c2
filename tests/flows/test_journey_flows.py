"""The Prefect flows: a journey tick in chunks as tasks, artifacts, the run lock, tick-all and
the simulation flow, under one Prefect test harness."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from journeys.locks import LockHeld, release, try_acquire
from journeys.models import Send, SendStatus
from tests.audiences import builders as b

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.usefixtures("prefect_api")


def members(engine: Engine, n: int) -> None:
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        for i in range(1, n + 1):
            b.member(s, i, enrolled_at=NOW - timedelta(hours=1 + i % 40), tier=tiers["bronze"])
        s.commit()


def emails(outbox: Path) -> list[Path]:
    return sorted((outbox / "email").glob("*.eml")) if (outbox / "email").exists() else []


def sent(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).where(Send.status == SendStatus.sent)) or 0)


def test_journey_tick_flow_sends_each_member_once_in_chunks(sqlite_engine: Engine, flow_env: Path) -> None:
    from flows.journey_flows import journey_tick

    members(sqlite_engine, 350)
    first = journey_tick("welcome", NOW.isoformat(), chunk_size=100)  # 4 advance tasks
    again = journey_tick("welcome", NOW.isoformat(), chunk_size=100)
    assert first["enrolled"] == 350 and first["sent"] == {"email": 350}
    assert again["enrolled"] == 0 and again["sent"] == {}
    assert len(emails(flow_env)) == 350 == sent(sqlite_engine)


def test_the_run_leaves_artifacts(sqlite_engine: Engine, flow_env: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.journey_flows import journey_tick

    members(sqlite_engine, 5)
    state = journey_tick("welcome", NOW.isoformat(), return_state=True)
    run_id = state.state_details.flow_run_id

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["welcome-counts", "welcome-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))

    found = {a.key: a for a in asyncio.run(read())}
    assert set(found) == {"welcome-counts", "welcome-summary"}
    assert "sent **5**" in str(found["welcome-summary"].data)


def test_a_journey_already_running_is_not_run_again(sqlite_engine: Engine, flow_env: Path) -> None:
    from flows.journey_flows import journey_tick

    members(sqlite_engine, 5)
    with Session(sqlite_engine) as s:
        assert try_acquire(s, "journey:welcome", "someone-else", datetime.now(timezone.utc), timedelta(hours=1))
    with pytest.raises(LockHeld):
        journey_tick("welcome", NOW.isoformat())
    assert sent(sqlite_engine) == 0 and emails(flow_env) == []
    with Session(sqlite_engine) as s:
        release(s, "journey:welcome", "someone-else")
    assert journey_tick("welcome", NOW.isoformat())["sent"] == {"email": 5}


def test_tick_all_runs_every_journey(sqlite_engine: Engine, flow_env: Path) -> None:
    from flows.journey_flows import tick_all

    members(sqlite_engine, 3)
    result = tick_all(NOW.isoformat())
    assert set(result) == {"first_purchase", "points_expiring", "staff_bulletin", "tier_up", "welcome", "win_back"}
    assert result["welcome"]["sent"] == {"email": 3}


def test_simulation_flow_is_a_task_per_day(sqlite_engine: Engine, flow_env: Path) -> None:
    from flows.journey_flows import simulate_program

    members(sqlite_engine, 20)
    days = simulate_program((NOW - timedelta(hours=15)).isoformat(), 3, ["welcome"])
    assert [d["date"] for d in days] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    assert days[0]["journeys"]["welcome"]["sent"]["email"] == 20
    assert sent(sqlite_engine) == len(emails(flow_env))


def run_name(run_id) -> str:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).name

    return asyncio.run(read())


def test_journey_tick_runs_are_named_for_the_journey_and_instant(sqlite_engine: Engine, flow_env: Path) -> None:
    from flows.journey_flows import journey_tick

    members(sqlite_engine, 2)
    state = journey_tick("welcome", NOW.isoformat(), return_state=True)
    assert run_name(state.state_details.flow_run_id) == "welcome 2026-11-23T15:00Z"


def test_the_pass_flow_fans_large_journeys_out_and_runs_the_rest_inline(sqlite_engine: Engine, flow_env: Path) -> None:
    """The production pass: welcome (350 due) becomes 4 advance-chunk tasks, tier_up runs inline, and the
    clock of each journey makes a repeated run a no-op."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pass_flows import loyalflow_pass

    members(sqlite_engine, 350)
    state = loyalflow_pass(NOW.isoformat(), chunk_size=100, return_state=True)
    result = state.result()
    assert result["totals"]["sent"] == 350 and result["journeys"]["welcome"]["sent"] == {"email": 350}
    run_id = state.state_details.flow_run_id
    assert run_name(run_id) == "pass 2026-11-23T15:00Z"

    async def task_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            return sorted(r.name for r in runs)

    names = asyncio.run(task_names())
    assert len(names) == 4 and all(n.startswith("advance welcome [") for n in names), names
    again = loyalflow_pass(NOW.isoformat(), chunk_size=100)
    assert again["totals"]["enrolled"] == 0 and again["totals"]["sent"] == 0
    assert len(emails(flow_env)) == 350 == sent(sqlite_engine)


def test_an_empty_pass_records_no_task_runs(sqlite_engine: Engine, flow_env: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pass_flows import loyalflow_pass

    loyalflow_pass(NOW.isoformat())  # the first pass sets every journey's clock
    state = loyalflow_pass((NOW + timedelta(seconds=30)).isoformat(), return_state=True)
    assert state.result()["totals"] == {"enrolled": 0, "advanced": 0, "sent": 0, "skipped": 0, "failed": 0,
                                        "exited": 0}

    async def count() -> int:
        async with get_client() as client:
            return len(await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))))

    assert asyncio.run(count()) == 0
