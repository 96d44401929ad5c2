"""An index on enrollments by member and journey: the reminder cap's "other reminders of this member due
in this pass" is a search by member, not a scan of every active enrollment of the journey per row.

Revision ID: j0006_member_enrollments
Revises: j0005_h6_ab_variants
Create Date: 2026-12-01 06:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'j0006_member_enrollments'
down_revision: str | Sequence[str] | None = 'j0005_h6_ab_variants'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_enrollments_member', 'enrollments',
                    ['recipient_kind', 'recipient_id', 'journey', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_enrollments_member', table_name='enrollments')
