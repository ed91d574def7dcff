"""audits: the transaction type every product is audited as (export, reexport, in_country_transfer)

Revision ID: 0012_audit_transaction_type
Revises: 0011_product_listing_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_audit_transaction_type"
down_revision = "0011_product_listing_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Audits made before the column were all exports (the only transaction the engine knew).
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transaction_type", sa.String(length=24), nullable=False,
                                      server_default="export"))


def downgrade() -> None:
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.drop_column("transaction_type")
