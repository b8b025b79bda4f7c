"""What a stored state restores: the same workflow the live process had, whichever process loads it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from conftest import BPMN, ORG
from engine.clock import Clock
from engine.definitions import build
from engine.scripting import TigaoScriptEngine
from engine.spiff import StateSerializer, TigaoWorkflow

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
    tigao(db, "directory", "load", str(ORG))
    tigao(db, "deploy", str(BPMN))
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

