"""The points ledger: every earn, redemption, expiry and adjustment, append-only."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class PointsKind(str, enum.Enum):
    earn = "earn"
    redeem = "redeem"
    expire = "expire"
    adjust = "adjust"


class PointsEntry(Base):
    """One ledger line. Positive points form a batch (earn, or a positive adjustment) with its
    own expiry; negative points consume the oldest batches first (FIFO), which is the program's
    policy and what the points-expiring audience assumes.
    """

    __tablename__ = "points_ledger"
    __table_args__ = (
        # covering: a batch's FIFO remainder is computed from the index alone (a0002)
        Index("ix_points_ledger_member_time_points", "member_id", "occurred_at", "id", "points"),
        Index("ix_points_ledger_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[PointsKind] = mapped_column(Enum(PointsKind, native_enum=False, length=16))
    points: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """For a batch: the instant its remaining points expire (end of the local day, in UTC)."""
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(200))
