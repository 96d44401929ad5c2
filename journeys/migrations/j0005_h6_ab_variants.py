"""A/B variants: each enrollment's variant, and the record of every promoted winner.

Revision ID: j0005_h6_ab_variants
Revises: j0004_h7_broadcasts
Create Date: 2026-12-01 05:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'j0005_h6_ab_variants'
down_revision: str | Sequence[str] | None = 'j0004_h7_broadcasts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enrollments') as batch:
        batch.add_column(sa.Column('variant', sa.String(length=32), nullable=True))
    op.create_table('ab_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('journey', sa.String(length=64), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=False),
    sa.Column('winner', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('within_days', sa.Float(), nullable=False),
    sa.Column('alpha', sa.Float(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=False),
    sa.Column('rates', sa.JSON(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ab_decisions')),
    sa.UniqueConstraint('journey', 'step_key', name='uq_ab_decisions_journey_step')
    )


def downgrade() -> None:
    op.drop_table('ab_decisions')
    with op.batch_alter_table('enrollments') as batch:
        batch.drop_column('variant')
