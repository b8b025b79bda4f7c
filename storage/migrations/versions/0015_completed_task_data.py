"""a completed human task keeps the data it completed with

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Pruning cuts completed tasks from the live SpiffWorkflow tree, so the stored state no longer holds
their data: a completed task's page, `task_data` and the campaign report had nothing but a replay
of the instance's history to ask (the report replayed 29 instances, 15 % of `tigao demo`). Rows
completed before this revision keep NULL and are still answered by replay.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("human_tasks", sa.Column("completed_data", sa.Text(), nullable=True))


def downgrade() -> None:
    # (ALTER TABLE ... DROP COLUMN, SQLite 3.35 and later: a batch copy of `human_tasks` would
    # have to drop the table its candidates' foreign keys point to.)
    op.execute(sa.text("ALTER TABLE human_tasks DROP COLUMN completed_data"))
