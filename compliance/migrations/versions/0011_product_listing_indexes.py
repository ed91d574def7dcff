"""product listing indexes: counts by status and the chart's metric columns read from an index, not the table

Revision ID: 0011_product_listing_indexes
Revises: 0010_screening_jobs
"""
from alembic import op

revision = "0011_product_listing_indexes"
down_revision = "0010_screening_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_products_catalogue_status", "products", ["catalogue_id", "status"])
    op.create_index("ix_products_catalogue_metrics", "products", ["catalogue_id", "tpp", "performance_density"])


def downgrade() -> None:
    op.drop_index("ix_products_catalogue_metrics", table_name="products")
    op.drop_index("ix_products_catalogue_status", table_name="products")
