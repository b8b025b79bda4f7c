"""Two ways to run the same test: one Engine that keeps its in-process caches (the cached workflow,
built specs, the directory), and an Engine that keeps nothing between transactions, as when every
command runs in a new process (`tigao complete ...` from a shell).

A stored state that does not restore what the live workflow had shows up only in the second way.
The `engine_mode` fixture runs a test both ways and, after each run, takes a digest of what the
database holds (instances with their restored task trees, human tasks, history); when both runs of
a test have finished, their digests must be equal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from engine import Engine
from engine.definitions import BuiltCache
from engine.spiff_state import fingerprint
from storage.models import Definition, Event, HumanTask, Instance

_MODE = {"name": "cached"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UncachedEngine(Engine):
    """An Engine that forgets everything before each transaction: no cached workflow, no built
    specs, no directory; each step restores the instance from what is stored."""

    @contextmanager
    def _tx(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self._wf_cache.clear()
        self._built_cache = BuiltCache()
        self._directory = None
        self._directory_stamp = None
        with super()._tx(*args, **kwargs) as s:
            yield s


def engine_class() -> type[Engine]:
    """The Engine class of the running test's mode."""
    return UncachedEngine if _MODE["name"] == "uncached" else Engine


def new_engine(url: str, **kwargs: Any) -> Engine:
    return engine_class()(url, **kwargs)


@contextmanager
def mode(name: str) -> Iterator[None]:
    previous = _MODE["name"]
    _MODE["name"] = name
    try:
        yield
    finally:
        _MODE["name"] = previous


def _scrub(value: Any) -> Any:
    """JSON text with SpiffWorkflow's random task ids and the hashes that cover them replaced."""
    text = json.dumps(value, sort_keys=True, default=str)
    return _UUID.sub("<uuid>", text)


def digest(url: str) -> dict[str, Any]:
    """What the database at `url` holds, without random ids: per instance its status and restored
    task tree, its human tasks and its history (types, actors, elements, times, payloads)."""
    eng = Engine(url)
    out: dict[str, Any] = {}
    try:
        with eng._tx() as s:
            for inst in s.scalars(select(Instance).order_by(Instance.id)):
                d = s.get(Definition, inst.definition_id)
                assert d is not None
                built = eng._built(d)
                wf = eng.serializer.loads(inst.state, built.spec, built.subprocess_specs, eng.script_engine)
                out[f"instance {inst.id}"] = _scrub({"status": inst.status, "key": inst.process_key,
                                                     "seq": inst.last_seq, "tree": fingerprint(wf)})
            out["tasks"] = _scrub([
                {c: getattr(t, c) for c in ("id", "instance_id", "element_id", "assignee", "state", "priority",
                                            "due_at", "completed_at", "completed_by", "escalation_level")}
                for t in s.scalars(select(HumanTask).order_by(HumanTask.id))])
            out["events"] = _scrub([
                (e.instance_id, e.seq, e.type, e.actor, e.element_id, e.task_id, e.at, e.payload)
                for e in s.scalars(select(Event).order_by(Event.instance_id, Event.seq))])
    finally:
        eng.close()
    return out


class DigestBook:
    """Digests of finished runs per test (its parameters without the mode)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, dict[str, Any]]] = {}

    def record(self, key: str, mode_name: str, dig: dict[str, Any]) -> None:
        other = self.seen.get(key)
        if other is None:
            self.seen[key] = (mode_name, dig)
            return
        other_mode, other_dig = other
        assert other_mode != mode_name
        differing = sorted(k for k in set(dig) | set(other_dig) if dig.get(k) != other_dig.get(k))
        assert not differing, (f"{mode_name} run differs from the {other_mode} run in: {differing[:5]}\n"
                               f"{mode_name}: {dig.get(differing[0])}\n{other_mode}: {other_dig.get(differing[0])}")
