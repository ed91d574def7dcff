"""console sessions (web console sign-in)

Revision ID: 0003_console_sessions
Revises: 0002_determinations
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_console_sessions'
down_revision = '0002_determinations'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('id', BigId, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', BigId, nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_console_sessions_key_id_api_keys'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    op.create_index(op.f('ix_console_sessions_key_id'), 'console_sessions', ['key_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_sessions_key_id'), table_name='console_sessions')
    op.drop_table('console_sessions')
