"""`simulate` agrees with a real run: a pass at every minute of the same days, on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from journeys.passes import run_pass
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import Day, start_clocks
from tests.journeys.recording import RecordingAdapter
from tests.journeys.test_simulate import START, populate, run

DAYS = 40


@pytest.mark.slow
def test_simulation_equals_a_run_that_passes_every_minute(sqlite_engine: Engine) -> None:
    populate(sqlite_engine)
    simulated = run(sqlite_engine)  # in a sandbox: the database is untouched

    journey = get_journey("points_expiring")
    rec = RecordingAdapter()
    services = services_for(rec)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    start_clocks(factory, [journey.name], START)
    days = {START.date() + timedelta(days=i): Day(START.date() + timedelta(days=i)) for i in range(DAYS)}
    for minute in range(DAYS * 24 * 60):
        now = START + timedelta(minutes=minute)
        days[now.date()].stats.merge(run_pass(factory, {journey.name: journey}, now, services).total)
    real = [d.row() for d in days.values()]
    assert sum(sum(d["sent"].values()) for d in real) == len(rec.messages) > 0
    assert real == simulated
