"""Enrollment state and the send ledger: the two tables that make sends exactly-once."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class EnrollmentStatus(str, enum.Enum):
    active = "active"          # has a next step, due at due_at
    completed = "completed"    # ran every step
    exited = "exited"          # an exit condition held (exit_reason says which)
    held_out = "held_out"      # in the holdout group: enrolled for measurement, never messaged
    failed = "failed"          # cannot continue (exit_reason says why), e.g. its journey version is gone


class SendStatus(str, enum.Enum):
    reserved = "reserved"      # the ledger row exists; nothing was handed to a provider
    deferred = "deferred"      # quiet hours or a retryable failure: tried again at the enrollment's due_at
    sending = "sending"        # handed to the adapter; the outcome is not written yet
    unknown = "unknown"        # sent, no answer (timeout): settled from evidence before any resend (journeys/settle.py)
    sent = "sent"              # the provider accepted it (provider_message_id set)
    skipped = "skipped"        # not sent, on purpose (reason set)
    failed = "failed"          # not sent, by a failure (reason set)


FINAL_SEND_STATUSES = (SendStatus.sent, SendStatus.skipped, SendStatus.failed)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("journey", "recipient_kind", "recipient_id", "occurrence_key",
                         name="uq_enrollments_occurrence"),
        Index("ix_enrollments_due", "status", "due_at"),
        Index("ix_enrollments_journey_due", "journey", "due_at", "id"),  # the claim (journeys/engine.py)
        Index("ix_enrollments_member", "recipient_kind", "recipient_id", "journey", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    journey: Mapped[str] = mapped_column(String(64))
    journey_version: Mapped[int] = mapped_column(Integer)
    """The version the enrollment started on; it finishes on that version."""
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int] = mapped_column(Integer)
    occurrence_key: Mapped[str] = mapped_column(String(128))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[EnrollmentStatus] = mapped_column(Enum(EnrollmentStatus, native_enum=False, length=16))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    """The next instruction of the compiled journey to run."""
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The audience row at enrollment (fields for waits, conditions and templates)."""
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    variant: Mapped[str | None] = mapped_column(String(32))
    """Its arm of the journey's A/B test (journeys/variants.py); None: the journey has none, or held out."""


class Send(Base):
    """One row per (enrollment, step): reserved before anything leaves, final once it has."""

    __tablename__ = "sends"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_key", name="uq_sends_enrollment_step"),
        Index("ix_sends_recipient_time", "recipient_kind", "recipient_id", "sent_at"),
        Index("ix_sends_journey_status", "journey", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(64))
    journey: Mapped[str] = mapped_column(String(64))
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(8))
    template: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[SendStatus] = mapped_column(Enum(SendStatus, native_enum=False, length=16))
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunLock(Base):
    """One row per lock name (a journey, the scheduler): who holds it, and until when."""

    __tablename__ = "run_locks"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(96))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JourneyClock(Base):
    """The last cron fire instant a journey enrolled at: the next pass enrolls at later fires only."""

    __tablename__ = "journey_clocks"

    journey: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_fire_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AbDecision(Base):
    """When and why an A/B test's winner was promoted: from `decided_at`, every new enrollment gets it."""

    __tablename__ = "ab_decisions"
    __table_args__ = (UniqueConstraint("journey", "step_key", name="uq_ab_decisions_journey_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(64))
    winner: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(16))
    within_days: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    """The largest p-value of the winner against each other variant (each below alpha / comparisons)."""
    rates: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Per variant: {"sends": n, "successes": x, "rate": x / n}."""
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
