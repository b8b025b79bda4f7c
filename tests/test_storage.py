"""The schema built by the Alembic migrations equals the one the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from storage.db import normalise_url
from storage.models import Base


def test_migrations__match_the_models(db_url: str) -> None:
    sa = create_engine(normalise_url(db_url))
    with sa.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    sa.dispose()
    # SQLite/PostgreSQL report the same types in slightly different spellings; any structural
    # difference (a table, a column, an index) shows here.
    structural = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert structural == []


def test_normalise_url__paths_and_postgres_urls() -> None:
    assert normalise_url("x.db") == "sqlite:///x.db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
