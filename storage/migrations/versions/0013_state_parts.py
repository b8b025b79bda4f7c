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
import json

from alembic import op
import sqlalchemy as sa

from storage.state_parts import FORMAT_PARTS, PG_FUNCTION, PG_TRIGGER, SQLITE_TRIGGER, bare, compose

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
    """Put every state in parts back together into `instances.state` (format 1, as the release
    before stored it), then drop the parts, the trigger and the column."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(sa.text("DROP TRIGGER IF EXISTS instances_state_parts ON instances"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS tigao_state_parts()"))
    else:
        op.execute(sa.text("DROP TRIGGER IF EXISTS instances_state_parts"))
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM instances WHERE state_format = :f ORDER BY id"),
                                          {"f": FORMAT_PARTS})]
    for iid in ids:  # one instance at a time: a big database is not read into memory at once
        head = bind.execute(sa.text("SELECT state FROM instances WHERE id = :i"), {"i": iid}).scalar_one()
        parts = dict(bind.execute(sa.text("SELECT part, body FROM state_parts WHERE instance_id = :i"),
                                  {"i": iid}).all())
        whole = bare(json.loads(compose(head, parts)))
        bind.execute(sa.text("UPDATE instances SET state = :s, state_format = 1 WHERE id = :i"),
                     {"s": json.dumps(whole), "i": iid})
    op.drop_table("state_parts")
    # (ALTER TABLE ... DROP COLUMN, SQLite 3.35 and later: a batch copy of `instances` would have
    # to drop the table the history's foreign keys point to.)
    op.execute(sa.text("ALTER TABLE instances DROP COLUMN state_changes"))
