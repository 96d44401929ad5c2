"""Journeys: enrollments (state per member and occurrence) and sends (the exactly-once ledger).

Revision ID: j0001
Revises: 
Create Date: 2026-11-23 10:48:07.978963
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'j0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('journeys',)
depends_on: str | Sequence[str] | None = 'a0001'


def upgrade() -> None:
    op.create_table('enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('journey', sa.String(length=64), nullable=False),
    sa.Column('journey_version', sa.Integer(), nullable=False),
    sa.Column('recipient_kind', sa.String(length=8), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('occurrence_key', sa.String(length=128), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.Enum('active', 'completed', 'exited', 'held_out', 'failed', name='enrollmentstatus', native_enum=False, length=16), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('exit_reason', sa.String(length=64), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollments')),
    sa.UniqueConstraint('journey', 'recipient_kind', 'recipient_id', 'occurrence_key', name='uq_enrollments_occurrence')
    )
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_enrollments_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_enrollments_journey_status', ['journey', 'status'], unique=False)

    op.create_table('sends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=False),
    sa.Column('journey', sa.String(length=64), nullable=False),
    sa.Column('recipient_kind', sa.String(length=8), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=True),
    sa.Column('template', sa.String(length=128), nullable=True),
    sa.Column('status', sa.Enum('reserved', 'deferred', 'sending', 'sent', 'skipped', 'failed', name='sendstatus', native_enum=False, length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('reserved_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollments.id'], name=op.f('fk_sends_enrollment_id_enrollments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sends')),
    sa.UniqueConstraint('enrollment_id', 'step_key', name='uq_sends_enrollment_step')
    )
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.create_index('ix_sends_journey_status', ['journey', 'status'], unique=False)
        batch_op.create_index('ix_sends_recipient_time', ['recipient_kind', 'recipient_id', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_index('ix_sends_recipient_time')
        batch_op.drop_index('ix_sends_journey_status')

    op.drop_table('sends')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_journey_status')
        batch_op.drop_index('ix_enrollments_due')

    op.drop_table('enrollments')
