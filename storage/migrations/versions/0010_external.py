"""external tasks and incidents (real diagrams)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('external_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('process_key', sa.String(length=200), nullable=False),
    sa.Column('spiff_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('handler', sa.String(length=200), nullable=True),
    sa.Column('business_key', sa.String(length=200), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('lock_owner', sa.String(length=200), nullable=True),
    sa.Column('lock_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_external_tasks_fetch', 'external_tasks', ['state', 'topic', 'priority'], unique=False)
    op.create_index(op.f('ix_external_tasks_instance_id'), 'external_tasks', ['instance_id'], unique=False)
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('element_id', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=60), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_incidents_open', 'incidents', ['resolved_at', 'created_at'], unique=False)
    op.create_index(op.f('ix_incidents_instance_id'), 'incidents', ['instance_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_incidents_instance_id'), table_name='incidents')
    op.drop_index('ix_incidents_open', table_name='incidents')
    op.drop_table('incidents')
    op.drop_index(op.f('ix_external_tasks_instance_id'), table_name='external_tasks')
    op.drop_index('ix_external_tasks_fetch', table_name='external_tasks')
    op.drop_table('external_tasks')
