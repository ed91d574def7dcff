"""chunk leases: lease owner + expiry (claim, heartbeat, fenced finish) and the last enqueue time

Revision ID: 0007_job_leases
Revises: 0006_order_changes
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_job_leases'
down_revision = '0006_order_changes'
branch_labels = None
depends_on = None

TABLES = ('audit_chunks', 'reevaluation_chunks')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))
            batch.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('reevaluation_chunks') as batch:
        batch.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reevaluation_chunks') as batch:
        batch.drop_column('started_at')
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('enqueued_at')
            batch.drop_column('lease_expires_at')
            batch.drop_column('lease_owner')
