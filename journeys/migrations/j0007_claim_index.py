"""The claim's index: enrollments by (journey, due_at, id) instead of (journey, status).

A chunk is claimed as "this journey's active enrollments due by now, oldest due first": with this
index that is a range scan that stops after the chunk's rows (only active enrollments have a due_at).
Before it, SQLite (no statistics on a new database) sorted every due enrollment of every journey per
claim (35 ms a chunk at 66,000 due), or walked past every enrollment already parked in this tick.
Without status in it, it is no covering index for the pass's due probe, which keeps to
ix_enrollments_due (status, due_at). Enrollment no longer counts a journey's rows by status (it counts
what its INSERT returns), the one use of the (journey, status) index.

Revision ID: j0007_claim_index
Revises: j0006_member_enrollments
Create Date: 2026-12-06 05:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'j0007_claim_index'
down_revision: str | Sequence[str] | None = 'j0006_member_enrollments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_enrollments_journey_due', 'enrollments', ['journey', 'due_at', 'id'], unique=False)
    op.drop_index('ix_enrollments_journey_status', table_name='enrollments')


def downgrade() -> None:
    op.create_index('ix_enrollments_journey_status', 'enrollments', ['journey', 'status'], unique=False)
    op.drop_index('ix_enrollments_journey_due', table_name='enrollments')
