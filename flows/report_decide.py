"""The tables that decide: is it working (lift with its interval and test), what it brought (attributed
revenue), where and for whom (week, journey, store, tier), and how people respond.

Attribution is last touch: a purchase belongs to the member's latest message sent before it, when the
purchase falls within `window_days` after that message (sent_at < purchased_at <= sent_at + window, the
window `flows/report.py` uses for conversion). So every purchase counts once, and every breakdown adds
up to the same total. Revenue is never added across currencies: each currency has its own column.

Slots for tables other helpers' features fill: A/B results (`ab_decisions`, `enrollments.variant`) and
NPS (`survey_answers`, `survey_invites`), staff bulletin reads (`bulletin_reads`). Each is read only when
its table (or column) exists, so the report works before and after those land; empty when no data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    MetaData,
    String,
    and_,
    case,
    cast,
    column,
    distinct,
    func,
    inspect,
    literal,
    select,
    true,
)
from sqlalchemy import Table as SqlTable
from sqlalchemy.orm import Session, aliased

from audiences.models import Member, Purchase, Store, Tier
from flows.report_sql import converted as converted_within
from flows.report_sql import plus_days
from flows.report_stats import lift as lift_of
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus

NO_STORE = "(no store)"
NO_TIER = "(no tier)"


@dataclass
class Table:
    """One table of the report: what the HTML shows and what `--csv DIR` writes as `<key>.csv`."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


# --- SQL helpers ----------------------------------------------------------------------------------------

def _week(col: Any, dialect: str) -> Any:
    """The Monday of the ISO week of an instant (UTC)."""
    if dialect == "sqlite":
        return func.date(col, "weekday 0", "-6 days")
    return cast(func.date_trunc("week", col), Date)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _since(col: Any, since: datetime | None) -> Any:
    return col >= since if since is not None else true()


def attributed(session: Session, now: datetime, *, since: datetime | None, window_days: int,
               journey: str | None = None) -> Any:
    """Purchases with the message they are attributed to (subquery: purchase_id, member_id, store_id, amount,
    currency, purchased_at, send_id, journey, sent_at); purchases with no message in reach are left out."""
    dialect = session.get_bind().dialect.name
    s = aliased(Send)
    touch = (select(s.id).where(s.recipient_kind == "member", s.recipient_id == Purchase.member_id,
                                s.status == SendStatus.sent, s.sent_at < Purchase.purchased_at,
                                s.sent_at >= plus_days(Purchase.purchased_at, -window_days, dialect),
                                _since(s.sent_at, since), (s.journey == journey) if journey else true())
             .order_by(s.sent_at.desc(), s.id.desc()).limit(1).correlate(Purchase).scalar_subquery())
    purchases = (select(Purchase.id.label("purchase_id"), Purchase.member_id, Purchase.store_id, Purchase.amount,
                        Purchase.currency, Purchase.purchased_at, touch.label("send_id"))
                 .where(Purchase.purchased_at <= now, _since(Purchase.purchased_at, since)).subquery("purchases_in"))
    return (select(purchases, Send.journey, Send.sent_at).join(Send, Send.id == purchases.c.send_id)
            .subquery("attributed"))


def _revenue_rows(session: Session, key: Any, source: Any, extra: Iterable[Any] = ()) -> dict[Any, dict[str, Any]]:
    """{key: {"purchases": n, "members": n, "revenue": {currency: amount}}} grouped in SQL."""
    out: dict[Any, dict[str, Any]] = {}
    query = (select(key.label("k"), source.c.currency, func.count(), func.count(distinct(source.c.member_id)),
                    func.sum(source.c.amount)).select_from(source))
    for j in extra:
        query = query.outerjoin(*j)
    for k, currency, n, members, amount in session.execute(query.group_by(key, source.c.currency)):
        row = out.setdefault(k, {"purchases": 0, "members": set(), "revenue": {}, "member_counts": {}})
        row["purchases"] += int(n)
        row["revenue"][currency] = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
        row["member_counts"][currency] = int(members)
    return out


def _members_converted(session: Session, key: Any, source: Any, extra: Iterable[Any] = ()) -> dict[Any, int]:
    """Distinct members with an attributed purchase, per key (across currencies)."""
    query = select(key.label("k"), func.count(distinct(source.c.member_id))).select_from(source)
    for j in extra:
        query = query.outerjoin(*j)
    return {k: int(n) for k, n in session.execute(query.group_by(key))}


def _currencies(session: Session, source: Any) -> list[str]:
    return [c for c, _ in session.execute(select(source.c.currency, func.count()).group_by(source.c.currency)
                                          .order_by(func.count().desc(), source.c.currency))]


def _money_cells(revenue: dict[str, Decimal], currencies: list[str]) -> list[Any]:
    return [revenue.get(c, Decimal("0.00")) for c in currencies]


# --- the tables -----------------------------------------------------------------------------------------

def lift_table(report: Any, confidence: float = 0.95) -> Table:
    table = Table("lift", f"Lift against the holdout ({confidence:.0%} confidence interval, two-proportion z-test)",
                  ["journey", "messaged members", "converted", "conversion", "holdout", "holdout converted",
                   "holdout conversion", "lift (points)", "ci low (points)", "ci high (points)", "z", "p value",
                   "verdict"],
                  note=f"conversion: a purchase or redemption within {report.window_days} days; "
                       "a journey without a holdout has no lift")
    for r in report.journeys:
        result = lift_of(r.treated_converted, r.treated_members, r.holdout_converted, r.held_out, confidence)
        if result is None:
            continue
        table.rows.append([r.journey, r.treated_members, r.treated_converted, round(result.treated_rate, 4),
                           r.held_out, r.holdout_converted, round(result.control_rate, 4),
                           round(100 * result.lift, 2), round(100 * result.low, 2), round(100 * result.high, 2),
                           None if result.z is None else round(result.z, 3),
                           None if result.p_value is None else round(result.p_value, 4), result.verdict])
    return table


def weekly_trends(session: Session, now: datetime, *, since: datetime | None, window_days: int,
                  journey: str | None = None) -> Table:
    dialect = session.get_bind().dialect.name
    source = attributed(session, now, since=since, window_days=window_days, journey=journey)
    currencies = _currencies(session, source)
    week = _week(Send.sent_at, dialect)
    sent = {_as_date(w): int(n) for w, n in session.execute(
        select(week, func.count()).where(Send.status == SendStatus.sent, _since(Send.sent_at, since),
                                         Send.sent_at <= now, (Send.journey == journey) if journey else true())
        .group_by(week))}
    pweek = _week(source.c.purchased_at, dialect)
    revenue = {_as_date(k): v for k, v in _revenue_rows(session, pweek, source).items()}
    converted = {_as_date(k): v for k, v in _members_converted(session, pweek, source).items()}
    table = Table("trends_weekly", "Trends per week (weeks start on Monday, UTC)",
                  ["week", "sent", "attributed purchases", "converted members"] + [f"revenue {c}" for c in currencies],
                  note="sent: messages sent that week; purchases and revenue: attributed purchases made that week")
    for w in sorted(set(sent) | set(revenue)):
        r = revenue.get(w, {"purchases": 0, "revenue": {}})
        table.rows.append([w, sent.get(w, 0), r["purchases"], converted.get(w, 0)] + _money_cells(r["revenue"], currencies))
    return table


def by_journey(session: Session, now: datetime, *, since: datetime | None, window_days: int,
               journey: str | None = None) -> Table:
    source = attributed(session, now, since=since, window_days=window_days, journey=journey)
    currencies = _currencies(session, source)
    sent: dict[str, list[int]] = {}
    for name, n, members in session.execute(
            select(Send.journey, func.count(), func.count(distinct(case((Send.recipient_kind == "member",
                                                                           Send.recipient_id)))))
            .where(Send.status == SendStatus.sent, _since(Send.sent_at, since), Send.sent_at <= now,
                   (Send.journey == journey) if journey else true()).group_by(Send.journey)):
        sent[name] = [int(n), int(members)]
    revenue = _revenue_rows(session, source.c.journey, source)
    converted = _members_converted(session, source.c.journey, source)
    table = Table("by_journey", "By journey: messages and attributed revenue",
                  ["journey", "sent", "messaged members", "attributed purchases", "converted members",
                   "response rate"] + [f"revenue {c}" for c in currencies] + [f"revenue per messaged member {c}"
                                                                             for c in currencies])
    for name in sorted(set(sent) | set(revenue)):
        n, members = sent.get(name, [0, 0])
        r = revenue.get(name, {"purchases": 0, "revenue": {}})
        money = _money_cells(r["revenue"], currencies)
        table.rows.append([name, n, members, r["purchases"], converted.get(name, 0),
                           round(converted.get(name, 0) / members, 4) if members else None] + money
                          + [(m / members).quantize(Decimal("0.01")) if members else None for m in money])
    return table


def by_store(session: Session, now: datetime, *, since: datetime | None, window_days: int,
             journey: str | None = None) -> Table:
    source = attributed(session, now, since=since, window_days=window_days, journey=journey)
    currencies = _currencies(session, source)
    name = func.coalesce(Store.name, literal(NO_STORE))
    join = [(Store, Store.id == source.c.store_id)]
    revenue = _revenue_rows(session, name, source, join)
    converted = _members_converted(session, name, source, join)
    table = Table("by_store", "By store: attributed purchases where they were made",
                  ["store", "attributed purchases", "converted members"] + [f"revenue {c}" for c in currencies])
    for store in sorted(revenue):
        r = revenue[store]
        table.rows.append([store, r["purchases"], converted.get(store, 0)] + _money_cells(r["revenue"], currencies))
    return table


def by_tier(session: Session, now: datetime, *, since: datetime | None, window_days: int,
            journey: str | None = None) -> Table:
    source = attributed(session, now, since=since, window_days=window_days, journey=journey)
    currencies = _currencies(session, source)
    tier = func.coalesce(Tier.code, literal(NO_TIER))
    sent = {k: (int(n), int(m)) for k, n, m in session.execute(
        select(tier, func.count(), func.count(distinct(Send.recipient_id)))
        .select_from(Send).join(Member, and_(Send.recipient_kind == "member", Member.id == Send.recipient_id))
        .outerjoin(Tier, Tier.id == Member.tier_id)
        .where(Send.status == SendStatus.sent, _since(Send.sent_at, since), Send.sent_at <= now,
               (Send.journey == journey) if journey else true()).group_by(tier))}
    join = [(Member, Member.id == source.c.member_id), (Tier, Tier.id == Member.tier_id)]
    revenue = _revenue_rows(session, tier, source, join)
    converted = _members_converted(session, tier, source, join)
    table = Table("by_tier", "By tier (the member's tier now)",
                  ["tier", "sent", "messaged members", "attributed purchases", "converted members", "response rate"]
                  + [f"revenue {c}" for c in currencies])
    for k in sorted(set(sent) | set(revenue)):
        n, members = sent.get(k, (0, 0))
        r = revenue.get(k, {"purchases": 0, "revenue": {}})
        table.rows.append([k, n, members, r["purchases"], converted.get(k, 0),
                           round(converted.get(k, 0) / members, 4) if members else None]
                          + _money_cells(r["revenue"], currencies))
    return table


def response_rates(report: Any) -> Table:
    table = Table("response_rates", "Response rates per journey and channel",
                  ["journey", "channel", "sent", "delivery rate", "open rate", "click rate", "click-to-open",
                   "opt-out rate"], note="open and click rates are of delivered messages")
    rate = lambda x, n: round(x / n, 4) if n else None  # noqa: E731
    for r in report.journeys:
        for c in r.channels:
            table.rows.append([r.journey, c.channel, c.sent, rate(c.delivered, c.sent), rate(c.opened, c.delivered),
                               rate(c.clicked, c.delivered), rate(c.clicked, c.opened), rate(c.opted_out, c.sent)])
    return table


# --- slots: tables of features that may not be installed yet -------------------------------------------

def _reflect(session: Session, name: str) -> SqlTable | None:
    bind = session.get_bind()
    if not inspect(bind).has_table(name):
        return None
    return SqlTable(name, MetaData(), autoload_with=bind)


def ab_results(session: Session, now: datetime, *, since: datetime | None, window_days: int,
               journey: str | None = None) -> Table:
    """Per journey and variant: enrolled, messaged, converted (as the lift table counts it); and each
    promoted winner with when and why (`ab_decisions`). Empty until A/B variants exist."""
    table = Table("ab_results", "A/B results: variants and promoted winners",
                  ["journey", "variant", "enrolled", "messaged members", "converted", "conversion", "winner",
                   "decided at", "metric", "p value"])
    bind = session.get_bind()
    columns = {c["name"] for c in inspect(bind).get_columns("enrollments")}
    decisions: dict[str, tuple[Any, ...]] = {}
    decided = _reflect(session, "ab_decisions")
    if decided is not None:
        for row in session.execute(select(decided).order_by(decided.c.decided_at)).mappings():
            decisions[row["journey"]] = (row.get("winner"), row.get("decided_at"), row.get("metric"), row.get("p_value"))
    if "variant" not in columns:
        for name, (winner, at, metric, p) in sorted(decisions.items()):
            table.rows.append([name, None, None, None, None, None, winner, at, metric, p])
        return table
    variant = column("variant", String)
    first = (select(Send.enrollment_id, func.min(Send.sent_at).label("first")).where(Send.status == SendStatus.sent)
             .group_by(Send.enrollment_id).subquery())
    is_member = Enrollment.recipient_kind == "member"
    converted = case((and_(is_member, first.c.first.is_not(None),
                           converted_within(Enrollment.recipient_id, first.c.first, window_days, bind.dialect.name)), 1),
                     else_=0)
    query = (select(Enrollment.journey, variant, func.count(), func.count(first.c.first), func.sum(converted))
             .select_from(Enrollment).outerjoin(first, first.c.enrollment_id == Enrollment.id)
             .where(variant.is_not(None), Enrollment.status != EnrollmentStatus.held_out,
                    _since(Enrollment.enrolled_at, since), (Enrollment.journey == journey) if journey else true())
             .group_by(Enrollment.journey, variant).order_by(Enrollment.journey, variant))
    for name, arm, n, messaged, conv in session.execute(query):
        winner, at, metric, p = decisions.get(name, (None, None, None, None))
        table.rows.append([name, arm, int(n), int(messaged), int(conv or 0),
                           round(int(conv or 0) / messaged, 4) if messaged else None,
                           winner, at, metric, None if p is None else round(float(p), 4)])
    return table


def send_time_lift(session: Session, now: datetime, *, since: datetime | None, window_days: int,
                   journey: str | None = None, confidence: float = 0.95) -> Table:
    """Journeys waiting `at="best"`: members sent at their own best hour against the members with a
    known hour held to the fallback hour (`best_holdout`), with the lift of the best hour and its
    interval; members without history ("fallback") are shown but are not a control (no history)."""
    table = Table("send_time", f"Send-time optimisation: best hour against its holdout ({confidence:.0%} interval)",
                  ["journey", "rule", "enrolled", "messaged members", "converted", "conversion", "lift (points)",
                   "ci low (points)", "ci high (points)", "p value", "verdict"],
                  note=f"conversion: a purchase or redemption within {window_days} days of the first message; "
                       "holdout: members with a known best hour sent at the journey's fallback hour")
    bind = session.get_bind()
    rule = Enrollment.context["send_time_rule"].as_string()
    first = (select(Send.enrollment_id, func.min(Send.sent_at).label("first")).where(Send.status == SendStatus.sent)
             .group_by(Send.enrollment_id).subquery())
    converted = case((and_(first.c.first.is_not(None),
                           converted_within(Enrollment.recipient_id, first.c.first, window_days, bind.dialect.name)), 1),
                     else_=0)
    query = (select(Enrollment.journey, rule, func.count(), func.count(first.c.first), func.sum(converted))
             .select_from(Enrollment).outerjoin(first, first.c.enrollment_id == Enrollment.id)
             .where(Enrollment.recipient_kind == "member", rule.is_not(None),
                    Enrollment.status != EnrollmentStatus.held_out, _since(Enrollment.enrolled_at, since),
                    (Enrollment.journey == journey) if journey else true())
             .group_by(Enrollment.journey, rule).order_by(Enrollment.journey, rule))
    groups: dict[str, dict[str, tuple[int, int, int]]] = defaultdict(dict)
    for name, arm, n, messaged, conv in session.execute(query):
        groups[name][arm] = (int(n), int(messaged), int(conv or 0))
    for name, arms in sorted(groups.items()):
        best, held = arms.get("best"), arms.get("holdout")
        result = lift_of(best[2], best[1], held[2], held[1], confidence) if best and held else None
        for arm, (n, messaged, conv) in sorted(arms.items()):
            cells: list[Any] = [None] * 5
            if arm == "best" and result is not None:
                cells = [round(100 * result.lift, 2), round(100 * result.low, 2), round(100 * result.high, 2),
                         None if result.p_value is None else round(result.p_value, 4), result.verdict]
            table.rows.append([name, arm, n, messaged, conv, round(conv / messaged, 4) if messaged else None, *cells])
    return table


def nps(session: Session, now: datetime, *, since: datetime | None, journey: str | None = None) -> Table:
    """Per journey and step: invitations, answers, response rate, NPS (0-10 scales: % promoters 9-10 minus
    % detractors 0-6) and the average score. Empty until surveys exist."""
    table = Table("nps", "NPS and survey response",
                  ["journey", "step", "invited", "answers", "response rate", "promoters", "passives", "detractors",
                   "nps", "average score"])
    answers = _reflect(session, "survey_answers")
    if answers is None:
        return table
    invites = _reflect(session, "survey_invites")
    only = (answers.c.journey == journey) if journey else true()
    score = answers.c.score
    ten = answers.c.scale_max == 10
    rows = session.execute(
        select(answers.c.journey, answers.c.step, func.count(),
               func.sum(case((and_(ten, score >= 9), 1), else_=0)),
               func.sum(case((and_(ten, score >= 7, score <= 8), 1), else_=0)),
               func.sum(case((and_(ten, score <= 6), 1), else_=0)),
               func.sum(case((ten, 1), else_=0)), func.avg(cast(score, Integer) * 1.0))
        .where(only, _since(answers.c.answered_at, since), answers.c.answered_at <= now)
        .group_by(answers.c.journey, answers.c.step).order_by(answers.c.journey, answers.c.step)).all()
    invited: dict[tuple[str, str], int] = {}
    if invites is not None:
        invited = {(j, s): int(n) for j, s, n in session.execute(
            select(invites.c.journey, invites.c.step, func.count())
            .where((invites.c.journey == journey) if journey else true(), _since(invites.c.sent_at, since),
                   invites.c.sent_at <= now).group_by(invites.c.journey, invites.c.step))}
    for j, step, n, promoters, passives, detractors, on_ten, avg in rows:
        sent = invited.get((j, step))
        on_ten = int(on_ten or 0)
        table.rows.append([j, step, sent, int(n), round(int(n) / sent, 4) if sent else None, int(promoters or 0),
                           int(passives or 0), int(detractors or 0),
                           round(100 * (int(promoters or 0) - int(detractors or 0)) / on_ten, 1) if on_ten else None,
                           round(float(avg), 2) if avg is not None else None])
    return table


def bulletin_reads(session: Session, now: datetime, *, since: datetime | None) -> Table:
    """Per store: staff bulletins sent, read ("I've read it" links), read rate. Empty until reads are recorded."""
    from audiences.models import Staff

    table = Table("bulletin_reads", "Staff bulletins read, per store",
                  ["store", "bulletins sent", "read", "read rate"])
    reads = _reflect(session, "bulletin_reads")
    if reads is None:
        return table
    store = func.coalesce(Store.name, literal(NO_STORE))
    read = select(reads.c.ledger_id).where(reads.c.read_at <= now).subquery()
    for name, n, r in session.execute(
            select(store, func.count(), func.count(read.c.ledger_id))
            .select_from(Send).join(Staff, and_(Send.recipient_kind == "staff", Staff.id == Send.recipient_id))
            .outerjoin(Store, Store.id == Staff.store_id).outerjoin(read, read.c.ledger_id == Send.id)
            .where(Send.status == SendStatus.sent, _since(Send.sent_at, since), Send.sent_at <= now)
            .group_by(store).order_by(store)):
        table.rows.append([name, int(n), int(r), round(int(r) / int(n), 4) if n else None])
    return table


def broadcasts_table(session: Session, now: datetime) -> Table:
    """Each broadcast by name with its journey (`broadcast_<id>`, as the other tables name it) and outcome."""
    table = Table("broadcasts", "Broadcasts", ["journey", "broadcast", "status", "audience", "from", "over (minutes)",
                                              "enrolled", "held out", "sent", "skipped", "failed", "cancelled",
                                              "waiting"])
    if not inspect(session.get_bind()).has_table("broadcasts"):
        return table
    from journeys.broadcast_models import Broadcast
    from journeys.broadcasts import journey_name, progress

    ids = dict(session.execute(select(Broadcast.name, Broadcast.id)).all())
    for p in progress(session, now, persist=False):
        table.rows.append([journey_name(ids[p.name]), p.name, p.status, p.audience, p.scheduled_at,
                           p.throttle_seconds // 60, p.enrolled, p.held_out, p.sent, sum(p.skipped.values()),
                           sum(p.failed.values()), p.cancelled, p.waiting])
    return table


def decision_tables(session: Session, report: Any, *, journey: str | None = None) -> list[Table]:
    """Every table of the deciding part of the report, in the order the page shows them."""
    now, since, window = report.generated_for, report.since, report.window_days
    common = {"since": since, "window_days": window, "journey": journey}
    return [
        lift_table(report),
        weekly_trends(session, now, **common),
        by_journey(session, now, **common),
        by_store(session, now, **common),
        by_tier(session, now, **common),
        response_rates(report),
        ab_results(session, now, **common),
        send_time_lift(session, now, **common),
        nps(session, now, since=since, journey=journey),
        bulletin_reads(session, now, since=since),
        broadcasts_table(session, now),
    ]


def totals(table: Table, columns: Iterable[str]) -> dict[str, Any]:
    """Column sums of a table (for the page's total rows and for checking breakdowns add up)."""
    out: dict[str, Any] = defaultdict(int)
    for name in columns:
        i = table.columns.index(name)
        for row in table.rows:
            if row[i] is not None:
                out[name] += row[i]
    return dict(out)
