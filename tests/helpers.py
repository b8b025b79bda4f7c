"""Test helpers: drive an instance through the engine and check its stored state round-trips."""

from __future__ import annotations

from typing import Any

from engine import Engine
from engine.spiff_state import comparable_state
from storage.models import Definition, Instance


def assert_roundtrip(engine: Engine, instance_id: int) -> None:
    """Reload the instance from the database, serialize it again, and assert nothing changed
    (SpiffWorkflow's save_restore check, applied to what the engine stored)."""
    with engine._tx() as s:
        inst = s.get(Instance, instance_id)
        assert inst is not None
        d = s.get(Definition, inst.definition_id)
        built = engine._built(d)
        wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
        again = engine.serializer.dumps(wf)
        assert comparable_state(again) == comparable_state(inst.state)


def open_tasks(engine: Engine, instance_id: int) -> list[Any]:
    return engine.tasks(scope="all", instance_id=instance_id)


def task_by_element(engine: Engine, instance_id: int, element_id: str) -> Any:
    tasks = [t for t in open_tasks(engine, instance_id) if t.element_id == element_id]
    assert tasks, f"no open task {element_id} in instance {instance_id}: " \
                  f"{[t.element_id for t in open_tasks(engine, instance_id)]}"
    return tasks[0]


def complete(engine: Engine, instance_id: int, element_id: str, data: dict[str, Any] | None = None,
             user: str | None = None) -> None:
    """Complete the first open task of `element_id` as its assignee (or a candidate), then check
    the stored state round-trips."""
    t = task_by_element(engine, instance_id, element_id)
    who = user or t.assignee or (t.candidate_users[0] if t.candidate_users else None) or _member(engine, t)
    engine.complete(t.id, who, data or {})
    assert_roundtrip(engine, instance_id)


def _member(engine: Engine, t: Any) -> str:
    d = engine.directory()
    for g in t.candidate_groups:
        members = d.group_members(g)
        if members:
            return members[0]
    raise AssertionError(f"task {t.id} has nobody to work on it")


def status(engine: Engine, instance_id: int) -> str:
    return engine.instance(instance_id)["status"]


def data(engine: Engine, instance_id: int) -> dict[str, Any]:
    return engine.instance(instance_id)["data"]
