"""api_keys: expires_at, and the rotation links rotated_from_id (unique: one successor) / replaced_by_id

Revision ID: 0014_api_key_expiry
Revises: 0013_product_licence_columns
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_api_key_expiry"
down_revision = "0013_product_licence_columns"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # ADD COLUMN on every database: no copy of the table on SQLite, which can add a column with REFERENCES
    # (though not a named constraint: alembic's add_column would need batch mode for that).
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    for column in ("rotated_from_id", "replaced_by_id"):
        if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column's REFERENCES, not a constraint
            op.execute(f"ALTER TABLE api_keys ADD COLUMN {column} INTEGER "
                       "REFERENCES api_keys (id) ON DELETE SET NULL")
        else:
            op.add_column("api_keys", sa.Column(column, BigId, sa.ForeignKey(
                "api_keys.id", name=op.f(f"fk_api_keys_{column}_api_keys"), ondelete="SET NULL"), nullable=True))
    op.create_index(op.f("ix_api_keys_rotated_from_id"), "api_keys", ["rotated_from_id"], unique=True)


def downgrade() -> None:
    # SQLite: a batch copy of the table; keys and console sessions are kept (tests/api/test_keys_rotation.py).
    op.drop_index(op.f("ix_api_keys_rotated_from_id"), table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("replaced_by_id")
        batch_op.drop_column("rotated_from_id")
        batch_op.drop_column("expires_at")
