"""The schema built by the Alembic migrations equals the one the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from storage import schema
from storage.db import MIGRATIONS, normalise_url, schema_revision
from storage.models import Base, HumanTask


def test_migrations__match_the_models(db_url: str) -> None:
    sa = create_engine(normalise_url(db_url))
    with sa.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    sa.dispose()
    # SQLite/PostgreSQL report the same types in slightly different spellings; any structural
    # difference (a table, a column, an index) shows here.
    structural = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert structural == []


def test_schema_revision__is_the_newest_migration_and_what_init_leaves(db_url: str) -> None:
    """Readers that skip Alembic (engine/reader.py) trust a database at SCHEMA_REVISION."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [schema.SCHEMA_REVISION]
    sa = create_engine(normalise_url(db_url))
    with sa.connect() as conn:
        assert schema_revision(conn) == schema.SCHEMA_REVISION
    sa.dispose()


def test_models__are_mapped_onto_the_core_tables() -> None:
    assert Base.metadata is schema.metadata
    assert HumanTask.__table__ is schema.human_tasks


def test_normalise_url__paths_and_postgres_urls() -> None:
    assert normalise_url("x.db") == "sqlite:///x.db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
