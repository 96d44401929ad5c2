"""Channels: survey answers, survey SMS invitations, and staff bulletin reads (feedback, issue 14).

Revision ID: c0003_h8_surveys
Revises: c0002
Create Date: 2026-12-01 05:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0003_h8_surveys"
down_revision: str | Sequence[str] | None = "c0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_id", sa.BigInteger(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=8), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("journey", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("first_answered_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.Column("revisions", sa.Integer(), nullable=False),
        sa.Column("previous_score", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
        sa.UniqueConstraint("ledger_id", name=op.f("uq_survey_answers_ledger_id")),
    )
    op.create_index("ix_survey_answers_recipient", "survey_answers",
                    ["recipient_kind", "recipient_id", "answered_at"], unique=False)
    op.create_index("ix_survey_answers_journey_answered", "survey_answers", ["journey", "answered_at"], unique=False)
    op.create_table(
        "survey_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_id", sa.BigInteger(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=8), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("journey", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_invites")),
        sa.UniqueConstraint("ledger_id", name=op.f("uq_survey_invites_ledger_id")),
    )
    op.create_index("ix_survey_invites_recipient", "survey_invites",
                    ["recipient_kind", "recipient_id", "sent_at"], unique=False)
    op.create_table(
        "bulletin_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("journey", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin_reads")),
        sa.UniqueConstraint("ledger_id", name=op.f("uq_bulletin_reads_ledger_id")),
    )
    op.create_index("ix_bulletin_reads_staff", "bulletin_reads", ["staff_id", "read_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bulletin_reads_staff", table_name="bulletin_reads")
    op.drop_table("bulletin_reads")
    op.drop_index("ix_survey_invites_recipient", table_name="survey_invites")
    op.drop_table("survey_invites")
    op.drop_index("ix_survey_answers_journey_answered", table_name="survey_answers")
    op.drop_index("ix_survey_answers_recipient", table_name="survey_answers")
    op.drop_table("survey_answers")
