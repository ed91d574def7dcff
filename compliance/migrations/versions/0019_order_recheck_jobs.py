"""order re-checks as chunked jobs (compliance.services.jobs): order_rechecks + order_recheck_chunks

Revision ID: 0019_order_recheck_jobs
Revises: 0018_activity_events
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0019_order_recheck_jobs'
down_revision = '0018_activity_events'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'order_rechecks',
        sa.Column('id', ID, nullable=False),
        sa.Column('cause', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('counts', JSON, nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_rechecks')),
        sa.UniqueConstraint('cause', name=op.f('uq_order_rechecks_cause')),
    )
    op.create_table(
        'order_recheck_chunks',
        sa.Column('id', ID, nullable=False),
        sa.Column('recheck_id', ID, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('lo_id', sa.BigInteger(), nullable=False),
        sa.Column('hi_id', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('counts', JSON, nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['recheck_id'], ['order_rechecks.id'],
                                name=op.f('fk_order_recheck_chunks_recheck_id_order_rechecks'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_recheck_chunks')),
        sa.UniqueConstraint('recheck_id', 'seq', name=op.f('uq_order_recheck_chunks_recheck_id')),
    )
    with op.batch_alter_table('order_recheck_chunks') as batch_op:
        batch_op.create_index(batch_op.f('ix_order_recheck_chunks_recheck_id'), ['recheck_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('order_recheck_chunks') as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_recheck_chunks_recheck_id'))
    op.drop_table('order_recheck_chunks')
    op.drop_table('order_rechecks')
