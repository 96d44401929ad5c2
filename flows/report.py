"""How the journeys performed: funnel, skips, opt-outs and conversion against the holdout (lift).

Every figure is one set-based query over the ledger, the provider events and the loyalty data.
Conversion: a purchase or a redemption within `window_days` after a member's first message of
the enrollment; for the holdout, after enrolling (they got nothing, so that is the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, distinct, exists, func, or_, select, text
from sqlalchemy.orm import Session

from audiences.models import Member, MemberStatus, PointsEntry, PointsKind, Purchase
from channels.models import ConsentAction, ConsentEvent, DeliveryEvent
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus

FUNNEL_EVENTS = ("delivered", "open", "click")


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
    treated_converted: int = 0
    holdout_converted: int = 0
    channels: list[ChannelRow] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        return self.treated_converted / self.treated if self.treated else None

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


def _plus_days(column: Any, days: int, dialect: str) -> Any:
    """`column + days` in SQL: SQLite has datetime() modifiers, PostgreSQL intervals."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{days} days")
    return column + text(f"interval '{int(days)} days'")


def _converted(member: Any, after: Any, days: int, dialect: str) -> Any:
    until = _plus_days(after, days, dialect)
    bought = exists(select(Purchase.id).where(Purchase.member_id == member, Purchase.purchased_at > after,
                                              Purchase.purchased_at <= until))
    redeemed = exists(select(PointsEntry.id).where(PointsEntry.member_id == member, PointsEntry.kind == PointsKind.redeem,
                                                   PointsEntry.occurred_at > after, PointsEntry.occurred_at <= until))
    return or_(bought, redeemed)


def _since(column: Any, since: datetime | None) -> Any:
    return column >= since if since is not None else True


def build_report(session: Session, now: datetime, *, journey: str | None = None, since: datetime | None = None,
                 window_days: int = 7) -> Report:
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
            .where(sends_only, _since(Send.reserved_at, since))
            .group_by(Send.journey, Send.channel, DeliveryEvent.event)):
        row = channels.setdefault((name, channel or "none"), ChannelRow(name, channel or "none"))
        kind = getattr(event, "value", event)
        if kind == "delivered":
            row.delivered += n
        elif kind == "open":
            row.opened += n
        elif kind == "click":
            row.clicked += n
        elif kind in ("unsubscribe", "spamreport"):
            row.opted_out += n
    for row in channels.values():
        rows.setdefault(row.journey, JourneyRow(row.journey)).channels.append(row)
    for row in rows.values():
        row.channels.sort(key=lambda c: c.channel)

    first_sent = (select(Send.enrollment_id, func.min(Send.sent_at).label("first"))
                  .where(Send.status == SendStatus.sent, sends_only).group_by(Send.enrollment_id).subquery())
    treated = (select(Enrollment.journey, func.count(), func.sum(_as_int(_converted(
                  Enrollment.recipient_id, first_sent.c.first, window_days, dialect))))
               .join(first_sent, first_sent.c.enrollment_id == Enrollment.id)
               .where(only, Enrollment.recipient_kind == "member", _since(Enrollment.enrolled_at, since))
               .group_by(Enrollment.journey))
    for name, n, converted in session.execute(treated):
        row = rows.setdefault(name, JourneyRow(name))
        row.treated, row.treated_converted = n, int(converted or 0)
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
    return Report(now, since, window_days, sorted(rows.values(), key=lambda r: r.journey), per_day,
                  program_figures(session, now))


def _as_int(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def program_figures(session: Session, now: datetime) -> dict[str, float | int | None]:
    """Retention (bought in the previous 90 days and again in the last 90), redemption rate (points
    redeemed / earned over 12 months) and average spend per active member over 12 months."""
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
    spend = session.scalar(select(func.coalesce(func.sum(Purchase.amount), 0)).where(
        Purchase.purchased_at > year, Purchase.purchased_at <= now)) or 0
    opted_out = session.scalar(select(func.count(distinct(ConsentEvent.recipient_id))).where(
        ConsentEvent.action == ConsentAction.opt_out)) or 0
    return {
        "active_members": int(active),
        "retention_rate": retained / earlier if earlier else None,
        "redemption_rate": float(redeemed) / float(earned) if earned else None,
        "average_spend_per_member": float(spend) / active if active else None,
        "members_opted_out": int(opted_out),
    }
