"""change records are unique per run (run, product, destination), not per revision pair and date

A publish that repeats an earlier revision pair on the same day (rollback, re-publish) used to have its
change records dropped as duplicates of the earlier run's; now every run records its own.

Revision ID: 0008_change_records_per_run
Revises: 0007_job_leases
"""
from alembic import op

revision = '0008_change_records_per_run'
down_revision = '0007_job_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('change_records') as batch:
        batch.drop_constraint('uq_change_records_transition', type_='unique')
        batch.create_unique_constraint('uq_change_records_run_cell', ['run_id', 'product_id', 'destination'])


def downgrade() -> None:
    with op.batch_alter_table('change_records') as batch:
        batch.drop_constraint('uq_change_records_run_cell', type_='unique')
        batch.create_unique_constraint('uq_change_records_transition',
                                       ['from_revision', 'to_revision', 'as_of', 'product_id', 'destination'])
