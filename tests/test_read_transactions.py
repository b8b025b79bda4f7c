"""Reads never wait: the Engine's read-only methods run in read transactions that take no write
lock (SQLite: a deferred BEGIN under WAL; PostgreSQL: READ COMMITTED, READ ONLY)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import BPMN, ORG, set_simulated
from engine import Engine
from storage import db as dbmod


def _engine(url: str) -> Engine:
    set_simulated(url)
    eng = Engine(url)
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    return eng


def test_reads__another_connection_holds_the_sqlite_write_lock__still_answer(tmp_path: Path) -> None:
    path = tmp_path / "tigao.db"
    Engine(str(path)).init()
    eng = _engine(str(path))
    iid = eng.start("user_task", actor="alice")
    [task] = eng.tasks(scope="all", instance_id=iid)
    reader = Engine(str(path))

    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the test
    holder.execute("UPDATE settings SET value = value WHERE key = 'clock'")
    try:
        # Every read answers at once, from the last committed snapshot.
        assert [t.id for t in reader.tasks("bob", instance_id=iid)] == [task.id]
        assert reader.task(task.id).name == "Fill in the form"
        assert reader.task_data(task.id) == {}
        assert reader.instance(iid)["status"] == "running"
        assert [e.type for e in reader.history(iid)][:2] == ["instance_started", "task_created"]
        assert [i["id"] for i in reader.instances()] == [iid]
        assert any(d["key"] == "user_task" for d in reader.definitions())
        assert reader.notifications("bob") == []
        assert "bob" in reader.directory().users
        assert reader.now() is not None
        assert reader.task_form(task.id) is not None
        reader.check_reader("bob")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reader.close()
    eng.close()


def test_read_transaction__sqlite__begins_deferred_and_writer_immediate(tmp_path: Path) -> None:
    path = tmp_path / "tigao.db"
    Engine(str(path)).init()
    sa = dbmod.make_engine(f"sqlite:///{path}")
    seen: list[str] = []
    from sqlalchemy import event

    @event.listens_for(sa, "before_cursor_execute")
    def _log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    with dbmod.read_session_factory(sa)() as s, s.begin():
        s.execute(text("select 1"))
    with dbmod.session_factory(sa)() as s, s.begin():
        s.execute(text("select 1"))
    sa.dispose()
    begins = [st for st in seen if st.startswith("BEGIN")]
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]


@pytest.mark.postgres
def test_read_transaction__postgresql__read_committed_read_only(pg_url: str) -> None:
    eng = _engine(pg_url)
    with eng._tx(read=True) as s:
        level = s.execute(text("show transaction_isolation")).scalar()
        ro = s.execute(text("show transaction_read_only")).scalar()
    assert (level, ro) == ("read committed", "on")
    with eng._tx() as s:
        assert s.execute(text("show transaction_read_only")).scalar() == "off"
    # A row locked by a writer does not hold up a reader.
    iid = eng.start("user_task", actor="alice")
    locker = create_engine(pg_url)
    with locker.connect() as c:
        c.execute(text("select id from instances where id = :i for update"), {"i": iid})
        assert eng.instance(iid)["status"] == "running"
        assert len(eng.tasks(scope="all", instance_id=iid)) == 1
        c.rollback()
    locker.dispose()
    eng.close()
