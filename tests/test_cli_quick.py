"""A quick command line: the heavy modules are imported only by the commands that need them.

`tigao tasks` reads the list with the standard library's sqlite3 on a SQLite file
(engine/quickread.py: no SQLAlchemy at all) and with SQLAlchemy Core elsewhere (engine/reader.py:
no ORM, no Alembic, no SpiffWorkflow). What it prints must be what the Engine would list, so both
readers are compared with `Engine.tasks` filter by filter (and the quick reader's query plans with
the Core query's), and what they leave to the Engine (an older schema, an unknown user, a bad id)
is checked to still get the Engine's answer.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli import main
from conftest import BPMN, ORG, T0
from engine import Engine
from engine import quickread
from engine.reader import list_tasks
from storage.db import normalise_url

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("SpiffWorkflow", "lxml", "jsonschema", "RestrictedPython", "sqlalchemy")
# What a task list must not import: the ORM, migrations, the workflow library and the Engine.
NOT_FOR_A_TASK_LIST = ("sqlalchemy.orm", "alembic", "SpiffWorkflow", "lxml", "jsonschema", "RestrictedPython",
                       "engine.core", "storage.models")
NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}


def modules_after(code: str) -> tuple[set[str], str]:
    """Every module loaded after running `code` in a new interpreter, and what it printed."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('@@', ' '.join(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    printed, _, names = out.rpartition("@@ ")
    return set(names.split()), printed


def loaded_after(code: str) -> set[str]:
    return {name.split(".")[0] for name in modules_after(code)[0]}


def run_cli(args: list[str]) -> str:
    return (f"import cli\ntry:\n    cli.main({args!r}, standalone_mode=False)\n"
            "except SystemExit:\n    pass")


def heavy_in(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_FOR_A_TASK_LIST)}


def test_import_cli__loads_none_of_the_heavy_modules() -> None:
    assert not loaded_after("import cli") & set(HEAVY)


def test_help__runs_without_the_engine() -> None:
    code = ("import cli\ntry:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass")
    assert not loaded_after(code) & set(HEAVY)


def test_task_list_on_sqlite__reads_the_projections_without_sqlalchemy(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    subprocess.run([sys.executable, "-m", "cli", "--db", db, "init"], cwd=ROOT, check=True, capture_output=True)
    code = (f"import cli\ntry:\n    cli.main(['--db', {db!r}, 'tasks', '--all'], standalone_mode=False)\n"
            "except SystemExit:\n    pass")
    modules, printed = modules_after(code)
    assert "(no tasks)" in printed and "sqlite3" in modules  # it did read the database
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)


@pytest.fixture
def staffed(tmp_path: Path) -> str:
    """A SQLite database with the test directory, the test diagrams and a few open tasks."""
    db = str(tmp_path / "staffed.db")
    eng = Engine(db)
    eng.init()
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    for _ in range(3):
        eng.start("user_task", actor="alice")
    eng.start("multi_instance", actor="dora")
    eng.close()
    return db


def test_staff_task_list__imports_no_orm_no_alembic_no_spiffworkflow(staffed: str) -> None:
    modules, printed = modules_after(run_cli(["--db", staffed, "tasks", "--as", "bob"]))
    assert "Fill in the form" in printed and "Review" in printed  # the list was read and printed
    assert "sqlite3" in modules and "engine.quickread" in modules
    assert heavy_in(modules) == set() and not {m for m in modules if m.startswith("sqlalchemy")}


def test_task_list_as_json__imports_no_orm_either(staffed: str) -> None:
    modules, printed = modules_after(run_cli(["--db", staffed, "tasks", "--as", "alice", "--mine", "--json"]))
    assert '"element_id": "Task_review"' in printed
    assert heavy_in(modules) == set()


def test_task_list_on_an_older_schema__is_left_to_the_engine(staffed: str) -> None:
    """A database at another revision than this release's is read by the Engine (which loads
    the ORM): the reader does not guess at tables it was not written for."""
    expected = CliRunner(env=NO_ENV).invoke(main, ["--db", staffed, "tasks", "--as", "bob"]).stdout
    sa = create_engine(normalise_url(staffed))
    with sa.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    sa.dispose()
    assert list_tasks(staffed, "bob") is None and quickread.list_tasks(staffed, "bob") is None
    modules, printed = modules_after(run_cli(["--db", staffed, "tasks", "--as", "bob"]))
    assert "sqlalchemy.orm" in modules
    assert printed == expected


def test_task_list_of_an_unknown_user__gets_the_engines_refusal(staffed: str) -> None:
    assert list_tasks(staffed, "mallory") is None and quickread.list_tasks(staffed, "mallory") is None
    result = CliRunner(env=NO_ENV).invoke(main, ["--db", staffed, "tasks", "--as", "mallory"])
    assert result.exit_code == 7 and "unknown user 'mallory'" in result.stderr


def test_task_list_with_an_id_out_of_range__is_bad_input(staffed: str) -> None:
    result = CliRunner(env=NO_ENV).invoke(main, ["--db", staffed, "tasks", "--all", "--instance", str(2**70)])
    assert result.exit_code == 3 and "out of range" in result.stderr and "Traceback" not in result.output


def test_task_list_without_a_database__says_so(tmp_path: Path) -> None:
    result = CliRunner(env=NO_ENV).invoke(main, ["--db", str(tmp_path / "none.db"), "tasks", "--all"])
    assert result.exit_code != 0 and "tigao init" in result.stderr
    assert not (tmp_path / "none.db").exists()


# The filters of `tigao tasks`, as (user, scope, group, instance_id, overdue, state).
FILTERS: list[tuple[Any, ...]] = [
    ("bob", "available", None, None, False, "open"),
    ("alice", "available", None, None, False, "open"),
    ("carol", "available", None, None, True, "open"),
    ("alice", "mine", None, None, False, "open"),
    ("bob", "mine", None, None, False, "any"),
    (None, "all", None, None, False, "open"),
    (None, "all", "staff", None, False, "open"),
    (None, "all", "manager", None, True, "open"),
    (None, "all", None, 2, False, "any"),
    (None, "all", None, None, True, "open"),
    (None, "all", None, None, False, "completed"),
    ("erin", "available", None, None, False, "open"),
]


def test_reader__lists_what_the_engine_lists_for_every_filter(engine: Engine, db_url: str) -> None:
    """Open, claimed, completed, overdue and assigned tasks on a simulated clock, listed by both."""
    done = engine.tasks(instance_id=engine.start("user_task", actor="alice"), scope="all")[0]
    claimed = engine.tasks(instance_id=engine.start("user_task", actor="alice"), scope="all")[0]
    for key in ("timers", "exclusive_gateway", "user_task"):
        engine.start(key, actor="alice")
    engine.start("multi_instance", actor="dora")
    engine.claim(done.id, "bob")
    engine.complete(done.id, "bob", {"name": "done"})
    engine.claim(claimed.id, "alice")
    engine.set_clock(T0 + timedelta(days=4))  # the timers task (due in 3 days) is overdue now
    listed = 0
    for user, scope, group, instance_id, overdue, state in FILTERS:
        for limit in (500, 2):
            want = engine.tasks(user, scope=scope, group=group, instance_id=instance_id, overdue=overdue,
                                state=state, limit=limit)
            got = list_tasks(db_url, user, scope, group, instance_id, overdue, state, limit)
            assert got == want, (user, scope, group, instance_id, overdue, state, limit)
            quick = quickread.list_tasks(db_url, user, scope, group, instance_id, overdue, state, limit)
            if engine.dialect == "sqlite":
                assert quick == want, ("quick", user, scope, group, instance_id, overdue, state, limit)
                _same_plan(engine, user, scope, group, instance_id, overdue, state, limit)
            else:
                assert quick is None  # PostgreSQL: SQLAlchemy Core (engine/reader.py)
            listed += len(got)
    assert listed > 20
    assert any(t.overdue for t in engine.tasks(None, scope="all"))
    assert any(t.state == "completed" for t in engine.tasks(None, scope="all", state="any"))


def _same_plan(engine: Engine, user: Any, scope: str, group: Any, instance_id: Any, overdue: bool, state: str,
               limit: int) -> None:
    """The quick reader's SELECT is planned as the Core query is: the same index walk (which
    tests/test_task_list_plans.py holds to the page)."""
    from sqlalchemy.dialects import sqlite

    from engine.tasklist import task_list_select
    from engine.taskview import VIEW_COLUMNS
    from storage import schema

    d, now = engine.directory(), engine.now()
    core = task_list_select(d, now, user, scope, group, instance_id, overdue, state, limit=limit,
                            columns=tuple(schema.human_tasks.c[n] for n in VIEW_COLUMNS))
    # SQLite's compiler writes the LIMIT it needs before an OFFSET as a parameter even with
    # literal_binds (the fence of tasklist._probe): it stands for -1, no limit.
    compiled = str(core.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    compiled = compiled.replace("LIMIT ? OFFSET 0)", "LIMIT -1 OFFSET 0)")
    quick_sql, quick_params = quickread.select_sql(now, user, scope, group, instance_id, overdue, state, limit,
                                                   d.groups_of(user or ""))
    with engine._tx(read=True) as s:
        conn = s.connection().connection.driver_connection
        want = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + str(compiled))]
        got = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + quick_sql, quick_params)]
    assert got == want, (got, want)
