"""outside-anchored seals and audit hardening

Seals carry an Ed25519 signature and the signing key's fingerprint, each seal head its own
signature; seals and their heads become append-only like the events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_SQLITE = {
    "seals_no_update": ("seals", "UPDATE"), "seals_no_delete": ("seals", "DELETE"),
    "seal_heads_no_update": ("seal_heads", "UPDATE"), "seal_heads_no_delete": ("seal_heads", "DELETE"),
}


def upgrade() -> None:
    with op.batch_alter_table('seals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signature', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_head', sa.String(length=40), nullable=True))
    with op.batch_alter_table('seal_heads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signature', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('prev_head', sa.String(length=40), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION tigao_seals_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'seals are append-only: % refused', TG_OP;
            END;
            $$ LANGUAGE plpgsql
        """)
        for table in ("seals", "seal_heads"):
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION tigao_seals_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION tigao_seals_append_only()")
    else:
        for name, (table, what) in _SQLITE.items():
            op.execute(f"CREATE TRIGGER {name} BEFORE {what} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'seals are append-only: {what} refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("seals", "seal_heads"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS tigao_seals_append_only()")
    else:
        for name in _SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('seal_heads', schema=None) as batch_op:
        batch_op.drop_column('prev_head')
        batch_op.drop_column('signature')
    with op.batch_alter_table('seals', schema=None) as batch_op:
        batch_op.drop_column('last_head')
        batch_op.drop_column('key_id')
        batch_op.drop_column('signature')
