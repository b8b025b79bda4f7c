"""A tour of the `tigao` command line as a new user takes it: set up a database, deploy, start,
work on tasks, look at instances and their history, send a message, cancel, and move a simulated
clock. Real SQLite files in tmp_path (and the local PostgreSQL for one check); no mocks.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import make_url

from cli import main
from conftest import BPMN, ORG

NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}


def tigao(db: str, *args: str) -> Result:
    return CliRunner(env=NO_ENV).invoke(main, ["--db", db, *args])


def ok(db: str, *args: str) -> str:
    """Run a command that must succeed; return its stdout."""
    result = tigao(db, *args)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output
    return result.stdout


def ok_json(db: str, *args: str) -> Any:
    return json.loads(ok(db, *args, "--json"))


def refused(db: str, code: int, *args: str) -> str:
    """Run a command that must fail with `code`; return its one error line."""
    result = tigao(db, *args)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}, expected {code}: {result.output}"
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def table_rows(out: str) -> list[list[str]]:
    """The rows of a printed table (split on runs of 2+ spaces), without heading and rule."""
    lines = out.splitlines()
    rule = next(i for i, ln in enumerate(lines) if ln.startswith("--"))
    return [re.split(r"\s{2,}", ln.strip()) for ln in lines[rule + 1:] if ln.strip()]


def heading(out: str, before_rule: int = 0) -> list[str]:
    lines = out.splitlines()
    rule = [i for i, ln in enumerate(lines) if ln.startswith("--")][before_rule]
    return lines[rule - 1].split()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database set up with the CLI once per module: init, directory, deploy tests/bpmn."""
    path = tmp_path_factory.mktemp("template") / "tigao.db"
    db = str(path)
    ok(db, "init")
    ok(db, "directory", "load", str(ORG), "--as", "admin")
    ok(db, "deploy", str(BPMN), "--as", "admin")
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    """A private copy of the template database (SQLite's backup API: consistent, WAL included)."""
    target = tmp_path / "tigao.db"
    src, dst = sqlite3.connect(template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return str(target)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def start_user_task(db: str, actor: str = "alice") -> tuple[int, int]:
    started = ok_json(db, "start", "user_task", "--as", actor)
    return started["id"], started["tasks"][0]["id"]


# ----------------------------------------------------------------------------- setting up
def test_new_user_sets_up_a_database_loads_the_directory_validates_and_deploys(tmp_path: Path) -> None:
    db = str(tmp_path / "new" / "tigao.db")
    assert "created database" in ok(db, "init")
    assert Path(db).exists()
    assert "upgraded database" in ok(db, "init")  # running it again is harmless

    org = tomllib.loads(ORG.read_text(encoding="utf-8"))
    out = ok(db, "directory", "load", str(ORG), "--as", "admin")
    assert out.strip() == (f"loaded {len(org['users'])} users, {len(org['departments'])} departments, "
                           f"{len(org['roles'])} roles")
    shown = ok(db, "directory", "show")
    assert heading(shown) == ["USER", "NAME", "DEPARTMENT", "HEAD", "ROLES"]
    assert ["alice", "Alice", "ops", "staff"] in table_rows(shown)
    assert {u["id"] for u in ok_json(db, "directory", "show")} == set(org["users"])

    validated = ok(db, "validate", str(BPMN))
    assert "ok  user_task  (user_task.bpmn)" in validated.splitlines()
    assert ok_json(db, "definitions") == []  # validate stores nothing

    deployed = ok(db, "deploy", str(BPMN), "--as", "admin")
    assert heading(deployed) == ["PROCESS", "VERSION", "DEFINITION", "RESULT"]
    rows = {r[0]: r for r in table_rows(deployed)}
    assert rows["user_task"][1] == "1" and rows["user_task"][3] == "deployed"
    assert rows["message_start"][3] == "deployed"
    again = {r[0]: r for r in table_rows(ok(db, "deploy", str(BPMN / "user_task.bpmn"), "--as", "carol"))}
    assert again["user_task"][1:] == [rows["user_task"][1], rows["user_task"][2], "unchanged"]


def test_definitions_lists_deployed_versions_as_table_and_json(db: str) -> None:
    out = ok(db, "definitions")
    assert heading(out)[:4] == ["PROCESS", "VERSION", "ID", "NAME"]
    assert any(r[0] == "user_task" and r[1] == "1" for r in table_rows(out))
    defs = ok_json(db, "definitions")
    user_task = next(d for d in defs if d["key"] == "user_task")
    assert user_task["version"] == 1 and user_task["instances"] == 0
    assert "user_task.bpmn" in user_task["files"] and "forms/simple.json" in user_task["files"]


# ----------------------------------------------------------------------------- tasks
def test_start_as_alice_returns_the_instance_and_its_open_task_as_json(db: str) -> None:
    started = ok_json(db, "start", "user_task", "--as", "alice")
    assert started["status"] == "running"
    assert isinstance(started["id"], int)
    [task] = started["tasks"]
    assert task["element_id"] == "Task_fill" and task["state"] == "open"
    assert task["candidate_groups"] == ["staff"] and task["assignee"] is None
    assert task["form_key"] == "simple" and task["instance_id"] == started["id"]
    assert next(d for d in ok_json(db, "definitions") if d["key"] == "user_task")["instances"] == 1
    plain = ok(db, "start", "user_task", "--as", "alice")
    assert plain.startswith("started instance ") and "of user_task v1: running" in plain


def test_tasks_as_bob_shows_the_task_offered_to_staff(db: str) -> None:
    iid, task_id = start_user_task(db)
    out = ok(db, "tasks", "--as", "bob")
    assert heading(out)[:4] == ["TASK", "INSTANCE", "NAME", "ASSIGNEE/CANDIDATES"]
    assert [str(task_id), str(iid), "Fill in the form", "@staff", "simple"] in table_rows(out)
    assert [t["id"] for t in ok_json(db, "tasks", "--as", "bob")] == [task_id]
    assert ok(db, "tasks", "--as", "erin").strip() == "(no tasks)"  # an auditor is not staff


def test_tasks_without_as_or_all_is_refused_and_all_lists_everything(db: str) -> None:
    _, task_id = start_user_task(db)
    line = refused(db, 3, "tasks")
    assert "--as" in line and "--all" in line
    assert task_id in [t["id"] for t in ok_json(db, "tasks", "--all")]


def test_task_shows_its_form_fields(db: str) -> None:
    _, task_id = start_user_task(db)
    out = ok(db, "task", str(task_id))
    assert "form simple" in out
    form_part = out[out.index("form simple"):]
    assert heading(form_part) == ["FIELD", "TYPE", "REQUIRED", "TITLE", "VALUES", "ON", "THE", "TASK"]
    fields = table_rows(form_part)
    assert ["name", "string", "yes", "Name"] in fields
    assert ["amount", "integer", "Amount"] in fields
    shown = ok_json(db, "task", str(task_id))
    assert shown["task"]["id"] == task_id
    assert shown["form"]["required"] == ["name"]
    assert set(shown["form"]["properties"]) == {"name", "amount"}


def test_claim_unclaim_and_delegate_move_the_task_between_users(db: str) -> None:
    iid, task_id = start_user_task(db)
    assert ok(db, "claim", str(task_id), "--as", "bob").strip() == f"task {task_id} claimed by bob"
    assert ok(db, "tasks", "--as", "alice").strip() == "(no tasks)"
    assert [t["assignee"] for t in ok_json(db, "tasks", "--as", "bob", "--mine")] == ["bob"]

    assert ok(db, "unclaim", str(task_id), "--as", "bob").strip() == \
        f"task {task_id} returned to its candidates"
    assert [t["id"] for t in ok_json(db, "tasks", "--as", "alice")] == [task_id]

    ok(db, "claim", str(task_id), "--as", "alice")
    assert ok(db, "delegate", str(task_id), "carol", "--as", "alice").strip() == \
        f"task {task_id} delegated to carol"
    assert ok_json(db, "task", str(task_id))["task"]["assignee"] == "carol"
    assert [t["id"] for t in ok_json(db, "tasks", "--as", "carol", "--mine")] == [task_id]

    events = [(e["type"], e["actor"]) for e in ok_json(db, "history", str(iid))]
    assert ("task_claimed", "bob") in events and ("task_unclaimed", "bob") in events
    assert ("task_claimed", "alice") in events and ("task_delegated", "alice") in events


def test_complete_with_inline_json_and_with_a_data_file(db: str, tmp_path: Path) -> None:
    iid1, task1 = start_user_task(db)
    out = ok(db, "complete", str(task1), "--as", "bob", "--data", '{"name": "Bob", "amount": 3}')
    assert out.strip() == f"task {task1} completed by bob"
    shown = ok_json(db, "show", str(iid1))
    assert shown["status"] == "completed"
    assert shown["data"]["name"] == "Bob" and shown["data"]["amount"] == 3

    iid2, task2 = start_user_task(db)
    (tmp_path / "answer.json").write_text(json.dumps({"name": "張三", "amount": 7}, ensure_ascii=False),
                                          encoding="utf-8")
    assert ok(db, "complete", str(task2), "--as", "alice", "--data", "@answer.json").strip() == \
        f"task {task2} completed by alice"
    shown = ok_json(db, "show", str(iid2))
    assert shown["status"] == "completed" and shown["data"]["name"] == "張三"
    assert ok_json(db, "task", str(task2))["task"]["completed_by"] == "alice"


# ----------------------------------------------------------------------------- instances and history
def test_instances_and_show_describe_what_runs(db: str) -> None:
    iid_done, task = start_user_task(db)
    ok(db, "complete", str(task), "--as", "alice", "--data", '{"name": "x"}')
    iid_open, _ = start_user_task(db, "bob")

    out = ok(db, "instances")
    assert heading(out)[:3] == ["ID", "PROCESS", "V"]
    rows = {r[0]: r for r in table_rows(out)}
    assert "completed" in rows[str(iid_done)] and "running" in rows[str(iid_open)]
    listed = ok_json(db, "instances")
    assert [i["id"] for i in listed][:2] == [iid_open, iid_done]  # newest first
    assert [i["id"] for i in ok_json(db, "instances", "--status", "running")] == [iid_open]

    shown = ok(db, "show", str(iid_open))
    assert shown.splitlines()[0].split() == ["instance", str(iid_open), "user_task", "v1", "running"]
    assert "by bob" in shown and "tasks:" in shown and "Fill in the form" in shown
    detail = ok_json(db, "show", str(iid_open))
    assert detail["started_by"] == "bob" and detail["tasks"][0]["state"] == "open"


def test_history_table_shows_seq_type_and_actor(db: str) -> None:
    iid, task = start_user_task(db)
    ok(db, "complete", str(task), "--as", "alice", "--data", '{"name": "x"}')
    out = ok(db, "history", str(iid))
    assert heading(out) == ["SEQ", "TIME", "(Asia/Shanghai)", "ACTOR", "TYPE", "ELEMENT", "SUMMARY"]
    body = out.splitlines()[2:]
    assert body[0].split()[0] == "1" and "instance_started" in body[0] and "alice" in body[0]
    # The element column shows the element's name (its label in the diagram).
    assert any("task_completed" in ln and "alice" in ln and "Fill in the form" in ln for ln in body)
    assert "instance_completed" in body[-1]
    events = ok_json(db, "history", str(iid))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events][0] == "instance_started"


def test_message_complaint_starts_its_process_with_the_payload(db: str) -> None:
    out = ok(db, "message", "complaint", "--data", '{"who": "Mrs. Wang"}', "--as", "alice")
    assert out.startswith("message 'complaint' started instance(s) ")
    iid = int(out.strip().rsplit(" ", 1)[1])
    shown = ok_json(db, "show", str(iid))
    assert shown["key"] == "message_start" and shown["data"]["who"] == "Mrs. Wang"
    assert shown["started_by"] == "alice"
    assert any(t["name"] == "Handle the complaint" for t in ok_json(db, "tasks", "--as", "bob"))
    again = ok_json(db, "message", "complaint", "--data", '{"who": "Mr. Li"}', "--as", "bob")
    assert len(again["started"]) == 1 and again["started"][0] != iid


def test_cancel_with_a_reason_ends_the_instance_and_withdraws_its_task(db: str) -> None:
    iid, task = start_user_task(db)
    assert ok(db, "cancel", str(iid), "--reason", "duplicate request", "--as", "carol").strip() == \
        f"cancelled instance {iid}"
    shown = ok_json(db, "show", str(iid))
    assert shown["status"] == "cancelled" and shown["ended_at"]
    assert ok_json(db, "task", str(task))["task"]["state"] == "cancelled"
    assert task not in [t["id"] for t in ok_json(db, "tasks", "--as", "bob")]
    cancelled = [e for e in ok_json(db, "history", str(iid)) if e["type"] == "instance_cancelled"]
    assert cancelled and cancelled[0]["actor"] == "carol"
    assert cancelled[0]["payload"]["reason"] == "duplicate request"
    assert "reason: duplicate request" in ok(db, "history", str(iid))
    assert "--reason" in tigao(db, "cancel", str(iid)).output  # the reason is required (usage error)


# ----------------------------------------------------------------------------- clock
def test_simulated_clock_shows_sets_and_advances_but_never_goes_back(tmp_path: Path) -> None:
    db = str(tmp_path / "sim.db")
    out = ok(db, "init", "--simulated", "2012-03-01T09:00:00+08:00")
    assert "created database" in out and "simulated clock" in out

    shown = ok(db, "clock")
    assert shown.strip() == "2012-03-01 09:00:00 Asia/Shanghai (simulated clock)"
    assert ok_json(db, "clock") == {"now": "2012-03-01T01:00:00+00:00", "local": "2012-03-01T09:00:00+08:00",
                                    "zone": "Asia/Shanghai", "clock": "simulated"}

    admin = ("--as", "admin")
    assert ok(db, "clock", "set", "2012-03-02T09:00:00+08:00", *admin).strip() == \
        "clock set to 2012-03-02 09:00:00 Asia/Shanghai"
    assert ok_json(db, "clock")["now"] == "2012-03-02T01:00:00+00:00"
    assert ok(db, "clock", "advance", "P1D", *admin).startswith("clock advanced to 2012-03-03 09:00:00 ")
    assert ok_json(db, "clock")["now"] == "2012-03-03T01:00:00+00:00"
    assert ok_json(db, "clock", "advance", "PT4H30M", *admin)["local"] == "2012-03-03T13:30:00+08:00"

    # A refusal names both times in the display zone, as every other time shown is.
    line = refused(db, 3, "clock", "set", "2012-03-01T09:00:00+08:00", *admin)
    assert line == ("error: the clock cannot go back: it is 2012-03-03 13:30:00 Asia/Shanghai, asked for "
                    "2012-03-01 09:00:00 Asia/Shanghai")
    assert ok_json(db, "clock")["now"] == "2012-03-03T05:30:00+00:00"  # unchanged

    # Work done on a simulated database is stamped with the simulated time.
    ok(db, "directory", "load", str(ORG), *admin)
    ok(db, "deploy", str(BPMN / "user_task.bpmn"), *admin)
    started = ok_json(db, "start", "user_task", "--as", "alice")
    assert ok_json(db, "show", str(started["id"]))["started_at"] == "2012-03-03T05:30:00+00:00"


def test_real_clock_is_shown_and_cannot_be_set_or_advanced(db: str) -> None:
    assert "(system clock)" in ok(db, "clock")
    assert ok_json(db, "clock")["clock"] == "system"
    line = refused(db, 7, "clock", "set", "2030-01-01T00:00:00Z", "--as", "admin")
    assert "real clock" in line and "init --simulated" in line
    assert "real clock" in refused(db, 7, "clock", "advance", "P1D", "--as", "admin")


# ----------------------------------------------------------------------------- odds and ends
def test_help_and_version_work_without_a_database(tmp_path: Path) -> None:
    result = CliRunner(env=NO_ENV).invoke(main, ["--help"])
    assert result.exit_code == 0 and "deploy" in result.output and "complete" in result.output
    result = CliRunner(env=NO_ENV).invoke(main, ["--version"])
    assert result.exit_code == 0 and "version" in result.output
    assert not (tmp_path / "tigao.db").exists()


@pytest.mark.postgres
def test_init_on_postgresql_does_not_print_the_password(pg_url: str) -> None:
    u = make_url(pg_url)
    secret = u.password or "s3cret-pw-9c1"  # a trust-auth server ignores the password it is given
    url = u.set(password=secret).render_as_string(hide_password=False)
    result = tigao(url, "init")
    assert result.exit_code == 0, result.output
    assert "upgraded database" in result.output
    assert str(secret) not in result.output
