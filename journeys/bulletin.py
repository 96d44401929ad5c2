"""The staff bulletin's per-store week: each store's own figures next to the program's, and more for managers.

A member belongs to a store by their latest in-store purchase up to the week's end (the rule
journeys/zones.py uses for a member's home store; members have no store of their own). The week is
(now - 7 days, now], as in the program figures (context_extras.week_figures):

- enrollments: members who enrolled in the week;
- redemptions: redeem entries in the points ledger in the week;
- tier_ups: tier changes in the week to a higher-ranked tier;
- NPS: answers (0-10 surveys, latest score) given in the week: % promoters (9-10) - % detractors (0-6).

There is no customer-questions data in the schema, so the bulletin has no "top questions" section.
Managers (store, regional, program) also get last week's bulletin read rate and the staff pulse
(1-5) of their store; regional and program managers get every store's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session, aliased

from audiences.models import (
    Member,
    PointsEntry,
    PointsKind,
    Purchase,
    Staff,
    Store,
    Tier,
    TierChange,
)
from channels.survey_models import SurveyAnswer
from journeys.context_extras import Contexts, provides
from journeys.surveys import NPS, PULSE, read_rates

MANAGER_ROLES = frozenset({"store_manager", "regional_manager", "program_manager"})
ALL_STORES_ROLES = frozenset({"regional_manager", "program_manager"})
WEEK = timedelta(days=7)


@dataclass
class StoreWeek:
    enrollments: int = 0
    redemptions: int = 0
    tier_ups: int = 0
    nps_responses: int = 0
    promoters: int = 0
    detractors: int = 0

    @property
    def passives(self) -> int:
        return self.nps_responses - self.promoters - self.detractors

    @property
    def nps(self) -> int | None:
        if not self.nps_responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.nps_responses)

    def as_context(self) -> dict[str, Any]:
        return {"enrollments": self.enrollments, "redemptions": self.redemptions, "tier_ups": self.tier_ups,
                "nps": self.nps, "nps_responses": self.nps_responses, "promoters": self.promoters,
                "passives": self.passives, "detractors": self.detractors}


def home_store(member_id: ColumnElement[int], end: datetime) -> ColumnElement[int | None]:
    """The store of the member's latest in-store purchase up to `end` (None without one)."""
    return (select(Purchase.store_id)
            .where(Purchase.member_id == member_id, Purchase.store_id.is_not(None), Purchase.purchased_at <= end)
            .order_by(Purchase.purchased_at.desc(), Purchase.id.desc()).limit(1).scalar_subquery())


def _count_by_store(session: Session, rows: Select[Any], end: datetime) -> dict[int | None, int]:
    """`rows` (one per thing counted, with a `member_id` column) counted by the member's home store."""
    src = rows.subquery()
    inner = select(home_store(src.c.member_id, end).label("store_id")).select_from(src).subquery()
    return {sid: int(n) for sid, n in session.execute(
        select(inner.c.store_id, func.count()).group_by(inner.c.store_id))}


def store_week_figures(session: Session, start: datetime, end: datetime) -> dict[int | None, StoreWeek]:
    """Each store's figures for (start, end]; the key None holds members with no in-store purchase.
    Summed over every key they are the program's figures."""
    out: dict[int | None, StoreWeek] = {}

    def put(counts: dict[int | None, int], name: str) -> None:
        for sid, n in counts.items():
            setattr(out.setdefault(sid, StoreWeek()), name, n)

    put(_count_by_store(session, select(Member.id.label("member_id"))
                        .where(Member.enrolled_at > start, Member.enrolled_at <= end), end), "enrollments")
    put(_count_by_store(session, select(PointsEntry.member_id.label("member_id"))
                        .where(PointsEntry.kind == PointsKind.redeem, PointsEntry.occurred_at > start,
                               PointsEntry.occurred_at <= end), end), "redemptions")
    new, old = aliased(Tier), aliased(Tier)
    put(_count_by_store(session, select(TierChange.member_id.label("member_id"))
                        .join(new, new.id == TierChange.to_tier_id).join(old, old.id == TierChange.from_tier_id)
                        .where(TierChange.changed_at > start, TierChange.changed_at <= end, new.rank > old.rank),
                        end), "tier_ups")
    answers = (select(SurveyAnswer.recipient_id.label("member_id"), SurveyAnswer.score)
               .where(SurveyAnswer.recipient_kind == "member", SurveyAnswer.scale_min == NPS[0],
                      SurveyAnswer.scale_max == NPS[1], SurveyAnswer.answered_at > start,
                      SurveyAnswer.answered_at <= end).subquery())
    inner = select(home_store(answers.c.member_id, end).label("store_id"), answers.c.score).subquery()
    for sid, n, promoters, detractors in session.execute(
            select(inner.c.store_id, func.count(), func.sum(case((inner.c.score >= 9, 1), else_=0)),
                   func.sum(case((inner.c.score <= 6, 1), else_=0))).group_by(inner.c.store_id)):
        week = out.setdefault(sid, StoreWeek())
        week.nps_responses, week.promoters, week.detractors = int(n), int(promoters or 0), int(detractors or 0)
    return out


def program_week(by_store: dict[int | None, StoreWeek]) -> StoreWeek:
    total = StoreWeek()
    for week in by_store.values():
        for name in ("enrollments", "redemptions", "tier_ups", "nps_responses", "promoters", "detractors"):
            setattr(total, name, getattr(total, name) + getattr(week, name))
    return total


def pulse_by_store(session: Session, start: datetime, end: datetime,
                   journey: str = "staff_bulletin") -> dict[int | None, tuple[float, int]]:
    """Staff pulse answers (1-5) given in (start, end], by the staff member's store: (average, count)."""
    rows = session.execute(
        select(Staff.store_id, func.avg(SurveyAnswer.score), func.count())
        .join(Staff, Staff.id == SurveyAnswer.recipient_id)
        .where(SurveyAnswer.recipient_kind == "staff", SurveyAnswer.journey == journey,
               SurveyAnswer.scale_min == PULSE[0], SurveyAnswer.scale_max == PULSE[1],
               SurveyAnswer.answered_at > start, SurveyAnswer.answered_at <= end)
        .group_by(Staff.store_id))
    return {sid: (round(float(avg), 1), int(n)) for sid, avg, n in rows}


def _percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


@provides("store_figures", "program_nps", "manager")
def store_bulletin(session: Session, now: datetime, contexts: Contexts) -> Contexts:
    """Per staff member: their store's week (None at head office), the program's NPS, and for managers
    last week's read rate, the staff pulse and (regional/program) every store's row."""
    start = now - WEEK
    by_store = store_week_figures(session, start, now)
    program = program_week(by_store)
    managers = any(str(c.get("role") or "") in MANAGER_ROLES for c in contexts)
    rates = {r.store_id: r for r in read_rates(session, now - timedelta(days=10), now - timedelta(days=1))} \
        if managers else {}
    pulse = pulse_by_store(session, start, now) if managers else {}
    names = dict(session.execute(select(Store.id, Store.name)).all()) if managers else {}
    for c in contexts:
        store, role = c.get("store_id"), str(c.get("role") or "")
        c["store_figures"] = by_store.get(store, StoreWeek()).as_context() if store is not None else None
        c["program_nps"] = {"nps": program.nps, "responses": program.nps_responses}
        c["manager"] = None
        if role in MANAGER_ROLES:
            rate = rates.get(store)
            avg, answered = pulse.get(store, (None, 0))
            rows = []
            if role in ALL_STORES_ROLES:
                for sid, name in sorted(names.items(), key=lambda kv: kv[1]):
                    week, r = by_store.get(sid, StoreWeek()), rates.get(sid)
                    rows.append({"name": name, **week.as_context(),
                                 "read_rate": _percent(r.read, r.sent) if r else None})
            c["manager"] = {"read_rate": _percent(rate.read, rate.sent) if rate else None,
                            "read": rate.read if rate else 0, "sent": rate.sent if rate else 0,
                            "pulse_average": avg, "pulse_responses": answered, "stores": rows}
    return contexts
