"""signal subscriptions share the message subscription table, told apart by kind

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_subscriptions") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="message"))


def downgrade() -> None:
    op.execute("DELETE FROM message_subscriptions WHERE kind <> 'message'")
    with op.batch_alter_table("message_subscriptions") as batch:
        batch.drop_column("kind")
