"""Members of the loyalty program and their push device tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class MemberStatus(str, enum.Enum):
    active = "active"
    suspended = "suspended"
    closed = "closed"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (Index("ix_members_enrolled_at", "enrolled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    """E.164 as the loyalty system stored it; validity is checked at send time, not trusted."""
    locale: Mapped[str] = mapped_column(String(16), default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    country: Mapped[str] = mapped_column(String(2), default="US")
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[MemberStatus] = mapped_column(
        Enum(MemberStatus, native_enum=False, length=16, validate_strings=True),
        default=MemberStatus.active,
    )
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))


class DeviceToken(Base):
    __tablename__ = "device_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set when the push provider says the token is gone (FCM UNREGISTERED)."""
