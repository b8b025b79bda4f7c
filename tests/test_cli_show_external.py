"""`tigao show ID` lists the instance's external tasks (topic, lock holder, retries, error) and its
handler steps beside its user tasks; real SQLite files and the local PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ORG, set_simulated
from engine import Engine
from test_cli import ok, table_rows, tigao

EXTERNAL = Path(__file__).parent / "bpmn" / "external"


def _external_rows(out: str) -> list[list[str]]:
    return table_rows(out[out.index("external tasks:"):])


def test_show__external_task_topic_lock_retries_error(db_url: str) -> None:
    set_simulated(db_url)
    e = Engine(db_url)
    e.load_directory(ORG)
    e.deploy([EXTERNAL / "external_charge.bpmn"])
    iid = e.start("external_charge", {"amount": 3}, actor="alice")
    plain = ok(db_url, "show", str(iid))
    assert "external tasks:" in plain
    [[tid, element, topic, state]] = _external_rows(plain)
    assert (element, topic, state) == ("Task_charge", "charge", "open")

    [task] = e.fetch_and_lock("w1", [{"topic": "charge", "lock_duration": 60_000}])
    locked = _external_rows(ok(db_url, "show", str(iid)))
    assert locked[0][:5] == [tid, "Task_charge", "charge", "open", "w1"]
    e.external_failure(task["id"], "w1", "gateway down", retries=2)
    failed = _external_rows(ok(db_url, "show", str(iid)))
    assert failed == [[tid, "Task_charge", "charge", "open", "2", "gateway down"]]

    shown = json.loads(ok(db_url, "show", str(iid), "--json"))
    [row] = shown["external_tasks"]
    assert row["topic"] == "charge" and row["retries"] == 2 and row["error_message"] == "gateway down"
    assert row["worker_id"] is None and shown["tasks"] == []

    e.fetch_and_lock("w2", [{"topic": "charge", "lock_duration": 60_000}])
    e.complete_external(task["id"], "w2", {"paid": True})
    done = ok(db_url, "show", str(iid))
    assert "Ship the order" in done  # the user task after it, beside the external task now completed
    assert _external_rows(done)[0][:4] == [tid, "Task_charge", "charge", "completed"]
    e.close()


def test_show__no_external_tasks__no_section__and_unknown_instance_refused(db_url: str) -> None:
    set_simulated(db_url)
    e = Engine(db_url)
    e.load_directory(ORG)
    e.deploy([Path(__file__).parent / "bpmn" / "user_task.bpmn"])
    iid = e.start("user_task", {}, actor="alice")
    e.close()
    assert "external tasks:" not in ok(db_url, "show", str(iid))
    r = tigao(db_url, "show", "999")
    assert r.exit_code == 6 and "no instance 999" in r.stderr and "Traceback" not in r.output
