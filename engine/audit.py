"""Audit: read, verify, seal, export and replay the history.

* verify: recompute every instance's hash chain (a changed payload, a gap, a broken link), check
  it against every seal (a removed tail), and replay it (a changed stored state).
* seal: a checkpoint of every instance's chain head and one Merkle root over them, to be kept
  outside the system.
* replay: rebuild an instance from its definition version and its recorded inputs with the
  clock set to the recorded times, step by step, and compare with what is stored.
* export: a self-contained file (definitions, directory versions, stored state, events, seals)
  from which `replay_file` replays and verifies on another machine with an empty database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from storage.models import Definition, DirectoryVersion, Event, Instance, Seal, SealHead

from . import history
from .assignment import Directory
from .clock import SettableClock
from .definitions import Built, build
from .errors import InputError, NotFound
from .scripting import TigaoScriptEngine
from .spiff import StateSerializer, TigaoMessageEventDefinition, TigaoWorkflow, fingerprint, force_start_timers
from .timeutil import fmt

if TYPE_CHECKING:
    from .core import Engine

EXPORT_FORMAT = "tigao-audit/1"


# ----------------------------------------------------------------------------- summaries
def _short(value: Any, limit: int = 2000) -> str:
    # Tables cut long text at a word boundary (and `--wide` shows it all): only bound it here.
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _at(value: Any) -> str:
    """A stored ISO time as people read it: the display time zone, as in the table's TIME column."""
    try:
        return fmt(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _people(p: dict[str, Any]) -> str:
    who = ", ".join(p.get("responsible") or []) or "nobody"
    return f"responsible {who}; " + (f"leader {p['leader']}" if p.get("leader") else "no leader to tell")


def summarize(e: Any) -> str:
    """One line on what an event changed (for `tigao history`)."""
    p = {k: v for k, v in (e.payload or {}).items() if k not in ("dir", "spiff_id")}
    t = e.type
    if t == "instance_started":
        how = p.get("via", "start")
        extra = f" by message {p.get('message')}" if how == "message" else " by timer" if how == "timer" else ""
        return f"started v{p.get('definition', {}).get('version', '?')}{extra}" + (
            f"; data {_short(p.get('data'))}" if p.get("data") else "")
    if t == "task_created":
        who = p.get("assignee") or ",".join(p.get("candidate_users", []) + [f"@{g}" for g in p.get("candidate_groups", [])])
        return f"task {e.task_id} '{p.get('name')}' for {who or 'nobody'}" + (
            f", due {_at(p['due_at'])}" if p.get("due_at") else "")
    if t == "task_completed":
        return f"task {e.task_id}: {_short(p.get('data', {}))}"
    if t == "task_claimed":
        return f"task {e.task_id} claimed"
    if t == "task_unclaimed":
        return f"task {e.task_id} returned"
    if t == "task_delegated":
        return f"task {e.task_id}: {p.get('from') or '-'} -> {p.get('to')}"
    if t == "task_cancelled":
        return f"task {e.task_id} withdrawn"
    if t == "message_received":
        return f"message {p.get('name')}: {_short(p.get('data', {}))}"
    if t == "timer_fired":
        return f"timer due {_at(p.get('due_at', ''))}" + (" (worker)" if p.get("trigger") else "")
    if t == "task_overdue":
        return f"task {e.task_id} overdue; {_people(p)}"
    if t == "task_escalated":
        return (f"task {e.task_id} escalated (level {p.get('level')}) to "
                f"{p.get('to_user') or '@' + str(p.get('to_group'))}; {_people(p)}")
    if t == "instance_cancelled":
        return f"reason: {p.get('reason')}"
    if t == "script_failed":
        return _short(p.get("error", ""), 80)
    if t == "instance_completed":
        return "completed"
    return _short(p)


# ----------------------------------------------------------------------------- records
@dataclass
class EventRecord:
    """An event as plain data (from the database or from an export file)."""

    instance_id: int
    seq: int
    at: datetime
    actor: str | None
    type: str
    element_id: str | None
    task_id: int | None
    definition_id: int
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, e: Event) -> EventRecord:
        return cls(e.instance_id, e.seq, e.at, e.actor, e.type, e.element_id, e.task_id, e.definition_id,
                   e.payload, e.prev_hash, e.hash)

    def body(self) -> dict[str, Any]:
        return history.event_body(self)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EventRecord:
        return cls(d["instance"], d["seq"], datetime.fromisoformat(d["at"]), d["actor"], d["type"], d["element"],
                   d["task"], d["definition"], d["payload"], d["prev_hash"], d["hash"])


@dataclass
class Failure:
    instance_id: int
    seq: int | None
    kind: str  # hash mismatch | broken link | gap | seal mismatch | tail removed | replay divergence
    detail: str

    def __str__(self) -> str:
        at = f" at seq {self.seq}" if self.seq is not None else ""
        return f"instance {self.instance_id}{at}: {self.kind}: {self.detail}"


def check_chain(instance_id: int, events: list[EventRecord], head: tuple[int, str] | None = None) -> Failure | None:
    """The first broken link of one instance's chain, or None. `head` is the instance row's
    (last_seq, last_hash), which must match the last event."""
    prev = history.GENESIS
    for expected_seq, e in enumerate(events, start=1):
        if e.seq != expected_seq:
            return Failure(instance_id, expected_seq, "gap", f"event {expected_seq} is missing (next is {e.seq})")
        if e.prev_hash != prev:
            return Failure(instance_id, e.seq, "broken link", "prev_hash does not match the event before")
        if history.chain_hash(prev, e.body()) != e.hash:
            return Failure(instance_id, e.seq, "hash mismatch", f"the {e.type} event was changed after it was written")
        prev = e.hash
    if head is not None:
        last_seq, last_hash = head
        if last_seq > len(events):
            return Failure(instance_id, len(events) + 1, "tail removed",
                           f"the instance records {last_seq} events, {len(events)} remain")
        if last_seq == len(events) and last_hash != prev:
            return Failure(instance_id, last_seq, "hash mismatch", "the chain head does not match the instance")
    return None


def merkle_root(leaves: list[str]) -> str:
    """Merkle root over hex leaves (sha256 of pairs; an odd node is carried up)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = [bytes.fromhex(x) for x in leaves]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0].hex()


def seal_leaf(instance_id: int, seq: int, head: str) -> str:
    return hashlib.sha256(f"{instance_id}:{seq}:{head}".encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------- replay
@dataclass
class Step:
    seq: int
    at: datetime
    type: str
    actor: str | None
    element_id: str | None
    open_tasks: list[str]
    data: dict[str, Any]
    changed: dict[str, Any]


@dataclass
class ReplayResult:
    instance_id: int
    steps: list[Step] = field(default_factory=list)
    divergence: Failure | None = None
    matches_stored: bool | None = None
    workflow: BpmnWorkflow | None = None

    @property
    def ok(self) -> bool:
        return self.divergence is None and self.matches_stored is not False


class _Replayer:
    """Feeds recorded inputs back into a fresh workflow at the recorded times."""

    def __init__(self, built: Built, directories: dict[int | None, Directory], serializer: StateSerializer):
        self.built = built
        self.clock = SettableClock(datetime(1970, 1, 1, tzinfo=timezone.utc))
        self.directories = directories
        self.se = TigaoScriptEngine(self.clock, next(iter(directories.values()), None))
        self.serializer = serializer
        self.wf: BpmnWorkflow | None = None
        self.mapping: dict[str, str] = {}  # recorded spiff id -> replayed spiff id
        self.unclaimed: list[Any] = []

    def _steps(self) -> None:
        assert self.wf is not None
        self.wf.do_engine_steps()

    def _new_ready(self) -> list[Any]:
        assert self.wf is not None
        mapped = set(self.mapping.values())
        return [t for t in self.wf.get_tasks(state=TaskState.READY) if t.task_spec.manual and str(t.id) not in mapped]

    def apply(self, e: EventRecord) -> str | None:
        """Apply one event; return a divergence message or None."""
        self.clock.force(e.at)
        p = e.payload
        if "dir" in p:
            self.se.directory = self.directories.get(p["dir"], self.se.directory)
        if e.type == "instance_started":
            self.wf = TigaoWorkflow(self.built.spec, self.built.subprocess_specs, script_engine=self.se)
            data = p.get("data") or {}
            self.wf.task_tree.data.update(data)
            for child in self.wf.task_tree.children:
                child.data.update(data)
            if p.get("via") == "timer":
                force_start_timers(self.wf, e.at)
                self._steps()
                self.wf.refresh_timers()
            self._steps()
            self.unclaimed = self._new_ready()
            return None
        if self.wf is None:
            return f"{e.type} before the instance started"
        if e.type == "task_completed":
            sid = self.mapping.get(p.get("spiff_id", ""))
            t = self.wf.get_task_from_id(UUID(sid)) if sid else None
            if t is None or t.state != TaskState.READY:
                return f"task {e.task_id} ({e.element_id}) was not open in the replay"
            t.data.update(p.get("data") or {})
            t.run()
            self._steps()
        elif e.type == "message_received":
            targets = [t for t in self.wf.get_tasks(state=TaskState.WAITING)
                       if isinstance(getattr(t.task_spec, "event_definition", None), TigaoMessageEventDefinition)
                       and t.task_spec.event_definition.name == p.get("name")]
            if not targets:
                return f"message {p.get('name')} had no receiver in the replay"
            ev = targets[0].task_spec.event_definition
            self.wf.send_event(BpmnEvent(ev, payload={"payload": p.get("data") or {}, "result_var": None}))
            self._steps()
        elif e.type == "timer_fired" and p.get("trigger"):
            self.wf.refresh_timers()
            self._steps()
        elif e.type == "instance_cancelled":
            self.wf.cancel()
            self._steps()
        elif e.type == "task_created":
            if not self.unclaimed:
                self.unclaimed = self._new_ready()
            match = next((t for t in self.unclaimed if t.task_spec.bpmn_id == e.element_id), None)
            if match is None:
                return f"task {e.task_id} ({e.element_id}) was created, but the replay has no such new task"
            self.unclaimed.remove(match)
            self.mapping[p["spiff_id"]] = str(match.id)
            return None
        elif e.type == "instance_completed":
            if not self.wf.is_completed():
                return "the instance completed, but the replay has not"
            return None
        else:
            return None
        self.unclaimed = self._new_ready()
        return None


def replay_events(instance_id: int, built: Built, events: list[EventRecord], directories: dict[int | None, Directory],
                  serializer: StateSerializer, stored_state: str | None = None, upto: int | None = None,
                  keep_steps: bool = True) -> ReplayResult:
    """Replay one instance's events; compare the result with `stored_state` when given."""
    r = _Replayer(built, directories, serializer)
    result = ReplayResult(instance_id)
    before: dict[str, Any] = {}
    from .core import process_data

    for e in events:
        try:
            problem = r.apply(e)
        except Exception as exc:  # noqa: BLE001 - any failure is a divergence to report
            problem = f"{e.type} failed in the replay: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        if problem:
            result.divergence = Failure(instance_id, e.seq, "replay divergence", problem)
            break
        if keep_steps and r.wf is not None:
            data = process_data(r.wf)
            changed = {k: v for k, v in data.items() if before.get(k, object()) != v}
            changed.update({k: None for k in before if k not in data})
            open_tasks = sorted(t.task_spec.bpmn_id for t in r.wf.get_tasks(state=TaskState.READY)
                                if t.task_spec.manual)
            result.steps.append(Step(e.seq, e.at, e.type, e.actor, e.element_id, open_tasks, data, changed))
            before = data
        if upto is not None and e.seq >= upto:
            break
    result.workflow = r.wf
    if result.divergence is None and stored_state is not None and upto is None and r.wf is not None:
        stored = serializer.loads(stored_state, built.spec, built.subprocess_specs, r.se)
        a, b = fingerprint(r.wf), fingerprint(stored)
        result.matches_stored = a == b
        if a != b:
            where = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            detail = (f"the stored state differs from the replayed one at task #{where} "
                      f"({(b[where]['element'] if where < len(b) else 'missing')})")
            result.divergence = Failure(instance_id, events[-1].seq if events else None, "replay divergence", detail)
    return result


# ----------------------------------------------------------------------------- engine-side tools
class Auditor:
    """The audit tools over one engine's database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _events(self, s: Any, instance_id: int) -> list[EventRecord]:
        return [EventRecord.of(e) for e in s.scalars(select(Event).where(Event.instance_id == instance_id)
                                                      .order_by(Event.seq))]

    def _directories(self, s: Any) -> dict[int | None, Directory]:
        dirs: dict[int | None, Directory] = {v.id: Directory.from_content(v.content)
                                             for v in s.scalars(select(DirectoryVersion))}
        if dirs:
            dirs[None] = dirs[max(k for k in dirs if k is not None)]
        return dirs

    def replay(self, instance_id: int, upto: int | None = None) -> ReplayResult:
        eng = self.engine
        with eng._tx() as s:
            inst, _d, built = eng._instance_built(s, instance_id)
            events = self._events(s, instance_id)
            dirs = self._directories(s)
            state = inst.state
        return replay_events(instance_id, built, events, dirs, eng.serializer, stored_state=state, upto=upto)

    def seal(self, sealer: str | None) -> tuple[int, str, int]:
        eng = self.engine
        with eng._tx() as s:
            eng._check_actor(s, sealer, acting=False)
            heads = s.execute(select(Instance.id, Instance.last_seq, Instance.last_hash)
                              .where(Instance.last_seq > 0).order_by(Instance.id)).all()
            root = merkle_root([seal_leaf(i, q, h) for i, q, h in heads])
            seal = Seal(at=eng.clock.now(), sealer=sealer, root=root, instances=len(heads))
            s.add(seal)
            s.flush()
            s.add_all(SealHead(seal_id=seal.id, instance_id=i, seq=q, hash=h) for i, q, h in heads)
            return seal.id, root, len(heads)

    def verify(self, instance_ids: list[int] | None = None, replay: bool = True,
               progress: Callable[[int, int], None] | None = None) -> tuple[int, list[Failure]]:
        """Check chains, seals and replays; return (instances checked, failures)."""
        eng = self.engine
        failures: list[Failure] = []
        with eng._tx() as s:
            ids = instance_ids or list(s.scalars(select(Instance.id).order_by(Instance.id)))
            for i in ids:
                if s.get(Instance, i) is None:
                    raise NotFound(f"no instance {i}")
            seals = list(s.scalars(select(Seal).order_by(Seal.id)))
            heads: dict[int, list[tuple[int, int, str]]] = {}
            for h in s.scalars(select(SealHead)):
                heads.setdefault(h.instance_id, []).append((h.seal_id, h.seq, h.hash))
            for seal in seals:
                rows = s.execute(select(SealHead.instance_id, SealHead.seq, SealHead.hash)
                                 .where(SealHead.seal_id == seal.id).order_by(SealHead.instance_id)).all()
                if merkle_root([seal_leaf(a, b, c) for a, b, c in rows]) != seal.root:
                    failures.append(Failure(0, None, "seal mismatch", f"seal {seal.id}'s heads do not give its root"))
            dirs = self._directories(s)
        for n, iid in enumerate(ids, start=1):
            with eng._tx() as s:
                inst = s.get(Instance, iid)
                assert inst is not None
                events = self._events(s, iid)
                fail = check_chain(iid, events, (inst.last_seq, inst.last_hash))
                if fail is None:
                    by_seq = {e.seq: e for e in events}
                    for seal_id, seq, h in sorted(heads.get(iid, [])):
                        e = by_seq.get(seq)
                        if e is None:
                            fail = Failure(iid, seq, "tail removed", f"seal {seal_id} holds event {seq}, which is gone")
                            break
                        if e.hash != h:
                            fail = Failure(iid, seq, "seal mismatch", f"event {seq} differs from seal {seal_id}")
                            break
                if fail is None and replay:
                    d = s.get(Definition, inst.definition_id)
                    assert d is not None
                    built = eng._built(d)
                    r = replay_events(iid, built, events, dirs, eng.serializer, stored_state=inst.state,
                                      keep_steps=False)
                    fail = r.divergence
            if fail is not None:
                failures.append(fail)
            if progress:
                progress(n, len(ids))
        return len(ids), failures

    def export(self, instance_ids: list[int] | None, fmt: str = "jsonl") -> Iterator[str]:
        """Lines of a self-contained audit file."""
        if fmt not in ("jsonl", "csv"):
            raise InputError(f"unknown export format '{fmt}'; use jsonl or csv")
        records = list(self._records(instance_ids))
        if fmt == "jsonl":
            for r in records:
                yield json.dumps(r, ensure_ascii=False, sort_keys=True)
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["kind", "instance", "seq", "at", "actor", "type", "element", "task", "definition", "payload",
                    "prev_hash", "hash", "content"])
        for r in records:
            if r["kind"] == "event":
                w.writerow(["event", r["instance"], r["seq"], r["at"], r["actor"], r["type"], r["element"],
                            r["task"], r["definition"], json.dumps(r["payload"], ensure_ascii=False, sort_keys=True),
                            r["prev_hash"], r["hash"], ""])
            else:
                w.writerow([r["kind"], r.get("id", ""), "", "", "", "", "", "", "", "", "", "",
                            json.dumps(r, ensure_ascii=False, sort_keys=True)])
        yield buf.getvalue().rstrip("\n")

    def _records(self, instance_ids: list[int] | None) -> Iterable[dict[str, Any]]:
        eng = self.engine
        with eng._tx() as s:
            ids = instance_ids or list(s.scalars(select(Instance.id).order_by(Instance.id)))
            insts = [s.get(Instance, i) for i in ids]
            for i, inst in zip(ids, insts):
                if inst is None:
                    raise NotFound(f"no instance {i}")
            yield {"kind": "header", "format": EXPORT_FORMAT, "exported_at": eng.clock.now().isoformat(),
                   "instances": len(ids)}
            def_ids = sorted({inst.definition_id for inst in insts if inst})
            for d in s.scalars(select(Definition).where(Definition.id.in_(def_ids)).order_by(Definition.id)):
                yield {"kind": "definition", "id": d.id, "key": d.key, "version": d.version,
                       "content_hash": d.content_hash, "files": d.files}
            for v in s.scalars(select(DirectoryVersion).order_by(DirectoryVersion.id)):
                yield {"kind": "directory", "id": v.id, "loaded_at": v.loaded_at.isoformat(), "hash": v.hash,
                       "content": v.content}
            for seal in s.scalars(select(Seal).order_by(Seal.id)):
                heads = s.execute(select(SealHead.instance_id, SealHead.seq, SealHead.hash)
                                  .where(SealHead.seal_id == seal.id).order_by(SealHead.instance_id)).all()
                yield {"kind": "seal", "id": seal.id, "at": seal.at.isoformat(), "sealer": seal.sealer,
                       "root": seal.root, "heads": [[a, b, c] for a, b, c in heads]}
            for inst in insts:
                assert inst is not None
                yield {"kind": "instance", "id": inst.id, "key": inst.process_key, "definition": inst.definition_id,
                       "status": inst.status, "business_key": inst.business_key, "last_seq": inst.last_seq,
                       "last_hash": inst.last_hash, "state": inst.state}
                for e in self._events(s, inst.id):
                    yield {"kind": "event", **e.to_json()}


# ----------------------------------------------------------------------------- from a file
@dataclass
class AuditFile:
    definitions: dict[int, dict[str, Any]]
    directories: dict[int | None, Directory]
    instances: dict[int, dict[str, Any]]
    events: dict[int, list[EventRecord]]
    seals: list[dict[str, Any]]


def read_audit_file(path: str | Path) -> AuditFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read audit file '{p}': {exc.strerror}") from exc
    records: list[dict[str, Any]] = []
    if text.startswith("kind,"):
        for row in csv.DictReader(io.StringIO(text)):
            if row["kind"] == "event":
                records.append({"kind": "event", "instance": int(row["instance"]), "seq": int(row["seq"]),
                                "at": row["at"], "actor": row["actor"] or None, "type": row["type"],
                                "element": row["element"] or None, "task": int(row["task"]) if row["task"] else None,
                                "definition": int(row["definition"]), "payload": json.loads(row["payload"]),
                                "prev_hash": row["prev_hash"], "hash": row["hash"]})
            else:
                records.append(json.loads(row["content"]))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}:{n}: not a JSON line ({exc.msg})") from exc
    if not records or records[0].get("kind") != "header" or records[0].get("format") != EXPORT_FORMAT:
        raise InputError(f"'{p}' is not a Tigao audit file ({EXPORT_FORMAT}); make one with 'tigao export'")
    af = AuditFile({}, {}, {}, {}, [])
    for r in records[1:]:
        kind = r.get("kind")
        if kind == "definition":
            af.definitions[r["id"]] = r
        elif kind == "directory":
            af.directories[r["id"]] = Directory.from_content(r["content"])
        elif kind == "instance":
            af.instances[r["id"]] = r
        elif kind == "event":
            af.events.setdefault(r["instance"], []).append(EventRecord.from_json(r))
        elif kind == "seal":
            af.seals.append(r)
    if af.directories:
        af.directories[None] = af.directories[max(k for k in af.directories if k is not None)]
    return af


def verify_file(af: AuditFile, instance_id: int | None = None, upto: int | None = None) -> list[ReplayResult | Failure]:
    """Chain, seals and replay for the instances of an audit file, with nothing but the file."""
    serializer = StateSerializer()
    out: list[ReplayResult | Failure] = []
    ids = [instance_id] if instance_id is not None else sorted(af.instances)
    for seal in af.seals:
        if merkle_root([seal_leaf(a, b, c) for a, b, c in seal["heads"]]) != seal["root"]:
            out.append(Failure(0, None, "seal mismatch", f"seal {seal['id']}'s heads do not give its root"))
    for iid in ids:
        inst = af.instances.get(iid)
        if inst is None:
            raise NotFound(f"instance {iid} is not in the audit file")
        events = sorted(af.events.get(iid, []), key=lambda e: e.seq)
        fail = check_chain(iid, events, (inst["last_seq"], inst["last_hash"]))
        if fail is None:
            by_seq = {e.seq: e for e in events}
            for seal in af.seals:
                for a, b, c in seal["heads"]:
                    if a == iid and (b not in by_seq or by_seq[b].hash != c):
                        fail = Failure(iid, b, "seal mismatch" if b in by_seq else "tail removed",
                                       f"event {b} does not match seal {seal['id']}")
        if fail is not None:
            out.append(fail)
            continue
        d = af.definitions[inst["definition"]]
        built = build(d["id"], d["key"], d["files"])
        out.append(replay_events(iid, built, events, af.directories, serializer,
                                 stored_state=inst["state"] if upto is None else None, upto=upto))
    return out

