"""idempotency keys of POSTs that create jobs

Revision ID: 0009_idempotency_keys
Revises: 0008_change_records_per_run
"""
import sqlalchemy as sa
from alembic import op

revision = '0009_idempotency_keys'
down_revision = '0008_change_records_per_run'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', BigId, nullable=False),
    sa.Column('scope', sa.String(length=300), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('scope', 'key', name='uq_idempotency_keys_scope_key')
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
