"""Broadcasts: one-off or scheduled sends to an audience, run as one-step journeys.

Revision ID: j0004_h7_broadcasts
Revises: j0003
Create Date: 2026-12-01 05:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'j0004_h7_broadcasts'
down_revision: str | Sequence[str] | None = 'j0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.String(length=64), nullable=False),
    sa.Column('audience_params', sa.JSON(), nullable=False),
    sa.Column('templates', sa.String(length=400), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('holdout_percent', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'scheduled', 'sending', 'sent', 'cancelled', name='broadcaststatus',
                                native_enum=False, length=16), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(), nullable=True),
    sa.Column('throttle_seconds', sa.Integer(), nullable=False),
    sa.Column('enrolled', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts')),
    sa.UniqueConstraint('name', name=op.f('uq_broadcasts_name'))
    )


def downgrade() -> None:
    op.drop_table('broadcasts')
