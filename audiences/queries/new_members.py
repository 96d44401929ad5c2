"""New members: enrolled within the last N days, for the welcome journey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, literal, select

from audiences.models import DeviceToken, Member, MemberStatus, Tier
from audiences.queries.base import Audience, AudienceQuery, Criterion


def has_active_device(member_id_column: object) -> object:
    """1 when the member has a push token the provider has not revoked, else 0."""
    found = exists(select(DeviceToken.id).where(DeviceToken.member_id == member_id_column,
                                                DeviceToken.revoked_at.is_(None)))
    return case((found, literal(1)), else_=literal(0))


class NewMembers(Audience):
    name = "new_members"
    description = "Active members who enrolled within the last `within_days` days (welcome)."

    @dataclass(frozen=True)
    class Params:
        within_days: int = 7

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        since = now - timedelta(days=params.within_days)
        source = Member.__table__.outerjoin(Tier.__table__, Tier.id == Member.tier_id)
        return AudienceQuery(
            source=source,
            recipient_id=Member.id,
            criteria=[
                Criterion("active", "membership is active", Member.status == MemberStatus.active),
                Criterion("enrolled_recently", f"enrolled after {since.isoformat()} and not after now",
                          and_(Member.enrolled_at > since, Member.enrolled_at <= now)),
            ],
            fields={
                "first_name": Member.first_name,
                "locale": Member.locale,
                "time_zone": Member.time_zone,
                "enrolled_at": Member.enrolled_at,
                "tier_code": Tier.code,
                "has_device": has_active_device(Member.id),
            },
        )
