"""Shared fixtures: real SQLite files and a real PostgreSQL, no mocks of either.

PostgreSQL tests use TIGAO_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test). A template
database is migrated once per session and cloned per test, so tests are isolated and fast. Without
a server they are skipped, unless TIGAO_REQUIRE_PG=1 (set by .ci/run), which turns the skip into a
failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import engine.spiff_state as spiff_state
from engine import Engine, SettableClock
from engine_modes import DigestBook, digest, mode, new_engine

HERE = Path(__file__).parent
BPMN = HERE / "bpmn"
ORG = BPMN / "org.toml"
PG_URL = os.environ.get("TIGAO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("TIGAO_REQUIRE_PG") == "1"
T0 = datetime(2012, 3, 1, 9, 0, tzinfo=timezone.utc)
_TEMPLATE = f"tigao_tpl_{os.getpid()}"
# Every task dict a save reuses (a finished task's, engine/spiff_state.py) is checked against a
# fresh conversion of the task, in every test that saves a state in this process.
spiff_state.CHECK_REUSE = True


def _admin_url(dbname: str) -> str:
    base = PG_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg://", 1)


def _pg_available() -> str | None:
    try:
        eng = create_engine(_admin_url(PG_URL.rsplit("/", 1)[1]), connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    why = _pg_available()
    if why is not None:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (TIGAO_REQUIRE_PG=1) but not reachable: {why}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {why}")
    admin = create_engine(_admin_url(PG_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"'))
        c.execute(text(f'CREATE DATABASE "{_TEMPLATE}"'))
    tpl = Engine(_admin_url(_TEMPLATE))
    tpl.init()
    tpl.close()  # CREATE DATABASE ... TEMPLATE needs no open connection to the template
    yield _TEMPLATE
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def scratch_pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a clone of `template`, or empty), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(PG_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    clone = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"{clone}'))
    try:
        yield _admin_url(name)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    with scratch_pg_database("tigao_t", pg_template) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, initialised, empty database URL of each kind."""
    if request.param == "sqlite":
        url = str(tmp_path / "tigao.db")
        Engine(url).init()
        return url
    return request.getfixturevalue("pg_url")


def set_simulated(url: str, when: datetime = T0) -> None:
    """Turn a fresh database into a simulated-clock one (as `tigao init --simulated` does)."""
    eng = Engine(url)
    with eng._tx() as s:
        from storage.models import Setting

        s.merge(Setting(key="clock", value="simulated"))
        s.merge(Setting(key="sim_now", value=when.isoformat()))
    eng.close()


_DIGESTS = DigestBook()


@pytest.fixture(params=["cached", pytest.param("uncached", marks=pytest.mark.slow)])
def engine_mode(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """Run a test with one caching Engine, and again with Engines that keep nothing between
    transactions (tests/engine_modes.py); the two runs must leave equal databases."""
    with mode(request.param):
        yield request.param
    params = {k: v for k, v in request.node.callspec.params.items() if k != "engine_mode"}
    key = f"{request.node.module.__name__}::{request.node.originalname}{sorted(params.items(), key=str)!r}"
    _DIGESTS.record(key, request.param, digest(db_url))


@pytest.fixture
def engine(request: pytest.FixtureRequest, db_url: str) -> Iterator[Engine]:
    """An engine on a simulated clock at T0 with the test directory and test diagrams deployed."""
    if "engine_mode" in request.fixturenames:
        request.getfixturevalue("engine_mode")
    set_simulated(db_url)
    eng = new_engine(db_url)
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    yield eng
    eng.close()


@pytest.fixture
def make_engine(db_url: str) -> Callable[..., Engine]:
    """Further engines (e.g. one per thread) on the same database."""
    made: list[Engine] = []

    def make(clock: SettableClock | None = None) -> Engine:
        e = Engine(db_url, clock=clock)
        made.append(e)
        return e

    yield make  # type: ignore[misc]
    for e in made:
        e.close()
