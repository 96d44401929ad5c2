"""Run locks: two runs of the same journey never overlap.

Revision ID: j0002
Revises: j0001
Create Date: 2026-11-23 10:59:42.579694
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'j0002'
down_revision: str | Sequence[str] | None = 'j0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('run_locks',
    sa.Column('name', sa.String(length=96), nullable=False),
    sa.Column('owner', sa.String(length=96), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_run_locks'))
    )


def downgrade() -> None:
    op.drop_table('run_locks')
