"""Staff by role and store: the recipients of internal program bulletins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import true

from audiences.models import Staff, Store
from audiences.queries.base import Audience, AudienceQuery, Criterion
from datetime import datetime


class StaffAudience(Audience):
    name = "staff"
    description = "Active staff, optionally only some roles and stores (head office has no store)."
    recipient = "staff"

    @dataclass(frozen=True)
    class Params:
        roles: list[str] | None = None
        store_ids: list[int] | None = None

    def build(self, now: datetime, params: Params) -> AudienceQuery:
        source = Staff.__table__.outerjoin(Store.__table__, Store.id == Staff.store_id)
        role_ok = Staff.role.in_(params.roles) if params.roles else true()
        store_ok = Staff.store_id.in_(params.store_ids) if params.store_ids else true()
        return AudienceQuery(
            source=source,
            recipient_id=Staff.id,
            criteria=[
                Criterion("active", "staff record is active", Staff.active.is_(True)),
                Criterion("role", f"role in {', '.join(params.roles)}" if params.roles else "any role", role_ok),
                Criterion("store", f"store in {params.store_ids}" if params.store_ids else "any store", store_ok),
            ],
            fields={
                "first_name": Staff.first_name,
                "locale": Staff.locale,
                "time_zone": Staff.time_zone,
                "role": Staff.role,
                "store_id": Staff.store_id,
                "store_name": Store.name,
            },
        )
