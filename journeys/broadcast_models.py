"""The broadcasts table: a one-off or scheduled send to an audience, kept as a row (what, to whom, when)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class BroadcastStatus(str, enum.Enum):
    draft = "draft"            # created; nobody enrolled
    scheduled = "scheduled"    # enrolled; the first due instant is in the future
    sending = "sending"        # some enrollments still active
    sent = "sent"              # every enrollment finished (sent, skipped with reason, or failed)
    cancelled = "cancelled"    # stopped: what had not been handed over exited with reason `cancelled`


class Broadcast(Base):
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    audience: Mapped[str] = mapped_column(String(64))
    audience_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    templates: Mapped[str] = mapped_column(String(400))
    """Comma-separated `broadcasts/<step>` templates: one, or a fallback chain (push, then email)."""
    purpose: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=40)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[BroadcastStatus] = mapped_column(Enum(BroadcastStatus, native_enum=False, length=16))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    throttle_seconds: Mapped[int] = mapped_column(Integer, default=0)
    """Due instants spread evenly over this window from scheduled_at (0: all at once)."""
    enrolled: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
