"""Points ledger: a covering index (member, time, id, points) for oldest-first remainders.

Revision ID: a0002
Revises: a0001
Create Date: 2026-11-23 11:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a0002"
down_revision: str | Sequence[str] | None = "a0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_points_ledger_member_time_points", "points_ledger",
                    ["member_id", "occurred_at", "id", "points"])
    op.drop_index("ix_points_ledger_member_time", table_name="points_ledger")


def downgrade() -> None:
    op.create_index("ix_points_ledger_member_time", "points_ledger", ["member_id", "occurred_at", "id"])
    op.drop_index("ix_points_ledger_member_time_points", table_name="points_ledger")
