"""Channels: consent events, suppressions and provider delivery events.

Revision ID: c0001
Revises:
Create Date: 2026-11-23 10:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("channels",)
depends_on: str | Sequence[str] | None = "a0001"


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_kind", sa.Enum("member", "staff", name="recipientkind", native_enum=False, length=16), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.Enum("email", "sms", "push", name="channel", native_enum=False, length=16), nullable=False),
        sa.Column("purpose", sa.Enum("marketing", "transactional", "staff", name="purpose", native_enum=False, length=16), nullable=False),
        sa.Column("action", sa.Enum("opt_in", "opt_out", name="consentaction", native_enum=False, length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_events_lookup",
            ["recipient_kind", "channel", "purpose", "recipient_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("ledger_id", sa.BigInteger(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column(
            "event",
            sa.Enum(
                "delivered", "bounce", "dropped", "spamreport", "unsubscribe", "open", "click", "sent", "failed",
                "undelivered", name="deliveryeventkind", native_enum=False, length=16,
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("provider_event_id", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_events")),
        sa.UniqueConstraint("provider_event_id", name=op.f("uq_delivery_events_provider_event_id")),
    )
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_events_ledger_id", ["ledger_id"], unique=False)
        batch_op.create_index(
            "ix_delivery_events_provider_message_id", ["provider", "provider_message_id"], unique=False
        )

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Enum("email", "sms", "push", name="channel", native_enum=False, length=16), nullable=False),
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "hard_bounce", "spam_complaint", "stop", "invalid_contact", "unsubscribed",
                name="suppressionreason", native_enum=False, length=32,
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_suppressions_channel_address")),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_events_provider_message_id")
        batch_op.drop_index("ix_delivery_events_ledger_id")
    op.drop_table("delivery_events")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_lookup")
    op.drop_table("consent_events")
