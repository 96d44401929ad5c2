"""Every active member, optionally of one tier, locale or country: the audience of broadcasts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from audiences.models import Member, MemberStatus, Tier
from audiences.queries.base import Audience, AudienceQuery, Criterion


class Members(Audience):
    name = "members"
    description = ("Active members (a newsletter, a program change, a store opening); `tier`, `locale` "
                   "and `country` narrow it.")

    @dataclass(frozen=True)
    class Params:
        tier: str | None = None
        """A tier code, e.g. gold."""
        locale: str | None = None
        country: str | None = None
        """ISO 3166 alpha-2, e.g. FR."""

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        source = Member.__table__.outerjoin(Tier.__table__, Tier.id == Member.tier_id)
        criteria = [Criterion("active", "membership is active", Member.status == MemberStatus.active),
                    Criterion("joined", "enrolled before now", Member.enrolled_at <= now)]
        if params.tier:
            criteria.append(Criterion("tier", f"tier is {params.tier}", Tier.code == params.tier))
        if params.locale:
            criteria.append(Criterion("locale", f"locale is {params.locale}", Member.locale == params.locale))
        if params.country:
            criteria.append(Criterion("country", f"country is {params.country}", Member.country == params.country))
        return AudienceQuery(
            source=source,
            count_source=source if params.tier else Member.__table__,
            recipient_id=Member.id,
            criteria=criteria,
            fields={"first_name": Member.first_name, "locale": Member.locale, "time_zone": Member.time_zone,
                    "tier_code": Tier.code},
        )
