"""bulk screening as a chunked job (compliance.services.jobs): screening_job_chunks

Revision ID: 0020_screening_job_chunks
Revises: 0019_order_recheck_jobs
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0020_screening_job_chunks'
down_revision = '0019_order_recheck_jobs'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'screening_job_chunks',
        sa.Column('id', ID, nullable=False),
        sa.Column('job_id', ID, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('lo_id', sa.BigInteger(), nullable=False),
        sa.Column('hi_id', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('results', JSON, nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['screening_jobs.id'],
                                name=op.f('fk_screening_job_chunks_job_id_screening_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_job_chunks')),
        sa.UniqueConstraint('job_id', 'seq', name=op.f('uq_screening_job_chunks_job_id')),
    )
    with op.batch_alter_table('screening_job_chunks') as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_job_chunks_job_id'), ['job_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('screening_job_chunks') as batch_op:
        batch_op.drop_index(batch_op.f('ix_screening_job_chunks_job_id'))
    op.drop_table('screening_job_chunks')
