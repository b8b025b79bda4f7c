"""One code path: live commands, the worker and replay apply every input through engine/apply.py.

The drivers of tests/test_bpmn_coverage.py run here again, unchanged; after each one, every
instance it left is replayed from its history and the replayed workflow must have the same
fingerprint (engine.spiff_state.fingerprint) as the live one. A layer check then shows that the live
commands and replay hold no SpiffWorkflow input handling of their own.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from SpiffWorkflow.util.task import TaskState

import test_bpmn_coverage as coverage
from engine import Engine
from engine.apply import NoTarget, apply_input, new_workflow
from engine.audit import Auditor
from engine.spiff_state import fingerprint
from storage.models import Definition, Instance

ROOT = Path(__file__).resolve().parent.parent
BPMN = Path(__file__).parent / "bpmn"

# The coverage suite's drivers, collected here as this module's own tests.
DRIVERS = sorted(name for name in vars(coverage) if name.startswith("test_"))
for _name in DRIVERS:
    globals()[_name] = getattr(coverage, _name)

REPLAYED: set[str] = set()  # process keys whose instances were replayed and matched


def _live_workflow(engine: Engine, iid: int) -> Any:
    """The workflow the live engine holds for an instance (its cached object when it has one, else
    the stored state)."""
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        assert inst is not None
        cached = engine._wf_cache.get(iid)
        if cached is not None and cached[0] == inst.version:
            return inst.process_key, cached[1]
        built = engine._built(s.get(Definition, inst.definition_id))
        return inst.process_key, engine.serializer.loads(inst.state, built.spec, built.subprocess_specs,
                                                         engine.script_engine)


@pytest.fixture(autouse=True)
def replayed_alike(request: pytest.FixtureRequest) -> Any:
    """After each driver: every instance replays to the fingerprint of the live one."""
    if request.function.__name__ not in DRIVERS:
        yield
        return
    engine = request.getfixturevalue("engine")
    yield
    with engine._tx(read=True) as s:
        ids = list(s.scalars(select(Instance.id).order_by(Instance.id)))
    for iid in ids:
        key, live = _live_workflow(engine, iid)
        result = Auditor(engine).replay(iid)
        assert result.divergence is None, result.divergence
        assert result.workflow is not None
        assert fingerprint(result.workflow) == fingerprint(live), f"instance {iid} ({key}) replays differently"
        REPLAYED.add(key)


def _process_ids(path: Path) -> list[str]:
    return re.findall(r'<bpmn:process\s[^>]*\bid="([^"]+)"', path.read_text(encoding="utf-8"))


def test_zz_every_diagram_the_coverage_suite_drives_replays_to_the_live_fingerprint(
        request: pytest.FixtureRequest) -> None:
    # Runs after the drivers above (pytest keeps a module's definition order).
    ran = {item.originalname for item in request.session.items if item.module is request.module}
    if not set(DRIVERS) <= ran:
        pytest.skip("the drivers of this module were not all selected; run the whole file")
    source = Path(coverage.__file__).read_text(encoding="utf-8")
    driven = {pid for f in BPMN.glob("*.bpmn") for pid in _process_ids(f) if f'"{pid}"' in source}
    assert len(driven) >= 15, driven
    assert driven <= REPLAYED, f"not replayed: {sorted(driven - REPLAYED)}"


# ---------------------------------------------------------------------------------------------
# The input with nothing to act on: a clear error, and nothing changed


def test_apply_input__message_nobody_waits_for__raises_no_target_and_changes_nothing(engine: Engine) -> None:
    with engine._tx(read=True) as s:
        d = s.scalar(select(Definition).where(Definition.key == "user_task"))
        built = engine._built(d)
    with engine._tx(read=True) as s:
        engine._dir(s)  # the directory scripts see
    wf = new_workflow(built, engine.script_engine)
    at = datetime(2012, 3, 1, 9, 0, tzinfo=UTC)
    apply_input(wf, "instance_started", {"data": {"n": 1}, "via": "start"}, at=at)
    before = fingerprint(wf)

    with pytest.raises(NoTarget, match="not waiting for message 'nobody'"):
        apply_input(wf, "message_received", {"name": "nobody", "data": {}}, at=at)
    with pytest.raises(NoTarget, match="not waiting for input at task"):
        apply_input(wf, "task_completed", {"spiff_id": "00000000-0000-0000-0000-000000000000", "data": {}}, at=at)
    with pytest.raises(ValueError, match="'task_claimed' is not an input"):
        apply_input(wf, "task_claimed", {}, at=at)
    assert fingerprint(wf) == before

    ready = [t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]
    assert [t.task_spec.bpmn_id for t in ready] == ["Task_fill"]
    apply_input(wf, "task_completed", {"spiff_id": str(ready[0].id), "data": {"name": "Ann"}}, at=at)
    assert wf.is_completed()


# ---------------------------------------------------------------------------------------------
# Layers: the SpiffWorkflow work of an input happens in engine/apply.py only

# Calls that act on a workflow for an input (the engine steps, a task run, an event sent, ...).
INPUT_CALLS = {"run", "do_engine_steps", "send_message", "send_event", "refresh_timers", "force_start_timers",
               "cancel", "apply_result", "apply_error", "TigaoWorkflow", "migrate", "cancel_activity",
               "start_before", "set_variable"}
# The live commands, the worker and replay: they call engine/apply.py and keep only their own part.
CALLERS = ["replay", "run", "instances", "tasks", "messaging", "signals", "deadlines", "handlers", "external",
           "modify"]


def _input_calls(module: str) -> list[str]:
    """`name (line)` of every call in engine/MODULE.py whose function is one of INPUT_CALLS, except
    the administrator's commands of the same names (`engine.migrate`, `modify.migrate`)."""
    path = ROOT / "engine" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name not in INPUT_CALLS:
            continue
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                and f.value.id in ("engine", "self", "modify"):
            continue  # a command of that name, not a workflow call
        found.append(f"{name} (line {node.lineno})")
    return found


@pytest.mark.parametrize("module", CALLERS)
def test_layers__live_commands_and_replay_apply_inputs_only_through_engine_apply(module: str) -> None:
    assert _input_calls(module) == [], f"engine/{module}.py acts on a workflow itself; call engine/apply.py"


def test_layers__engine_apply_holds_the_input_calls() -> None:
    # The check above finds these calls where they are: it is not blind.
    names = {c.split(" ")[0] for c in _input_calls("apply")}
    assert {"run", "do_engine_steps", "send_message", "send_event", "refresh_timers", "force_start_timers",
            "cancel", "apply_result", "apply_error", "TigaoWorkflow", "migrate"} <= names
