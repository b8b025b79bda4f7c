"""public forms and tracking codes (web app)

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('public_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('process_key', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_index('ix_public_cases_address', 'public_cases', ['address', 'created_at'], unique=False)
    op.create_index('ix_public_cases_created', 'public_cases', ['created_at'], unique=False)
    op.create_index(op.f('ix_public_cases_instance_id'), 'public_cases', ['instance_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_public_cases_instance_id'), table_name='public_cases')
    op.drop_index('ix_public_cases_created', table_name='public_cases')
    op.drop_index('ix_public_cases_address', table_name='public_cases')
    op.drop_table('public_cases')
