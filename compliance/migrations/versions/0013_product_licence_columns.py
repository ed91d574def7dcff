"""products: release_date (first/last possible day) and hbm_packaging as columns, filled from each stored spec

Batch jobs (audits, re-evaluation, point-in-time views) build their tables from the product columns, which
had neither: the January 2026 China policy (release_date) stayed undecided and co-packaged HBM was taken as
standalone, unlike classify of the same spec.

Revision ID: 0013_product_licence_columns
Revises: 0012_audit_transaction_type
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_product_licence_columns"
down_revision = "0012_audit_transaction_type"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_first", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("release_last", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hbm_packaging", sa.SmallInteger(), nullable=False, server_default="0"))
    backfill(op.get_bind())


def backfill(conn) -> int:
    """Fill the new columns of every non-system product from its spec; returns how many rows changed."""
    from compliance.models.base import Json
    from compliance.services.product_columns import licence_columns

    products = sa.table("products", sa.column("id", sa.BigInteger()), sa.column("kind", sa.String()),
                        sa.column("spec", Json), sa.column("release_first", sa.Integer()),
                        sa.column("release_last", sa.Integer()), sa.column("hbm_packaging", sa.SmallInteger()))
    update = (sa.update(products).where(products.c.id == sa.bindparam("pid"))
              .values(release_first=sa.bindparam("rf"), release_last=sa.bindparam("rl"),
                      hbm_packaging=sa.bindparam("hp")))
    changed, last = 0, 0
    while True:
        rows = conn.execute(sa.select(products.c.id, products.c.kind, products.c.spec)
                            .where(products.c.id > last, products.c.kind != "system")
                            .order_by(products.c.id).limit(BATCH)).all()
        if not rows:
            return changed
        last = rows[-1][0]
        params = []
        for pid, kind, spec in rows:
            cols = licence_columns({**(spec or {}), "kind": kind})
            if cols["release_first"] is not None or cols["hbm_packaging"]:
                params.append({"pid": pid, "rf": cols["release_first"], "rl": cols["release_last"],
                               "hp": cols["hbm_packaging"]})
        if params:
            conn.execute(update, params)
            changed += len(params)


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("hbm_packaging")
        batch_op.drop_column("release_last")
        batch_op.drop_column("release_first")
