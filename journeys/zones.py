"""Which time zone a recipient's times are computed in, when their own is missing or unusable.

Order: their own zone; else their home store's (staff: their store; members, who have no home
store in the data model: the store of their latest in-store purchase); else the program default
`LOYALFLOW_DEFAULT_TIME_ZONE`. Never UTC by accident: with none of these the send is skipped
`invalid_time_zone` by the gate, and every fallback is counted in TickStats.zone_fallback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import Purchase, Staff, Store

OWN, STORE, DEFAULT, NONE = "own", "store", "default", "none"


@lru_cache(maxsize=1024)
def usable(name: str | None) -> bool:
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as "America"
        return False
    return True


@dataclass(frozen=True, slots=True)
class Zone:
    name: str | None
    """None only when source is NONE."""
    source: str


def resolve(session: Session, recipients: Iterable[tuple[str, int, str | None]],
            default: str | None) -> dict[tuple[str, int], Zone]:
    """(kind, id, own zone) -> the zone to use. Queries the database only for recipients whose own
    zone is unusable (one query per recipient kind)."""
    out: dict[tuple[str, int], Zone] = {}
    missing: dict[str, list[int]] = {}
    for kind, rid, own in recipients:
        if usable(own):
            out[(kind, rid)] = Zone(own, OWN)
        else:
            missing.setdefault(kind, []).append(rid)
    for kind, ids in missing.items():
        stores = _store_zones(session, kind, ids)
        for rid in ids:
            store = stores.get(rid)
            if usable(store):
                out[(kind, rid)] = Zone(store, STORE)
            elif usable(default):
                out[(kind, rid)] = Zone(default, DEFAULT)
            else:
                out[(kind, rid)] = Zone(None, NONE)
    return out


def _store_zones(session: Session, kind: str, ids: list[int]) -> dict[int, str]:
    if kind == "staff":
        rows = session.execute(select(Staff.id, Store.time_zone).join(Store, Store.id == Staff.store_id)
                               .where(Staff.id.in_(ids)))
        return {rid: tz for rid, tz in rows}
    if kind != "member":
        return {}
    latest = (select(Purchase.member_id, func.max(Purchase.purchased_at).label("at"))
              .where(Purchase.member_id.in_(ids), Purchase.store_id.is_not(None))
              .group_by(Purchase.member_id).subquery())
    rows = session.execute(
        select(Purchase.member_id, Store.time_zone)
        .join(latest, (latest.c.member_id == Purchase.member_id) & (latest.c.at == Purchase.purchased_at))
        .join(Store, Store.id == Purchase.store_id).where(Purchase.store_id.is_not(None)).order_by(Purchase.member_id, Purchase.id))
    return {rid: tz for rid, tz in rows}  # a tie at the same instant: the last purchase row wins
