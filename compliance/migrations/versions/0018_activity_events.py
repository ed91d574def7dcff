"""the activity log's table: audit_events -> activity_events; drop the duplicate ix_change_records_run_id

`AuditEvent` (the activity log, written by rules, keys, webhooks, orders, screening) is now `ActivityEvent`
(models/activity.py), so that "audit" names only the catalogue job. Its table, primary key, indexes and (on
PostgreSQL) its id sequence take the new name; the rows stay. On SQLite, which cannot rename an index or a
constraint, the indexes are re-created under their new names and the table is rebuilt (batch mode) so that
its primary key is named pk_activity_events.

ix_change_records_run_id duplicates the leading column of the unique uq_change_records_run_cell
(run_id, product_id, destination): every lookup by run_id uses the unique index, so the extra index only
costs writes. It is dropped (and re-created by the downgrade).

Revision ID: 0018_activity_events
Revises: 0017_import_jobs
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_activity_events"
down_revision = "0017_import_jobs"
branch_labels = None
depends_on = None


def _events_table(name: str) -> sa.Table:
    """The table as 0001 created it, under `name` (SQLite's rebuild copies the rows into it)."""
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


def _rename(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.rename_table(old, new)
        op.execute(f"ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq")
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        for column in ("action", "at"):
            op.execute(f"ALTER INDEX ix_{old}_{column} RENAME TO ix_{new}_{column}")
        return
    for column in ("action", "at"):
        op.drop_index(f"ix_{old}_{column}", table_name=old)
    op.rename_table(old, new)
    with op.batch_alter_table(new, recreate="always", copy_from=_events_table(new)):
        pass  # rebuilt from copy_from: the primary key gets its new name
    for column in ("action", "at"):
        op.create_index(f"ix_{new}_{column}", new, [column], unique=False)


def upgrade() -> None:
    _rename("audit_events", "activity_events")
    op.drop_index("ix_change_records_run_id", table_name="change_records")


def downgrade() -> None:
    op.create_index("ix_change_records_run_id", "change_records", ["run_id"], unique=False)
    _rename("activity_events", "audit_events")
