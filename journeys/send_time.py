"""Send-time optimisation: `wait(..., at="best")` ends at the member's own most likely hour.

The hour is the mode of the local hour (in the member's own zone) of their purchases and opened
messages over the last 180 days, ties going to the hour used most recently. It is computed in the
database, set-based, when members enroll, and kept in the enrollment's context as `best_hour`
with `send_time_rule`: "best"; "fallback" when the member has no such history and the wait's
fallback hour is used; or "holdout" for the members with a best hour who get the fallback hour anyway
(`best_holdout`, 10% by default), so the report can measure the lift of sending at the best hour (best vs holdout: both
groups have a history, so they are comparable; the fallback group is not).

Local hours need time zones: PostgreSQL converts with `AT TIME ZONE`; SQLite has no zones, so a
deterministic SQL function backed by zoneinfo is registered on the connection for the statement.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Subquery, case, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from audiences.models import Member, Purchase
from channels.models import DeliveryEvent, DeliveryEventKind
from journeys.dsl import Journey, Wait, walk
from journeys.models import Send as LedgerRow
from journeys.zones import usable

HISTORY = timedelta(days=180)
BEST, FALLBACK, HOLDOUT = "best", "fallback", "holdout"

_SQLITE_FUNCTION = "loyalflow_local_hour"


def uses_best(journey: Journey) -> bool:
    return any(isinstance(s, Wait) and s.best for s in walk(journey.steps))


def holdout_percent(journey: Journey) -> float:
    """Members with a known best hour who get the fallback hour anyway (`wait(..., best_holdout=10)`, a
    deterministic hash like the journey holdout): the control group for the best hour's lift."""
    return next((s.best_holdout for s in walk(journey.steps) if isinstance(s, Wait) and s.best), 0.0)


def best_hour_of(context: dict[str, Any]) -> int | None:
    value = context.get("best_hour")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) and 0 <= value < 24:
        return int(value)
    return None


def wall_time(step: Wait, context: dict[str, Any]) -> time | None:
    """The local time a wait ends at: the member's best hour for at="best" when known, else `step.at`."""
    if step.best and (hour := best_hour_of(context)) is not None:
        return time(hour)
    return step.at


def rule_of(context: dict[str, Any]) -> str:
    return BEST if best_hour_of(context) is not None else FALLBACK


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    return ZoneInfo(name) if usable(name) else None


def _local_hour(stored: Any, zone_name: Any) -> int | None:
    """SQLite's twin of PostgreSQL's extract(hour from ts AT TIME ZONE 'UTC' AT TIME ZONE zone)."""
    if stored is None or not isinstance(zone_name, str) or (zone := _zone(zone_name)) is None:
        return None
    instant = datetime.fromisoformat(str(stored)).replace(tzinfo=timezone.utc)
    return instant.astimezone(zone).hour


def _local_hour_sql(session: Session, at: Any, zone: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        raw = session.connection().connection.dbapi_connection
        raw.create_function(_SQLITE_FUNCTION, 2, _local_hour, deterministic=True)  # type: ignore[union-attr]
        return getattr(func, _SQLITE_FUNCTION)(at, zone)
    # an unknown zone name would fail the whole statement: convert only names zoneinfo knows
    names = [z for z in session.scalars(select(Member.time_zone).distinct()) if z and usable(z)]
    local = func.timezone(zone, func.timezone("UTC", at))
    return case((zone.in_(names), cast(func.extract("hour", local), Integer)), else_=None) if names else literal(None)


def best_hours_query(session: Session, now: datetime) -> Subquery:
    """(member_id, hour): each member with history in the 180 days before `now`, and their mode local hour."""
    since = now - HISTORY
    purchases = select(Purchase.member_id.label("member_id"), Purchase.purchased_at.label("at")).where(
        Purchase.purchased_at > since, Purchase.purchased_at <= now)
    opens = (select(LedgerRow.recipient_id.label("member_id"), DeliveryEvent.occurred_at.label("at"))
             .join(DeliveryEvent, DeliveryEvent.ledger_id == LedgerRow.id)
             .where(DeliveryEvent.event == DeliveryEventKind.open, LedgerRow.recipient_kind == "member",
                    DeliveryEvent.occurred_at > since, DeliveryEvent.occurred_at <= now))
    history = union_all(purchases, opens).subquery("engagement")
    hour = _local_hour_sql(session, history.c.at, Member.time_zone).label("hour")
    local = (select(history.c.member_id, hour, history.c.at).join(Member, Member.id == history.c.member_id)
             .subquery("local_engagement"))
    counted = (select(local.c.member_id, local.c.hour, func.count().label("n"), func.max(local.c.at).label("last"))
               .where(local.c.hour.is_not(None)).group_by(local.c.member_id, local.c.hour).subquery("hour_counts"))
    ranked = select(counted.c.member_id, counted.c.hour, func.row_number().over(
        partition_by=counted.c.member_id, order_by=(counted.c.n.desc(), counted.c.last.desc())).label("rank")
    ).subquery("hour_ranks")
    return select(ranked.c.member_id, ranked.c.hour).where(ranked.c.rank == 1).subquery("best_hours")


def best_hours(session: Session, member_ids: list[int], now: datetime) -> dict[int, int]:
    """{member id: best local hour} for those with history (what enrollment stores, for reports and tests)."""
    q = best_hours_query(session, now)
    return {int(m): int(h) for m, h in session.execute(select(q.c.member_id, q.c.hour).where(q.c.member_id.in_(member_ids)))}
