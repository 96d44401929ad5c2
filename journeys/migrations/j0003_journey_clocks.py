"""Journey clocks: the last cron fire each journey enrolled at (entry is coalesced to the latest fire).

Revision ID: j0003
Revises: j0002
Create Date: 2026-12-01 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'j0003'
down_revision: str | Sequence[str] | None = 'j0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('journey_clocks',
    sa.Column('journey', sa.String(length=64), nullable=False),
    sa.Column('last_fire_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('journey', name=op.f('pk_journey_clocks'))
    )


def downgrade() -> None:
    op.drop_table('journey_clocks')
