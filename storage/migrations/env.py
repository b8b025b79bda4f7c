"""Alembic environment: run with a connection handed over in `config.attributes`."""

from alembic import context

from storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic CLI use
    from sqlalchemy import create_engine

    from storage.db import normalise_url

    connection = create_engine(normalise_url(config.get_main_option("sqlalchemy.url"))).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
