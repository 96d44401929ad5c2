"""Conditions for exit_when and branch: SQL over one enrollment, evaluated for a whole chunk at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, not_, select
from sqlalchemy.orm import aliased

from audiences.events import property_filter
from audiences.models import Event, PointsEntry, PointsKind, Purchase
from audiences.queries import get_audience
from audiences.queries.new_members import has_active_device
from audiences.queries.points_expiring import batch_remaining
from channels.survey_models import SurveyAnswer
from journeys.models import Enrollment
from journeys.models import Send as LedgerRow


@dataclass(frozen=True)
class Scope:
    """What a condition may look at: the enrollment row (correlated) and the tick's instant."""

    now: datetime
    audience: str
    audience_params: dict


@dataclass(frozen=True, eq=False)
class Condition:
    name: str
    describe: str
    build: Callable[[Scope], ColumnElement[bool]]
    needs_fields: tuple[str, ...] = ()
    """Enrollment context fields the condition reads (checked by `loyalflow check`)."""

    def __invert__(self) -> Condition:
        return Condition(f"not_{self.name}", f"not ({self.describe})", lambda s: not_(self.build(s)), self.needs_fields)


def _field_int(name: str) -> ColumnElement[int]:
    return Enrollment.context[name].as_integer()


purchased_since_enrollment = Condition(
    "purchased", "the member bought something since enrolling",
    lambda s: exists(select(Purchase.id).where(
        Purchase.member_id == Enrollment.recipient_id,
        Purchase.purchased_at > Enrollment.enrolled_at,
        Purchase.purchased_at <= s.now,
    )),
)

redeemed_since_enrollment = Condition(
    "redeemed", "the member redeemed points since enrolling",
    lambda s: exists(select(PointsEntry.id).where(
        PointsEntry.member_id == Enrollment.recipient_id,
        PointsEntry.kind == PointsKind.redeem,
        PointsEntry.occurred_at > Enrollment.enrolled_at,
        PointsEntry.occurred_at <= s.now,
    )),
)


def _batch_spent(s: Scope) -> ColumnElement[bool]:
    batch = aliased(PointsEntry)
    left = select(batch_remaining(batch, s.now)).where(batch.id == _field_int("batch_id")).scalar_subquery()
    return left <= 0


batch_spent = Condition("batch_spent", "nothing is left of the expiring batch (redeemed or expired)",
                        _batch_spent, needs_fields=("batch_id",))

has_device = Condition("has_device", "the member has a push token that works",
                       lambda s: has_active_device(Enrollment.recipient_id) == 1)


def _left_audience(s: Scope) -> ColumnElement[bool]:
    built = get_audience(s.audience).query(s.now, **s.audience_params)
    inside = select(built.recipient_id).select_from(built.source).where(
        and_(*(c.expr for c in built.criteria)), built.recipient_id == Enrollment.recipient_id)
    return not_(exists(inside))


left_audience = Condition("left_audience", "the recipient is no longer in the journey's audience", _left_audience)


def event_happened(type: str, where: dict | None = None) -> Condition:
    """The member had an event of `type` (matching `where`, as in event(...)) since enrolling:
    exit_when(event_happened("redemption")). Same-instant events do not count (the trigger itself)."""
    match = dict(where or {})
    property_filter(match)  # a bad filter fails when the journey loads, with its line

    def build(s: Scope) -> ColumnElement[bool]:
        return exists(select(Event.id).where(
            Event.member_id == Enrollment.recipient_id, Enrollment.recipient_kind == "member",
            Event.type == type, Event.occurred_at > Enrollment.enrolled_at, Event.occurred_at <= s.now,
            property_filter(match)))

    described = f"the member had a {type!r} event since enrolling" + (f" with {match}" if match else "")
    return Condition(f"event_{type}"[:64], described, build)

def survey_score_below(threshold: int, *, within: timedelta | None = None, step: str | None = None,
                       scale: tuple[int, int] | None = None, name: str | None = None) -> Condition:
    """This enrollment's survey (its step `step`, else any of its surveys) was answered with a score
    below `threshold` (the latest answer counts), within `within` before now when given:
    branch(survey_score_below(7, within=timedelta(days=7)), then=[send(email("tier_up/email_recovery"))])."""
    if within is not None and within <= timedelta(0):
        raise ValueError(f"survey_score_below: within must be positive, got {within}")

    def build(s: Scope) -> ColumnElement[bool]:
        where = [LedgerRow.enrollment_id == Enrollment.id, SurveyAnswer.score < threshold,
                 SurveyAnswer.answered_at <= s.now]
        if step is not None:
            where.append(LedgerRow.step_key == step)
        if within is not None:
            where.append(SurveyAnswer.answered_at > s.now - within)
        if scale is not None:
            where += [SurveyAnswer.scale_min == scale[0], SurveyAnswer.scale_max == scale[1]]
        return exists(select(SurveyAnswer.id).join(LedgerRow, LedgerRow.id == SurveyAnswer.ledger_id).where(*where))

    described = (f"the recipient answered {'step ' + repr(step) if step else 'a survey of this enrollment'} "
                 f"with a score below {threshold}" + (f" within {within}" if within else ""))
    return Condition(name or f"survey_score_below_{threshold}", described, build)


def nps_detractor(*, within: timedelta | None = None, step: str | None = None) -> Condition:
    """A detractor: this enrollment's NPS question (0-10) answered 0 to 6."""
    return survey_score_below(7, within=within, step=step, scale=(0, 10), name="nps_detractor")


__all__ = ["Condition", "Scope", "batch_spent", "event_happened", "has_device", "left_audience", "nps_detractor",
           "purchased_since_enrollment", "redeemed_since_enrollment", "survey_score_below"]
