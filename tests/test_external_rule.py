"""A business rule task with camunda:type="external" runs as an external task (Camunda's pattern
for a rules engine outside the process engine): through the engine, and with the unchanged PyPI
client camunda-external-task-client-python3 against a real `tigao serve`; SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine
from engine.audit import Auditor
from helpers import assert_roundtrip
from web_support import Server, password, prepare

RULE = Path(__file__).parent / "bpmn" / "camunda" / "external_rule.bpmn"


def test_external_business_rule__waits_for_a_worker__and_replays(engine: Engine) -> None:
    engine.deploy([RULE])
    iid = engine.start("external_rule", {"age": 30}, actor="alice")
    assert_roundtrip(engine, iid)
    [row] = engine.external_tasks(instance_id=iid)
    assert (row["topic"], row["element_id"], row["priority"]) == ("score", "Task_score", 5)
    assert engine.stuck_instances() == [] and engine.instance(iid)["tasks"] == []
    [task] = engine.fetch_and_lock("rules-1", [{"topic": "score", "lock_duration": 10_000}])
    assert task["variables"] == {"age": 30}
    engine.complete_external(task["id"], "rules-1", {"score": 20})
    assert engine.instance(iid)["status"] == "completed"  # a low score: rejected
    _n, failures = Auditor(engine).verify([iid], replay=True)
    assert failures == []


def test_business_rule__decision_and_implementation__refused(engine: Engine, tmp_path: Path) -> None:
    body = ('    <bpmn:startEvent id="StartEvent_1" />\n'
            '    <bpmn:businessRuleTask id="Task_both" camunda:decisionRef="d" camunda:type="external" '
            'camunda:topic="t" />\n    <bpmn:endEvent id="EndEvent_1" />\n'
            + chain("StartEvent_1", "Task_both", "EndEvent_1"))
    with pytest.raises(DefinitionError, match="both a decision") as err:
        engine.deploy([write(tmp_path, "both.bpmn", bpmn("both_rule", body))])
    assert any(p.element == "Task_both" for p in err.value.problems)
    no_topic = body.replace('camunda:decisionRef="d" ', "").replace(' camunda:topic="t"', "")
    with pytest.raises(DefinitionError, match="needs a camunda:topic"):
        engine.deploy([write(tmp_path, "no_topic.bpmn", bpmn("no_topic_rule", no_topic))])


@pytest.mark.slow
def test_external_business_rule__camunda_python_client(db_url: str, tmp_path: Path) -> None:
    from camunda.external_task.external_task_worker import ExternalTaskWorker

    prepare(db_url, tmp_path)
    e = Engine(db_url)
    e.deploy([RULE], actor="ada")
    ids = [e.start("external_rule", {"age": age}, business_key=f"app-{age}", actor="alice") for age in (25, 70)]
    srv = Server(db_url, "--no-worker")
    try:
        config = {"auth_basic": {"username": "bob", "password": password("bob")}, "maxTasks": 1,
                  "lockDuration": 10000, "asyncResponseTimeout": 1000, "sleepSeconds": 0}
        worker = ExternalTaskWorker(worker_id="rules-py", base_url=f"{srv.base}/engine-rest", config=config)
        seen: list[Any] = []

        def score(task: Any) -> Any:
            seen.append(task.get_business_key())
            return task.complete({"score": 100 - task.get_variable("age")})

        for _ in range(2):
            worker.fetch_and_execute("score", score)
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err
    assert sorted(seen) == ["app-25", "app-70"]
    young, old = (e.instance(i) for i in ids)
    assert young["data"]["score"] == 75 and [t.element_id for t in young["tasks"]] == ["Task_approve"]
    assert old["status"] == "completed" and old["data"]["score"] == 30
    _n, failures = Auditor(e).verify(ids, replay=True)
    assert failures == []
    e.close()
