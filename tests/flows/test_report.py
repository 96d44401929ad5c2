"""The report's figures agree with the ledger, provider events and purchases they come from."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels.consent import record_consent
from channels.models import DeliveryEvent, DeliveryEventKind
from flows.report import build_report
from flows.report_html import render_html
from journeys.engine import tick
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus
from journeys.registry import get_journey
from journeys.services import default_services
from audiences.models import Member
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


def test_funnel_conversion_and_lift(engine: Engine) -> None:
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, 201):
            m = b.member(s, i, enrolled_at=T0 - timedelta(days=600))
            b.buy(s, m, "50.00", T0 - timedelta(days=200))
            record_consent(s, recipient_kind="member", recipient_id=i, channel="email", purpose="marketing",
                           action="opt_in", source="test", occurred_at=T0 - timedelta(days=300))
        s.commit()
    journey = replace(get_journey("win_back"), holdout_percent=30, audience_params={"lapsed_days": 90})
    rec = RecordingAdapter()
    tick(sessionmaker(engine, expire_on_commit=False), journey, T0,
         default_services(adapters={"email": rec, "sms": rec, "push": rec}))
    with Session(engine, expire_on_commit=False) as s:
        enrollments = s.scalars(select(Enrollment)).all()
        held = [e.recipient_id for e in enrollments if e.status == EnrollmentStatus.held_out]
        treated = sorted({m.recipient_id for m in rec.messages})
        # every 3rd messaged member buys within a week, every 4th held-out member too, some too late
        for rid in treated[::3]:
            b.buy(s, s.get(Member, rid), "20.00", T0 + timedelta(days=2))
        for rid in held[::4]:
            b.buy(s, s.get(Member, rid), "20.00", T0 + timedelta(days=3))
        for rid in treated[1::3]:
            b.buy(s, s.get(Member, rid), "20.00", T0 + timedelta(days=9))  # outside the 7-day window
        rows = s.scalars(select(Send).where(Send.status == SendStatus.sent)).all()
        for row in rows[:40]:
            s.add(DeliveryEvent(provider="sendgrid", ledger_id=row.id, event=DeliveryEventKind.delivered,
                                occurred_at=T0 + timedelta(minutes=1)))
        for row in rows[:10]:
            s.add(DeliveryEvent(provider="sendgrid", ledger_id=row.id, event=DeliveryEventKind.open,
                                occurred_at=T0 + timedelta(hours=1)))
            s.add(DeliveryEvent(provider="sendgrid", ledger_id=row.id, event=DeliveryEventKind.open,
                                occurred_at=T0 + timedelta(hours=2)))  # a second open counts once
        s.commit()
        report = build_report(s, T0 + timedelta(days=20), journey="win_back")
    [row] = report.journeys
    assert row.enrolled == 200 and row.held_out == len(held) and 40 <= len(held) <= 80
    assert row.treated == len(treated) == 200 - len(held)
    assert row.treated_converted == len(treated[::3])
    assert row.holdout_converted == len(held[::4])
    assert row.lift is not None and abs(row.lift - (len(treated[::3]) / len(treated) - len(held[::4]) / len(held))) < 1e-9
    [email] = row.channels
    assert (email.channel, email.sent, email.delivered, email.opened) == ("email", len(treated), 40, 10)
    html = render_html(report)
    assert "<svg" in html and "win_back" in html and "lift" in html


def test_html_escapes_what_it_shows(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as s:
        report = build_report(s, T0)
    report.journeys.append(__import__("flows.report", fromlist=["JourneyRow"]).JourneyRow("<script>x</script>"))
    html = render_html(report)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
