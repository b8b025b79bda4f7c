"""Bad input through the command line: every refusal is one clear line naming what to fix, exits
with the code of its class (errors.py), shows no traceback, and leaves the stored data untouched.

Everything runs against real databases (a SQLite file in tmp_path, the local PostgreSQL); nothing
is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from cli import main
from engine import Engine
from engine.bundles import MAX_FILE_BYTES
from storage.db import normalise_url

from conftest import BPMN, ORG, _admin_url, scratch_pg_database

BAD = BPMN / "bad"
FORMS = BPMN / "forms"
TABLES = ("definitions", "instances", "human_tasks", "events", "timers", "task_candidates",
          "message_subscriptions", "notifications")


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient user or database from the developer's shell; relative paths land in tmp_path."""
    monkeypatch.delenv("TIGAO_USER", raising=False)
    monkeypatch.delenv("TIGAO_DB", raising=False)
    monkeypatch.chdir(tmp_path)


OPERATOR = {"TIGAO_USER": "dora"}  # commands that act name who acts; the operator is in the directory


def tigao(db: str, *args: str) -> Result:
    return CliRunner(env=OPERATOR).invoke(main, ["--db", db, *args])


def snapshot(url: str) -> dict[str, tuple[int, list[str]]]:
    """Row count and full content of every runtime table, read with SQLAlchemy on the same URL."""
    eng = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with eng.connect() as c:
            out = {}
            for table in TABLES:
                rows = c.execute(text(f"SELECT * FROM {table}")).all()
                out[table] = (len(rows), sorted(repr(tuple(r)) for r in rows))
            return out
    finally:
        eng.dispose()


def assert_unchanged(before: dict[str, tuple[int, list[str]]], url: str) -> None:
    after = snapshot(url)
    assert {t: n for t, (n, _) in after.items()} == {t: n for t, (n, _) in before.items()}, \
        "row counts changed"
    assert after == before, "stored rows changed"


def error_line(result: Result) -> str:
    """The refusal: exactly one non-empty line on stderr."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    return lines[0]


def assert_refused(result: Result, code: int, *words: str) -> str:
    """Exit `code`, one error line containing every word (case-insensitive), no traceback."""
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}: {result.output!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    line = error_line(result)
    for w in words:
        assert w.lower() in line.lower(), f"{w!r} not in {line!r}"
    return line


def sqlite_db(tmp_path: Path, name: str = "tigao.db") -> str:
    """An initialised SQLite database with the test directory and user_task deployed."""
    path = str(tmp_path / name)
    eng = Engine(path)
    eng.init()
    eng.load_directory(ORG)
    eng.deploy([BPMN / "user_task.bpmn"])
    eng.close()
    return path


def bundle_dir(tmp_path: Path, *files: Path, name: str = "bundle") -> Path:
    """A folder with the given files and a copy of tests/bpmn/forms/ (nothing else)."""
    d = tmp_path / name
    d.mkdir()
    shutil.copytree(FORMS, d / "forms")
    for f in files:
        shutil.copy(f, d / f.name)
    return d


def script_bpmn(folder: Path, name: str, script: str) -> Path:
    """tests/bpmn/script_task.bpmn with its script replaced (element id Script_total)."""
    src = (BPMN / "script_task.bpmn").read_text(encoding="utf-8")
    assert "total = a + b" in src
    path = folder / name
    path.write_text(src.replace("total = a + b", script.replace("&", "&amp;").replace("<", "&lt;")),
                    encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- bad definition files
# file -> (element id the message must name, or None; further words the message must contain)
BAD_FILES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "malformed.bpmn": (None, ("malformed XML", ":21")),
    "xxe.bpmn": (None, ("DOCTYPE", "entity", "remove")),
    "billion_laughs.bpmn": (None, ("DOCTYPE", "entity", "remove")),
    "import_script.bpmn": ("Script_total", ("__import__", "not allowed")),
    "dunder_script.bpmn": ("Script_total", ("__class__", "not allowed")),
    "open_condition.bpmn": ("Flow_open", ("'open'", "not allowed")),
    "unknown_lane.bpmn": ("Lane_nonexistent", ("nonexistent_role", "role")),
    "missing_form.bpmn": ("Task_fill", ("no_such_form", "schema")),
    "missing_called.bpmn": ("Call_child", ("no_such_process",)),
    "missing_decision.bpmn": ("Rule_grade", ("no_such_decision",)),
    "schema_invalid.bpmn": ("Flow_to_end", ("targetRef", "BPMN")),
    "schema_unknown_element.bpmn": ("Frob_1", ("frobnicator", "BPMN")),
    "bad_timer.bpmn": ("Event_wait", ("timeDuration", "P3X", "ISO 8601")),
    "bad_due.bpmn": ("Task_fill", ("dueDate", "next tuesday", "ISO 8601")),
    "form_ref_expression.bpmn": ("Task_fill", ("camunda:formRef", "${formName}", "expression")),
    "open_assignee.bpmn": ("Task_fill", ("camunda:assignee", "${currentUser()", "closing")),
}


def test_every_bad_sample_has_an_expectation() -> None:
    assert sorted(p.name for p in BAD.iterdir() if p.is_file()) == sorted(BAD_FILES)


@pytest.mark.parametrize("command", ["validate", "deploy"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_definition_is_refused_naming_file_and_element(tmp_path: Path, name: str, command: str) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path, BAD / name)
    before = snapshot(db)

    result = tigao(db, command, str(folder / name))

    element, words = BAD_FILES[name]
    line = assert_refused(result, 4, name, *words, *([element] if element else []))
    assert line.startswith("error: ")
    assert "root:" not in result.output  # never a byte of /etc/passwd (xxe, open_condition)
    assert result.stdout == ""
    assert_unchanged(before, db)


def test_xxe_does_not_read_local_files(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path, BAD / "xxe.bpmn")
    before = snapshot(db)
    for command in ("validate", "deploy"):
        result = tigao(db, command, str(folder / "xxe.bpmn"))
        assert_refused(result, 4, "xxe.bpmn", "DOCTYPE")
        assert "root:" not in result.output
        assert "/bin/" not in result.output
    assert_unchanged(before, db)


def test_billion_laughs_is_refused_without_expanding(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path, BAD / "billion_laughs.bpmn")
    before = snapshot(db)
    result = tigao(db, "deploy", str(folder / "billion_laughs.bpmn"))
    assert_refused(result, 4, "billion_laughs.bpmn", "entity")
    assert "lollol" not in result.output
    assert_unchanged(before, db)


def _write_huge_bpmn(path: Path, size: int) -> None:
    """A valid BPMN header, then `size` bytes of padding inside a documentation element."""
    src = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    anchor = "<bpmn:incoming>Flow_to_fill</bpmn:incoming>"
    head, tail = src.split(anchor, 1)
    chunk = b"x" * (1024 * 1024)
    with path.open("wb") as f:
        f.write(head.encode() + b"<bpmn:documentation>")
        written = 0
        while written < size:
            f.write(chunk)
            written += len(chunk)
        f.write(b"</bpmn:documentation>" + anchor.encode() + tail.encode())


@pytest.mark.parametrize("command", ["validate", "deploy"])
def test_a_50_mb_bpmn_file_is_refused_naming_the_size_limit(tmp_path: Path, command: str) -> None:
    db = sqlite_db(tmp_path)
    big = tmp_path / "big" / "huge.bpmn"
    big.parent.mkdir()
    _write_huge_bpmn(big, 50 * 1024 * 1024)
    assert big.stat().st_size > 50 * 1024 * 1024
    before = snapshot(db)

    result = tigao(db, command, str(big))

    assert_refused(result, 4, "huge.bpmn", "limit", f"{MAX_FILE_BYTES:,}")
    assert_unchanged(before, db)


@pytest.mark.parametrize("script, forbidden", [
    ("x = __import__('os').getcwd()", "__import__"),
    ("y = ().__class__", "__class__"),
    ("y = '{0.__class__}'.format(())", "format"),
    ("y = getattr(a, 'real')", "getattr"),
    ("import os", "import"),
], ids=["import", "dunder_class", "str_format", "getattr", "import_statement"])
def test_script_task_with_forbidden_code_is_refused_at_deploy(tmp_path: Path, script: str,
                                                               forbidden: str) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path)
    path = script_bpmn(folder, "evil.bpmn", script)
    before = snapshot(db)

    result = tigao(db, "deploy", str(path))

    assert_refused(result, 4, "evil.bpmn", "Script_total", forbidden, "not allowed")
    assert_unchanged(before, db)


def test_script_task_walking_generator_frames_to_builtins_is_refused_at_deploy(tmp_path: Path) -> None:
    """A generator's frame reaches the engine's own module globals (and with them `builtins.open`)
    without any name or attribute that starts with '_'. Such a script must not deploy, and in no
    case may a process read /etc/passwd."""
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path)
    path = script_bpmn(folder, "escape.bpmn",
                       "gen = (gen.gi_frame.f_back.f_back.f_globals for i in [1])\n"
                       "leak = list(gen)[0]['builtins'].open('/etc/passwd').read()[:40]\n"
                       "gen = None")
    before = snapshot(db)

    result = tigao(db, "deploy", str(path))

    if result.exit_code == 0:  # show what the escape does, so the failure explains itself
        started = tigao(db, "start", "script_task", "--as", "alice", "--json")
        shown = tigao(db, "show", str(json.loads(started.stdout)["id"]))
        assert "root:" not in shown.output, "a process script read /etc/passwd: " + shown.output
    line = assert_refused(result, 4, "escape.bpmn", "Script_total", "not allowed")
    assert any(a in line for a in ("gi_frame", "f_back", "f_globals")), line
    assert_unchanged(before, db)


def test_bundle_with_one_bad_file_deploys_nothing(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = tmp_path / "all"
    shutil.copytree(BPMN, folder, ignore=shutil.ignore_patterns("bad", "*.toml"))
    shutil.copy(BAD / "bad_timer.bpmn", folder / "bad_timer.bpmn")
    before = snapshot(db)

    result = tigao(db, "deploy", str(folder))

    assert_refused(result, 4, "bad_timer.bpmn", "Event_wait", "P3X")
    assert_unchanged(before, db)


def test_bpmn_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path)
    src = (BPMN / "user_task.bpmn").read_bytes().replace(b'name="Fill in the form"', b'name="F\xe9e"')
    (folder / "latin1.bpmn").write_bytes(src)
    before = snapshot(db)
    assert_refused(tigao(db, "deploy", str(folder / "latin1.bpmn")), 4, "latin1.bpmn", "UTF-8")
    assert_unchanged(before, db)


def test_xml_nested_too_deep_is_refused(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path)
    src = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    anchor = "<bpmn:incoming>Flow_to_fill</bpmn:incoming>"
    deep = "<bpmn:documentation>" + "<x>" * 50_000 + "</x>" * 50_000 + "</bpmn:documentation>"
    (folder / "deep.bpmn").write_text(src.replace(anchor, deep + anchor, 1), encoding="utf-8")
    before = snapshot(db)
    assert_refused(tigao(db, "deploy", str(folder / "deep.bpmn")), 4, "deep.bpmn", "malformed XML")
    assert_unchanged(before, db)


@pytest.mark.parametrize("schema, words", [
    ("{bad", ("not JSON",)),
    ('{"type": 12}', ("not a valid JSON Schema",)),
], ids=["not_json", "not_a_schema"])
def test_broken_form_schema_is_refused_naming_the_form_file(tmp_path: Path, schema: str,
                                                            words: tuple[str, ...]) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path, BPMN / "user_task.bpmn")
    (folder / "forms" / "simple.json").write_text(schema, encoding="utf-8")
    before = snapshot(db)
    assert_refused(tigao(db, "deploy", str(folder / "user_task.bpmn")), 4, "forms/simple.json", *words)
    assert_unchanged(before, db)


def test_dmn_with_doctype_is_refused(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    folder = bundle_dir(tmp_path, BPMN / "business_rule.bpmn")
    dmn = (BPMN / "decision.dmn").read_text(encoding="utf-8")
    decl_end = dmn.index("?>") + 2
    evil = dmn[:decl_end] + '\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + dmn[decl_end:]
    (folder / "decision.dmn").write_text(evil, encoding="utf-8")
    before = snapshot(db)
    result = tigao(db, "deploy", str(folder))
    assert_refused(result, 4, "decision.dmn", "DOCTYPE")
    assert "root:" not in result.output
    assert_unchanged(before, db)


def test_validate_of_a_path_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    assert_refused(tigao(db, "validate", str(tmp_path / "nope.bpmn")), 3, "nope.bpmn", "no such file")


@pytest.mark.parametrize("content, words", [
    (None, ("no directory file", "org-missing.toml")),
    ("x = [", ("org-missing.toml", "TOML")),
], ids=["missing", "not_toml"])
def test_bad_directory_file_is_refused(tmp_path: Path, content: str | None, words: tuple[str, ...]) -> None:
    db = sqlite_db(tmp_path)
    path = tmp_path / "org-missing.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    before = snapshot(db)
    assert_refused(tigao(db, "directory", "load", str(path)), 3, *words)
    assert_unchanged(before, db)
    assert "alice" in tigao(db, "directory", "show").stdout  # the loaded directory is kept


# ----------------------------------------------------------------------------- tasks and form data
@pytest.fixture
def task_db(db_url: str) -> Iterator[tuple[str, int]]:
    """Both kinds of database: directory loaded, user_task deployed, one instance started by alice
    with its open task (form 'simple': name string required, amount integer >= 0)."""
    eng = Engine(db_url)
    eng.load_directory(ORG)
    eng.deploy([BPMN / "user_task.bpmn"])
    iid = eng.start("user_task", actor="alice")
    task_id = eng.tasks(scope="all", instance_id=iid)[0].id
    eng.close()
    yield db_url, task_id


@pytest.mark.parametrize("data, code, words", [
    ("{bad", 3, ("not valid JSON", "line 1 column 2")),
    ("[1, 2]", 3, ("JSON object",)),
    ('"name"', 3, ("JSON object",)),
    ("{}", 5, ("simple", "$.name", "required")),
    ('{"name": "x", "amount": "five"}', 5, ("simple", "$.amount", "integer")),
    ('{"name": "x", "amount": -1}', 5, ("$.amount", "minimum")),
    ('{"name": 7}', 5, ("$.name", "string")),
    ('{"name": "x", "amount": NaN}', 3, ("JSON",)),
], ids=["not_json", "array", "string", "missing_required", "wrong_type", "below_minimum", "name_not_string",
        "nan"])
def test_bad_form_data_is_refused_naming_the_field(task_db: tuple[str, int], data: str, code: int,
                                                    words: tuple[str, ...]) -> None:
    db, task_id = task_db
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", data)
    assert_refused(result, code, *words)
    assert_unchanged(before, db)


def test_data_file_that_does_not_exist_is_bad_input(task_db: tuple[str, int], tmp_path: Path) -> None:
    db, task_id = task_db
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", "@missing.json")
    assert_refused(result, 3, "missing.json", "cannot read")
    assert_unchanged(before, db)


def test_data_file_with_invalid_json_is_bad_input(task_db: tuple[str, int], tmp_path: Path) -> None:
    db, task_id = task_db
    (tmp_path / "bad.json").write_text('{"name": ', encoding="utf-8")
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", "@bad.json")
    assert_refused(result, 3, "not valid JSON")
    assert_unchanged(before, db)


def test_deeply_nested_json_data_is_bad_input_not_an_internal_error(task_db: tuple[str, int],
                                                                     tmp_path: Path) -> None:
    db, task_id = task_db
    depth = 100_000
    nested = "[" * depth + "]" * depth
    (tmp_path / "deep.json").write_text('{"name": "x", "n": ' + nested + "}", encoding="utf-8")
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", "@deep.json")
    assert_refused(result, 3, "data")
    assert_unchanged(before, db)


def test_task_that_does_not_exist_is_not_found(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    before = snapshot(db)
    for args in (["complete", "987654", "--as", "alice", "--data", '{"name": "x"}'],
                 ["task", "987654"], ["claim", "987654", "--as", "alice"]):
        assert_refused(tigao(db, *args), 6, "no task 987654")
    assert_unchanged(before, db)


def test_instance_that_does_not_exist_is_not_found(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    before = snapshot(db)
    for args in (["show", "987654"], ["history", "987654"], ["cancel", "987654", "--reason", "x"]):
        assert_refused(tigao(db, *args), 6, "no instance 987654")
    assert_unchanged(before, db)


def test_process_that_is_not_deployed_cannot_start(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    before = snapshot(db)
    assert_refused(tigao(db, "start", "no_such_process", "--as", "alice"), 6, "no_such_process")
    assert_unchanged(before, db)


def test_completing_someone_elses_task_is_not_allowed(task_db: tuple[str, int]) -> None:
    db, task_id = task_db
    assert tigao(db, "claim", str(task_id), "--as", "alice").exit_code == 0
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "bob", "--data", '{"name": "x"}')
    assert_refused(result, 7, "assigned to alice", "bob")
    assert_unchanged(before, db)


@pytest.mark.parametrize("user, words", [
    ("erin", ("erin", "auditor")),
    ("zed", ("unknown user", "zed")),
], ids=["auditor", "unknown_user"])
def test_users_who_may_not_act_are_refused(task_db: tuple[str, int], user: str,
                                           words: tuple[str, ...]) -> None:
    db, task_id = task_db
    before = snapshot(db)
    assert_refused(tigao(db, "complete", str(task_id), "--as", user, "--data", '{"name": "x"}'), 7, *words)
    assert_refused(tigao(db, "start", "user_task", "--as", user), 7, *words)
    assert_unchanged(before, db)


def test_completing_a_task_twice_is_a_conflict(task_db: tuple[str, int]) -> None:
    db, task_id = task_db
    first = tigao(db, "complete", str(task_id), "--as", "alice", "--data", '{"name": "x"}')
    assert first.exit_code == 0, first.output
    before = snapshot(db)
    result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", '{"name": "y"}')
    assert_refused(result, 8, f"task {task_id}", "already completed")
    assert_unchanged(before, db)


def test_cancel_without_a_real_reason_and_cancelling_twice_are_refused(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    iid = json.loads(tigao(db, "instances", "--json").stdout)[0]["id"]
    before = snapshot(db)
    assert_refused(tigao(db, "cancel", str(iid), "--reason", "  ", "--as", "carol"), 3, "reason")
    assert_unchanged(before, db)
    assert tigao(db, "cancel", str(iid), "--reason", "test", "--as", "carol").exit_code == 0
    before = snapshot(db)
    assert_refused(tigao(db, "cancel", str(iid), "--reason", "again", "--as", "carol"), 8, "cancelled")
    assert_unchanged(before, db)


def test_delegating_to_a_user_not_in_the_directory_is_not_found(task_db: tuple[str, int]) -> None:
    db, task_id = task_db
    assert tigao(db, "claim", str(task_id), "--as", "alice").exit_code == 0
    before = snapshot(db)
    assert_refused(tigao(db, "delegate", str(task_id), "nobody", "--as", "alice"), 6, "nobody")
    assert_unchanged(before, db)


def test_message_nobody_waits_for_is_not_found(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    before = snapshot(db)
    assert_refused(tigao(db, "message", "no_such_message", "--data", "{}"), 6, "no_such_message")
    assert_unchanged(before, db)


def test_usage_errors_exit_2(task_db: tuple[str, int]) -> None:
    db, task_id = task_db
    before = snapshot(db)
    for args in (["complete", "abc", "--as", "alice"],  # not an integer
                 ["cancel", "1"],  # no --reason
                 ["no-such-command"]):
        result = tigao(db, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert_unchanged(before, db)


def test_bad_clock_values_are_bad_input(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    assert_refused(tigao(db, "clock", "advance", "three days"), 3, "three days", "ISO 8601")
    assert_refused(tigao(db, "clock", "set", "tomorrow"), 3, "tomorrow", "ISO 8601")


def test_debug_shows_the_traceback_the_normal_run_hides(task_db: tuple[str, int]) -> None:
    db, _ = task_db
    normal = tigao(db, "task", "987654")
    assert_refused(normal, 6, "no task 987654")

    debug = CliRunner().invoke(main, ["--db", db, "--debug", "task", "987654"])
    assert debug.exit_code == 6
    assert "Traceback" in debug.stderr
    assert "NotFound" in debug.stderr
    assert "error: no task 987654" in debug.stderr


# ----------------------------------------------------------------------------- storage problems
def test_unreachable_postgresql_is_a_storage_error(tmp_path: Path) -> None:
    result = tigao("postgresql://postgres@127.0.0.1:1/none", "instances")
    assert_refused(result, 9, "cannot reach", "127.0.0.1")


def test_sqlite_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    content = os.urandom(64 * 1024)
    junk.write_bytes(content)
    for args in (["instances"], ["tasks", "--all"], ["init"]):
        result = tigao(str(junk), *args)
        assert_refused(result, 9, "junk.db", "not a database")
        assert junk.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.db"]  # no -wal/-shm left beside it


def test_missing_sqlite_file_says_run_init_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nonexistent" / "x.db"
    for args in (["instances"], ["deploy", str(BPMN / "user_task.bpmn")], ["clock"]):
        assert_refused(tigao(str(path), *args), 9, str(path), "tigao init")
    assert not path.exists()
    assert not path.parent.exists()


def test_uninitialised_sqlite_file_says_run_init(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE recipes (name TEXT)")
    con.execute("INSERT INTO recipes VALUES ('tea')")
    con.commit()
    con.close()
    for args in (["instances"], ["start", "user_task"], ["deploy", str(BPMN / "user_task.bpmn")]):
        assert_refused(tigao(str(path), *args), 9, "not a Tigao database", "tigao init")
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT name FROM recipes").fetchall() == [("tea",)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    assert tables == {"recipes"}


@pytest.mark.slow
def test_locked_sqlite_database_is_a_storage_error(tmp_path: Path) -> None:
    """The one slow test: the engine waits its 15 s busy timeout (there is no option to shorten it)."""
    db = sqlite_db(tmp_path)
    eng = Engine(db)
    iid = eng.start("user_task", actor="alice")
    task_id = eng.tasks(scope="all", instance_id=iid)[0].id
    eng.close()
    before = snapshot(db)
    holder = sqlite3.connect(db, isolation_level=None, timeout=1)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = tigao(db, "complete", str(task_id), "--as", "alice", "--data", '{"name": "x"}')
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_refused(result, 9, "locked")
    assert_unchanged(before, db)
    assert tigao(db, "complete", str(task_id), "--as", "alice", "--data", '{"name": "x"}').exit_code == 0


def test_unsupported_database_url_is_a_storage_error() -> None:
    assert_refused(tigao("mysql://user@localhost/db", "instances"), 9, "unsupported", "mysql")


def test_directory_given_as_database_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    assert_refused(tigao(str(tmp_path / "adir"), "instances"), 9, "adir")


@pytest.fixture
def empty_pg_db(pg_template: str) -> Iterator[str]:
    """A PostgreSQL database that exists but was never initialised (no tables)."""
    with scratch_pg_database("tigao_empty") as url:
        yield url


def _with_password(url: str) -> tuple[str, str]:
    """The URL with a password (the configured one, or one a trust-auth server ignores)."""
    u = make_url(url)
    secret = u.password or "s3cret-pw-9c1"
    return u.set(password=secret).render_as_string(hide_password=False), str(secret)


@pytest.mark.postgres
def test_uninitialised_postgresql_database_says_run_init_without_showing_the_password(
        empty_pg_db: str) -> None:
    url, secret = _with_password(empty_pg_db)
    result = tigao(url, "instances")
    assert_refused(result, 9, "not a Tigao database", "tigao init")
    assert secret not in result.output


@pytest.mark.postgres
def test_postgresql_database_that_does_not_exist_is_named_as_missing(pg_template: str) -> None:
    name = f"tigao_missing_{uuid.uuid4().hex[:12]}"
    url, secret = _with_password(_admin_url(name))
    for args in (["instances"], ["init"]):
        result = tigao(url, *args)
        line = assert_refused(result, 9, name, "does not exist")
        assert "no tables" not in line  # it is not an uninitialised database: there is none
        assert secret not in result.output


def test_start_or_message__data_named_like_a_script_helper__is_refused(engine) -> None:
    from engine import InputError

    with pytest.raises(InputError, match="reserved"):
        engine.start("user_task", {"now": "x"}, actor="alice")
    with pytest.raises(InputError, match="reserved"):
        engine.message("complaint", {"staff": []}, actor="bob")
    assert engine.instances() == []
