"""Event-triggered journeys: entry from events (set-based, cursor, filters), the event in the
template context, exit on a later event, and `loyalflow check` for journeys without an audience."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.events import ingest, property_filter
from audiences.models import DeviceToken, Event, EventCursor
from journeys.check import _Templates, check_journey, check_journeys
from journeys.engine import advance
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus
from journeys.registry import get_journey
from journeys.triggers import enroll_triggered, newest_unread
from templates import TemplateLibrary
from tests.events.events_data import NOW, add_members, factory, purchase

JOURNEY = get_journey("first_purchase")


def post(engine: Engine, events: list[dict], now=NOW) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        results = ingest(s, events, now)
        s.commit()
    return [r.status for r in results]


def test_events_enroll_with_their_properties_once_and_the_cursor_moves(engine: Engine, services, recorder) -> None:  # type: ignore[no-untyped-def]
    add_members(engine, 4)
    assert post(engine, [
        purchase("p1", 1, NOW - timedelta(minutes=3), amount=54.9, store_name="Lyon Part-Dieu"),
        purchase("p2", 2, NOW - timedelta(minutes=2), first_purchase=False),       # filtered out by where=
        purchase("p3", 3, NOW - timedelta(days=2)),                                # older than max_age (1 day)
        {**purchase("r1", 4, NOW - timedelta(minutes=1)), "type": "redemption"},  # another type
    ]) == ["accepted"] * 4
    sessions = factory(engine)
    assert enroll_triggered(sessions, {"first_purchase": JOURNEY}, NOW)["first_purchase"].enrolled == 1
    with Session(engine) as s:
        row = s.execute(select(Enrollment)).scalar_one()
        event = s.execute(select(Event).where(Event.idempotency_key == "p1")).scalar_one()
        assert (row.recipient_id, row.occurrence_key, row.enrolled_at, row.due_at) == (1, "p1", event.occurred_at, NOW)
        context = dict(row.context)
        assert {k: context[k] for k in ("amount", "currency", "store_name", "points_earned", "first_purchase",
                                        "event_id", "event_type", "time_zone")} == {
            "amount": 54.9, "currency": "EUR", "store_name": "Lyon Part-Dieu", "points_earned": 55,
            "first_purchase": True, "event_id": event.id, "event_type": "purchase", "time_zone": "Europe/Paris"}
        cursor = s.get(EventCursor, "journey:first_purchase")
        assert cursor is not None and cursor.last_event_id == max(s.scalars(select(Event.id).where(Event.type == "purchase")))
        assert newest_unread(s, JOURNEY) is None  # nothing new: one index seek says so
    assert enroll_triggered(sessions, {"first_purchase": JOURNEY}, NOW) == {}

    stats = advance(sessions, JOURNEY, NOW, services)
    assert stats.sent["email"] == 1
    (message,) = recorder.messages
    assert message.recipient_id == 1 and message.step == "thanks"
    assert "Lyon Part-Dieu" in message.content.html and "54,90" in message.content.html  # fr locale, EUR
    assert "55 points" in message.content.html

    assert post(engine, [purchase("p1", 1, NOW), purchase("p4", 2, NOW)]) == ["duplicate", "accepted"]
    assert enroll_triggered(sessions, [JOURNEY], NOW + timedelta(minutes=1))["first_purchase"].enrolled == 1
    with Session(engine) as s:
        assert sorted(s.execute(select(Enrollment.recipient_id, Enrollment.occurrence_key)).all()) == [(1, "p1"), (2, "p4")]


def test_a_redemption_after_the_purchase_exits_the_journey(engine: Engine, services, recorder) -> None:  # type: ignore[no-untyped-def]
    add_members(engine, 2)
    with Session(engine) as s:
        s.add_all(DeviceToken(member_id=i, platform="android", token=f"tok-{i}", created_at=NOW - timedelta(days=9))
                  for i in (1, 2))
        s.commit()
    sessions = factory(engine)
    post(engine, [purchase("p1", 1, NOW - timedelta(minutes=5)), purchase("p2", 2, NOW - timedelta(minutes=5))])
    enroll_triggered(sessions, [JOURNEY], NOW)
    advance(sessions, JOURNEY, NOW, services)
    later = NOW + timedelta(days=1)
    assert post(engine, [{"type": "redemption", "member_id": 1, "occurred_at": later.isoformat(),
                          "idempotency_key": "r1", "properties": {"points": 40}}], later) == ["accepted"]
    reminder_day = NOW + timedelta(days=4)
    stats = advance(sessions, JOURNEY, reminder_day, services)
    assert stats.exited == {"event_redemption": 1}
    assert stats.sent["push"] == 1
    with Session(engine) as s:
        rows = dict(s.execute(select(Enrollment.recipient_id, Enrollment.status)).all())
        assert rows == {1: EnrollmentStatus.exited, 2: EnrollmentStatus.completed}
        sent = s.execute(select(Send.recipient_id, Send.step_key, Send.channel).where(Send.status == SendStatus.sent)
                         .order_by(Send.id)).all()
    assert sent == [(1, "thanks", "email"), (2, "thanks", "email"), (2, "points_reminder", "push")]
    push = recorder.messages[-1]
    assert push.recipient_id == 2 and "55" in push.content.title


def test_property_filters_compile_to_sql_alike_on_both_databases(engine: Engine) -> None:
    add_members(engine, 1)
    post(engine, [purchase(f"k{i}", 1, NOW, amount=amount, store_name=store, first_purchase=first)
                  for i, (amount, store, first) in enumerate([(10, "A", True), (10.0, "B", False), (99.5, "A", False)])])

    def keys(match: dict) -> list[str]:
        with Session(engine) as s:
            return list(s.scalars(select(Event.idempotency_key).where(property_filter(match)).order_by(Event.id)))

    assert keys({}) == ["k0", "k1", "k2"]
    assert keys({"amount": 10}) == ["k0", "k1"]
    assert keys({"first_purchase": True}) == ["k0"]
    assert keys({"first_purchase": False, "store_name": "A"}) == ["k2"]
    assert keys({"store_name": ["B", "A"], "amount": [99.5, 1]}) == ["k2"]
    assert keys({"missing": "x"}) == []


def test_check_accepts_the_shipped_event_journey_and_checks_templates_against_declared_properties(tmp_path: Path) -> None:
    library = TemplateLibrary.load(eager=False)
    assert check_journey(JOURNEY, _Templates(library)) == []
    journey_file = tmp_path / "thin.py"
    journey_file.write_text(textwrap.dedent('''
        from journeys.dsl import Journey, email, event, send

        JOURNEY = Journey(
            name="thin", description="", version=1, purpose="transactional",
            trigger=event("purchase", properties={"amount": float, "currency": str, "points_earned": int,
                                                  "event_id": int}),
            steps=[send(email("first_purchase/email_thanks"))],
        )
    '''))
    problems = [str(p) for p in check_journeys([journey_file], library=library)]
    assert any(f"{journey_file}:6:" in p and "'event_id' is not a usable property name" in p for p in problems), problems
    missing = [p for p in problems if f"{journey_file}:8:" in p and "uses store_name" in p and "event 'purchase'" in p]
    shipped = len(library.locales("first_purchase", "email_thanks"))
    assert len(missing) == shipped and len(problems) == shipped + 1, problems  # one per shipped locale

    neither = tmp_path / "neither.py"
    neither.write_text('from journeys.dsl import Journey\nJOURNEY = Journey(name="n", description="", version=1,\n'
                       '                  purpose="transactional", steps=[])\n')
    (problem,) = check_journeys([neither], library=library)
    assert problem.path == str(neither) and "neither an audience nor a trigger" in problem.message


def test_a_tick_of_an_event_journey_takes_its_new_events(sqlite_engine: Engine, services, recorder) -> None:  # type: ignore[no-untyped-def]
    from journeys.engine import tick

    add_members(sqlite_engine, 2)
    post(sqlite_engine, [purchase("t1", 1, NOW - timedelta(minutes=1)), purchase("t2", 2, NOW - timedelta(minutes=1))])
    stats = tick(factory(sqlite_engine), JOURNEY, NOW, services)  # `loyalflow run first_purchase`, a Prefect tick
    assert (stats.enrolled, stats.sent["email"]) == (2, 2)
    assert tick(factory(sqlite_engine), JOURNEY, NOW + timedelta(minutes=1), services).enrolled == 0
    assert sorted(m.recipient_id for m in recorder.messages) == [1, 2]


def test_event_entries_honour_holdout_and_rollout(sqlite_engine: Engine, services, recorder) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from journeys.holdout import bucket, threshold

    journey = replace(JOURNEY, name="fp_split", holdout_percent=30.0, rollout_percent=80.0)
    add_members(sqlite_engine, 60)
    post(sqlite_engine, [purchase(f"s{i}", i, NOW - timedelta(minutes=1)) for i in range(1, 61)])
    stats = enroll_triggered(factory(sqlite_engine), [journey], NOW)["fp_split"]
    rolled = [i for i in range(1, 61) if bucket(i, "fp_split", "rollout") < threshold(80.0)]
    held = [i for i in rolled if bucket(i, "fp_split", "holdout") < threshold(30.0)]
    assert (stats.enrolled, stats.held_out) == (len(rolled), len(held)) and 0 < len(held) < len(rolled) < 60
    advance(factory(sqlite_engine), journey, NOW, services)
    assert sorted(m.recipient_id for m in recorder.messages) == sorted(set(rolled) - set(held))
