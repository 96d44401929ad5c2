"""The journeys do what their files say: exits, branches, fallbacks, holdout, consent, quiet hours,
version pinning and the staff bulletin, ticked on an injected clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member, ProgramUpdate, StaffRole
from channels.consent import record_consent
from journeys.dsl import email, send, sms, wait
from journeys.engine import tick
from journeys.models import Enrollment, EnrollmentStatus, Send
from journeys.registry import get_journey
from journeys.services import services_for
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York


_services: dict[int, object] = {}


def run(engine: Engine, name: str, now: datetime, rec: RecordingAdapter, journey=None):  # type: ignore[no-untyped-def]
    if id(rec) not in _services:  # compile the templates once per test, as a long-running worker does
        _services.clear()
        _services[id(rec)] = services_for(rec)
    services = _services[id(rec)]
    return tick(sessionmaker(engine, expire_on_commit=False), journey or get_journey(name), now, services)


def ledger(engine: Engine) -> list[tuple[int, str, str | None, str, str | None]]:
    with Session(engine) as s:
        return [(r.recipient_id, r.step_key, r.channel, r.status.value, r.reason)
                for r in s.scalars(select(Send).order_by(Send.recipient_id, Send.id))]


def test_welcome_branches_on_device_and_exits_on_purchase(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        with_app = b.member(s, 1, enrolled_at=T0 - timedelta(hours=2), tier=tiers["bronze"])
        b.device(s, with_app, T0 - timedelta(hours=2))
        b.member(s, 2, enrolled_at=T0 - timedelta(hours=2), tier=tiers["bronze"])
        buyer = b.member(s, 3, enrolled_at=T0 - timedelta(hours=2), tier=tiers["bronze"])
        for member_id in (1, 2, 3):
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="push", purpose="marketing",
                           action="opt_in", source="app", occurred_at=T0 - timedelta(days=1))
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="sms", purpose="marketing",
                           action="opt_in", source="form", occurred_at=T0 - timedelta(days=1))
        for m in s.scalars(select(Member)):
            m.phone = "+12015550123"
        s.commit()
    rec = RecordingAdapter()
    for day in range(0, 9):
        if day == 1:
            with Session(sqlite_engine, expire_on_commit=False) as s:
                b.buy(s, buyer, "12.00", T0 + timedelta(days=1))
                s.commit()
        for hour in range(24):
            run(sqlite_engine, "welcome", T0 + timedelta(days=day, hours=hour), rec)
    sent = sorted((m.recipient_id, m.step, m.channel) for m in rec.messages)
    assert sent == [
        (1, "email_welcome", "email"), (1, "push_getting_started", "push"), (1, "sms_tips", "sms"),
        (2, "email_welcome", "email"), (2, "sms_tips", "sms"),
        (3, "email_welcome", "email"),
    ]
    with Session(sqlite_engine) as s:
        states = {e.recipient_id: (e.status, e.exit_reason) for e in s.scalars(select(Enrollment))}
    assert states[3] == (EnrollmentStatus.exited, "purchased")
    assert states[1][0] == states[2][0] == EnrollmentStatus.completed
    push = next(m for m in rec.messages if m.channel == "push")
    # the push went out at 11:00 New York time two days after enrolling (a wait with at=)
    row = next(r for r in ledger(sqlite_engine) if r[1] == "push_getting_started")
    assert row[3] == "sent" and push.recipient_id == 1


def test_marketing_needs_consent_and_quiet_hours_defer_sms(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.tiers(s)
        for member_id in (1, 2):
            m = b.member(s, member_id, enrolled_at=T0 - timedelta(days=600))
            m.phone = "+12015550123"
            b.buy(s, m, "80.00", T0 - timedelta(days=200))
        for channel in ("email", "sms"):
            record_consent(s, recipient_kind="member", recipient_id=1, channel=channel, purpose="marketing",
                           action="opt_in", source="form", occurred_at=T0 - timedelta(days=30))
        s.commit()
    journey = replace(get_journey("win_back"), holdout_percent=0, audience_params={"lapsed_days": 90})
    rec = RecordingAdapter()
    run(sqlite_engine, "win_back", T0, rec, journey)
    assert [(m.recipient_id, m.channel) for m in rec.messages] == [(1, "email")]
    assert (2, "email_offer", None, "skipped", "no_consent") in ledger(sqlite_engine)
    # 7 days later at 18:00 New York the SMS is due; a tick at 02:00 New York is inside quiet hours
    night = datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc)
    run(sqlite_engine, "win_back", night, rec, journey)
    assert [m.channel for m in rec.messages] == ["email"]
    deferred = [r for r in ledger(sqlite_engine) if r[1] == "sms_offer"]
    assert deferred == [(1, "sms_offer", None, "deferred", "quiet_hours"), (2, "sms_offer", None, "skipped", "no_consent")]
    with Session(sqlite_engine) as s:
        due = s.scalar(select(Enrollment.due_at).where(Enrollment.recipient_id == 1))
    assert due is not None and due.astimezone(timezone(timedelta(hours=-5))).hour == 8  # 08:00 local, not dropped
    run(sqlite_engine, "win_back", due, rec, journey)
    assert [m.channel for m in rec.messages] == ["email", "sms"]


def test_in_flight_enrollments_keep_their_version(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.tiers(s)
        b.member(s, 1, enrolled_at=T0 - timedelta(hours=1))
        s.commit()
    v1 = replace(get_journey("welcome"), steps=(send(email("welcome/email_welcome")), wait(days=1),
                                                send(sms("welcome/sms_tips"), key="v1_tip")))
    rec = RecordingAdapter()
    run(sqlite_engine, "welcome", T0, rec, v1)
    v2 = replace(v1, version=2, steps=(send(email("welcome/email_welcome")),), earlier_versions={1: v1.steps})
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.member(s, 2, enrolled_at=T0 + timedelta(hours=20))
        s.commit()
    run(sqlite_engine, "welcome", T0 + timedelta(days=1, hours=1), rec, v2)
    with Session(sqlite_engine) as s:
        versions = dict(s.execute(select(Enrollment.recipient_id, Enrollment.journey_version)).all())
    assert versions == {1: 1, 2: 2}
    assert ("v1_tip" in {r[1] for r in ledger(sqlite_engine) if r[0] == 1})
    retired = replace(v2, earlier_versions={})
    with Session(sqlite_engine, expire_on_commit=False) as s:
        s.execute(Enrollment.__table__.update().values(status="active", due_at=T0 + timedelta(days=2), step_index=0)
                  .where(Enrollment.recipient_id == 1))
        s.commit()
    stats = run(sqlite_engine, "welcome", T0 + timedelta(days=3), rec, retired)
    assert stats.failed["journey_version_retired"] == 1


def test_staff_bulletin_reaches_staff_with_their_updates(sqlite_engine: Engine) -> None:
    monday = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
    with Session(sqlite_engine, expire_on_commit=False) as s:
        north = b.store(s, 1, "North")
        b.staff(s, 1, StaffRole.store_manager, north)
        b.staff(s, 2, StaffRole.associate, north)
        b.staff(s, 3, StaffRole.associate, None, active=False)
        s.add_all([
            ProgramUpdate(title="Double points weekend", body="All stores.", roles=None, store_id=None,
                          published_at=monday - timedelta(days=2)),
            ProgramUpdate(title="Manager briefing", body="Managers only.", roles="store_manager", store_id=None,
                          published_at=monday - timedelta(days=1)),
            ProgramUpdate(title="Old news", body="Last month.", roles=None, store_id=None,
                          published_at=monday - timedelta(days=30)),
        ])
        s.commit()
    rec = RecordingAdapter()
    run(sqlite_engine, "staff_bulletin", monday, rec)
    run(sqlite_engine, "staff_bulletin", monday + timedelta(hours=1), rec)  # same week: nothing new
    by_staff = {m.recipient_id: m for m in rec.messages}
    assert sorted(by_staff) == [1, 2]
    assert all(m.purpose == "staff" and m.recipient_kind == "staff" for m in rec.messages)
    assert "Manager briefing" in by_staff[1].content.text and "Manager briefing" not in by_staff[2].content.text
    assert "Double points weekend" in by_staff[2].content.text and "Old news" not in by_staff[2].content.text
    run(sqlite_engine, "staff_bulletin", monday + timedelta(days=7), rec)  # next week: a new occurrence
    assert len(rec.messages) == 4


def test_bad_member_data_is_skipped_with_a_reason_and_the_chunk_goes_on(sqlite_engine: Engine) -> None:
    """A folder name as a time zone, a malformed email, no email at all: each member is skipped with its
    reason; the good members in the same chunk are sent to."""
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.tiers(s)
        good = b.member(s, 1, enrolled_at=T0 - timedelta(hours=1))
        folder_zone = b.member(s, 2, enrolled_at=T0 - timedelta(hours=1), zone="America")
        bad_email = b.member(s, 3, enrolled_at=T0 - timedelta(hours=1))
        bad_email.email = "name@@example"
        no_email = b.member(s, 4, enrolled_at=T0 - timedelta(hours=1))
        no_email.email = None
        s.commit()
    rec = RecordingAdapter()
    stats = run(sqlite_engine, "welcome", T0, rec)
    assert [m.recipient_id for m in rec.messages] == [good.id]
    reasons = {r[0]: r[4] for r in ledger(sqlite_engine)}
    assert reasons == {1: None, folder_zone.id: "invalid_time_zone", 3: "invalid_contact", 4: "no_contact"}
    assert stats.skipped == {"invalid_time_zone": 1, "invalid_contact": 1, "no_contact": 1}
