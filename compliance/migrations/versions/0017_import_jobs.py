"""catalogue imports as jobs (issue 13): import_reports gain status, progress and timestamps; import_uploads
(the job's one chunk: the uploaded file's lease) and import_upload_parts (its bytes, 8 MiB a row) keep a
queued upload in the database until the import finishes, so a worker on another machine can read it.

Existing reports were synchronous imports: they are "done".

Revision ID: 0017_import_jobs
Revises: 0016_products_text_search
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_import_jobs"
down_revision = "0016_products_text_search"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("import_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="done"))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("bytes_read", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("bytes_total", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=200), nullable=False, server_default=""))
    op.create_table(
        "import_uploads",
        sa.Column("id", BigId, nullable=False),
        sa.Column("import_id", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sheet", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["import_reports.id"], name=op.f("fk_import_uploads_import_id_import_reports"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_uploads")),
        sa.UniqueConstraint("import_id", "seq", name=op.f("uq_import_uploads_import_id")),
    )
    op.create_table(
        "import_upload_parts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("upload_id", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["upload_id"], ["import_uploads.id"],
                                name=op.f("fk_import_upload_parts_upload_id_import_uploads"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_upload_parts")),
        sa.UniqueConstraint("upload_id", "seq", name=op.f("uq_import_upload_parts_upload_id")),
    )


def downgrade() -> None:
    op.drop_table("import_upload_parts")
    op.drop_table("import_uploads")
    with op.batch_alter_table("import_reports", schema=None) as batch_op:
        for column in ("requested_by", "finished_at", "started_at", "bytes_total", "bytes_read", "error", "status"):
            batch_op.drop_column(column)
