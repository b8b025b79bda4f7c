"""Migration between versions and an administrator's modifications of running instances, on
SQLite and PostgreSQL, with a fresh engine (nothing cached) between steps, and `verify` and
`replay` holding after each kind of change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from cli import main
from engine import Engine
from engine.audit import Auditor, read_audit_file, verify_file
from engine.errors import Conflict, InputError, NotAllowed, NotFound
from migrate_support import holds, prepare
from storage.models import Event, HumanTask, Instance

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_mig" '
        'targetNamespace="http://bpmn.io/schema/bpmn">\n<bpmn:process id="mig" name="Migrated" isExecutable="true">\n')


def _user(eid: str, name: str) -> str:
    return f'<bpmn:userTask id="{eid}" name="{name}" camunda:candidateGroups="staff"/>\n'


def _diagram(*nodes: tuple[str, str]) -> str:
    """A straight line start -> nodes -> end; each node is (id, xml)."""
    ids = ["StartEvent_1", *(n[0] for n in nodes), "EndEvent_1"]
    body = '<bpmn:startEvent id="StartEvent_1"/>\n' + "".join(x for _, x in nodes) + '<bpmn:endEvent id="EndEvent_1"/>\n'
    flows = "".join(f'<bpmn:sequenceFlow id="Flow_{i}" sourceRef="{a}" targetRef="{b}"/>\n'
                    for i, (a, b) in enumerate(zip(ids, ids[1:])))
    return HEAD + body + flows + "</bpmn:process>\n</bpmn:definitions>\n"


V1 = _diagram(("Task_a", _user("Task_a", "A")), ("Task_b", _user("Task_b", "B")))
# Version 2: a script between the tasks, and Task_b renamed to Task_b2.
V2 = _diagram(("Task_a", _user("Task_a", "A")),
              ("Script_mark", '<bpmn:scriptTask id="Script_mark" scriptFormat="python">'
                              '<bpmn:script>checked = True</bpmn:script></bpmn:scriptTask>\n'),
              ("Task_b2", _user("Task_b2", "B two")))
# Version 3: Task_a is gone.
V3 = _diagram(("Task_b", _user("Task_b", "B")))

@pytest.fixture
def url(db_url: str, tmp_path: Path) -> str:
    folders = []
    for n, text in enumerate((V1, V2, V3), start=1):
        d = tmp_path / f"v{n}"
        d.mkdir()
        (d / "mig.bpmn").write_text(text, encoding="utf-8")
        folders.append([d])
    assert [r[0].version for r in prepare(db_url, tmp_path, folders)] == [1, 2, 3]
    return db_url


def fresh(url: str) -> Engine:
    """A new engine: nothing cached from the step before (as a restarted process would be)."""
    return Engine(url)


def start_v1(url: str) -> int:
    eng = fresh(url)
    with eng._tx() as s:  # start on version 1 although 3 is the latest
        from storage.models import Definition

        d = s.scalar(select(Definition).where(Definition.key == "mig", Definition.version == 1))
        run = eng._new_run(s, d, eng._built(d), {"n": 1}, None, "alice", {"via": "start"})
        run.finish("alice")
        iid = run.inst.id
    return iid


def open_tasks(url: str, iid: int) -> dict[str, int]:
    return {t.element_id: t.id for t in fresh(url).tasks(instance_id=iid, scope="all")}


def complete(url: str, iid: int, element: str, data: dict | None = None) -> None:
    fresh(url).complete(open_tasks(url, iid)[element], "alice", data or {})


def stored(url: str, iid: int) -> tuple[int, int, str]:
    eng = fresh(url)
    with eng._tx() as s:
        inst = s.get(Instance, iid)
        return inst.definition_id, inst.last_seq, inst.state


def test_migrate__waiting_task_kept__new_version_runs_on(url: str) -> None:
    iid = start_v1(url)
    before = open_tasks(url, iid)
    r = fresh(url).migrate(iid, 2, actor="root", reason="new review step")
    assert (r["from"], r["to"]) == (1, 2)
    holds(url, iid)
    assert open_tasks(url, iid) == before  # the same task, not a new one
    assert fresh(url).instance(iid)["version"] == 2
    complete(url, iid, "Task_a")
    holds(url, iid)
    assert set(open_tasks(url, iid)) == {"Task_b2"}
    assert fresh(url).instance(iid)["data"]["checked"] is True  # version 2's script ran
    complete(url, iid, "Task_b2")
    assert fresh(url).instance(iid)["status"] == "completed"
    holds(url, iid)
    events = [e.type for e in fresh(url).history(iid)]
    assert "instance_migrated" in events


def test_migrate__waiting_element_without_counterpart__refused_unchanged(url: str) -> None:
    iid = start_v1(url)
    complete(url, iid, "Task_a")
    before = stored(url, iid)
    with pytest.raises(Conflict, match="Task_b.*--map Task_b=NEW_ID"):
        fresh(url).migrate(iid, 2, actor="root", reason="try")
    assert stored(url, iid) == before
    with pytest.raises(Conflict, match="no element 'Nope'"):
        fresh(url).migrate(iid, 2, {"Task_b": "Nope"}, actor="root", reason="try")
    assert stored(url, iid) == before
    fresh(url).migrate(iid, 2, {"Task_b": "Task_b2"}, actor="root", reason="renamed")
    holds(url, iid)
    tasks = fresh(url).tasks(instance_id=iid, scope="all", state="open")
    assert [(t.element_id, t.name) for t in tasks] == [("Task_b2", "B two")]
    complete(url, iid, "Task_b2")
    assert fresh(url).instance(iid)["status"] == "completed"
    holds(url, iid)


def test_migrate__finished_element_removed__allowed(url: str) -> None:
    iid = start_v1(url)
    complete(url, iid, "Task_a", {"note": "done"})
    fresh(url).migrate(iid, 3, actor="root", reason="Task_a dropped")
    holds(url, iid)
    assert fresh(url).instance(iid)["data"]["note"] == "done"
    complete(url, iid, "Task_b")
    assert fresh(url).instance(iid)["status"] == "completed"
    holds(url, iid)
    # and one waiting at the removed element is refused
    other = start_v1(url)
    with pytest.raises(Conflict, match="Task_a"):
        fresh(url).migrate(other, 3, actor="root", reason="try")
    holds(url, other)


def test_migrate__refusals(url: str) -> None:
    iid = start_v1(url)
    before = stored(url, iid)
    with pytest.raises(NotAllowed, match="administrator"):
        fresh(url).migrate(iid, 2, actor="alice", reason="x")
    with pytest.raises(NotFound, match="no version 9"):
        fresh(url).migrate(iid, 9, actor="root", reason="x")
    with pytest.raises(InputError, match="already runs on version 1"):
        fresh(url).migrate(iid, 1, actor="root", reason="x")
    with pytest.raises(InputError, match="reason"):
        fresh(url).migrate(iid, 2, actor="root", reason=" ")
    with pytest.raises(InputError, match="OLD=NEW"):
        fresh(url).migrate(iid, 2, ["Task_a"], actor="root", reason="x")
    assert stored(url, iid) == before
    fresh(url).cancel(iid, "stop", actor="root")
    with pytest.raises(Conflict, match="cancelled, not running"):
        fresh(url).migrate(iid, 2, actor="root", reason="x")


def test_migrate_all__each_instance_its_own_transaction(url: str) -> None:
    at_a = [start_v1(url), start_v1(url)]
    at_b = start_v1(url)
    complete(url, at_b, "Task_a")
    before = stored(url, at_b)
    report = fresh(url).migrate_all("mig", 1, 2, actor="root", reason="bulk")
    assert report.moved == at_a
    assert list(report.refused) == [at_b] and "Task_b" in report.refused[at_b]
    assert stored(url, at_b) == before
    for iid in [*at_a, at_b]:
        holds(url, iid)
    with pytest.raises(NotAllowed):
        fresh(url).migrate_all("mig", 1, 2, actor="bob", reason="bulk")


def test_modify__start_before_cancel_set__replay_holds(url: str) -> None:
    iid = start_v1(url)
    fresh(url).start_before(iid, "Task_b", actor="root", reason="skip ahead in parallel")
    holds(url, iid)
    assert set(open_tasks(url, iid)) == {"Task_a", "Task_b"}
    fresh(url).set_variable(iid, "amount", {"value": 5, "tags": ["x"]}, actor="root", reason="correct amount")
    holds(url, iid)
    assert fresh(url).instance(iid)["data"]["amount"] == {"value": 5, "tags": ["x"]}
    assert fresh(url).task_data(open_tasks(url, iid)["Task_b"])["amount"]["value"] == 5
    fresh(url).cancel_activity(iid, "Task_a", actor="root", reason="not needed")
    holds(url, iid)
    assert set(open_tasks(url, iid)) == {"Task_b"}
    assert fresh(url).instance(iid)["status"] == "running"
    complete(url, iid, "Task_b")
    inst = fresh(url).instance(iid)
    assert inst["status"] == "completed" and inst["data"]["amount"]["value"] == 5
    holds(url, iid)
    types = [e.type for e in fresh(url).history(iid)]
    for t in ("started_before", "variable_set", "activity_cancelled"):
        assert t in types


def test_modify__one_engine_saves_what_it_changed(url: str) -> None:
    """A variable set on an instance the engine holds in memory, after a save: the change reaches
    finished tasks' data (the last completed task), which a save must not take from the dict it
    kept for them at the save before."""
    iid = start_v1(url)
    eng = fresh(url)
    eng.complete(open_tasks(url, iid)["Task_a"], "alice", {"note": "first"})
    eng.set_variable(iid, "note", "corrected", actor="root", reason="typo")
    assert fresh(url).instance(iid)["data"]["note"] == "corrected"
    eng.complete(open_tasks(url, iid)["Task_b"], "alice", {})
    assert fresh(url).instance(iid)["data"]["note"] == "corrected"
    assert eng.instance(iid)["data"] == fresh(url).instance(iid)["data"]
    holds(url, iid)


def test_modify__refusals_change_nothing(url: str) -> None:
    iid = start_v1(url)
    before = stored(url, iid)
    eng = fresh(url)
    with pytest.raises(NotAllowed, match="administrator"):
        eng.cancel_activity(iid, "Task_a", actor="alice", reason="x")
    with pytest.raises(InputError, match="nothing is in progress at 'Task_b'"):
        eng.cancel_activity(iid, "Task_b", actor="root", reason="x")
    with pytest.raises(InputError, match="no element 'Ghost'"):
        eng.start_before(iid, "Ghost", actor="root", reason="x")
    with pytest.raises(InputError, match="not a variable name"):
        eng.set_variable(iid, "_x", 1, actor="root", reason="x")
    with pytest.raises(InputError, match="reserved"):
        eng.set_variable(iid, "now", 1, actor="root", reason="x")
    with pytest.raises(InputError, match="reason"):
        eng.set_variable(iid, "a", 1, actor="root", reason="")
    with pytest.raises(NotFound):
        eng.set_variable(999, "a", 1, actor="root", reason="x")
    assert stored(url, iid) == before
    holds(url, iid)


def test_migrated_instance__audit_file_replays(url: str, tmp_path: Path) -> None:
    iid = start_v1(url)
    fresh(url).migrate(iid, 2, actor="root", reason="move")
    complete(url, iid, "Task_a")
    out = tmp_path / "audit.jsonl"
    out.write_text("\n".join(Auditor(fresh(url)).export([iid])) + "\n", encoding="utf-8")
    results = verify_file(read_audit_file(out), iid)
    assert len(results) == 1 and results[0].ok  # type: ignore[union-attr]
    with fresh(url)._tx() as s:
        defs = set(s.scalars(select(Event.definition_id).where(Event.instance_id == iid)))
    assert len(defs) == 2


# ----------------------------------------------------------------------------- the command line
def tigao(url: str, *args: str) -> Result:
    return CliRunner(env={"TIGAO_USER": None, "TIGAO_DB": None}).invoke(main, ["--db", url, *args])


def test_cli__migrate_and_modify(url: str) -> None:
    iid = start_v1(url)
    other = start_v1(url)
    r = tigao(url, "migrate", str(iid), "--to", "2", "--reason", "new step", "--as", "root")
    assert r.exit_code == 0, r.output
    assert "moved from version 1 to 2" in r.output
    r = tigao(url, "migrate", str(iid), "--to", "3", "--reason", "x", "--as", "root")
    assert r.exit_code == 8 and "Task_a" in r.stderr and "Traceback" not in r.output
    r = tigao(url, "migrate", str(other), "--to", "2", "--reason", "x", "--as", "alice")
    assert r.exit_code == 7, r.output
    r = tigao(url, "migrate", "--from", "mig", "--to", "2", "--reason", "x", "--as", "root")
    assert r.exit_code == 3 and "KEY:VERSION" in r.stderr
    r = tigao(url, "migrate", "--from", "mig:1", "--to", "2", "--reason", "bulk", "--as", "root", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"moved": [other], "refused": {}}
    r = tigao(url, "modify", str(iid), "--set", "amount=12", "--reason", "fix", "--as", "root")
    assert r.exit_code == 0, r.output
    r = tigao(url, "modify", str(iid), "--set", "amount={oops", "--reason", "fix", "--as", "root")
    assert r.exit_code == 3 and "not JSON" in r.stderr
    r = tigao(url, "modify", str(iid), "--start-before", "Task_b2", "--reason", "ahead", "--as", "root")
    assert r.exit_code == 0, r.output
    r = tigao(url, "modify", str(iid), "--cancel", "Task_a", "--reason", "skip", "--as", "root")
    assert r.exit_code == 0, r.output
    r = tigao(url, "modify", str(iid), "--cancel", "Task_a", "--start-before", "Task_a", "--reason", "x",
              "--as", "root")
    assert r.exit_code == 3 and "exactly one" in r.stderr
    r = tigao(url, "modify", str(iid), "--cancel", "Task_zz", "--reason", "x", "--as", "root")
    assert r.exit_code == 3 and "Task_zz" in r.stderr
    r = tigao(url, "modify", str(iid), "--cancel", "Task_b2", "--reason", "x", "--as", "bob")
    assert r.exit_code == 7
    assert tigao(url, "verify", str(iid)).exit_code == 0
    r = tigao(url, "replay", str(iid))
    assert r.exit_code == 0, r.output
    with fresh(url)._tx() as s:
        rows = list(s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "open")))
    assert [r.element_id for r in rows] == ["Task_b2"]
    assert fresh(url).instance(iid)["data"]["amount"] == 12
