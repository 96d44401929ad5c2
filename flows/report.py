"""How the journeys performed: funnel, skips, opt-outs and conversion against the holdout (lift).

Every figure is one set-based query over the ledger, the provider events and the loyalty data.
Conversion: a purchase or a redemption within `window_days` after a member's first message of
the enrollment; for the holdout, after enrolling (they got nothing, so that is the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, distinct, exists, func, select
from sqlalchemy.orm import Session

from audiences.models import Member, MemberStatus, PointsEntry, PointsKind, Purchase
from channels.models import ConsentAction, ConsentEvent, DeliveryEvent
from flows.report_sql import converted as converted_within
from flows.report_sql import plus_days
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus

FUNNEL_EVENTS = ("delivered", "open", "click")
FUNNEL_FIELDS = {"delivered": "delivered", "open": "opened", "click": "clicked"}
OPT_OUT_EVENTS = ("unsubscribe", "spamreport")

# skip and failure reasons in words: (what kind of problem, the detail)
REASON_WORDS: dict[str, tuple[str, str]] = {
    "no_contact": ("no usable contact", "no address"),
    "invalid_contact": ("no usable contact", "invalid address"),
    "no_consent": ("no consent", "never opted in"),
    "opted_out": ("no consent", "opted out"),
    "suppressed": ("suppressed", "bounced, complained or sent STOP"),
    "frequency_cap": ("frequency cap", "enough marketing messages this week"),
    "not_staff": ("wrong recipient", "not staff"),
    "not_member": ("wrong recipient", "not a member"),
    "invalid_time_zone": ("no usable time zone", "invalid time zone"),
    "unknown_channel": ("configuration", "unknown channel"),
    "unknown_purpose": ("configuration", "unknown purpose"),
    "stale": ("too late", "the moment had passed"),
    "outcome_unknown": ("outcome unknown", "the process stopped inside the provider call"),
    "channel_not_configured": ("configuration", "channel not configured"),
}


def reason_in_words(code: str) -> str:
    """`no_contact|invalid_contact` (a fallback chain: one reason per channel tried) ->
    "no usable contact: no address / invalid address"."""
    parts = [REASON_WORDS.get(part, (part.replace("_", " "), "")) for part in code.split("|") if part]
    if not parts:
        return code
    kinds = list(dict.fromkeys(kind for kind, _ in parts))
    if len(kinds) == 1:
        details = [d for _, d in dict.fromkeys(parts) if d]
        return f"{kinds[0]}: {' / '.join(details)}" if details else kinds[0]
    return " / ".join(f"{kind}: {detail}" if detail else kind for kind, detail in dict.fromkeys(parts))


@dataclass
class ChannelRow:
    journey: str
    channel: str
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    opted_out: int = 0
    failed: dict[str, int] = field(default_factory=dict)


@dataclass
class JourneyRow:
    journey: str
    enrolled: int = 0
    held_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    treated: int = 0
    """Enrollments (members and staff) that got at least one message: "messaged" in every view (staff
    included, so a staff bulletin never reads "messaged 0" beside its sends); a weekly bulletin counts
    one per recipient and week."""
    treated_members: int = 0
    """Of those, members: conversion is measured on members only (staff do not buy)."""
    treated_converted: int = 0
    holdout_converted: int = 0
    channels: list[ChannelRow] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        return self.treated_converted / self.treated_members if self.treated_members else None

    @property
    def holdout_conversion(self) -> float | None:
        return self.holdout_converted / self.held_out if self.held_out else None

    @property
    def lift(self) -> float | None:
        if self.conversion is None or self.holdout_conversion is None:
            return None
        return self.conversion - self.holdout_conversion


@dataclass
class Report:
    generated_for: datetime
    since: datetime | None
    window_days: int
    journeys: list[JourneyRow]
    per_day: list[tuple[date, str, int]]
    program: dict[str, float | int | None]
    tables: list[Any] = field(default_factory=list)
    """The deciding tables (flows/report_decide.py): lift with its interval, trends, breakdowns, revenue, slots."""


_plus_days, _converted = plus_days, converted_within  # flows/report_sql.py: shared with the deciding tables


def _since(column: Any, since: datetime | None) -> Any:
    return column >= since if since is not None else True


def build_report(session: Session, now: datetime, *, journey: str | None = None, since: datetime | None = None,
                 window_days: int = 7, decide: bool = True) -> Report:
    dialect = session.get_bind().dialect.name
    only = (Enrollment.journey == journey) if journey else True
    rows: dict[str, JourneyRow] = {}
    for name, status, n in session.execute(
            select(Enrollment.journey, Enrollment.status, func.count())
            .where(only, _since(Enrollment.enrolled_at, since)).group_by(Enrollment.journey, Enrollment.status)):
        row = rows.setdefault(name, JourneyRow(name))
        row.enrolled += n
        if status == EnrollmentStatus.held_out:
            row.held_out += n
    sends_only = (Send.journey == journey) if journey else True
    for name, reason, n in session.execute(
            select(Send.journey, Send.reason, func.count()).where(sends_only, Send.status == SendStatus.skipped,
                                                                  _since(Send.reserved_at, since))
            .group_by(Send.journey, Send.reason)):
        rows.setdefault(name, JourneyRow(name)).skipped[reason or "unknown"] = n

    channels: dict[tuple[str, str], ChannelRow] = {}
    for name, channel, status, reason, n in session.execute(
            select(Send.journey, Send.channel, Send.status, Send.reason, func.count())
            .where(sends_only, Send.status.in_([SendStatus.sent, SendStatus.failed]), _since(Send.reserved_at, since))
            .group_by(Send.journey, Send.channel, Send.status, Send.reason)):
        row = channels.setdefault((name, channel or "none"), ChannelRow(name, channel or "none"))
        if status == SendStatus.sent:
            row.sent += n
        else:
            row.failed[reason or "unknown"] = row.failed.get(reason or "unknown", 0) + n
    for name, channel, event, n in session.execute(
            select(Send.journey, Send.channel, DeliveryEvent.event, func.count(distinct(Send.id)))
            .join(DeliveryEvent, DeliveryEvent.ledger_id == Send.id)
            .where(sends_only, _since(Send.reserved_at, since), DeliveryEvent.event.in_(FUNNEL_EVENTS))
            .group_by(Send.journey, Send.channel, DeliveryEvent.event)):
        row = channels.setdefault((name, channel or "none"), ChannelRow(name, channel or "none"))
        setattr(row, FUNNEL_FIELDS[getattr(event, "value", event)],
                getattr(row, FUNNEL_FIELDS[getattr(event, "value", event)]) + n)
    for name, channel, n in session.execute(_opt_outs(sends_only, since)):
        row = channels.setdefault((name, channel or "none"), ChannelRow(name, channel or "none"))
        row.opted_out += n
    for row in channels.values():
        rows.setdefault(row.journey, JourneyRow(row.journey)).channels.append(row)
    for row in rows.values():
        row.channels.sort(key=lambda c: c.channel)

    first_sent = (select(Send.enrollment_id, func.min(Send.sent_at).label("first"))
                  .where(Send.status == SendStatus.sent, sends_only).group_by(Send.enrollment_id).subquery())
    is_member = Enrollment.recipient_kind == "member"
    treated = (select(Enrollment.journey, func.count(), func.sum(_as_int(is_member)),
                      func.sum(_as_int(is_member & _converted(Enrollment.recipient_id, first_sent.c.first, window_days,
                                                              dialect))))
               .join(first_sent, first_sent.c.enrollment_id == Enrollment.id)
               .where(only, _since(Enrollment.enrolled_at, since))
               .group_by(Enrollment.journey))
    for name, n, members, converted in session.execute(treated):
        row = rows.setdefault(name, JourneyRow(name))
        row.treated, row.treated_members, row.treated_converted = n, int(members or 0), int(converted or 0)
    holdout = (select(Enrollment.journey, func.sum(_as_int(_converted(
                   Enrollment.recipient_id, Enrollment.enrolled_at, window_days, dialect))))
               .where(only, Enrollment.status == EnrollmentStatus.held_out, _since(Enrollment.enrolled_at, since))
               .group_by(Enrollment.journey))
    for name, converted in session.execute(holdout):
        rows[name].holdout_converted = int(converted or 0)

    day = func.date(Send.sent_at) if dialect == "sqlite" else cast(Send.sent_at, Date)  # SQLite: CAST AS DATE is numeric
    per_day = [(d if isinstance(d, date) else date.fromisoformat(str(d)[:10]), ch, n) for d, ch, n in session.execute(
        select(day, Send.channel, func.count()).where(sends_only, Send.status == SendStatus.sent,
                                                      _since(Send.sent_at, since))
        .group_by(day, Send.channel).order_by(day, Send.channel))]
    program = program_figures(session, now)
    program["members_opted_out"] = sum(c.opted_out for r in rows.values() for c in r.channels)
    report = Report(now, since, window_days, sorted(rows.values(), key=lambda r: r.journey), per_day, program)
    if decide:
        from flows.report_decide import decision_tables

        report.tables = decision_tables(session, report, journey=journey)
    return report


def _opt_outs(sends_only: Any, since: datetime | None) -> Any:
    """(journey, channel, members): each member who opted out (unsubscribe or spam report from a
    message), counted once, at the first message they opted out from; the program figure "members
    opted out" is the same set, so the two always agree."""
    firsts = (select(Send.recipient_kind, Send.recipient_id, func.min(Send.id).label("send_id"))
              .join(DeliveryEvent, DeliveryEvent.ledger_id == Send.id)
              .where(sends_only, _since(Send.reserved_at, since), DeliveryEvent.event.in_(OPT_OUT_EVENTS))
              .group_by(Send.recipient_kind, Send.recipient_id).subquery())
    return (select(Send.journey, Send.channel, func.count()).join(firsts, firsts.c.send_id == Send.id)
            .group_by(Send.journey, Send.channel))


def _as_int(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def program_figures(session: Session, now: datetime) -> dict[str, float | int | None]:
    """Retention (bought in the previous 90 days and again in the last 90), redemption rate (points
    redeemed / earned over 12 months), average spend over 12 months per member who bought, in each
    currency (amounts in different currencies are never added up; the headline is the currency
    most buyers paid in) and the recipients who withdrew a consent (any
    channel and source: unsubscribe links, preference pages, SMS STOP, imports)."""
    q90, q180, year = now - timedelta(days=90), now - timedelta(days=180), now - timedelta(days=365)
    bought = lambda lo, hi: exists(select(Purchase.id).where(  # noqa: E731
        Purchase.member_id == Member.id, Purchase.purchased_at > lo, Purchase.purchased_at <= hi))
    earlier = session.scalar(select(func.count()).where(Member.status == MemberStatus.active, bought(q180, q90))) or 0
    retained = session.scalar(select(func.count()).where(Member.status == MemberStatus.active, bought(q180, q90),
                                                         bought(q90, now))) or 0
    earned = session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.points > 0, PointsEntry.occurred_at > year, PointsEntry.occurred_at <= now)) or 0
    redeemed = session.scalar(select(func.coalesce(-func.sum(PointsEntry.points), 0)).where(
        PointsEntry.kind == PointsKind.redeem, PointsEntry.occurred_at > year, PointsEntry.occurred_at <= now)) or 0
    active = session.scalar(select(func.count()).where(Member.status == MemberStatus.active)) or 0
    spend_by_currency = session.execute(
        select(Purchase.currency, func.sum(Purchase.amount), func.count(distinct(Purchase.member_id)))
        .where(Purchase.purchased_at > year, Purchase.purchased_at <= now)
        .group_by(Purchase.currency).order_by(func.count(distinct(Purchase.member_id)).desc(), Purchase.currency)).all()
    spend = [{"currency": cur, "members": int(buyers), "average": float(total) / buyers}
             for cur, total, buyers in spend_by_currency if buyers]
    withdrew = session.scalar(select(func.count()).select_from(
        select(ConsentEvent.recipient_kind, ConsentEvent.recipient_id).where(
            ConsentEvent.action == ConsentAction.opt_out, ConsentEvent.occurred_at <= now)
        .distinct().subquery())) or 0
    return {
        "active_members": int(active),
        "retention_rate": retained / earlier if earlier else None,
        "redemption_rate": float(redeemed) / float(earned) if earned else None,
        "average_spend_per_member": spend[0]["average"] if spend else None,
        "spend_currency": spend[0]["currency"] if spend else None,
        "spend_by_currency": spend,
        "members_opted_out": 0,  # build_report: the channels table's opt-outs, summed
        "consent_withdrawn": int(withdrew),
    }
