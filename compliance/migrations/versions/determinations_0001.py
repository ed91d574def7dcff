"""determinations and their review feed

Revision ID: 0002_determinations
Revises: 0001
Create Date: 2026-12-03 08:14:34.894957
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0002_determinations'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('determination_policies',
    sa.Column('catalogue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('four_eyes', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['catalogue_id'], ['catalogues.id'], name=op.f('fk_determination_policies_catalogue_id_catalogues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('catalogue_id', name=op.f('pk_determination_policies'))
    )
    op.create_table('determinations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('catalogue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('product_name', sa.String(length=300), nullable=False),
    sa.Column('eccn', sa.String(length=32), nullable=False),
    sa.Column('basis', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('input_sha256', sa.String(length=64), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('ruleset_revision', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('computed_eccn', sa.String(length=16), nullable=True),
    sa.Column('computed_status', sa.String(length=16), nullable=False),
    sa.Column('computed_missing', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('decision_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approval_required', sa.Boolean(), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approval_note', sa.Text(), nullable=True),
    sa.Column('superseded_by_id', sa.BigInteger(), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['catalogue_id'], ['catalogues.id'], name=op.f('fk_determinations_catalogue_id_catalogues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decision_id'], ['decision_records.id'], name=op.f('fk_determinations_decision_id_decision_records'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_determinations'))
    )
    with op.batch_alter_table('determinations', schema=None) as batch_op:
        batch_op.create_index('ix_determinations_catalogue_id_product_id', ['catalogue_id', 'product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_eccn'), ['eccn'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_input_sha256'), ['input_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_recorded_by'), ['recorded_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_ruleset_revision'), ['ruleset_revision'], unique=False)
        batch_op.create_index(batch_op.f('ix_determinations_sku'), ['sku'], unique=False)

    op.create_table('determination_reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('determination_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('catalogue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('determined_eccn', sa.String(length=32), nullable=False),
    sa.Column('old_eccn', sa.String(length=16), nullable=True),
    sa.Column('old_status', sa.String(length=16), nullable=True),
    sa.Column('old_revision', sa.String(length=64), nullable=True),
    sa.Column('new_eccn', sa.String(length=16), nullable=True),
    sa.Column('new_status', sa.String(length=16), nullable=True),
    sa.Column('new_revision', sa.String(length=64), nullable=True),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['catalogue_id'], ['catalogues.id'], name=op.f('fk_determination_reviews_catalogue_id_catalogues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['determination_id'], ['determinations.id'], name=op.f('fk_determination_reviews_determination_id_determinations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_determination_reviews')),
    sa.UniqueConstraint('key', name=op.f('uq_determination_reviews_key'))
    )
    with op.batch_alter_table('determination_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_determination_reviews_catalogue_id_id', ['catalogue_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_determination_reviews_determination_id'), ['determination_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_determination_reviews_new_revision'), ['new_revision'], unique=False)
        batch_op.create_index(batch_op.f('ix_determination_reviews_product_id'), ['product_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('determination_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_determination_reviews_product_id'))
        batch_op.drop_index(batch_op.f('ix_determination_reviews_new_revision'))
        batch_op.drop_index(batch_op.f('ix_determination_reviews_determination_id'))
        batch_op.drop_index('ix_determination_reviews_catalogue_id_id')

    op.drop_table('determination_reviews')
    with op.batch_alter_table('determinations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_determinations_sku'))
        batch_op.drop_index(batch_op.f('ix_determinations_ruleset_revision'))
        batch_op.drop_index(batch_op.f('ix_determinations_recorded_by'))
        batch_op.drop_index(batch_op.f('ix_determinations_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_determinations_input_sha256'))
        batch_op.drop_index(batch_op.f('ix_determinations_eccn'))
        batch_op.drop_index('ix_determinations_catalogue_id_product_id')

    op.drop_table('determinations')
    op.drop_table('determination_policies')
