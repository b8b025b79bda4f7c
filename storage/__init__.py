"""Storage: SQLAlchemy 2.0 models, the database connection and Alembic migrations."""
