"""A directory that cannot lie: malformed organisations are refused at load, with the file's line,
and no command runs under a name that is not a person of the directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from conftest import ORG
from engine import Engine
from engine.assignment import Dept, Directory, Person, parse_directory_file
from engine.errors import InputError, NotAllowed

NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}
BASE = """[roles.staff]
name = "Staff"

[departments.hq]
name = "Headquarters"
head = "dora"

[departments.ops]
name = "Operations"
head = "carol"
parent = "hq"

[users.carol]
name = "Carol"
department = "ops"
roles = ["staff"]

[users.dora]
name = "Dora"
department = "hq"
roles = ["staff"]
"""


def _refused(tmp_path: Path, text: str) -> str:
    f = tmp_path / "org.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        parse_directory_file(f)
    return info.value.message


@pytest.mark.parametrize(("edit", "expect", "line"), [
    # a cycle of parents: hq -> ops -> hq
    (lambda t: t.replace('head = "dora"\n', 'head = "dora"\nparent = "ops"\n'), "form a cycle", 7),
    # a department that is its own parent
    (lambda t: t.replace('parent = "hq"', 'parent = "ops"'), "cycle (ops -> ops)", 11),
    # a department id equal to a role id
    (lambda t: t + '\n[departments.staff]\nname = "Staff office"\n', "both a role and a department", 23),
    # two roles with one name
    (lambda t: t.replace('[departments.hq]', '[roles.clerk]\nname = "Staff"\n\n[departments.hq]'),
     "both named 'Staff'", 5),
    # heads that are not one user id
    (lambda t: t.replace('head = "dora"', 'head = ["dora", "carol"]'), "head must be one user id", 6),
    (lambda t: t.replace('head = "dora"', 'head = 7'), "not int 7", 6),
    (lambda t: t.replace('head = "dora"', 'head = "zed"'), "head 'zed', who is not a user", 6),
    (lambda t: t.replace('parent = "hq"', 'parent = ["hq"]'), "parent must be one department id", 11),
    (lambda t: t.replace('department = "ops"', 'department = 3'), "department must be one department id", 15),
    # the engine's own name
    (lambda t: t + '\n[users.system]\nname = "Root"\n', "reserved for the engine", 23),
])
def test_directory_file__malformed__refused_with_its_line(tmp_path: Path, edit, expect: str, line: int) -> None:
    message = _refused(tmp_path, edit(BASE))
    assert expect in message
    assert f"org.toml:{line}:" in message


def test_directory_file__the_base_and_the_sample_organisation__load(tmp_path: Path) -> None:
    f = tmp_path / "org.toml"
    f.write_text(BASE, encoding="utf-8")
    users, depts, roles = parse_directory_file(f)
    assert {u.id for u in users} == {"carol", "dora"} and {d.id for d in depts} == {"hq", "ops"}
    parse_directory_file(ORG)
    parse_directory_file(Path(__file__).parent.parent / "processes" / "org.toml")


def test_superior_of__a_stored_cycle__ends_instead_of_hanging() -> None:
    d = Directory([Person("a", "A", "x", []), Person("b", "B", "y", [])],
                  [Dept("x", "X", "a", "y"), Dept("y", "Y", None, "x")], {})
    assert d.superior_of("a") is None


def test_cli_directory_load__cycle__exit_3_and_nothing_replaced(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    Engine(db).init()
    Engine(db).load_directory(ORG)
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('head = "dora"\n', 'head = "dora"\nparent = "ops"\n'), encoding="utf-8")
    r = CliRunner().invoke(main, ["--db", db, "directory", "load", str(bad), "--as", "dora"], env=NO_ENV)
    assert r.exit_code == 3, r.output
    assert "cycle" in r.output and "Traceback" not in r.output
    assert "alice" in Engine(db).directory().users  # the directory on file is unchanged


@pytest.mark.parametrize("who", ["system", "admin", "nobody", ""])
def test_actor__not_in_the_directory__refused_everywhere(engine: Engine, who: str) -> None:
    iid = engine.start("user_task", actor="alice")
    task = engine.tasks(scope="all", instance_id=iid)[0].id
    for call in (lambda: engine.start("user_task", actor=who),
                 lambda: engine.cancel(iid, "because", actor=who),
                 lambda: engine.claim(task, who),
                 lambda: engine.complete(task, who, {"name": "x"}),
                 lambda: engine.deploy([Path(__file__).parent / "bpmn" / "user_task.bpmn"], actor=who),
                 lambda: engine.tasks(user=who),
                 lambda: engine.notifications(who),
                 lambda: engine.check_reader(who)):
        with pytest.raises((NotAllowed, InputError)):
            call()
    assert engine.instance(iid)["status"] == "running"
    assert [e.actor for e in engine.history(iid)].count(who) == 0


def test_cli__as_system__is_refused_with_exit_7(engine: Engine, db_url: str) -> None:
    iid = engine.start("user_task", actor="alice")
    r = CliRunner().invoke(main, ["--db", db_url, "start", "user_task", "--as", "system"], env=NO_ENV)
    assert r.exit_code == 7, r.output
    assert "'system' is the engine's own name" in r.output
    assert len(engine.instances()) == 1 and engine.instance(iid)["status"] == "running"


def test_first_load__operator_names_themself__system_never(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    Engine(db).init()
    r = CliRunner().invoke(main, ["--db", db, "directory", "load", str(ORG), "--as", "system"], env=NO_ENV)
    assert r.exit_code == 7 and "engine's own name" in r.output
    r = CliRunner().invoke(main, ["--db", db, "directory", "load", str(ORG), "--as", "admin"], env=NO_ENV)
    assert r.exit_code == 0, r.output  # nobody can be checked before the first load
    r = CliRunner().invoke(main, ["--db", db, "directory", "load", str(ORG), "--as", "admin"], env=NO_ENV)
    assert r.exit_code == 7 and "unknown user 'admin'" in r.output  # now only its users act
