"""rule_drafts.row_version: the draft's write counter, sent as its ETag (If-Match on draft edits, issue 12)

Every UPDATE of a draft is conditional on the counter it read and increments it, so two admins editing one
draft cannot overwrite each other silently: the second write's If-Match is stale (412). Existing drafts
start at 1.

Revision ID: 0015_rule_draft_row_version
Revises: 0014_api_key_expiry
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_rule_draft_row_version"
down_revision = "0014_api_key_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rule_drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("rule_drafts", schema=None) as batch_op:
        batch_op.drop_column("row_version")
