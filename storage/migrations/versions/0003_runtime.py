"""task lists in O(page), small state (runtime core)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Task lists are read in the order they are shown (due first, the earliest first, then priority,
then id): an index per way of narrowing the list keeps that order, so a page is read without a
sort over every open task.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

ORDER = [sa.text("(due_at IS NULL)"), "due_at", sa.text("priority DESC"), "id"]


def upgrade() -> None:
    op.create_index("ix_human_tasks_list", "human_tasks", ["state", *ORDER])
    op.create_index("ix_human_tasks_assignee_list", "human_tasks", ["assignee", "state", *ORDER])
    op.create_index("ix_human_tasks_instance_list", "human_tasks", ["instance_id", "state", *ORDER])
    op.create_index("ix_human_tasks_any_list", "human_tasks", ORDER)


def downgrade() -> None:
    op.drop_index("ix_human_tasks_any_list", table_name="human_tasks")
    op.drop_index("ix_human_tasks_instance_list", table_name="human_tasks")
    op.drop_index("ix_human_tasks_assignee_list", table_name="human_tasks")
    op.drop_index("ix_human_tasks_list", table_name="human_tasks")
