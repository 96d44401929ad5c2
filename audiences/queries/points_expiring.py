"""Points expiring: per earn batch, what is left of it after redemptions, expiring within a window.

The program consumes points oldest first (FIFO by earn time). So a batch's remaining points are
what the member earned up to and including it, minus everything consumed so far, clamped to the
batch: remaining = clamp(earned_through_batch - consumed, 0, batch_points). Only ledger lines at or
before `now` count, so a simulation at a past instant sees the ledger as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from audiences.errors import InvalidParameter
from audiences.models import Member, MemberStatus, PointsEntry
from audiences.queries.base import Audience, AudienceQuery, Criterion


def balance_at(member_id: ColumnElement[int], now: datetime) -> ColumnElement[int]:
    """A member's points balance at `now` (a correlated scalar subquery)."""
    entry = aliased(PointsEntry)
    return (
        select(func.coalesce(func.sum(entry.points), 0))
        .where(entry.member_id == member_id, entry.occurred_at <= now)
        .scalar_subquery()
    )


def batch_unspent_through(batch: type[PointsEntry], now: datetime) -> ColumnElement[int]:
    """Points earned up to and including `batch` minus all consumed so far (unclamped)."""
    earlier = aliased(PointsEntry)
    earned_through = (
        select(func.coalesce(func.sum(earlier.points), 0))
        .where(
            earlier.member_id == batch.member_id,
            earlier.points > 0,
            earlier.occurred_at <= now,
            or_(earlier.occurred_at < batch.occurred_at,
                and_(earlier.occurred_at == batch.occurred_at, earlier.id <= batch.id)),
        )
        .scalar_subquery()
    )
    spent = aliased(PointsEntry)
    consumed = (
        select(func.coalesce(-func.sum(spent.points), 0))
        .where(spent.member_id == batch.member_id, spent.points < 0, spent.occurred_at <= now)
        .scalar_subquery()
    )
    return earned_through - consumed


def batch_remaining(batch: type[PointsEntry], now: datetime) -> ColumnElement[int]:
    """Points of `batch` still unspent at `now`, under oldest-first consumption."""
    left = batch_unspent_through(batch, now)
    return case((left <= 0, literal(0)), (left >= batch.points, batch.points), else_=left)


def members_with_points_expiring(now: datetime, until: datetime) -> Select[Any]:
    """COUNT of active members with at least one point left in a batch expiring in (now, until].

    Exact and cheaper than counting batch rows: what a member earned through a batch only grows with
    the batch's place in the FIFO order, so some batch in the window has points left if and only if
    the member's LAST batch in the window does. One evaluation per member instead of per batch.
    """
    in_window = and_(PointsEntry.points > 0, PointsEntry.occurred_at <= now,
                     PointsEntry.expires_at > now, PointsEntry.expires_at <= until)
    last = (select(PointsEntry.member_id.label("member_id"), func.max(PointsEntry.occurred_at).label("at"))
            .where(in_window).group_by(PointsEntry.member_id).subquery("last_batch"))
    tie = aliased(PointsEntry)
    last_id = select(func.max(tie.id)).where(
        tie.member_id == last.c.member_id, tie.occurred_at == last.c.at, tie.points > 0,
        tie.expires_at > now, tie.expires_at <= until).correlate_except(tie).scalar_subquery()
    earned = aliased(PointsEntry)
    earned_through = select(func.coalesce(func.sum(earned.points), 0)).where(
        earned.member_id == last.c.member_id, earned.points > 0,
        or_(earned.occurred_at < last.c.at, and_(earned.occurred_at == last.c.at, earned.id <= last_id)),
    ).scalar_subquery()
    spent = aliased(PointsEntry)
    consumed = select(func.coalesce(-func.sum(spent.points), 0)).where(
        spent.member_id == last.c.member_id, spent.points < 0, spent.occurred_at <= now).scalar_subquery()
    return (select(func.count()).select_from(last.join(Member, Member.id == last.c.member_id))
            .where(Member.status == MemberStatus.active, earned_through - consumed >= 1))


class expiry_window(FunctionElement[int]):
    """The `days`-long window an instant falls in, counted from 1970-01-01 UTC: fixed windows, so a
    batch's window never changes from one day's run to the next and neither does the reminder's key."""

    type = Integer()
    inherit_cache = True
    name = "expiry_window"


@compiles(expiry_window, "sqlite")
def _window_sqlite(element: expiry_window, compiler: Any, **kw: Any) -> str:
    instant, days = list(element.clauses)
    return (f"CAST((julianday({compiler.process(instant, **kw)}) - 2440587.5) / "
            f"{compiler.process(days, **kw)} AS INTEGER)")  # positive: truncation is floor


@compiles(expiry_window)
def _window_default(element: expiry_window, compiler: Any, **kw: Any) -> str:
    instant, days = list(element.clauses)
    return (f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(instant, **kw)}) / 86400.0 / "
            f"{compiler.process(days, **kw)}) AS INTEGER)")


def digest_rows(now: datetime, until: datetime, digest_days: int) -> tuple[Any, ColumnElement[int]]:
    """One row per (member, expiry window of `digest_days`) with a batch expiring in (now, until]:
    the window's points still left (all its batches, so the total does not depend on the day the
    window first entered the horizon), its earliest expiry, and the batch that is consumed last
    (FIFO), whose being spent means the whole window is spent.

    Each batch's two correlated sums are evaluated once: the batches are a MATERIALIZED CTE (a
    flattened subquery would evaluate them again for every reference to `left`, and the FIFO-last
    batch is a window function over the same rows, not a correlated subquery over them)."""
    batch = PointsEntry
    window = expiry_window(batch.expires_at, literal(digest_days, Integer))
    last_day = until + timedelta(days=digest_days)
    expiring = (select(batch.member_id.label("member_id"), batch.id.label("batch_id"),
                       batch.occurred_at.label("occurred_at"), batch.expires_at.label("expires_at"),
                       batch.points.label("batch_points"), batch_unspent_through(batch, now).label("unspent"),
                       window.label("window"))
                .where(batch.points > 0, batch.expires_at.is_not(None), batch.occurred_at <= now,
                       batch.expires_at > now, batch.expires_at <= last_day)
                .cte("expiring_batches").prefix_with("MATERIALIZED"))
    # left = clamp(unspent, 0, points), and left > 0 <=> unspent > 0 (a batch has points > 0)
    left = case((expiring.c.unspent >= expiring.c.batch_points, expiring.c.batch_points), else_=expiring.c.unspent)
    fifo_last = func.first_value(expiring.c.batch_id).over(
        partition_by=(expiring.c.member_id, expiring.c.window),
        order_by=(expiring.c.occurred_at.desc(), expiring.c.batch_id.desc()))
    live = (select(expiring.c.member_id, expiring.c.window, expiring.c.expires_at, left.label("left"),
                   fifo_last.label("last_batch"))
            .where(expiring.c.unspent > 0).subquery("live_batches"))
    groups = (select(live.c.member_id.label("member_id"), live.c.window.label("window"),
                     func.sum(live.c.left).label("points"), func.min(live.c.expires_at).label("expires_at"),
                     func.count().label("batches"), func.max(live.c.last_batch).label("last_batch"))
              .group_by(live.c.member_id, live.c.window)
              .subquery("expiry_digest"))
    return groups, groups.c.last_batch


class PointsExpiring(Audience):
    name = "points_expiring"
    description = ("Members with points left in an earn batch expiring within `within_days` days "
                   "(one row per batch; the window's end is included).")
    no_rows_reason = "has no points batches with an expiry date"

    @dataclass(frozen=True)
    class Params:
        within_days: int = 30
        min_points: int = 1
        digest_days: int = 0
        """With N > 0, one row per member and N-day expiry window instead of one per batch: batches
        expiring close together make one reminder (their total, their earliest date)."""

    def validate(self, params: Params) -> None:  # type: ignore[override]
        super().validate(params)
        if params.min_points < 1:
            raise InvalidParameter(f"audience 'points_expiring': min_points must be >= 1, got {params.min_points}")

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        if params.digest_days > 0:
            return self._digest(now, params)
        until = now + timedelta(days=params.within_days)
        batch = PointsEntry
        remaining = batch_remaining(batch, now)
        # clamp(left, 0, points) >= k  <=>  left >= k and points >= k (k >= 1): the test evaluates the
        # correlated sums once per batch, where the clamp's CASE would evaluate them up to three times
        enough_left = and_(batch_unspent_through(batch, now) >= params.min_points, batch.points >= params.min_points)
        source = batch.__table__.join(Member.__table__, Member.id == batch.member_id)
        return AudienceQuery(
            source=source,
            count_query=members_with_points_expiring(now, until) if params.min_points == 1 else None,
            recipient_id=batch.member_id,
            key=batch.id,
            criteria=[
                Criterion("active", "membership is active", Member.status == MemberStatus.active),
                Criterion("is_batch", "ledger line is an earned batch with an expiry, at or before now",
                          and_(batch.points > 0, batch.expires_at.is_not(None), batch.occurred_at <= now)),
                Criterion("not_expired", "batch has not expired yet", batch.expires_at > now),
                Criterion("expires_in_window", f"batch expires by {until.isoformat()}", batch.expires_at <= until),
                Criterion("points_left", f"at least {params.min_points} points of the batch left after "
                          "oldest-first redemptions", enough_left),
            ],
            fields={
                "first_name": Member.first_name,
                "locale": Member.locale,
                "time_zone": Member.time_zone,
                "batch_id": batch.id,
                "points": remaining,
                "expires_at": batch.expires_at,
                "balance": balance_at(batch.member_id, now),
            },
        )

    def _digest(self, now: datetime, params: Params) -> AudienceQuery:
        """Batches merged per member and expiry window: `points` is the window's total left,
        `expires_at` its earliest expiry, `batch_id` its FIFO-last batch (spent last), `window_key` the
        enrollment's occurrence key and `batches` how many batches it merges."""
        until = now + timedelta(days=params.within_days)
        digest, last_batch = digest_rows(now, until, params.digest_days)
        source = digest.join(Member.__table__, Member.id == digest.c.member_id)
        window_key = literal(f"{params.digest_days}d:", String) + cast(digest.c.window, String)
        return AudienceQuery(
            source=source,
            recipient_id=digest.c.member_id,
            key=digest.c.window,
            criteria=[
                Criterion("active", "membership is active", Member.status == MemberStatus.active),
                Criterion("expires_in_window", f"the window's earliest batch expires by {until.isoformat()}",
                          digest.c.expires_at <= until),
                Criterion("points_left", f"at least {params.min_points} points left in the "
                          f"{params.digest_days}-day expiry window", digest.c.points >= params.min_points),
            ],
            fields={
                "first_name": Member.first_name,
                "locale": Member.locale,
                "time_zone": Member.time_zone,
                "window_key": window_key,
                "batch_id": last_batch,
                "batches": digest.c.batches,
                "points": digest.c.points,
                "expires_at": digest.c.expires_at,
                "balance": balance_at(digest.c.member_id, now),
            },
        )
