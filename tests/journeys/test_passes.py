"""Passes: entry on each journey's cron (coalesced, persisted), progress by due time across journeys in
priority order, an empty pass in one query, and the clock a runtime sleeps on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from channels.consent import record_consent
from journeys.dsl import Journey, email, send, wait
from journeys.engine import enroll_journey
from journeys.models import Enrollment, EnrollmentStatus, JourneyClock, Send as LedgerRow, SendStatus
from journeys import passes
from journeys.passes import advance_due, due_journeys, enroll_due, next_due, run_pass
from journeys.registry import get_journey, journeys
from journeys.services import Services
from tests.audiences import builders as b
from channels.adapters import MemoryAdapter as Recorder

UTC = timezone.utc
FIRE = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def hello(name: str, priority: int, schedule: str = "0 15 * * *") -> Journey:
    """A marketing journey: one email to new members at its cron."""
    return Journey(name=name, description="test", version=1, purpose="marketing", audience="new_members",
                   audience_params={"within_days": 3}, schedule=schedule, priority=priority,
                   steps=[send(email("welcome/email_welcome"), key=f"{name}_hello")])


def new_member(engine: Engine, member_id: int, joined: datetime, consent: bool = True) -> None:
    with Session(engine) as s:
        b.member(s, member_id, enrolled_at=joined)
        if consent:
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="email", purpose="marketing",
                           action="opt_in", source="form", occurred_at=joined)
        s.commit()


def test_an_empty_pass_is_one_query(engine: Engine, services: Services) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    defs = journeys()
    run_pass(factory, defs, FIRE, services)  # the first pass reads the clocks and enrolls (nobody here)
    with factory() as session:
        assert session.scalars(select(JourneyClock.journey)).all()  # every cron journey's clock is kept
    quiet = [FIRE + timedelta(seconds=s) for s in (20, 40, 60, 90)]  # before any journey's next fire
    assert any(j.trigger is not None for j in defs.values())  # first_purchase starts from an event
    with statements(engine) as seen:
        result = run_pass(factory, defs, quiet[0], services)
    assert result.total.advanced == 0 and result.total.enrolled == 0
    assert len(seen) == 1, seen  # due steps per journey and the newest event id, in one statement
    assert "FROM enrollments" in seen[0] and "due_at <=" in seen[0] and "FROM events" in seen[0]
    with statements(engine) as seen:
        for now in quiet[1:]:
            run_pass(factory, defs, now, services)
    assert len(seen) == 3, seen


def test_a_pass_with_nothing_fired_but_steps_due_only_advances(sqlite_engine: Engine, services: Services,
                                                               recorder: Recorder) -> None:
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = replace(hello("later", 50), steps=(wait(minutes=5), send(email("welcome/email_welcome"))))
    new_member(sqlite_engine, 1, FIRE - timedelta(hours=1))
    assert run_pass(factory, {"later": journey}, FIRE, services).total.enrolled == 1
    with factory() as session:
        assert due_journeys(session, FIRE) == {}
        assert next_due(session) == FIRE + timedelta(minutes=5)
        assert due_journeys(session, FIRE + timedelta(minutes=5)) == {"later": 1}
    assert run_pass(factory, {"later": journey}, FIRE + timedelta(minutes=4, seconds=59), services).total.advanced == 0
    done = run_pass(factory, {"later": journey}, FIRE + timedelta(minutes=5, seconds=20), services)
    assert done.journeys["later"].sent == {"email": 1} and done.journeys["later"].enrolled == 0
    with factory() as session:
        assert next_due(session) is None


def test_entry_coalesces_missed_fires_at_the_latest_and_never_replays_history(engine: Engine) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    hourly = hello("hourly", 50, schedule="0 * * * *")
    new_member(engine, 1, FIRE - timedelta(hours=30))  # within 3 days of every fire below
    # first pass ever, 20 minutes after a fire: enrolls at that fire, not at every fire since the epoch
    first = enroll_due(factory, {"hourly": hourly}, FIRE + timedelta(minutes=20))
    assert first["hourly"].enrolled == 1
    with factory() as session:
        assert session.get(JourneyClock, "hourly").last_fire_at == FIRE  # type: ignore[union-attr]
        assert session.scalar(select(Enrollment.enrolled_at)) == FIRE
    assert enroll_due(factory, {"hourly": hourly}, FIRE + timedelta(minutes=59)) == {}
    # the runtime was down for 5 hours: one entry, at the latest fire, with the audience of that instant
    new_member(engine, 2, FIRE + timedelta(hours=4, minutes=30))
    new_member(engine, 3, FIRE + timedelta(hours=5, minutes=10))  # joined after the latest fire
    late = enroll_due(factory, {"hourly": hourly}, FIRE + timedelta(hours=5, minutes=30))
    assert late["hourly"].enrolled == 1
    with factory() as session:
        rows = dict(session.execute(select(Enrollment.recipient_id, Enrollment.enrolled_at)).all())
        assert session.get(JourneyClock, "hourly").last_fire_at == FIRE + timedelta(hours=5)  # type: ignore[union-attr]
    assert rows == {1: FIRE, 2: FIRE + timedelta(hours=5)}
    # a second runtime with a cold cache finds the fire taken and enrolls nothing
    from journeys import clocks

    clocks._cache.clear()
    assert enroll_due(factory, {"hourly": hourly}, FIRE + timedelta(hours=5, minutes=40)) == {}


@pytest.mark.parametrize("first", ["low", "high"])
def test_the_higher_priority_gets_the_last_slot_whichever_enrolled_first(engine: Engine, services: Services,
                                                                        recorder: Recorder, first: str) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    low, high = hello("low_priority", 30), hello("high_priority", 70)
    new_member(engine, 1, FIRE - timedelta(hours=2))
    with Session(engine) as s:  # two marketing messages this week already: one slot left of 3
        earlier = Enrollment(journey="earlier", journey_version=1, recipient_kind="member", recipient_id=1,
                             occurrence_key="once", enrolled_at=FIRE - timedelta(days=3), step_index=2,
                             status=EnrollmentStatus.completed, due_at=None, context={}, updated_at=FIRE)
        s.add(earlier)
        s.flush()
        for n in (1, 2):
            s.add(LedgerRow(enrollment_id=earlier.id, step_key=f"m{n}", journey="earlier", recipient_kind="member",
                            recipient_id=1, purpose="marketing", channel="email", template="welcome/email_welcome",
                            status=SendStatus.sent, attempts=1, reserved_at=FIRE - timedelta(days=n),
                            sent_at=FIRE - timedelta(days=n), updated_at=FIRE))
        s.commit()
    order = [low, high] if first == "low" else [high, low]
    for journey in order:  # the enrollments exist in this order before the pass advances them
        assert enroll_journey(factory, journey, FIRE).enrolled == 1
    result = run_pass(factory, {"low_priority": low, "high_priority": high}, FIRE + timedelta(seconds=15), services)
    assert result.journeys["high_priority"].sent == {"email": 1}
    assert result.journeys["low_priority"].skipped == {"frequency_cap": 1}
    assert [m.journey for m in recorder.requests] == ["high_priority"]
    with Session(engine) as s:
        ledger = {r.journey: (r.status, r.reason) for r in s.scalars(select(LedgerRow).where(LedgerRow.journey != "earlier"))}
    assert ledger == {"high_priority": (SendStatus.sent, None), "low_priority": (SendStatus.skipped, "frequency_cap")}


def test_advance_due_takes_journeys_in_priority_order(sqlite_engine: Engine, services: Services,
                                                     recorder: Recorder) -> None:
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    defs = {j.name: j for j in (hello("a_low", 10), hello("b_mid", 50), hello("c_high", 90))}
    new_member(sqlite_engine, 1, FIRE - timedelta(hours=2))
    for journey in defs.values():
        enroll_journey(factory, journey, FIRE)
    stats = advance_due(factory, defs, FIRE, services)
    assert list(stats) == ["c_high", "b_mid", "a_low"]
    assert [m.journey for m in recorder.requests] == ["c_high", "b_mid", "a_low"]  # the cap (3) lets all three go


def test_progress_never_waits_for_the_journeys_cron(sqlite_engine: Engine, services: Services,
                                                    recorder: Recorder) -> None:
    """points_expiring's cron is 06:00 UTC; its 10:00 New York reminder goes at 10:00 New York."""
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = get_journey("points_expiring")
    with Session(sqlite_engine) as s:
        m = b.member(s, 1, enrolled_at=FIRE - timedelta(days=400))
        b.earn(s, m, 500, FIRE - timedelta(days=300), b.local_midnight("2026-12-25", "America/New_York"))
        s.commit()
    six = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert run_pass(factory, {"points_expiring": journey}, six, services).total.enrolled == 1
    with factory() as session:
        due = next_due(session)
    assert due == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 30 days before expiry, 10:00 EST
    assert run_pass(factory, {"points_expiring": journey}, due - timedelta(seconds=20), services).total.messages == 0
    assert run_pass(factory, {"points_expiring": journey}, due + timedelta(seconds=40), services).total.messages == 1
    assert [(m.step, m.channel) for m in recorder.requests] == [("email_30d", "email")]
