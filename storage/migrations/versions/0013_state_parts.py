"""instance states stored in parts: a command writes the parts that changed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

`instances.state` keeps either a whole state (format 1, as every release before this one stored
it; such rows stay as they are and load as before) or the head of a state in parts (format 2):
the workflow without its tasks, naming the task parts it consists of. Each task is a row of
`state_parts`. A command writes the changed and new parts, and the parts it dropped, as JSON in
`instances.state_changes` with the same UPDATE of the instance row; the trigger created here
applies them to `state_parts` and clears the column, so saving a state costs no extra statement.
"""
from alembic import op
import sqlalchemy as sa

from storage.state_parts import PG_FUNCTION, PG_TRIGGER, SQLITE_TRIGGER

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_parts",
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instances.id"), primary_key=True),
        sa.Column("part", sa.String(length=64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("state_changes", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(PG_FUNCTION))
        op.execute(sa.text(PG_TRIGGER))
    else:
        op.execute(sa.text(SQLITE_TRIGGER))


def downgrade() -> None:
    raise NotImplementedError("states stored in parts cannot be put back into one column by a downgrade")
