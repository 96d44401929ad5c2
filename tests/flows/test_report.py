"""The report's figures agree with the ledger, provider events and purchases they come from."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member, ProgramUpdate
from channels.consent import record_consent
from channels.models import DeliveryEvent, DeliveryEventKind
from flows.report import build_report
from flows.report_html import render_html
from journeys.engine import tick
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus
from journeys.registry import get_journey
from journeys.services import services_for
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
         services_for(rec))
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


def _scalar(s: Session, sql: str, **params: object) -> int:
    return int(s.execute(text(sql), params).scalar() or 0)


def test_report_agrees_with_itself_and_with_sql(engine: Engine) -> None:
    """Opt-outs: the program figure is the channels table's total, both the members SQL finds; staff
    count as messaged; spend per currency as SQL sums it; reasons in words; HTML with separators."""
    from audiences.models import StaffRole
    from flows.report import reason_in_words

    b.reset_ids()
    monday = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        north = b.store(s, 1, "North")
        for sid in (1, 2, 3):
            b.staff(s, sid, StaffRole.associate, north)
        s.add(ProgramUpdate(title="Double points", body="All stores.", roles=None, store_id=None,
                            published_at=monday - timedelta(days=1)))
        for i in range(1, 61):
            m = b.member(s, i, enrolled_at=monday - timedelta(days=600))
            b.buy(s, m, "50.00", monday - timedelta(days=200))
            record_consent(s, recipient_kind="member", recipient_id=i, channel="email", purpose="marketing",
                           action="opt_in", source="test", occurred_at=monday - timedelta(days=300))
        for i in range(1, 21):  # 20 members also bought in euros
            b.buy(s, s.get(Member, i), "10.00", monday - timedelta(days=30)).currency = "EUR"
        s.commit()
    rec = RecordingAdapter()
    services = services_for(rec)
    factory = sessionmaker(engine, expire_on_commit=False)
    tick(factory, get_journey("staff_bulletin"), monday, services)
    tick(factory, replace(get_journey("win_back"), audience_params={"lapsed_days": 90}), monday, services)
    with Session(engine, expire_on_commit=False) as s:
        sent = s.scalars(select(Send).where(Send.status == SendStatus.sent).order_by(Send.id)).all()
        members_sent = [row for row in sent if row.recipient_kind == "member"]
        assert len(members_sent) >= 10
        for row in members_sent[:6]:  # six members unsubscribe, one of them twice, one also reports spam
            s.add(DeliveryEvent(provider="sendgrid", ledger_id=row.id, event=DeliveryEventKind.unsubscribe,
                                occurred_at=monday + timedelta(hours=1)))
        s.add(DeliveryEvent(provider="sendgrid", ledger_id=members_sent[0].id, event=DeliveryEventKind.unsubscribe,
                            occurred_at=monday + timedelta(hours=2)))
        s.add(DeliveryEvent(provider="sendgrid", ledger_id=members_sent[1].id, event=DeliveryEventKind.spamreport,
                            occurred_at=monday + timedelta(hours=3)))
        record_consent(s, recipient_kind="member", recipient_id=members_sent[0].recipient_id, channel="email",
                       purpose="marketing", action="opt_out", source="unsubscribe_link",
                       occurred_at=monday + timedelta(hours=1))
        s.commit()
        report = build_report(s, monday + timedelta(days=1))

        opted_out_sql = _scalar(s, "SELECT COUNT(*) FROM (SELECT DISTINCT s.recipient_kind, s.recipient_id FROM sends s "
                                   "JOIN delivery_events e ON e.ledger_id = s.id "
                                   "WHERE e.event IN ('unsubscribe', 'spamreport')) x")
        staff_messaged_sql = _scalar(s, "SELECT COUNT(DISTINCT enrollment_id) FROM sends "
                                        "WHERE journey = 'staff_bulletin' AND status = 'sent'")
        staff_sent_sql = _scalar(s, "SELECT COUNT(*) FROM sends WHERE journey = 'staff_bulletin' AND status = 'sent'")
        withdrew_sql = _scalar(s, "SELECT COUNT(DISTINCT recipient_id) FROM consent_events WHERE action = 'opt_out'")
        spend_sql = {cur: (float(total), int(n)) for cur, total, n in s.execute(text(
            "SELECT currency, SUM(amount), COUNT(DISTINCT member_id) FROM purchases "
            "WHERE purchased_at > :lo AND purchased_at <= :hi GROUP BY currency"),
            {"lo": monday + timedelta(days=1) - timedelta(days=365), "hi": monday + timedelta(days=1)})}

    channel_opt_outs = sum(c.opted_out for r in report.journeys for c in r.channels)
    assert opted_out_sql == 6
    assert report.program["members_opted_out"] == channel_opt_outs == opted_out_sql
    assert report.program["consent_withdrawn"] == withdrew_sql == 1
    bulletin = next(r for r in report.journeys if r.journey == "staff_bulletin")
    assert staff_messaged_sql == 3 and bulletin.treated == staff_messaged_sql
    assert sum(c.sent for c in bulletin.channels) == staff_sent_sql
    assert bulletin.conversion is None  # staff do not convert; no "0%" for them
    by_currency = {x["currency"]: x for x in report.program["spend_by_currency"]}
    assert set(by_currency) == set(spend_sql) == {"USD", "EUR"}
    for cur, (total, buyers) in spend_sql.items():
        assert by_currency[cur]["members"] == buyers
        assert abs(by_currency[cur]["average"] - total / buyers) < 1e-9
    assert report.program["spend_currency"] == "USD"  # most buyers paid in dollars

    assert reason_in_words("no_contact|invalid_contact") == "no usable contact: no address / invalid address"
    assert reason_in_words("no_consent") == "no consent: never opted in"
    assert reason_in_words("frequency_cap|no_contact") == \
        "frequency cap: enough marketing messages this week / no usable contact: no address"
    assert reason_in_words("something_new") == "something new"

    html = render_html(report)
    assert "$50.00" in html and "€10.00" in html
    assert f">{report.program['members_opted_out']:,}<" in html


def test_html_tables_use_thousands_separators(sqlite_engine: Engine) -> None:
    from flows.report import ChannelRow, JourneyRow

    with Session(sqlite_engine) as s:
        report = build_report(s, T0)
    row = JourneyRow("points_expiring", enrolled=12345, held_out=1234, treated=11111)
    row.channels.append(ChannelRow("points_expiring", "email", sent=23456, delivered=22222, opened=1500, clicked=1001,
                                   opted_out=1234, failed={"outcome_unknown": 2000}))
    row.skipped["no_contact|invalid_contact"] = 4321
    report.journeys.append(row)
    html = render_html(report)
    for figure in ("12,345", "1,234", "11,111", "23,456", "22,222", "1,500", "1,001", "4,321", "2,000"):
        assert f"{figure}" in html
    assert "no usable contact: no address / invalid address" in html
    assert ">23456<" not in html and ">12345<" not in html
