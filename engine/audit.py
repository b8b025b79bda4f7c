"""Audit: read, verify, seal, export and replay the history.

* verify: the append-only triggers; every instance's hash chain (a changed payload, a gap, a
  broken link, time going backwards); every seal (its root, and with a public key its signatures)
  and the chains against it (a removed tail, a removed instance); roots kept outside; the human
  task projections against the history; and the replay (a changed stored state).
* seal: a checkpoint of every instance's chain head and one Merkle root over them, signed with an
  Ed25519 key kept outside (`seals.py`).
* replay: `replay.py`.
* export: a self-contained file (definitions, directory versions, stored state, events, seals)
  from which `auditfile.verify_file` replays and verifies on another machine with an empty
  database.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from storage import triggers
from storage.models import (
    Definition,
    DirectoryVersion,
    Event,
    HumanTask,
    Instance,
    Seal,
    SealHead,
    TaskCandidate,
)

from .assignment import Directory
from .auditfile import EXPORT_FORMAT, AuditFile, read_audit_file, verify_file
from .chain import EventRecord, Failure, check_against_seals, check_chain
from .consistency import check_tasks
from .errors import InputError, NotFound
from .replay import ReplayResult, Step, replay_events
from .seals import (
    SealHeadView,
    SealView,
    check_seals,
    last_ref,
    merkle_root,
    seal_leaf,
    sealed_but_gone,
    sign_heads,
    sign_seal,
)
from .timeutil import fmt

if TYPE_CHECKING:
    from .core import Engine

__all__ = [
    "EXPORT_FORMAT",
    "AuditFile",
    "Auditor",
    "EventRecord",
    "Failure",
    "ReplayResult",
    "Step",
    "check_chain",
    "merkle_root",
    "read_audit_file",
    "replay_events",
    "seal_leaf",
    "summarize",
    "verify_file",
]

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
    if t == "instance_migrated":
        mapped = ", ".join(f"{a}->{b}" for a, b in (p.get("mapping") or {}).items())
        return (f"v{p.get('from', {}).get('version', '?')} -> v{p.get('to', {}).get('version', '?')}"
                + (f" ({mapped})" if mapped else "") + f"; reason: {p.get('reason')}")
    if t in ("activity_cancelled", "started_before"):
        return f"{'cancelled' if t == 'activity_cancelled' else 'started before'} {p.get('element')}; " \
               f"reason: {p.get('reason')}"
    if t == "variable_set":
        return f"{p.get('name')} = {_short(p.get('value'), 200)}; reason: {p.get('reason')}"
    return _short(p)


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
            built_for = self._built_for(s, events)
        return replay_events(instance_id, built, events, dirs, eng.serializer, stored_state=state, upto=upto,
                             built_for=built_for)

    def _built_for(self, s: Any, events: list[EventRecord]) -> Callable[[int], Any]:
        """Every version an instance's history names (a migrated instance ran on several)."""
        ids = {e.definition_id for e in events}
        defs = {d.id: (d.key, dict(d.files)) for d in s.scalars(select(Definition).where(Definition.id.in_(ids)))}
        return lambda definition_id: self.engine.built.get(definition_id, *defs[definition_id])

    def seal(self, sealer: str | None, key: Ed25519PrivateKey | None = None) -> tuple[int, str, int]:
        """Record every instance's chain head and their Merkle root, signed when a key is given.

        Returns (seal id, root, number of instances)."""
        eng = self.engine
        with eng._tx() as s:
            eng._check_actor(s, sealer, acting=False)
            heads = [(i, q, h) for i, q, h in s.execute(select(Instance.id, Instance.last_seq, Instance.last_hash)
                                                        .where(Instance.last_seq > 0).order_by(Instance.id))]
            root = merkle_root([seal_leaf(i, q, h) for i, q, h in heads])
            at = eng.clock.now()
            seal = Seal(at=at, sealer=sealer, root=root, instances=len(heads))
            if key is not None:
                seal.signature, seal.key_id = sign_seal(key, root, at, heads)
                seal.last_head = last_ref(heads)
            s.add(seal)
            s.flush()  # the heads sign the seal's id; seals are append-only, so the id comes first
            signed: list[tuple[str | None, str | None]] = sign_heads(key, seal.id, heads) if key is not None \
                else [(None, None)] * len(heads)
            s.add_all(SealHead(seal_id=seal.id, instance_id=i, seq=q, hash=h, signature=sig, prev_head=prev)
                      for (i, q, h), (sig, prev) in zip(heads, signed))
            return seal.id, root, len(heads)

    def _seals(self, s: Any) -> list[SealView]:
        views = {x.id: SealView(x.id, x.at, x.root, x.instances, [], x.signature, x.key_id, x.last_head)
                 for x in s.scalars(select(Seal).order_by(Seal.id))}
        for h in s.scalars(select(SealHead).order_by(SealHead.seal_id, SealHead.instance_id)):
            if h.seal_id in views:
                views[h.seal_id].heads.append(SealHeadView(h.instance_id, h.seq, h.hash, h.signature, h.prev_head))
        return list(views.values())

    def verify(self, instance_ids: list[int] | None = None, replay: bool = True,
               progress: Callable[[int, int], None] | None = None, pubkeys: list[Ed25519PublicKey] | None = None,
               roots: list[str] | None = None) -> tuple[int, list[Failure]]:
        """Check triggers, chains, seals, projections and replays; return (instances checked, failures).

        Args:
            instance_ids: the instances to check (default: every instance, and every sealed one).
            replay: also replay each instance and compare with its stored state.
            progress: called with (done, total) after each instance.
            pubkeys: public keys the seals must be signed with (every seal must be).
            roots: Merkle roots kept outside the database; each must be a seal's root.
        """
        eng = self.engine
        failures: list[Failure] = []
        with eng._tx() as s:
            failures += [Failure(0, None, "triggers", f"{p}: run 'tigao init' to restore it")
                         for p in triggers.problems(s.connection())]
            present = set(s.scalars(select(Instance.id)))
            seals = self._seals(s)
            failures += check_seals(seals, pubkeys, roots)
            ever = present | {h.instance_id for seal in seals for h in seal.heads}
            for i in instance_ids or []:
                if i not in ever:
                    raise NotFound(f"no instance {i}")
            dirs = self._directories(s)
        failures += sealed_but_gone(seals, set(instance_ids) if instance_ids else None, present)
        ids = [i for i in instance_ids or sorted(present) if i in present]
        sealed: dict[int, list[tuple[int, int, str]]] = {}
        for seal in seals:
            for h in seal.heads:
                sealed.setdefault(h.instance_id, []).append((seal.id, h.seq, h.hash))
        racy = eng.dialect != "sqlite"
        for n, iid in enumerate(ids, start=1):
            fail = self._check_instance(iid, sealed.get(iid, []), dirs, replay)
            # On PostgreSQL each query of a read-committed transaction sees the latest commit, so a
            # command finishing between two of them can look like tampering: a real one persists.
            if fail is not None and racy:
                fail = self._check_instance(iid, sealed.get(iid, []), dirs, replay)
            if fail is not None:
                failures.append(fail)
            if progress:
                progress(n, len(ids))
        return len(ids), failures

    def _check_instance(self, iid: int, sealed: list[tuple[int, int, str]], dirs: dict[int | None, Directory],
                        replay: bool) -> Failure | None:
        """Chain, seals, task projections and (optionally) replay of one instance, in one transaction."""
        eng = self.engine
        with eng._tx() as s:
            inst = s.get(Instance, iid)
            if inst is None:
                return Failure(iid, None, "instance missing", "the instance was removed while being verified")
            events = self._events(s, iid)
            fail = check_chain(iid, events, (inst.last_seq, inst.last_hash)) or check_against_seals(iid, events, sealed)
            if fail is None:
                rows = list(s.execute(select(HumanTask.id, HumanTask.state, HumanTask.assignee, HumanTask.completed_by)
                                      .where(HumanTask.instance_id == iid)))
                cands: dict[int, set[tuple[str, str]]] = {}
                if rows:
                    for tid, kind, value in s.execute(select(TaskCandidate.task_id, TaskCandidate.kind,
                                                             TaskCandidate.value)
                                                      .where(TaskCandidate.task_id.in_([r.id for r in rows]))):
                        cands.setdefault(tid, set()).add((kind, value))
                fail = check_tasks(iid, events, rows, cands)
            if fail is None and replay:
                d = s.get(Definition, inst.definition_id)
                assert d is not None
                r = replay_events(iid, eng._built(d), events, dirs, eng.serializer, stored_state=inst.state,
                                  keep_steps=False, built_for=self._built_for(s, events))
                fail = r.divergence
        return fail

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
            # "all": the file claims to hold every instance, so every sealed one must be in it.
            yield {"kind": "header", "format": EXPORT_FORMAT, "exported_at": eng.clock.now().isoformat(),
                   "instances": len(ids), "all": instance_ids is None}
            # A migrated instance's history names the versions it ran on before its current one.
            def_ids = sorted({inst.definition_id for inst in insts if inst}
                             | set(s.scalars(select(Event.definition_id).where(Event.instance_id.in_(ids))
                                             .distinct())))
            for d in s.scalars(select(Definition).where(Definition.id.in_(def_ids)).order_by(Definition.id)):
                yield {"kind": "definition", "id": d.id, "key": d.key, "version": d.version,
                       "content_hash": d.content_hash, "files": d.files}
            for v in s.scalars(select(DirectoryVersion).order_by(DirectoryVersion.id)):
                yield {"kind": "directory", "id": v.id, "loaded_at": v.loaded_at.isoformat(), "hash": v.hash,
                       "content": v.content}
            for seal in self._seals(s):
                yield {"kind": "seal", "id": seal.id, "at": seal.at.isoformat(), "root": seal.root,
                       "instances": seal.instances, "signature": seal.signature, "key_id": seal.key_id,
                       "last_head": seal.last_head,
                       "heads": [[h.instance_id, h.seq, h.hash, h.signature, h.prev_head] for h in seal.heads]}
            for inst in insts:
                assert inst is not None
                yield {"kind": "instance", "id": inst.id, "key": inst.process_key, "definition": inst.definition_id,
                       "status": inst.status, "business_key": inst.business_key, "last_seq": inst.last_seq,
                       "last_hash": inst.last_hash, "state": inst.state}
                for e in self._events(s, inst.id):
                    yield {"kind": "event", **e.to_json()}
