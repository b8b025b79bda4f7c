"""A message thrown that nobody in the instance catches leaves no trace in the stored state: it used
to pile up in SpiffWorkflow's pending events (`bpmn_events`) with every throw. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from engine import Engine
from engine.audit import Auditor
from helpers import assert_roundtrip
from storage.models import Instance

LOOP = Path(__file__).parent / "bpmn" / "camunda" / "message_throw_loop.bpmn"


def _pending_events(engine: Engine, iid: int) -> int:
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        assert inst is not None
        return len(json.loads(inst.state).get("bpmn_events", []))


def test_uncaught_message_throw__does_not_pile_up_in_the_state(engine: Engine) -> None:
    engine.deploy([LOOP])
    iid = engine.start("message_throw_loop", {}, actor="alice")
    for round_ in range(6):
        [task] = [t for t in engine.instance(iid)["tasks"] if t.state == "open"]
        engine.complete(task.id, "alice", {"more": round_ < 5})
        assert _pending_events(engine, iid) == 0, f"after throw {round_ + 1}"
        assert_roundtrip(engine, iid)
    assert engine.instance(iid)["status"] == "completed"
    _n, failures = Auditor(engine).verify([iid], replay=True)
    assert failures == []
