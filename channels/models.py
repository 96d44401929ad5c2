"""Tables of the channels layer: consent history, the suppression list and provider feedback.

Consent and delivery events are append-only: the current state is derived (latest event wins),
so every change keeps its source, time and evidence for audits.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Enum, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime
from templates.vocabulary import Channel, Purpose, RecipientKind  # noqa: F401 - the columns' types, re-exported


class ConsentAction(str, enum.Enum):
    opt_in = "opt_in"
    opt_out = "opt_out"


class SuppressionReason(str, enum.Enum):
    hard_bounce = "hard_bounce"
    spam_complaint = "spam_complaint"
    stop = "stop"
    invalid_contact = "invalid_contact"
    unsubscribed = "unsubscribed"


class DeliveryEventKind(str, enum.Enum):
    delivered = "delivered"
    bounce = "bounce"
    dropped = "dropped"
    spamreport = "spamreport"
    unsubscribe = "unsubscribe"
    open = "open"
    click = "click"
    sent = "sent"
    failed = "failed"
    undelivered = "undelivered"


def _enum(e: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(e, native_enum=False, length=length, validate_strings=True)


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_lookup", "recipient_kind", "channel", "purpose", "recipient_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_kind: Mapped[RecipientKind] = mapped_column(_enum(RecipientKind))
    recipient_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    purpose: Mapped[Purpose] = mapped_column(_enum(Purpose))
    action: Mapped[ConsentAction] = mapped_column(_enum(ConsentAction))
    source: Mapped[str] = mapped_column(String(64))
    """Where it came from: csv import, unsubscribe link, preference page, sms keyword, provider."""
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[str | None] = mapped_column(Text)
    """What proves it (form text and IP, the inbound SMS sid, the import file and line)."""


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    address: Mapped[str] = mapped_column(String(512))
    """Normalised: lower-case email, E.164 phone, or the push device token."""
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason, 32))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryEvent(Base):
    __tablename__ = "delivery_events"
    __table_args__ = (
        Index("ix_delivery_events_ledger_id", "ledger_id"),
        Index("ix_delivery_events_provider_message_id", "provider", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    ledger_id: Mapped[int | None] = mapped_column(BigInteger)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    event: Mapped[DeliveryEventKind] = mapped_column(_enum(DeliveryEventKind))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    provider_event_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    """The provider's own event id (SendGrid sg_event_id) so a re-delivered event is stored once."""
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)


class WebhookReceipt(Base):
    """A provider request already applied, so a replay of it (same signature) changes nothing.

    In the database rather than in memory: replays are refused across restarts and across the
    workers of `loyalflow serve`, and the receipt commits in the same transaction as the effects.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("provider", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the request's signature."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
