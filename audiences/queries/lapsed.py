"""Lapsed members for win-back: bought within the lookback, but not in the last `lapsed_days`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_

from audiences.models import Member, MemberStatus
from audiences.models.base import UTCDateTime
from audiences.queries.base import Audience, AudienceQuery, Criterion
from audiences.queries.rfm import rfm_scores
from sqlalchemy import type_coerce


class Lapsed(Audience):
    name = "lapsed"
    description = ("Active members whose last purchase is more than `lapsed_days` ago but within "
                   "`lookback_days`, with RFM quintiles; `min_value_score` keeps the valuable ones.")

    @dataclass(frozen=True)
    class Params:
        lapsed_days: int = 90
        lookback_days: int = 730
        min_value_score: int = 1
        """Keep members whose frequency or monetary quintile is at least this (1 keeps everyone)."""

    def validate(self, params: Params) -> None:  # type: ignore[override]
        super().validate(params)
        from audiences.errors import InvalidParameter

        if not 1 <= params.min_value_score <= 5:
            raise InvalidParameter(f"audience 'lapsed': min_value_score must be 1..5, got {params.min_value_score}")
        if params.lookback_days <= params.lapsed_days:
            raise InvalidParameter("audience 'lapsed': lookback_days must be greater than lapsed_days")

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        rfm = rfm_scores(now, params.lookback_days)
        cutoff = now - timedelta(days=params.lapsed_days)
        last = type_coerce(rfm.c.last_purchase_at, UTCDateTime)
        source = Member.__table__.outerjoin(rfm, rfm.c.member_id == Member.id)
        return AudienceQuery(
            source=source,
            recipient_id=Member.id,
            criteria=[
                Criterion("active", "membership is active", Member.status == MemberStatus.active),
                Criterion("has_purchases", f"bought something in the last {params.lookback_days} days",
                          rfm.c.member_id.is_not(None)),
                Criterion("lapsed", f"no purchase since {cutoff.isoformat()}", last <= cutoff),
                Criterion("valuable", f"frequency or monetary quintile >= {params.min_value_score}",
                          and_(rfm.c.member_id.is_not(None),
                               (rfm.c.f_score >= params.min_value_score) | (rfm.c.m_score >= params.min_value_score))),
            ],
            fields={
                "first_name": Member.first_name,
                "locale": Member.locale,
                "time_zone": Member.time_zone,
                "last_purchase_at": last,
                "frequency": rfm.c.frequency,
                "monetary": rfm.c.monetary,
                "r_score": rfm.c.r_score,
                "f_score": rfm.c.f_score,
                "m_score": rfm.c.m_score,
            },
        )
