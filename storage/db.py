"""Connecting to the database, creating or upgrading its schema (Alembic).

The ORM (sessions) and Alembic are imported by the functions that use them: a read with
SQLAlchemy Core (the task list of `tigao tasks`) connects without either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

from .basics import DEFAULT_DB  # noqa: E402,F401 - the database of a command given no --db and no TIGAO_DB
READ_ONLY = "tigao_read_only"  # execution option of the connections that only read
DEFERRED_WRITE = "tigao_deferred_write"  # SQLite: a writer that takes the write lock at its first write
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_SECONDS = 15.0  # how long one attempt waits for SQLite's one writer
# Reads of the file through a memory map instead of a read() per page: a task list at 1M open
# tasks probes a few thousand pages spread over the file, and read() calls made it cost 2.3x what
# it costs at 10k (1.45x mapped; bench/bench_tasklist.py). Address space only, shared with the OS
# page cache; writes still go through the journal as before (SQLite maps read-only).
SQLITE_MMAP_BYTES = 1 << 30


class DatabaseProblem(Exception):
    """The database cannot be used as asked: missing, not initialised, or a bad URL."""


def normalise_url(url: str | None) -> str:
    """Turn a path or URL into a SQLAlchemy URL; PostgreSQL URLs use psycopg 3."""
    url = url or os.environ.get("TIGAO_DB") or DEFAULT_DB
    if "://" not in url:
        return f"sqlite:///{url}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def sqlite_path(url: str) -> str | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    return u.database or ""


def make_engine(url: str) -> SAEngine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise DatabaseProblem(f"'{url}' is not a database URL; give a file path or e.g. "
                              "postgresql://user@host/db") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the command returns (durable, not just crash-safe).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
            cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # A writer takes the write lock up front: two writers serialise instead of failing
            # mid-way with SQLITE_BUSY on lock upgrade, and waits (the busy timeout) for the one
            # writer before it, e.g. the worker, which leaves a gap after each of its transactions
            # so that waiting commands get their turn. A reader begins deferred: under WAL it reads
            # its snapshot and never waits for, nor blocks, a writer.
            # A deferred writer (`optimistic_session_factory`) reads and works unlocked as well, and
            # takes the lock at its first write, which fails at once if another writer came between.
            options = conn.get_execution_options()
            if options.get(READ_ONLY) or options.get(DEFERRED_WRITE):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    raise DatabaseProblem(f"unsupported database '{backend}': use a SQLite file or a PostgreSQL URL")


def check_exists(url: str) -> None:
    """Refuse to silently create a new SQLite file for anything but `init`."""
    path = sqlite_path(url)
    if path is None:
        return
    if path in ("", ":memory:"):
        raise DatabaseProblem("an in-memory database keeps nothing; give a file path")
    if not Path(path).exists():
        raise DatabaseProblem(f"no database at '{path}': run 'tigao init' first (or pass --db)")


def downgrade(engine: SAEngine, revision: str) -> None:
    """Take the schema back to `revision` (for going back to an earlier release): each migration
    after it runs its downgrade, in one transaction. An unknown revision is a DatabaseProblem."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    known = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()]
    if revision not in known:
        raise DatabaseProblem(f"no schema revision '{revision}'; the revisions are {', '.join(sorted(known))}")
    with engine.begin() as conn:
        if schema_revision(conn) is None:
            raise DatabaseProblem("this is not a Tigao database (no schema revision); nothing to downgrade")
        cfg.attributes["connection"] = conn
        try:
            command.downgrade(cfg, revision)
        except CommandError as exc:
            raise DatabaseProblem(f"cannot downgrade to '{revision}': {exc}") from exc


def upgrade(engine: SAEngine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    from . import triggers

    # Put back append-only triggers that were dropped or disabled since (verify reports them).
    with engine.begin() as conn:
        restored = triggers.restore(conn)
    if restored:
        logging.getLogger("tigao.storage").warning("restored append-only triggers: %s", ", ".join(restored))


def session_factory(engine: SAEngine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def optimistic_session_factory(engine: SAEngine) -> sessionmaker[Session]:
    """SQLite sessions that write, begun deferred: what they read and compute before their first
    write holds no lock; at that write SQLite takes the write lock, or fails at once with
    SQLITE_BUSY (another writer holds it) or SQLITE_BUSY_SNAPSHOT (another writer committed since
    this transaction's snapshot): nothing was written, and the caller runs the command again
    behind the lock (engine/base.py `Engine._tx`)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine.execution_options(**{DEFERRED_WRITE: True}), expire_on_commit=False)


def read_only(engine: SAEngine) -> SAEngine:
    """The engine whose transactions only read: on SQLite a deferred BEGIN (no write lock), on
    PostgreSQL a READ COMMITTED, READ ONLY transaction (no row locks can be taken by mistake)."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options.update(isolation_level="READ COMMITTED", postgresql_readonly=True)
    return engine.execution_options(**options)


def read_session_factory(engine: SAEngine) -> sessionmaker[Session]:
    """Sessions for transactions that only read (see `read_only`)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(read_only(engine), expire_on_commit=False, autoflush=False)


def schema_revision(conn: Any) -> str | None:
    """The Alembic revision a database is at (None: not a database Alembic made), read without
    importing Alembic. A database at `storage.schema.SCHEMA_REVISION` has exactly its tables."""
    from sqlalchemy import text

    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
