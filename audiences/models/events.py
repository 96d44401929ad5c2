"""Member events (a purchase, a redemption, ...) as the loyalty systems report them, append-only.

Events are facts: they are never updated or deleted by loyalflow (a member's erasure cascades).
The client's idempotency key is unique, so a retried POST or a re-imported file is a no-op.
`EventCursor` is how far a consumer (an event-triggered journey) has read the table, by id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime

EventId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_member_type_time", "member_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    """Chosen by the client; a second event with the same key is a duplicate and changes nothing."""
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="api")
    """`api` (POST /v1/events) or `file` (loyalflow events import)."""


class EventCursor(Base):
    """The last event id a consumer has handled (e.g. `journey:first_purchase`)."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(96), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(EventId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
