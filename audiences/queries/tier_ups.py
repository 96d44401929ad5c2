"""Tier-ups: moves to a higher tier since a time, for members still in that tier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_
from sqlalchemy.orm import aliased

from audiences.models import Member, MemberStatus, Tier, TierChange
from audiences.queries.base import Audience, AudienceQuery, Criterion


class TierUps(Audience):
    name = "tier_ups"
    description = "Members who moved up a tier after `since` (default: the last `within_days` days)."
    no_rows_reason = "has no tier changes"

    @dataclass(frozen=True)
    class Params:
        within_days: int = 7
        since: datetime | None = None

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        since = params.since or now - timedelta(days=params.within_days)
        new, old = aliased(Tier), aliased(Tier)
        change = TierChange
        source = (
            change.__table__.join(Member.__table__, Member.id == change.member_id)
            .join(new, new.id == change.to_tier_id)
            .outerjoin(old, old.id == change.from_tier_id)
        )
        return AudienceQuery(
            source=source,
            recipient_id=change.member_id,
            key=change.id,
            criteria=[
                Criterion("active", "membership is active", Member.status == MemberStatus.active),
                Criterion("changed_in_window", f"tier changed after {since.isoformat()} and not after now",
                          and_(change.changed_at > since, change.changed_at <= now)),
                Criterion("upgrade", "moved to a higher tier (an initial tier is not a tier-up)",
                          and_(change.from_tier_id.is_not(None), new.rank > old.rank)),
                Criterion("still_in_tier", "member is still in the new tier", Member.tier_id == change.to_tier_id),
            ],
            fields={
                "first_name": Member.first_name,
                "locale": Member.locale,
                "time_zone": Member.time_zone,
                "tier_change_id": change.id,
                "tier_code": new.code,
                "tier_name": new.name,
                "previous_tier_code": old.code,
                "changed_at": change.changed_at,
            },
        )
