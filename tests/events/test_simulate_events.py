"""`simulate --events` agrees with a real run: the same events posted through the real app at their
instants (each waking a pass, as the embedded runtime does) and `run_pass` on the minute cadence."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import DeviceToken, Member
from journeys.event_simulation import EventFileInvalid, simulate_events
from journeys.models import Enrollment, Send
from journeys.passes import run_pass
from journeys.registry import get_journey
from journeys.services import default_services, services_for
from journeys.simulate import Day
from journeys.stats import TickStats
from tests.events.events_data import AUTH, purchase

START = datetime(2026, 12, 1, tzinfo=timezone.utc)
DAYS = 5
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Auckland"]
JOURNEY = get_journey("first_purchase")


def populate(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 13):
            s.add(Member(id=i, first_name=f"M{i}", email=f"m{i}@example.com", phone="+33612345678" if i % 3 == 0 else None,
                         locale=["fr", "en", "de", "es"][i % 4], time_zone=ZONES[i % len(ZONES)], country="FR",
                         enrolled_at=START - timedelta(days=40)))
        s.flush()
        s.add_all(DeviceToken(member_id=i, platform="ios", token=f"t{i}", created_at=START - timedelta(days=9))
                  for i in range(1, 13) if i % 2)
        s.commit()


def events_file(tmp_path: Path) -> Path:
    lines = []
    for i in range(1, 13):
        at = START + timedelta(hours=7 * i, minutes=13 * i, seconds=17 * i)  # spread over days 0-3, not on minutes
        lines.append(purchase(f"p{i}", i, at, amount=10.5 * i, first_purchase=i != 7))
        if i in (2, 5, 9):  # they redeem before the reminder: they exit
            lines.append({"type": "redemption", "member_id": i, "occurred_at": (at + timedelta(days=1)).isoformat(),
                          "idempotency_key": f"r{i}", "properties": {"points": 20}})
    lines.append(lines[0])  # a repeated line is a duplicate, as in an import
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    return path


def real_run(engine: Engine, path: Path, client_for, recorder) -> list[dict]:  # type: ignore[no-untyped-def]
    """Post each event at its instant (a wake pass right after it), and a pass every minute."""
    services = services_for(recorder)
    sessions = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    journeys = {JOURNEY.name: JOURNEY}
    events = sorted((json.loads(line) for line in path.read_text().splitlines()),
                    key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    days = {START.date() + timedelta(days=i): Day(START.date() + timedelta(days=i)) for i in range(DAYS)}

    def pass_at(now: datetime) -> None:
        stats: TickStats = run_pass(sessions, journeys, now, services).journeys.get(JOURNEY.name, TickStats())
        days[now.date()].stats.merge(stats)

    minute, end = START, START + timedelta(days=DAYS)
    while minute < end:
        while events and datetime.fromisoformat(events[0]["occurred_at"]) <= minute:
            event = events.pop(0)
            at = datetime.fromisoformat(event["occurred_at"])
            answer = client_for(engine, now=at).post("/v1/events", json=event, headers=AUTH)
            assert answer.status_code == 200
            pass_at(at)  # the accepted event wakes the runtime
        pass_at(minute)
        minute += timedelta(minutes=1)
    return [d.row() for d in days.values()]


@pytest.mark.slow
def test_simulation_from_a_file_agrees_with_the_real_run(engine: Engine, tmp_path: Path, client_for, recorder) -> None:  # type: ignore[no-untyped-def]
    populate(engine)
    path = events_file(tmp_path)
    simulated = [d.row() for d in simulate_events(
        engine, JOURNEY, str(path), START, DAYS, lambda a: services_for(a))]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Enrollment)) == 0  # the simulation kept nothing
    real = real_run(engine, path, client_for, recorder)
    assert simulated == real
    totals = Counter()
    for row in real:
        totals.update({f"sent_{k}": v for k, v in row["sent"].items()})
        totals.update({f"exited_{k}": v for k, v in row["exited"].items()})
        totals["enrolled"] += row["enrolled"]
    assert totals["enrolled"] == 11 and totals["sent_email"] == 11
    assert totals["exited_event_redemption"] == 2  # 9 redeems too, but its reminder falls after the window
    assert totals["sent_push"] + totals["sent_sms"] > 0
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Send).where(Send.channel == "email")) == 11


def test_cli_simulate_with_events_and_its_errors(sqlite_engine: Engine, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flows.cli import app

    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    populate(sqlite_engine)
    path = events_file(tmp_path)
    args = ["simulate", "first_purchase", "--start", "2026-12-01", "--days", str(DAYS), "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--events", str(path)])
    assert result.exit_code == 0, result.output
    days = json.loads(result.output)["days"]
    assert sum(d["enrolled"] for d in days) == 11 and sum(d["sent"].get("email", 0) for d in days) == 11
    no_file = CliRunner().invoke(app, args)
    assert no_file.exit_code != 0 and "--events" in str(no_file.exception or no_file.output)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(purchase("x", 1, START)) + "\n" + '{"type": "purchase"}\n'
                   + json.dumps(purchase("y", 99, START)) + "\n")
    with pytest.raises(EventFileInvalid, match=rf"{bad}:2: member_id is required"):
        simulate_events(sqlite_engine, JOURNEY, str(bad), START, DAYS, lambda a: default_services(adapters={}))
    bad.write_text(json.dumps(purchase("y", 99, START)) + "\n")
    with pytest.raises(EventFileInvalid, match=rf"{bad}:1: member_id no member has this id"):
        simulate_events(sqlite_engine, JOURNEY, str(bad), START, DAYS, lambda a: default_services(adapters={}))


def test_simulate_with_events_shows_an_ab_steps_split(sqlite_engine: Engine, tmp_path: Path) -> None:
    """An event-entered journey with an A/B send: `simulate --events` counts sends per variant, each
    member in the variant its hash gives (the variant is picked at the send, as for any event entry)."""
    import dataclasses

    from journeys.dsl import Send as SendStep
    from journeys.dsl import email, send
    from journeys.variants import assign

    thanks = send(email("first_purchase/email_thanks"), key="thanks", variants={"warm": 50, "short": 50})
    assert isinstance(thanks, SendStep)
    journey = dataclasses.replace(JOURNEY, name="first_purchase_ab", steps=[thanks])
    populate(sqlite_engine)
    days = simulate_events(sqlite_engine, journey, str(events_file(tmp_path)), START, DAYS,
                           lambda a: services_for(a))
    split = Counter()
    for day in days:
        split.update(day.row().get("variants", {}))
    expected = Counter(assign(i, journey.name, thanks.variants) for i in range(1, 13) if i != 7)  # 7: not a first purchase
    assert split == expected and sum(split.values()) == 11
    assert set(split) == {"warm", "short"}
