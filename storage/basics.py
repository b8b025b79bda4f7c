"""What a reader needs to know of the storage before it imports SQLAlchemy (engine/quickread.py):
the schema revision and the default database file. This module imports nothing."""

# The newest Alembic revision (storage/migrations/versions): a database whose `alembic_version`
# holds it has exactly the tables of `storage.schema`. tests/test_storage.py checks it against the
# migrations.
SCHEMA_REVISION = "0015"

DEFAULT_DB = "tigao.db"  # the database of a command given no --db and no TIGAO_DB
