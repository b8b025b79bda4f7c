"""The administrator's commands on running instances: migrate to another version, cancel an
activity, start before an element, set a variable.

Each is one transaction through `Engine._run_on` (lock, apply, project, save) and one history
event, an input that live and replay apply with the same function (engine/apply.py).
Every refusal raises before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select

from storage.models import Definition, HumanTask, Instance

from . import migration
from .errors import Conflict, EngineError, InputError, NotAllowed, NotFound
from .values import check_data

if TYPE_CHECKING:
    from .core import Engine
    from .run import Run

ADMIN_ROLE = "admin"
MAX_REASON = 2000


@dataclass
class BulkReport:
    """What a migration of every running instance of one version did."""

    moved: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"moved": self.moved, "refused": {str(k): v for k, v in self.refused.items()}}


def _reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise InputError("give a reason (--reason TEXT); it goes into the history")
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason is {len(reason):,} characters; keep it under {MAX_REASON:,}")
    return reason.strip()


def _admin_running(run: Run, actor: str | None) -> None:
    d = run.engine._dir(run.s)
    if not actor or not d.has_role(actor, ADMIN_ROLE):
        raise NotAllowed(f"only an administrator (directory role '{ADMIN_ROLE}') may change a running instance; "
                         f"'{actor}' is not one")
    if run.inst.status != "running":
        raise Conflict(f"instance {run.inst.id} is {run.inst.status}, not running; only a running instance "
                       "can be changed")


def parse_mapping(pairs: list[str] | tuple[str, ...] | dict[str, str] | None) -> dict[str, str]:
    """`OLD=NEW` element id pairs (or a dict of them) as a dict, checked."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, dict) else [_pair(p) for p in pairs]
    out: dict[str, str] = {}
    for old, new in items:
        if not isinstance(old, str) or not isinstance(new, str) or not old.strip() or not new.strip():
            raise InputError("a mapping is OLD=NEW with two element ids, e.g. --map Task_review=Task_check")
        if old in out and out[old] != new:
            raise InputError(f"element '{old}' is mapped twice ({out[old]} and {new}); map it once")
        out[old.strip()] = new.strip()
    return out


def _pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep:
        raise InputError(f"--map '{text}' is not OLD=NEW; give the old and the new element id, e.g. A=B")
    return old, new


def _apply_migration(run: Run, new_def: Definition, built: Any, payload: dict[str, Any]) -> dict[str, int]:
    moved = run.apply("instance_migrated", payload, built_for=lambda _id: built).moved or {}
    run.inst.definition_id = new_def.id
    run.built = built
    # Open task rows follow their task to its (possibly renamed) element.
    for row in run.s.scalars(select(HumanTask).where(HumanTask.instance_id == run.inst.id,
                                                     HumanTask.state == "open")):
        t = run.wf.get_task_from_id(UUID(row.spiff_id))
        spec = t.task_spec if t is not None else None
        if spec is not None and getattr(spec, "bpmn_id", None) and spec.bpmn_id != row.element_id:
            row.element_id = spec.bpmn_id
            row.name = spec.bpmn_name or spec.bpmn_id
    return moved


def migrate(engine: Engine, instance_id: int, to_version: int, mapping: dict[str, str] | None,
            actor: str | None, reason: str | None) -> dict[str, Any]:
    """Move one running instance to version `to_version` of its process."""
    mapping = parse_mapping(mapping)
    why = _reason(reason)

    def body(run: Run) -> dict[str, Any]:
        _admin_running(run, actor)
        old = run.s.get(Definition, run.inst.definition_id)
        assert old is not None
        new = run.s.scalar(select(Definition).where(Definition.key == run.inst.process_key,
                                                    Definition.version == to_version))
        if new is None:
            raise NotFound(f"process '{run.inst.process_key}' has no version {to_version}; "
                           "'tigao definitions' lists them")
        if new.id == old.id:
            raise InputError(f"instance {instance_id} already runs on version {to_version}")
        built = engine._built(new)
        problems = migration.check_migration(run.wf, built.spec, built.subprocess_specs, mapping)
        if problems:
            raise Conflict(f"instance {instance_id} cannot move to version {to_version}, nothing was changed: "
                           + "; ".join(problems))
        payload = {"from": {"id": old.id, "key": old.key, "version": old.version},
                   "to": {"id": new.id, "key": new.key, "version": new.version},
                   "mapping": mapping, "reason": why}
        counts = _apply_migration(run, new, built, payload)
        run.event("instance_migrated", actor, payload)  # (recorded on the version it moved to)
        return {"instance": instance_id, "from": old.version, "to": new.version, **counts}

    return engine._run_on(instance_id, actor, body)


def migrate_all(engine: Engine, key: str, from_version: int, to_version: int, mapping: dict[str, str] | None,
                actor: str | None, reason: str | None) -> BulkReport:
    """Migrate every running instance of KEY:FROM_VERSION, each in its own transaction."""
    mapping = parse_mapping(mapping)
    _reason(reason)
    with engine._tx(read=True) as s:
        engine._check_actor(s, actor)
        if not actor or not engine._dir(s).has_role(actor, ADMIN_ROLE):
            raise NotAllowed(f"only an administrator (directory role '{ADMIN_ROLE}') may migrate instances; "
                             f"'{actor}' is not one")
        src = s.scalar(select(Definition).where(Definition.key == key, Definition.version == from_version))
        if src is None:
            raise NotFound(f"process '{key}' has no version {from_version}; 'tigao definitions' lists them")
        if s.scalar(select(Definition.id).where(Definition.key == key, Definition.version == to_version)) is None:
            raise NotFound(f"process '{key}' has no version {to_version}; 'tigao definitions' lists them")
        ids = list(s.scalars(select(Instance.id).where(Instance.definition_id == src.id,
                                                       Instance.status == "running").order_by(Instance.id)))
    report = BulkReport()
    for iid in ids:
        try:
            engine.migrate(iid, to_version, mapping, actor, reason)  # (retried when the database is busy)
            report.moved.append(iid)
        except EngineError as exc:
            report.refused[iid] = str(exc)
    return report


def _modify(engine: Engine, instance_id: int, actor: str | None, reason: str | None, type_: str,
            payload: dict[str, Any], element: str | None) -> None:
    why = _reason(reason)

    def body(run: Run) -> None:
        _admin_running(run, actor)
        run.apply(type_, payload)
        run.event(type_, actor, {**payload, "reason": why}, element_id=element)

    engine._run_on(instance_id, actor, body)


def cancel_activity(engine: Engine, instance_id: int, element: str, actor: str | None, reason: str | None) -> None:
    """Cancel the activity `element` of a running instance (every token of it in progress)."""
    _element(element)
    _modify(engine, instance_id, actor, reason, "activity_cancelled", {"element": element}, element)


def start_before(engine: Engine, instance_id: int, element: str, actor: str | None, reason: str | None) -> None:
    """Start a new token before `element` of a running instance."""
    _element(element)
    _modify(engine, instance_id, actor, reason, "started_before", {"element": element}, element)


def set_variable(engine: Engine, instance_id: int, name: str, value: Any, actor: str | None,
                 reason: str | None) -> None:
    """Set process variable `name` to the JSON `value`, checked as form data is."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise InputError(f"'{name}' is not a variable name: use letters, digits and _, not starting with a "
                         "digit or _")
    check_data({name: value})
    _modify(engine, instance_id, actor, reason, "variable_set", {"name": name, "value": value}, None)


def _element(element: str) -> None:
    if not isinstance(element, str) or not element.strip():
        raise InputError("name the element by its id (as in the diagram, e.g. Task_review)")
