"""Simulation is deterministic, sends nothing and leaves the database exactly as it was."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import MemberStatus
from journeys.models import Enrollment, Send
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import simulate
from tests.audiences import builders as b

START = datetime(2026, 11, 23, tzinfo=timezone.utc)


def populate(engine: Engine) -> None:
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, 41):
            m = b.member(s, i, enrolled_at=START - b.days(500), zone=["Europe/Paris", "Pacific/Auckland"][i % 2],
                         status=MemberStatus.active)
            b.earn(s, m, 10 * i, START - b.days(330), b.local_midnight((START + b.days(i)).date().isoformat(), m.time_zone))
            if i % 5 == 0:
                b.spend(s, m, 10 * i, START + b.days(i // 2))  # redeems before the batch expires: exits
        s.commit()


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s:
        return (int(s.scalar(select(func.count()).select_from(Enrollment)) or 0),
                int(s.scalar(select(func.count()).select_from(Send)) or 0))


def run(engine: Engine) -> list[dict]:
    journey = get_journey("points_expiring")
    days = simulate(engine, journey, START, 40,
                    lambda a: services_for(a))
    return [d.row() for d in days]


def test_simulation_is_deterministic_and_changes_nothing(engine: Engine) -> None:
    populate(engine)
    first, second = run(engine), run(engine)
    assert first == second
    assert counts(engine) == (0, 0)
    total_sent = sum(sum(day["sent"].values()) for day in first)
    enrolled = sum(day["enrolled"] for day in first)
    exited = sum(day["exited"].get("batch_spent", 0) for day in first)
    assert enrolled == 40 and exited > 0 and total_sent > 0
    assert any(day["skipped"].get("stale") for day in first)  # late entrants never get the 30-day mail


def test_cli_simulate_json_and_csv(sqlite_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flows.cli import app

    populate(sqlite_engine)
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    as_json = CliRunner().invoke(app, ["simulate", "points_expiring", "--start", "2026-11-23", "--days", "40",
                                       "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    days = json.loads(as_json.output)["days"]
    assert len(days) == 40 and days[0]["date"] == "2026-11-23"
    as_csv = CliRunner().invoke(app, ["simulate", "points_expiring", "--start", "2026-11-23", "--days", "40",
                                      "--format", "csv"])
    lines = as_csv.output.strip().splitlines()
    assert lines[0].startswith("date,enrolled,held_out,sent_email,sent_sms,sent_push")
    assert len(lines) == 41
    again = CliRunner().invoke(app, ["simulate", "points_expiring", "--start", "2026-11-23", "--days", "40",
                                     "--format", "csv"])
    assert again.output == as_csv.output
    assert counts(sqlite_engine) == (0, 0)
    unknown = CliRunner().invoke(app, ["simulate", "nope", "--start", "2026-11-23"])
    assert unknown.exit_code != 0
