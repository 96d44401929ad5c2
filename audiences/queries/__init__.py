"""The audience registry: every named audience a journey can enroll from."""

from __future__ import annotations

from audiences.errors import UnknownAudience
from audiences.queries.base import Audience, AudienceQuery, Criterion, Explanation
from audiences.queries.lapsed import Lapsed
from audiences.queries.new_members import NewMembers
from audiences.queries.points_expiring import PointsExpiring
from audiences.queries.staff import StaffAudience
from audiences.queries.tier_ups import TierUps

AUDIENCES: dict[str, Audience] = {a.name: a for a in (NewMembers(), PointsExpiring(), TierUps(), Lapsed(), StaffAudience())}


def get_audience(name: str) -> Audience:
    try:
        return AUDIENCES[name]
    except KeyError:
        raise UnknownAudience(f"unknown audience {name!r}; known audiences: {', '.join(sorted(AUDIENCES))}") from None


__all__ = ["AUDIENCES", "Audience", "AudienceQuery", "Criterion", "Explanation", "get_audience"]
