"""Tables of feedback: survey answers, the survey SMS a reply may answer, and bulletin reads.

They name the message they answer by its ledger id (the journeys layer's `sends.id`, kept here as a
plain integer like `delivery_events.ledger_id`): one answer and one read per message, so a second
tap updates the answer (counted in `revisions`) and a second read changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"
    __table_args__ = (
        Index("ix_survey_answers_recipient", "recipient_kind", "recipient_id", "answered_at"),
        Index("ix_survey_answers_journey_answered", "journey", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    """The message answered; one answer per message."""
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int] = mapped_column(BigInteger)
    journey: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    scale_min: Mapped[int] = mapped_column(SmallInteger)
    scale_max: Mapped[int] = mapped_column(SmallInteger)
    """0-10 is an NPS question; 1-5 a pulse."""
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    """How the answer came: `web` (the survey page) or `sms` (a reply)."""
    first_answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The latest answer's instant."""
    revisions: Mapped[int] = mapped_column(Integer, default=0)
    """How many times the answer was changed after the first."""
    previous_score: Mapped[int | None] = mapped_column(SmallInteger)


class SurveyInvite(Base):
    """A survey message handed to a channel (one per message); an inbound SMS reply from a number
    answers the latest SMS one sent to it."""

    __tablename__ = "survey_invites"
    __table_args__ = (Index("ix_survey_invites_recipient", "recipient_kind", "recipient_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int] = mapped_column(BigInteger)
    journey: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    scale_min: Mapped[int] = mapped_column(SmallInteger)
    scale_max: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(8))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BulletinRead(Base):
    """A staff member's "I've read it" on one bulletin message; the first tap is kept."""

    __tablename__ = "bulletin_reads"
    __table_args__ = (Index("ix_bulletin_reads_staff", "staff_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    staff_id: Mapped[int] = mapped_column(BigInteger)
    journey: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
