"""On time, every time: the shipped journeys on their shipped crons, driven by a pass at every minute
(the production cadence, with a few seconds of start-up latency), never at the exact due instant.

Thirty days from 2027-03-08 hold New York's spring-forward (Mar 14), Europe's (Mar 28) and the end of
summer time in Auckland and Lord Howe (Apr 4, the latter by 30 minutes). Every expected instant is
computed here with zoneinfo, independently of the engine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels.consent import record_consent
from journeys.models import Enrollment, EnrollmentStatus, SendStatus
from journeys.models import Send as LedgerRow
from journeys.passes import run_pass
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import run_clock, start_clocks
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

UTC = timezone.utc
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Paris", "Asia/Kolkata",
         "Asia/Tokyo", "Pacific/Auckland", "Australia/Lord_Howe"]
WINDOW = datetime(2027, 3, 8, tzinfo=UTC)
DAYS = 30
WARM_UP = timedelta(days=32)  # batches expiring early in the window enrolled 31 days before their expiry
MINUTE = timedelta(minutes=1)


def pass_instants(start: datetime, end: datetime) -> list[datetime]:
    """The embedded scheduler's pass trigger (every minute at second 0), plus 0-50 s of start-up latency."""
    try:
        from apscheduler.triggers.cron import CronTrigger

        from flows.scheduler import fire_times

        fires = fire_times(CronTrigger(second=0, timezone=UTC), start, end)
    except ImportError:  # pragma: no cover - the scheduler module is optional for this check
        fires = [start + i * MINUTE for i in range(int((end - start) / MINUTE))]
    return [fire + timedelta(seconds=(i * 7919) % 51) for i, fire in enumerate(fires)]


def local_at(day: date, wall: time, zone: str) -> datetime:
    return datetime.combine(day, wall, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def populate(engine: Engine) -> dict[int, str]:
    """Per zone: a member with the app and one with a phone, each with points batches expiring at
    local midnights through the window and after; three lapsed buyers with marketing consent."""
    b.reset_ids()
    zone_of: dict[int, str] = {}
    start = WINDOW - WARM_UP
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for z, zone in enumerate(ZONES):
            app = b.member(s, 100 + z, enrolled_at=start - timedelta(days=400), zone=zone)
            b.device(s, app, start - timedelta(days=300))
            phone = b.member(s, 200 + z, enrolled_at=start - timedelta(days=400), zone=zone)
            phone.phone = f"+1201555{z:04d}"
            for offset in range(1, 61):
                expiry = (WINDOW + timedelta(days=offset)).date().isoformat()
                b.earn(s, app, 100, start - timedelta(days=100), b.local_midnight(expiry, zone))
                if offset % 3 == 1:
                    b.earn(s, phone, 100, start - timedelta(days=100), b.local_midnight(expiry, zone))
            zone_of[app.id], zone_of[phone.id] = zone, zone
            for k in range(3):
                lapsed = b.member(s, 300 + 3 * z + k, enrolled_at=start - timedelta(days=900), zone=zone)
                lapsed.phone = f"+1201556{3 * z + k:04d}"
                last = WINDOW - timedelta(days=90 - 2 * (3 * z + k) % 27, hours=-5 - k)
                for n, back in enumerate((0, 40, 80)):
                    b.buy(s, lapsed, str(Decimal(60 + 15 * n + 7 * k)), last - timedelta(days=back))
                for channel in ("email", "sms"):
                    record_consent(s, recipient_kind="member", recipient_id=lapsed.id, channel=channel,
                                   purpose="marketing", action="opt_in", source="form",
                                   occurred_at=start - timedelta(days=800))
                zone_of[lapsed.id] = zone
        s.commit()
    return zone_of


def sent_rows(engine: Engine, journey: str) -> list[tuple[Enrollment, LedgerRow]]:
    with Session(engine) as s:
        return [(e, r) for e, r in s.execute(
            select(Enrollment, LedgerRow).join(LedgerRow, LedgerRow.enrollment_id == Enrollment.id)
            .where(Enrollment.journey == journey, LedgerRow.status == SendStatus.sent))]


@pytest.mark.slow
def test_a_month_of_minute_passes_across_zones_and_dst(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # quiet hours long enough that shipped sends are deferred: win_back's 18:00 SMS always, its
    # 07:00 UTC email in the Americas and in London
    monkeypatch.setenv("LOYALFLOW_QUIET_HOURS_EMAIL", "21:00-08:00")
    monkeypatch.setenv("LOYALFLOW_QUIET_HOURS_SMS", "17:00-09:00")
    zone_of = populate(sqlite_engine)
    rec = RecordingAdapter()
    services = services_for(rec)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    defs = {n: get_journey(n) for n in ("points_expiring", "win_back")}
    # timing is the subject here: one reminder series per daily batch (version 1's shape), so a reminder
    # falls due every day in every zone, DST days included; the digest and cap have their own tests
    expiring = defs["points_expiring"]
    defs["points_expiring"] = replace(expiring, steps=expiring.earlier_versions[1], earlier_versions={},
                                      audience_params={"within_days": 31}, occurrence_key="batch_id")
    start, window_end = WINDOW - WARM_UP, WINDOW + timedelta(days=DAYS)

    start_clocks(factory, defs, start)
    for _ in run_clock(factory, defs, start, WINDOW, services):  # the warm-up: the same pass, only when it has work
        pass
    before_window = len(rec.messages)
    for now in pass_instants(WINDOW, window_end):
        run_pass(factory, defs, now, services)
    assert len(rec.messages) > before_window

    # points_expiring: every reminder due by the end went, within the minute after 10:00 local
    expected: dict[tuple[int, str], datetime] = {}
    with Session(sqlite_engine) as s:
        enrollments = s.scalars(select(Enrollment).where(Enrollment.journey == "points_expiring")).all()
        assert len(enrollments) > 300 and all(e.status is not EnrollmentStatus.failed for e in enrollments)
        for e in enrollments:
            zone = zone_of[e.recipient_id]
            expires = datetime.fromisoformat(str(e.context["expires_at"])).replace(tzinfo=UTC)
            expiry_day = expires.astimezone(ZoneInfo(zone)).date()
            for key, days in (("email_30d", 30), ("email_7d", 7), ("last_call_1d", 1)):
                due = local_at(expiry_day - timedelta(days=days), time(10), zone)
                if due < window_end:
                    expected[(e.id, key)] = due
    got = {(e.id, r.step_key): (r, e) for e, r in sent_rows(sqlite_engine, "points_expiring")}
    assert set(got) == set(expected), "a reminder went that was not due, or one due was not sent"
    in_window = Counter()
    for key, due in expected.items():
        row, enrollment = got[key]
        zone = zone_of[enrollment.recipient_id]
        local = row.sent_at.astimezone(ZoneInfo(zone))  # type: ignore[union-attr]
        assert due <= row.sent_at < due + MINUTE, (key, zone, local)  # type: ignore[operator]
        assert time(10) <= local.time() < time(10, 1)
        if key[1] == "last_call_1d":
            assert row.sent_at < datetime.fromisoformat(str(enrollment.context["expires_at"])).replace(tzinfo=UTC)
            assert row.channel == ("push" if enrollment.recipient_id < 200 else "sms")
        if row.sent_at >= WINDOW:  # type: ignore[operator]
            in_window[(zone, key[1])] += 1
    assert {z for z, _ in in_window} == set(ZONES)
    assert all(in_window[(z, "last_call_1d")] >= 20 for z in ZONES)
    # a reminder landed on each DST change day, in the zone that changed
    landed = {(zone_of[e.recipient_id], r.sent_at.astimezone(ZoneInfo(zone_of[e.recipient_id])).date())  # type: ignore[union-attr]
              for e, r in sent_rows(sqlite_engine, "points_expiring")}
    for zone, change in [("America/New_York", date(2027, 3, 14)), ("America/Los_Angeles", date(2027, 3, 14)),
                         ("Europe/London", date(2027, 3, 28)), ("Europe/Paris", date(2027, 3, 28)),
                         ("Pacific/Auckland", date(2027, 4, 4)), ("Australia/Lord_Howe", date(2027, 4, 4))]:
        assert (zone, change) in landed

    # win_back: the email at the 07:00 UTC fire, or at 08:00 local when that is in quiet hours; the SMS,
    # due 18:00 local seven days later (always quiet), at 09:00 local the next morning
    rows = sent_rows(sqlite_engine, "win_back")
    emails = {e.id: r for e, r in rows if r.step_key == "email_offer"}
    sms = {e.id: r for e, r in rows if r.step_key == "sms_offer"}
    with Session(sqlite_engine) as s:
        active = s.scalars(select(Enrollment).where(Enrollment.journey == "win_back",
                                                    Enrollment.status != EnrollmentStatus.held_out)).all()
    assert len(active) >= 12 and set(emails) == {e.id for e in active}
    deferred_emails = 0
    for e in active:
        zone = ZoneInfo(zone_of[e.recipient_id])
        fire = e.enrolled_at
        assert fire.time() == time(7, 0)
        local_fire = fire.astimezone(zone)
        quiet = not time(8) <= local_fire.time() < time(21)
        if local_fire.time() >= time(21):
            email_due = local_at(local_fire.date() + timedelta(days=1), time(8), zone_of[e.recipient_id])
        elif local_fire.time() < time(8):
            email_due = local_at(local_fire.date(), time(8), zone_of[e.recipient_id])
        else:
            email_due = fire
        deferred_emails += quiet
        assert email_due <= emails[e.id].sent_at < email_due + MINUTE, (zone, fire)  # type: ignore[operator]
        sms_due = local_at(email_due.astimezone(zone).date() + timedelta(days=8), time(9), zone_of[e.recipient_id])
        if sms_due < window_end:
            assert sms_due <= sms[e.id].sent_at < sms_due + MINUTE, (zone, fire)  # type: ignore[operator]
            assert time(9) <= sms[e.id].sent_at.astimezone(zone).time() < time(9, 1)  # type: ignore[union-attr]
        else:
            assert e.id not in sms
    assert deferred_emails >= 3 and len(sms) >= 8
    assert {zone_of[e.recipient_id] for e in active if e.id in sms} >= {"America/New_York", "America/Los_Angeles",
                                                                      "Pacific/Auckland", "Australia/Lord_Howe"}
    assert len(rec.messages) == len(set(m.ledger_id for m in rec.messages))
