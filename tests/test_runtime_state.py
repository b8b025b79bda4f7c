"""What a stored state restores: the same workflow the live process had, whichever process loads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from click.testing import CliRunner
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from cli import main
from conftest import BPMN, ORG
from engine import Engine
from storage.models import Definition, HumanTask, Instance
from engine.clock import Clock
from engine.definitions import build
from engine.scripting import TigaoScriptEngine
from engine.spiff import TigaoWorkflow
from engine.state import StateSerializer

NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}


def tigao_json(db: str, *args: str) -> object:
    result = CliRunner(env=NO_ENV).invoke(main, ["--db", db, *args, "--json"])
    assert result.exit_code == 0, f"{args}: {result.output}"
    return json.loads(result.stdout)


def tigao(db: str, *args: str) -> None:
    result = CliRunner(env=NO_ENV).invoke(main, ["--db", db, *args])
    assert result.exit_code == 0, f"{args}: {result.output}"


def test_parallel_multi_instance__each_command_a_new_engine__signing_follows_the_reviews(tmp_path: Path) -> None:
    db = str(tmp_path / "mi.db")
    tigao(db, "init")
    tigao(db, "directory", "load", str(ORG), "--as", "admin")
    tigao(db, "deploy", str(BPMN), "--as", "dora")
    iid = tigao_json(db, "start", "multi_instance", "--as", "dora")["id"]  # type: ignore[index]
    for who in ["alice", "bob", "carol"]:
        [task] = tigao_json(db, "tasks", "--as", who, "--mine")  # type: ignore[misc]
        tigao(db, "complete", str(task["id"]), "--as", who, "--data", '{"approve": true}')
    signers = []
    for _ in range(3):
        [task] = tigao_json(db, "tasks", "--all")  # type: ignore[misc]
        assert task["element_id"] == "Task_sign"
        signers.append(task["assignee"])
        tigao(db, "complete", str(task["id"]), "--as", task["assignee"], "--data", '{"ok": true}')
    assert signers == ["alice", "bob", "carol"]
    shown = tigao_json(db, "show", str(iid))
    assert shown["status"] == "completed"  # type: ignore[index]
    assert shown["data"]["reviewers"] == ["alice", "bob", "carol"]  # type: ignore[index]


def test_task_data__true_replacing_1__restores_as_true() -> None:
    files = {"user_task.bpmn": (BPMN / "user_task.bpmn").read_text(encoding="utf-8"),
             "forms/simple.json": (BPMN / "forms" / "simple.json").read_text(encoding="utf-8")}
    built = build(1, "user_task", files)
    wf = TigaoWorkflow(built.spec, built.subprocess_specs, script_engine=TigaoScriptEngine(Clock()))
    wf.task_tree.data.update({"flag": 1, "nested": {"x": 1}, "same": [1, 2]})
    child = wf.task_tree.children[0]
    child.data.update({"flag": True, "nested": {"x": 1.0}, "same": [1, 2]})
    ser = StateSerializer()
    again = ser.loads(ser.dumps(wf), built.spec, built.subprocess_specs, None)
    restored = again.task_tree.children[0].data
    assert restored == {"flag": True, "nested": {"x": 1.0}, "same": [1, 2]}
    assert type(restored["flag"]) is bool and type(restored["nested"]["x"]) is float


class _CountingLoads:
    """Counts full restores of a stored state by an engine's serializer."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        inner = engine.serializer.loads

        def loads(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return inner(*args, **kwargs)

        engine.serializer.loads = loads  # type: ignore[method-assign]


def test_claim_unclaim_delegate__keep_the_cached_workflow(engine: Engine) -> None:
    iid = engine.start("user_task", actor="alice")
    [t] = engine.tasks(scope="all", instance_id=iid)
    version = _version(engine, iid)
    loads = _CountingLoads(engine)
    engine.claim(t.id, "bob")
    engine.unclaim(t.id, "bob")
    engine.delegate(t.id, "bob", "carol")
    assert _version(engine, iid) == version, "history-only commands leave the state's version alone"
    assert [e.type for e in engine.history(iid)][-3:] == ["task_claimed", "task_unclaimed", "task_delegated"]
    engine.complete(t.id, "carol", {"name": "Ann", "amount": 1})
    assert loads.count == 0, "the workflow saved by this engine was reused"
    assert _version(engine, iid) == version + 1
    assert engine.instance(iid)["status"] == "completed"


def test_task_data__read_from_the_stored_branch__equals_the_restored_task(engine: Engine) -> None:
    iid = engine.start("multi_instance", actor="dora")
    first = engine.tasks("carol", scope="mine", instance_id=iid)[0]
    engine.complete(first.id, "carol", {"approve": False})
    wf, state = _stored_workflow(engine, iid)
    open_ = engine.tasks(scope="all", instance_id=iid)
    assert len(open_) == 2
    for t in open_:
        row_sid = _spiff_id(engine, t.id)
        expected = wf.get_task_from_id(UUID(row_sid)).data
        assert engine.serializer.task_data(state, row_sid) == expected
        fresh = Engine(engine.url)
        assert fresh.task_data(t.id) == expected == engine.task_data(t.id)
        assert expected["reviewer"] == t.assignee
        fresh.close()


def test_multi_instance__a_child_keeps_short_digests_until_it_is_merged(engine: Engine) -> None:
    """A multi-instance child remembers digests of the data it started from (so a stale copy of a
    variable never overwrites a sibling's write); they are needed once, at its merge, and were
    most of a child's stored size: DIGEST_CHARS characters each, dropped once merged."""
    from engine.spiff import DIGEST_CHARS

    iid = engine.start("multi_instance", actor="dora")
    first = engine.tasks("carol", scope="mine", instance_id=iid)[0]
    engine.complete(first.id, "carol", {"approve": False})
    wf, _state = _stored_workflow(engine, iid)
    children = [t for t in wf.get_tasks() if t.task_spec.name.endswith("[child]")]
    done = [t for t in children if t.has_state(TaskState.COMPLETED)]
    waiting = [t for t in children if not t.has_state(TaskState.FINISHED_MASK)]
    assert len(done) == 1 and len(waiting) == 2
    assert "seen" not in done[0].internal_data
    for t in waiting:
        assert t.internal_data["seen"], "a child that is not merged yet keeps its digests"
        assert {len(d) for d in t.internal_data["seen"].values()} == {DIGEST_CHARS}


def test_multi_instance__digests_of_either_length_tell_what_a_child_wrote() -> None:
    """A state saved by the previous release holds full 40-character digests; they still tell a
    child's own writes from its stale copies."""
    from engine.spiff import DIGEST_CHARS, _digest, written

    started = {"a": 1, "b": [1, 2], "reviewer": "alice"}
    data = {"a": 1, "b": [1, 2, 3], "reviewer": "alice", "approve": True}
    for size in (DIGEST_CHARS, 40):
        seen = {k: _digest(v)[:size] for k, v in started.items()}
        assert written(data, seen, {"reviewer"}) == {"b": [1, 2, 3], "approve": True}
    assert written(data, {}, set()) == data


def _stored_workflow(engine: Engine, iid: int) -> tuple[Any, str]:
    """The instance's stored state, restored (not the engine's cached workflow), and its text."""
    with engine._tx() as s:
        inst = s.get(Instance, iid)
        assert inst is not None
        built = engine._built(s.get(Definition, inst.definition_id))
        wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
        return wf, inst.state


def _version(engine: Engine, iid: int) -> int:
    with engine._tx() as s:
        return s.scalar(select(Instance.version).where(Instance.id == iid))


def _spiff_id(engine: Engine, task_id: int) -> str:
    with engine._tx() as s:
        return s.scalar(select(HumanTask.spiff_id).where(HumanTask.id == task_id))
