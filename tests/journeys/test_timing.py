"""Waits and deadlines in the recipient's own zone: DST changes, month ends, far zones, gaps."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from channels.consent import record_consent
from journeys.dsl import Journey, Wait, after, before, email, send, wait, wait_until
from journeys.engine import program_of, tick
from journeys.models import Enrollment, EnrollmentStatus, Send as LedgerRow, SendStatus
from journeys.registry import get_journey
from journeys.services import Services
from journeys.timing import at_local, deadline, wait_target, zone_of
from tests.audiences import builders
from channels.adapters import MemoryAdapter as Recorder

UTC = timezone.utc
H = timedelta(hours=1)


def local(zone: str, *args: int) -> datetime:
    """A wall-clock time in `zone` (first occurrence in a fold)."""
    return datetime(*args, tzinfo=ZoneInfo(zone))


def wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone))


# (zone, day of the change, UTC offset before, UTC offset after)
DST_CHANGES = [
    pytest.param("America/New_York", date(2027, 3, 14), -5 * H, -4 * H, id="new_york-spring"),
    pytest.param("America/New_York", date(2026, 11, 1), -4 * H, -5 * H, id="new_york-fall"),
    pytest.param("Europe/Paris", date(2027, 3, 28), 1 * H, 2 * H, id="paris-spring"),
    pytest.param("Europe/Paris", date(2026, 10, 25), 2 * H, 1 * H, id="paris-fall"),
    pytest.param("Pacific/Auckland", date(2027, 4, 4), 13 * H, 12 * H, id="auckland-fall"),
    pytest.param("Pacific/Auckland", date(2026, 9, 27), 12 * H, 13 * H, id="auckland-spring"),
]


# --- across DST changes -------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "change", "before_offset", "after_offset"), DST_CHANGES)
def test_wait_with_at_lands_at_local_time_across_dst(zone: str, change: date, before_offset: timedelta,
                                                     after_offset: timedelta) -> None:
    base = local(zone, *(change - timedelta(days=1)).timetuple()[:3], 10, 0)
    assert base.utcoffset() == before_offset
    target = wait_target(wait(days=1, at="10:00"), base.astimezone(UTC), {}, zone)
    assert target is not None and target.tzinfo is not None
    landed = wall(target, zone)
    assert (landed.date(), landed.time()) == (change, time(10, 0))
    assert landed.utcoffset() == after_offset
    # the day was 23 or 25 hours long: a plain "+24 h" would have landed an hour off
    assert target - base == timedelta(days=1) + before_offset - after_offset


@pytest.mark.parametrize(("zone", "change", "before_offset", "after_offset"), DST_CHANGES)
def test_whole_day_wait_keeps_local_wall_time_and_shorter_waits_are_elapsed(
        zone: str, change: date, before_offset: timedelta, after_offset: timedelta) -> None:
    base = local(zone, *(change - timedelta(days=1)).timetuple()[:3], 18, 45).astimezone(UTC)
    by_days = wall(wait_target(wait(days=2), base, {}, zone), zone)  # type: ignore[arg-type]
    assert (by_days.date(), by_days.time()) == (change + timedelta(days=1), time(18, 45))
    by_hours = wait_target(wait(hours=20), base, {}, zone)  # less than a day: elapsed time over the change
    assert by_hours == base + timedelta(hours=20)
    landed = wall(by_hours, zone)  # type: ignore[arg-type]
    assert (landed.date(), landed.hour) == (change, 14 + (after_offset - before_offset) // H)


@pytest.mark.parametrize(("zone", "change", "before_offset", "after_offset"), DST_CHANGES)
def test_wait_until_before_field_lands_on_local_day_across_dst(
        zone: str, change: date, before_offset: timedelta, after_offset: timedelta) -> None:
    """Points expire at local midnight 3 days after the change; 7 local days before is 4 days before it."""
    expires_at = local(zone, *(change + timedelta(days=3)).timetuple()[:3], 0, 0).astimezone(UTC)
    context = {"expires_at": expires_at.replace(tzinfo=None).isoformat()}  # as JSON gives it back: naive UTC
    step = wait_until(before("expires_at", days=7), at="10:00")
    target = wait_target(step, datetime(2020, 1, 1, tzinfo=UTC), context, zone)
    landed = wall(target, zone)  # type: ignore[arg-type]
    assert (landed.date(), landed.time()) == (change - timedelta(days=4), time(10, 0))
    assert landed.utcoffset() == before_offset


# --- month ends ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "days", "expected"), [
    (date(2027, 1, 31), 28, date(2027, 2, 28)),
    (date(2027, 1, 31), 29, date(2027, 3, 1)),
    (date(2027, 1, 31), 30, date(2027, 3, 2)),
    (date(2027, 1, 31), 31, date(2027, 3, 3)),
    (date(2028, 1, 31), 29, date(2028, 2, 29)),
    (date(2028, 1, 31), 30, date(2028, 3, 1)),
    (date(2027, 2, 28), 1, date(2027, 3, 1)),
    (date(2028, 2, 28), 1, date(2028, 2, 29)),
    (date(2028, 2, 29), 1, date(2028, 3, 1)),
    (date(2026, 12, 31), 1, date(2027, 1, 1)),
])
def test_day_waits_over_month_ends(start: date, days: int, expected: date) -> None:
    zone = "America/New_York"
    base = local(zone, start.year, start.month, start.day, 22, 30).astimezone(UTC)  # already next day in UTC
    landed = wall(wait_target(wait(days=days, at="10:00"), base, {}, zone), zone)  # type: ignore[arg-type]
    assert (landed.date(), landed.time()) == (expected, time(10, 0))


@pytest.mark.parametrize(("expires", "days", "expected"), [
    (date(2027, 3, 1), 1, date(2027, 2, 28)),
    (date(2028, 3, 1), 1, date(2028, 2, 29)),
    (date(2027, 3, 1), 7, date(2027, 2, 22)),
    (date(2028, 3, 1), 7, date(2028, 2, 23)),
    (date(2027, 3, 31), 30, date(2027, 3, 1)),
])
def test_before_field_over_month_ends(expires: date, days: int, expected: date) -> None:
    zone = "Europe/Paris"
    expires_at = local(zone, expires.year, expires.month, expires.day, 0, 0)
    target = wait_target(wait_until(before("expires_at", days=days), at="10:00"), expires_at,
                         {"expires_at": expires_at.isoformat()}, zone)
    landed = wall(target, zone)  # type: ignore[arg-type]
    assert (landed.date(), landed.time()) == (expected, time(10, 0))


# --- far zones ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "expected_day", "expected_utc"), [
    # 23:30 local on Jan 31 is Jan 31 09:30Z in Kiritimati (UTC+14) and Feb 1 10:30Z in Pago Pago (UTC-11)
    ("Pacific/Kiritimati", date(2027, 2, 1), datetime(2027, 1, 31, 20, 0, tzinfo=UTC)),
    ("Pacific/Pago_Pago", date(2027, 2, 1), datetime(2027, 2, 1, 21, 0, tzinfo=UTC)),
])
def test_far_zones_count_days_on_the_local_calendar(zone: str, expected_day: date, expected_utc: datetime) -> None:
    base = local(zone, 2027, 1, 31, 23, 30).astimezone(UTC)
    target = wait_target(wait(days=1, at="10:00"), base, {}, zone)
    assert target == expected_utc
    landed = wall(target, zone)  # type: ignore[arg-type]
    assert (landed.date(), landed.time()) == (expected_day, time(10, 0))


@pytest.mark.parametrize(("zone", "expires_at", "expected"), [
    # expiry stored as the member's local midnight
    ("Pacific/Kiritimati", local("Pacific/Kiritimati", 2026, 12, 1, 0, 0), datetime(2026, 11, 23, 20, 0, tzinfo=UTC)),
    ("Pacific/Pago_Pago", local("Pacific/Pago_Pago", 2026, 12, 1, 0, 0), datetime(2026, 11, 24, 21, 0, tzinfo=UTC)),
    # expiry stored as UTC midnight: Dec 1 14:00 in Kiritimati, Nov 30 13:00 in Pago Pago
    ("Pacific/Kiritimati", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 11, 23, 20, 0, tzinfo=UTC)),
    ("Pacific/Pago_Pago", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 11, 23, 21, 0, tzinfo=UTC)),
])
def test_seven_local_days_before_expiry_at_ten_in_far_zones(zone: str, expires_at: datetime,
                                                            expected: datetime) -> None:
    step = wait_until(before("expires_at", days=7), at="10:00")
    target = wait_target(step, expires_at, {"expires_at": expires_at.isoformat()}, zone)
    assert target == expected
    landed = wall(target, zone)  # type: ignore[arg-type]
    assert landed.time() == time(10, 0)
    assert landed.date() == wall(expires_at, zone).date() - timedelta(days=7)


def test_sub_day_offsets_of_a_field_move_the_landing_day() -> None:
    enrolled = local("Europe/Paris", 2027, 5, 10, 20, 0)
    context = {"enrolled_at": enrolled.isoformat()}
    target = wait_target(wait_until(after("enrolled_at", hours=6), at="10:00"), enrolled, context, "Europe/Paris")
    assert wall(target, "Europe/Paris") == local("Europe/Paris", 2027, 5, 11, 10, 0)  # type: ignore[arg-type]
    target = wait_target(wait_until(before("enrolled_at", days=1.5), at="10:00"), enrolled, context, "Europe/Paris")
    assert wall(target, "Europe/Paris") == local("Europe/Paris", 2027, 5, 9, 10, 0)  # 08:00 on the 9th -> that day


# --- gaps, folds, unknown zones, missing fields --------------------------------------------------

@pytest.mark.parametrize(("zone", "change", "expected_utc"), [
    ("America/New_York", date(2027, 3, 14), datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),
    ("Europe/Paris", date(2027, 3, 28), datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
    ("Pacific/Auckland", date(2026, 9, 27), datetime(2026, 9, 26, 14, 30, tzinfo=UTC)),
])
def test_wall_time_in_a_spring_forward_gap_resolves_to_a_real_instant_after_it(
        zone: str, change: date, expected_utc: datetime) -> None:
    tz = ZoneInfo(zone)
    assert datetime.combine(change, time(2, 30), tzinfo=tz).astimezone(UTC).astimezone(tz).time() != time(2, 30)
    resolved = at_local(change, time(2, 30), tz)
    assert resolved == expected_utc
    landed = resolved.astimezone(tz)
    assert landed.time() == time(3, 30) and landed.date() == change  # moved forward by the gap, not back
    assert landed.astimezone(UTC) == resolved  # a real instant: it round-trips
    base = local(zone, *(change - timedelta(days=1)).timetuple()[:3], 12, 0).astimezone(UTC)
    assert wait_target(wait(days=1, at="02:30"), base, {}, zone) == expected_utc


def test_wall_time_in_a_fall_back_fold_takes_the_first_one() -> None:
    tz = ZoneInfo("America/New_York")
    resolved = at_local(date(2026, 11, 1), time(1, 30), tz)
    assert resolved == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not 01:30 EST (06:30Z)


def test_zero_day_wait_keeps_an_instant_inside_a_fold() -> None:
    second_half_past_one = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, the fold's second pass
    assert wait_target(wait(minutes=0), second_half_past_one, {}, "America/New_York") == second_half_past_one
    assert wait_target(wait(minutes=30), second_half_past_one, {}, "America/New_York") == \
        second_half_past_one + timedelta(minutes=30)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", None, "America", "../../etc/passwd", "UTC ", "zone.tab"])
def test_unknown_zone_falls_back_to_utc(name: str | None) -> None:
    assert zone_of(name) == ZoneInfo("UTC")
    base = datetime(2027, 3, 13, 22, 0, tzinfo=UTC)
    assert wait_target(wait(days=1, at="10:00"), base, {}, name) == datetime(2027, 3, 14, 10, 0, tzinfo=UTC)


def test_wait_on_a_missing_field_is_skipped() -> None:
    step = wait_until(before("expires_at", days=7), at="10:00")
    assert wait_target(step, datetime(2027, 1, 1, tzinfo=UTC), {}, "Europe/Paris") is None
    assert wait_target(step, datetime(2027, 1, 1, tzinfo=UTC), {"expires_at": None}, "Europe/Paris") is None


# --- stale deadlines ----------------------------------------------------------------------------

def test_deadlines_from_a_duration_and_from_a_field() -> None:
    enrolled = datetime(2027, 3, 27, 9, 0, tzinfo=UTC)
    expires = datetime(2027, 4, 1, 4, 0, tzinfo=UTC)
    context = {"expires_at": expires.replace(tzinfo=None).isoformat(sep=" ")}  # SQLite JSON form
    assert deadline(None, context, enrolled) is None
    assert deadline(timedelta(days=2), context, enrolled) == enrolled + timedelta(days=2)
    assert deadline(before("expires_at", days=2), context, enrolled) == expires - timedelta(days=2)
    assert deadline(after("expires_at"), context, enrolled) == expires
    assert deadline(after("expires_at"), {}, enrolled) is None


# --- engine level -------------------------------------------------------------------------------

def _member_with_app(engine: Engine, member_id: int, enrolled_at: datetime, zone: str) -> None:
    """A member with a push token who opted in to marketing push."""
    with sessionmaker(engine)() as session:
        m = builders.member(session, member_id, enrolled_at=enrolled_at, zone=zone)
        builders.device(session, m, enrolled_at)
        record_consent(session, recipient_kind="member", recipient_id=member_id, channel="push", purpose="marketing",
                       action="opt_in", source="app", occurred_at=enrolled_at)
        session.commit()


@pytest.mark.parametrize(("change", "after_offset"), [
    (date(2027, 3, 28), 2 * H),   # CET -> CEST on Sunday
    (date(2026, 10, 25), 1 * H),  # CEST -> CET on Sunday
])
def test_welcome_push_is_due_at_eleven_paris_time_across_dst(sqlite_engine: Engine, services: Services,
                                                            recorder: Recorder, change: date,
                                                            after_offset: timedelta) -> None:
    friday = change - timedelta(days=2)
    with freeze_time(datetime.combine(friday, time(8, 50), tzinfo=UTC)):
        joined = datetime.now(UTC)  # the member signs up "now" on Friday morning
        _member_with_app(sqlite_engine, 7, joined, "Europe/Paris")
        now = joined + timedelta(minutes=10)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = get_journey("welcome")
    with freeze_time("2031-06-01 12:00:00"):  # a clock far away: the engine must use the injected `now`
        stats = tick(factory, journey, now, services)
    assert stats.enrolled == 1 and stats.sent["email"] == 1
    assert [m.step for m in recorder.requests] == ["email_welcome"]
    with factory() as session:
        row = session.scalars(select(Enrollment)).one()
    expected = datetime.combine(change, time(11, 0), tzinfo=ZoneInfo("Europe/Paris"))
    assert row.status is EnrollmentStatus.active
    assert row.due_at == expected
    assert row.due_at.astimezone(ZoneInfo("Europe/Paris")).utcoffset() == after_offset
    waited = program_of(journey, row.journey_version)[row.step_index - 1]  # type: ignore[index]
    assert isinstance(waited, Wait) and waited.at == time(11, 0)

    assert tick(factory, journey, expected - timedelta(minutes=1), services).advanced == 0
    assert tick(factory, journey, expected, services).sent["push"] == 1
    assert [(m.channel, m.step) for m in recorder.requests] == [("email", "email_welcome"),
                                                            ("push", "push_getting_started")]


def test_field_and_duration_deadlines_skip_stale_sends_in_the_engine(sqlite_engine: Engine, services: Services,
                                                                    recorder: Recorder) -> None:
    """points_expiring enrolled 5 days before expiry: the 30-day email is stale, the 7-day one goes."""
    now = datetime(2027, 3, 26, 9, 0, tzinfo=UTC)
    expires = builders.local_midnight("2027-03-31", "Europe/Paris")
    with sessionmaker(sqlite_engine)() as session:
        m = builders.member(session, 11, enrolled_at=now - timedelta(days=200), zone="Europe/Paris")
        builders.earn(session, m, 500, now - timedelta(days=100), expires)
        session.commit()
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    tick(factory, get_journey("points_expiring"), now, services)
    with factory() as session:
        ledger = {r.step_key: (r.status, r.reason) for r in session.scalars(select(LedgerRow))}
        row = session.scalars(select(Enrollment)).one()
    assert ledger == {"email_30d": (SendStatus.skipped, "stale"), "email_7d": (SendStatus.sent, None)}
    assert [m.step for m in recorder.requests] == ["email_7d"]
    assert wall(row.due_at, "Europe/Paris") == local("Europe/Paris", 2027, 3, 30, 10, 0)  # type: ignore[arg-type]

    quick = Journey(name="quick_hello", description="test", version=1, purpose="transactional",
                    audience="new_members", audience_params={"within_days": 3},
                    steps=[wait(hours=2), send(email("welcome/email_welcome"))], stale=timedelta(hours=1))
    with sessionmaker(sqlite_engine)() as session:
        builders.member(session, 12, enrolled_at=now - timedelta(hours=1), zone="Europe/Paris")
        session.commit()
    assert tick(factory, quick, now, services).deferred == 1
    stats = tick(factory, quick, now + timedelta(hours=2), services)
    assert stats.skipped["stale"] == 1 and stats.messages == 0
    assert [m.step for m in recorder.requests] == ["email_7d"]
