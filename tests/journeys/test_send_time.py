"""Send-time optimisation: at="best" sends at the member's own most likely local hour (purchases and
opens of the last 180 days), in their zone, across DST; members without history get the fallback hour."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member
from channels.consent import record_consent
from channels.models import DeliveryEvent, DeliveryEventKind
from journeys.context_extras import win_back_offer
from journeys.dsl import Journey, email, send, wait
from journeys.engine import tick
from journeys.models import Enrollment, EnrollmentStatus, SendStatus
from journeys.models import Send as LedgerRow
from journeys.send_time import best_hours, rule_of, wall_time
from journeys.services import services_for
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
NY, TOKYO, PARIS = "America/New_York", "Asia/Tokyo", "Europe/Paris"
JOURNEY = Journey(name="best_time", description="test", version=1, purpose="marketing", audience="lapsed",
                  audience_params={"lapsed_days": 90}, occurrence_key="last_purchase_at", enrich=win_back_offer,
                  steps=[wait(days=1, at="best", fallback="10:00", best_holdout=0), send(email("win_back/email_offer"))])


def local(day_offset: int, hour: int, minute: int, zone: str) -> datetime:
    """`hour:minute` local time in `zone`, `day_offset` days from T0's date there."""
    day = (T0.astimezone(ZoneInfo(zone)) + timedelta(days=day_offset)).date()
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def populate(engine: Engine) -> dict[int, tuple[str, int | None]]:
    """Members and (zone, the best local hour expected, None for the fallback)."""
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        people = {}

        def person(mid: int, zone: str) -> Member:
            m = b.member(s, mid, enrolled_at=T0 - timedelta(days=900), zone=zone)
            record_consent(s, recipient_kind="member", recipient_id=mid, channel="email", purpose="marketing",
                           action="opt_in", source="form", occurred_at=T0 - timedelta(days=400))
            return m

        evening = person(1, NY)  # mostly evening shopper; one morning purchase
        for back in (100, 110, 125, 140, 160):
            b.buy(s, evening, "40.00", local(-back, 19, 15, NY))
        b.buy(s, evening, "40.00", local(-170, 9, 5, NY))
        people[1] = (NY, 19)
        night = person(2, TOKYO)
        for back in (95, 120, 150):
            b.buy(s, night, "40.00", local(-back, 20, 30, TOKYO))
        people[2] = (TOKYO, 20)
        none = person(3, NY)  # only history older than 180 days: the fallback hour
        b.buy(s, none, "40.00", local(-200, 19, 0, NY))
        b.buy(s, none, "40.00", local(-260, 19, 0, NY))
        people[3] = (NY, None)
        # Paris: three summer purchases at 18:xx CEST and one open at 18:xx CET last week; a conversion
        # with the zone's current offset would call the purchases 17:xx
        paris = person(4, PARIS)
        for back in (100, 130, 160):
            b.buy(s, paris, "40.00", local(-back, 18, 20, PARIS))
        other = Enrollment(journey="welcome", journey_version=1, recipient_kind="member", recipient_id=4,
                           occurrence_key="once", enrolled_at=T0 - timedelta(days=8), status=EnrollmentStatus.completed,
                           step_index=1, due_at=None, context={}, updated_at=T0 - timedelta(days=8))
        s.add(other)
        s.flush()
        row = LedgerRow(enrollment_id=other.id, step_key="email_welcome", journey="welcome", recipient_kind="member",
                        recipient_id=4, purpose="marketing", channel="email", template="welcome/email_welcome",
                        status=SendStatus.sent, attempts=1, reserved_at=T0 - timedelta(days=8),
                        sent_at=T0 - timedelta(days=8), updated_at=T0 - timedelta(days=8))
        s.add(row)
        s.flush()
        s.add(DeliveryEvent(provider="sendgrid", ledger_id=row.id, event=DeliveryEventKind.open,
                            occurred_at=local(-7, 18, 40, PARIS)))
        people[4] = (PARIS, 18)
        s.commit()
    return people


def test_the_wall_time_rule() -> None:
    step = JOURNEY.steps[0]
    assert wall_time(step, {"best_hour": 19}) == time(19) and rule_of({"best_hour": 19}) == "best"
    assert wall_time(step, {"best_hour": None}) == time(10) and rule_of({}) == "fallback"
    assert wall_time(step, {"best_hour": 24}) == time(10)  # nonsense from data never picks the hour
    assert wall_time(wait(days=1, at="18:00"), {"best_hour": 7}) == time(18)  # only at="best" uses it


def test_best_hours_are_the_mode_of_local_hours(engine: Engine) -> None:
    people = populate(engine)
    with Session(engine) as s:
        found = best_hours(s, list(people), T0)
    assert found == {mid: hour for mid, (_, hour) in people.items() if hour is not None}


@pytest.mark.slow
def test_members_get_their_own_evening_and_the_rest_the_fallback_hour(engine: Engine) -> None:
    people = populate(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    services = services_for(RecordingAdapter())
    tick(factory, JOURNEY, T0, services)
    with Session(engine) as s:
        enrollments = {e.recipient_id: e for e in s.scalars(select(Enrollment).where(Enrollment.journey == "best_time"))}
    assert set(enrollments) == set(people)
    expected: dict[int, datetime] = {}
    for mid, (zone, hour) in people.items():
        e = enrollments[mid]
        assert e.context["send_time_rule"] == ("fallback" if hour is None else "best")  # recorded for the report
        assert e.context.get("best_hour") == hour
        expected[mid] = local(1, 10 if hour is None else hour, 0, zone)  # the next local day, at that hour
        assert e.due_at == expected[mid]
    for due in sorted(set(expected.values())):
        tick(factory, JOURNEY, due + timedelta(seconds=20), services)
    with Session(engine) as s:
        sent = dict(s.execute(select(LedgerRow.recipient_id, LedgerRow.sent_at)
                              .where(LedgerRow.journey == "best_time", LedgerRow.status == SendStatus.sent)).all())
    assert sent == {mid: at + timedelta(seconds=20) for mid, at in expected.items()}
    for mid, (zone, hour) in people.items():
        assert sent[mid].astimezone(ZoneInfo(zone)).hour == (10 if hour is None else hour)


def test_at_best_is_refused_where_it_makes_no_sense() -> None:
    with pytest.raises(ValueError, match=r"test_send_time\.py:\d+: .*fallback='18:00' only goes with at='best'"):
        wait(days=1, at="10:00", fallback="18:00")
    with pytest.raises(ValueError, match=r"test_send_time\.py:\d+: at='soon'"):
        wait(days=1, at="soon")


def test_a_member_entering_after_their_best_hour_gets_it_the_next_day_not_the_fallback_hour(engine: Engine) -> None:
    """Entering at 22:00 New York, past a best hour of 19:00 by more than an hour: the wait rolls to the
    next 19:00 there (the late-entry rule uses the member's own hour, not the journey's fallback)."""
    import dataclasses

    people = populate(engine)
    same_day = dataclasses.replace(JOURNEY, name="best_time_today",
                                   steps=[wait(at="best", fallback="10:00", best_holdout=0), send(email("win_back/email_offer"))])
    factory = sessionmaker(engine, expire_on_commit=False)
    now = local(0, 22, 0, NY)
    tick(factory, same_day, now, services_for(RecordingAdapter()))
    with Session(engine) as s:
        due = dict(s.execute(select(Enrollment.recipient_id, Enrollment.due_at)
                             .where(Enrollment.journey == "best_time_today")).all())
    assert due[1] == local(1, 19, 0, NY)  # the evening shopper: tomorrow 19:00, not tomorrow 10:00
    assert due[3] == local(1, 10, 0, NY)  # no history: the fallback hour
    assert people[1] == (NY, 19)


def test_a_share_of_members_with_a_best_hour_is_held_to_the_fallback_hour_as_the_control(engine: Engine) -> None:
    """`best_holdout`: members with a known hour, by a stable hash, get the fallback hour and the rule
    "holdout" (the report's control group); members without history stay "fallback"."""
    import dataclasses

    from journeys.holdout import bucket, threshold

    people = populate(engine)
    held = dataclasses.replace(JOURNEY, name="best_time_held",
                               steps=[wait(days=1, at="best", fallback="10:00", best_holdout=50),
                                      send(email("win_back/email_offer"))])
    tick(sessionmaker(engine, expire_on_commit=False), held, T0, services_for(RecordingAdapter()))
    with Session(engine) as s:
        rows = {e.recipient_id: e for e in s.scalars(select(Enrollment).where(Enrollment.journey == "best_time_held"))}
    withheld = {mid for mid in people if bucket(mid, "best_time_held", "send_time") < threshold(50)}
    assert withheld & {mid for mid, (_, hour) in people.items() if hour is not None}  # the hash holds some back
    for mid, (zone, hour) in people.items():
        rule = "fallback" if hour is None else "holdout" if mid in withheld else "best"
        assert rows[mid].context["send_time_rule"] == rule, mid
        assert rows[mid].due_at == local(1, hour if rule == "best" else 10, 0, zone)
    with pytest.raises(ValueError, match="best_holdout"):
        wait(at="best", best_holdout=80)
