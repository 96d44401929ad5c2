"""Typed SQLAlchemy models of the loyalty database."""

from audiences.models.base import Base, UTCDateTime
from audiences.models.events import Event, EventCursor
from audiences.models.members import DeviceToken, Member, MemberStatus
from audiences.models.points import PointsEntry, PointsKind
from audiences.models.program import ProgramUpdate
from audiences.models.purchases import Purchase, Store
from audiences.models.staff import Staff, StaffRole
from audiences.models.tiers import Tier, TierChange

__all__ = [
    "Base",
    "UTCDateTime",
    "DeviceToken",
    "Event",
    "EventCursor",
    "Member",
    "MemberStatus",
    "PointsEntry",
    "PointsKind",
    "ProgramUpdate",
    "Purchase",
    "Store",
    "Staff",
    "StaffRole",
    "Tier",
    "TierChange",
]
