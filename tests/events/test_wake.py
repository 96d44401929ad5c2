"""The embedded runtime reacts to an event without waiting for the minute tick: an event accepted
by `serve` in the same process wakes the pass directly; one written by another process (here:
straight into the database) is seen by the scheduler's wake probe."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audiences.events import ingest
from flows import scheduler
from journeys.registry import get_journey
from tests.events.events_data import AUTH, NOW, add_members, purchase

PATIENCE = 120.0  # seconds: generous on a loaded machine; the point is that no minute tick is involved


def wait_for(condition, timeout: float = PATIENCE) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture()
def runner_for(monkeypatch: pytest.MonkeyPatch, services):  # type: ignore[no-untyped-def]
    runners: list[scheduler.PassRunner] = []

    def make(engine: Engine, probe_seconds: float) -> scheduler.PassRunner:
        journey = get_journey("first_purchase")
        runner = scheduler.PassRunner(sessionmaker(engine, expire_on_commit=False), {journey.name: journey},
                                      services, clock=lambda: NOW, probe_seconds=probe_seconds)
        monkeypatch.setattr(scheduler, "_runner", runner)
        runners.append(runner)
        return runner

    yield make
    for r in runners:
        r.stop(timeout=PATIENCE)


def test_an_event_accepted_in_this_process_wakes_the_pass_at_once(sqlite_engine: Engine, client_for, runner_for,
                                                                  recorder) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    runner = runner_for(sqlite_engine, probe_seconds=3600)  # no probe, no tick within the test: only the wake
    runner.start()
    runner.wake()  # as scheduler.start does: a catch-up pass at start
    assert wait_for(lambda: runner.passes >= 1)
    before = runner.passes
    answer = client_for(sqlite_engine).post("/v1/events", json=purchase("w1", 1, NOW), headers=AUTH)
    assert answer.status_code == 200
    assert wait_for(lambda: len(recorder.messages) == 1), "the accepted event did not wake a pass"
    assert recorder.messages[0].recipient_id == 1
    assert wait_for(lambda: runner.passes > before)  # counted when that pass ends, just after it sent


def test_an_event_from_another_process_is_seen_by_the_wake_probe(sqlite_engine: Engine, runner_for, recorder) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    runner = runner_for(sqlite_engine, probe_seconds=0.05)
    runner.start()
    runner.wake()
    assert wait_for(lambda: runner.passes >= 1)
    with Session(sqlite_engine) as s:  # what `loyalflow events import` or another `serve` does: no wake call
        assert [r.status for r in ingest(s, [purchase("w2", 1, NOW)], NOW)] == ["accepted"]
        s.commit()
    assert wait_for(lambda: len(recorder.messages) == 1), "the wake probe did not notice the new event"
