"""Channels: webhook receipts, so replayed provider requests are refused across restarts and workers.

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-23 11:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0002"
down_revision: str | Sequence[str] | None = "c0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_receipts")),
        sa.UniqueConstraint("provider", "key", name=op.f("uq_webhook_receipts_provider_key")),
    )
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_receipts_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_receipts_received_at"))
    op.drop_table("webhook_receipts")
