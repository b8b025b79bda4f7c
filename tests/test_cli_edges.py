"""Rough edges a new user hit on the command line (issue 8): a closed pipe, a bad time zone, the
tie between an escalation and a boundary timer, one time convention, what `tigao task` tells,
tables that fit, help for every option, and commands that refuse to act anonymously.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from conftest import BPMN, ORG

from cli import TABLE_WIDTH, main, shorten

ROOT = Path(__file__).resolve().parent.parent
NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None, "TIGAO_TZ": None}
ADMIN = ("--as", "admin")  # only before the first directory load: nobody is on file yet
ACTOR = ("--as", "dora")  # afterwards every actor is a user of the directory


def tigao(db: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner(env={**NO_ENV, **(env or {})}).invoke(main, ["--db", db, *args])


def ok(db: str, *args: str) -> str:
    result = tigao(db, *args)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}: {result.output}"
    return result.stdout


def ok_json(db: str, *args: str) -> Any:
    return json.loads(ok(db, *args, "--json"))


def refused(db: str, code: int, *args: str, env: dict[str, str | None] | None = None) -> str:
    result = tigao(db, *args, env=env)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}, expected {code}: {result.output}"
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def sim(tmp_path: Path) -> str:
    """A simulated database with the test diagrams deployed."""
    db = str(tmp_path / "sim.db")
    ok(db, "init", "--simulated", "2012-03-01T09:00:00+08:00")
    ok(db, "directory", "load", str(ORG), *ADMIN)
    ok(db, "deploy", str(BPMN), *ACTOR)
    return db


def late_timers_instance(db: str) -> int:
    """The tour: a task due in 3 days with a 5-day boundary timer, left undone for 6 days."""
    iid = ok_json(db, "start", "timers", "--as", "alice")["id"]
    ok(db, "clock", "advance", "P4D", *ACTOR)
    ok(db, "worker", "--once")
    ok(db, "clock", "advance", "P2D", *ACTOR)
    ok(db, "worker", "--once")
    return iid


# ----------------------------------------------------------------------------- a closed pipe
@pytest.mark.parametrize("command", [["history", "1"], ["instances"], ["notifications", "--as", "carol"]])
def test_reader_closing_the_pipe__exits_quietly(sim: str, command: list[str]) -> None:
    late_timers_instance(sim)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--db", sim, *command], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert err == ""


# ----------------------------------------------------------------------------- time
def test_unknown_time_zone__is_bad_input(sim: str) -> None:
    line = refused(sim, 3, "clock", env={"TIGAO_TZ": "Mars/Base"})
    assert "Mars/Base" in line and "TIGAO_TZ" in line
    assert "Asia/Shanghai" in ok(sim, "clock")


def test_another_time_zone__is_named_wherever_times_are_shown(sim: str) -> None:
    result = tigao(sim, "clock", env={"TIGAO_TZ": "Europe/Paris"})
    assert result.stdout.strip() == "2012-03-01 02:00:00 Europe/Paris (simulated clock)"


def test_history_summaries__use_the_display_zone_of_the_time_column(sim: str) -> None:
    iid = late_timers_instance(sim)
    out = ok(sim, "history", str(iid), "--wide")
    assert out.splitlines()[0].split()[1:3] == ["TIME", "(Asia/Shanghai)"]
    # Due 3 days after 09:00 local time, the boundary timer 5 days after: local times, as TIME is.
    assert "due 2012-03-04 09:00" in out and "timer due 2012-03-06 09:00" in out
    assert "01:00" not in out


# ----------------------------------------------------------------------------- the tie
def test_escalation_and_boundary_timer_due_at_the_same_instant__both_recorded_escalation_first(
        sim: str) -> None:
    from sqlalchemy import create_engine, text

    iid = late_timers_instance(sim)
    with create_engine(f"sqlite:///{sim}").connect() as con:
        due = dict(con.execute(text("SELECT kind, due_at FROM timers WHERE instance_id = :i AND kind IN "
                                    "('escalate', 'timer') AND state = 'fired'"), {"i": iid}).all())
    assert due["escalate"] == due["timer"]  # the tie the tour runs into
    events = ok_json(sim, "history", str(iid))
    types = [e["type"] for e in events]
    assert types.index("task_escalated") < types.index("timer_fired") < types.index("task_cancelled")
    escalated = next(e for e in events if e["type"] == "task_escalated")
    assert escalated["payload"]["level"] == 1 and escalated["payload"]["to_user"] == "carol"
    # The same inputs give the same history, in the same order.
    again = str(Path(sim).with_name("again.db"))
    ok(again, "init", "--simulated", "2012-03-01T09:00:00+08:00")
    ok(again, "directory", "load", str(ORG), *ADMIN)
    ok(again, "deploy", str(BPMN), *ACTOR)
    iid2 = late_timers_instance(again)
    assert [(e["type"], e["at"]) for e in ok_json(again, "history", str(iid2))] == \
        [(e["type"], e["at"]) for e in events]


def test_overdue_summary__lists_everybody_and_says_when_there_is_no_leader(sim: str) -> None:
    iid = late_timers_instance(sim)
    out = ok(sim, "history", str(iid), "--wide")
    overdue = next(ln for ln in out.splitlines() if "task_overdue" in ln)
    assert "responsible alice, bob, carol, dora; leader carol" in overdue  # four people, all named
    assert "None" not in out

    from engine.audit import summarize

    class E:
        type, task_id, payload = "task_overdue", 7, {"responsible": ["u1"], "leader": None}

    assert summarize(E()) == "task 7 overdue; responsible u1; no leader to tell"


# ----------------------------------------------------------------------------- the worker
def test_worker__logs_simulated_time_only(sim: str) -> None:
    ok_json(sim, "start", "timers", "--as", "alice")
    ok(sim, "clock", "advance", "P4D", *ACTOR)
    result = tigao(sim, "worker", "--once")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert lines[0].endswith("simulated clock at 2012-03-05 09:00:00 Asia/Shanghai; times below are in "
                             "Asia/Shanghai")
    fired = [ln for ln in lines if ln.startswith("worker: fired")]
    assert fired and all("now 2012-03-05 09:00:00" in ln for ln in fired)
    assert not any(ln[:4].isdigit() and ln[:4] != "2012" for ln in lines)  # no wall-clock stamp


# ----------------------------------------------------------------------------- tigao task
@pytest.fixture
def campaign(tmp_path: Path) -> str:
    db = str(tmp_path / "campaign.db")
    ok(db, "init", "--simulated", "2012-03-01T09:00:00+08:00")
    ok(db, "directory", "load", str(ROOT / "processes" / "org.toml"), *ADMIN)
    ok(db, "deploy", str(ROOT / "processes"), str(ROOT / "forms"), "--as", "u05")
    return db


COMPLAINT = {"complainant": "王先生", "contact": "0591-1234567", "source": "hotline", "category": 3,
             "description": "辦證拖了三週"}


@pytest.mark.slow
def test_task__shows_descriptions_titled_choices_and_the_values_a_message_delivered(campaign: str) -> None:
    ok(campaign, "message", "complaint_received", "--data", json.dumps(COMPLAINT, ensure_ascii=False),
       "--as", "u05")
    [task] = ok_json(campaign, "tasks", "--as", "u05")
    out = ok(campaign, "task", str(task["id"]), "--wide")
    assert "form complaint_register: 受理登記投訴" in out
    assert "1=服務態度差, 2=大局觀念薄, 3=行政慢作為, 4=行政不作為, 5=行政亂作為, 6=利益個人化" in out
    assert "hotline, office, letter" in out.replace('"', "")
    assert "category: Which of the six problems of the plan" in out
    assert "already on the task, kept unless you send another value: complainant, contact, source, " \
           "category, description" in out
    assert "other fields: refused: the form accepts only the fields above" in out
    shown = ok_json(campaign, "task", str(task["id"]))
    assert shown["defaults"] == COMPLAINT
    category = next(f for f in shown["fields"] if f["name"] == "category")
    assert category["choices"][0] == {"value": 1, "title": "服務態度差"} and category["has_value"]

    # Completing sends only what is not known yet; the delivered values count toward `required`.
    rest = {"severity": "minor", "repeated": False, "department": "", "person": ""}
    ok(campaign, "complete", str(task["id"]), "--as", "u05", "--data", json.dumps(rest))
    data = ok_json(campaign, "show", str(task["instance_id"]))["data"]
    assert data["category"] == 3 and data["severity"] == "minor"


def test_task__says_undeclared_fields_are_accepted_when_the_form_allows_them(sim: str) -> None:
    task = ok_json(sim, "start", "user_task", "--as", "alice", "--data", '{"name": "Ann"}')["tasks"][0]
    out = ok(sim, "task", str(task["id"]))
    assert "other fields: accepted and kept as process variables" in out
    assert "already on the task, kept unless you send another value: name" in out
    ok(sim, "complete", str(task["id"]), "--as", "alice", "--data", '{"amount": 2}')  # name is known


# ----------------------------------------------------------------------------- tables
def test_shorten__cuts_at_a_word_or_field_never_inside_a_value() -> None:
    assert shorten("task 2 'Answer the request' for @staff, due 2012-03-04 09:00", 52) == \
        "task 2 'Answer the request' for @staff, due\u2026"
    assert shorten("alice,bob,carol,dora", 12) == "alice,bob\u2026"
    assert shorten("short", 10) == "short"
    assert shorten("x" * 30, 10) == "x" * 9 + "\u2026"  # one value wider than the column


def test_tables__fit_100_columns_unless_wide(sim: str) -> None:
    iid = late_timers_instance(sim)
    for args in (["history", str(iid)], ["instances"], ["tasks", "--all", "--state", "any"],
                 ["notifications", "--as", "carol"], ["definitions"]):
        narrow = ok(sim, *args)
        assert max(len(ln) for ln in narrow.splitlines()) <= TABLE_WIDTH, args
        wide = ok(sim, *args, "--wide")
        assert "\u2026" not in wide, args
    wide = ok(sim, "--wide", "notifications", "--as", "carol")  # also before the command
    assert max(len(ln) for ln in wide.splitlines()) > TABLE_WIDTH
    assert "responsible: alice, bob, carol, dora" in wide


# ----------------------------------------------------------------------------- help and --as
def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, cmd in group.commands.items():
        found.append(((*prefix, name), cmd))
        if isinstance(cmd, click.Group):
            found += _commands(cmd, (*prefix, name))
    return found


def test_every_option_of_every_command_has_help() -> None:
    missing = [f"{' '.join(path)} {p.opts[0]}" for path, cmd in _commands(main) for p in cmd.params
               if isinstance(p, click.Option) and not p.help]
    assert missing == []


ACTING = [["start", "user_task"], ["cancel", "1", "--reason", "x"], ["message", "complaint"],
          ["deploy", str(BPMN / "user_task.bpmn")], ["directory", "load", str(ORG)], ["clock", "set", "2013-01-01"],
          ["clock", "advance", "P1D"], ["audit", "seal"], ["claim", "1"], ["unclaim", "1"],
          ["delegate", "1", "bob"], ["complete", "1", "--data", "{}"]]


@pytest.mark.parametrize("args", ACTING, ids=[" ".join(a[:2]) for a in ACTING])
def test_acting_command_without_as__is_refused_and_changes_nothing(sim: str, args: list[str]) -> None:
    before = ok_json(sim, "instances"), ok_json(sim, "clock"), ok_json(sim, "definitions")
    line = refused(sim, 3, *args)
    assert "--as USER" in line and "TIGAO_USER" in line
    assert (ok_json(sim, "instances"), ok_json(sim, "clock"), ok_json(sim, "definitions")) == before


def test_acting_command__takes_the_user_from_tigao_user(sim: str) -> None:
    result = tigao(sim, "start", "user_task", "--json", env={"TIGAO_USER": "bob"})
    assert result.exit_code == 0, result.output
    iid = json.loads(result.stdout)["id"]
    assert ok_json(sim, "show", str(iid))["started_by"] == "bob"


def test_unknown_acting_user__is_refused(sim: str) -> None:
    assert "unknown user 'mallory'" in refused(sim, 7, "clock", "advance", "P1D", "--as", "mallory")
    assert "unknown user 'mallory'" in refused(sim, 7, "start", "user_task", "--as", "mallory")
    assert "auditor" in refused(sim, 7, "clock", "advance", "P1D", "--as", "erin")
    assert "auditor" in refused(sim, 7, "directory", "load", str(ORG), "--as", "erin")


# ----------------------------------------------------------------------------- deploying a changed diagram
def test_deploying_a_changed_diagram_alone__takes_its_unchanged_forms_from_the_deployed_version(
        sim: str, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    changed = (BPMN / "user_task.bpmn").read_text(encoding="utf-8").replace('name="Fill in the form"',
                                                                             'name="Fill in the new form"')
    assert "Fill in the new form" in changed
    (alone / "user_task.bpmn").write_text(changed, encoding="utf-8")
    assert "ok  user_task" in ok(sim, "validate", str(alone / "user_task.bpmn"))
    out = ok(sim, "deploy", str(alone / "user_task.bpmn"), *ACTOR)
    assert out.splitlines()[2].split() == ["user_task", "2", out.splitlines()[2].split()[2], "deployed"]
    v2 = next(d for d in ok_json(sim, "definitions") if d["key"] == "user_task" and d["version"] == 2)
    assert "forms/simple.json" in v2["files"]
    task = ok_json(sim, "start", "user_task", "--as", "alice")["tasks"][0]
    assert task["name"] == "Fill in the new form" and task["form_key"] == "simple"
    form = json.loads((BPMN / "forms" / "simple.json").read_text(encoding="utf-8"))
    assert ok_json(sim, "task", str(task["id"]))["form"] == form

    # A diagram never deployed still needs its forms.
    (alone / "fresh.bpmn").write_text(changed.replace('id="user_task"', 'id="fresh_process"'), encoding="utf-8")
    line = refused(sim, 4, "deploy", str(alone / "fresh.bpmn"), *ACTOR)
    assert "simple" in line or "form" in line


def test_the_tie__same_order_on_sqlite_and_postgresql(db_url: str) -> None:
    from datetime import datetime, timezone

    from conftest import set_simulated

    set_simulated(db_url, datetime(2012, 3, 1, 1, tzinfo=timezone.utc))
    ok(db_url, "directory", "load", str(ORG), *ADMIN)
    ok(db_url, "deploy", str(BPMN / "timers.bpmn"), *ACTOR)
    iid = late_timers_instance(db_url)
    types = [e["type"] for e in ok_json(db_url, "history", str(iid))]
    assert types[2:6] == ["task_overdue", "task_escalated", "timer_fired", "task_cancelled"]


def test_tables__name_the_zone_once_when_each_time_heading_would_not_fit() -> None:
    from cli import table

    @click.command()
    def show() -> None:
        from datetime import datetime, timezone

        at = datetime(2012, 3, 1, 1, tzinfo=timezone.utc)
        table([{"a": "x" * 30, "b": "y" * 30, "started": at, "ended": at}],
              [("a", "A"), ("b", "B"), ("started", "STARTED"), ("ended", "ENDED")])

    out = CliRunner().invoke(show, []).stdout
    assert out.splitlines()[0].split() == ["A", "B", "STARTED", "(Asia/Shanghai)", "ENDED"]
    assert max(len(ln) for ln in out.splitlines()) <= TABLE_WIDTH
