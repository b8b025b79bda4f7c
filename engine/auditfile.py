"""Audit files: read an export and verify it with nothing but the file (and, when given, the
public keys and the roots kept outside), on a machine with an empty database."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .assignment import Directory
from .chain import EventRecord, Failure, check_against_seals, check_chain
from .definitions import build
from .errors import InputError, NotFound
from .replay import ReplayResult, replay_events
from .seals import SealHeadView, SealView, check_seals, sealed_but_gone
from .state import StateSerializer

EXPORT_FORMAT = "tigao-audit/1"


@dataclass
class AuditFile:
    definitions: dict[int, dict[str, Any]]
    directories: dict[int | None, Directory]
    instances: dict[int, dict[str, Any]]
    events: dict[int, list[EventRecord]]
    seals: list[SealView]
    complete: bool = False  # the file says it holds every instance of its database


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
    af = AuditFile({}, {}, {}, {}, [], bool(records[0].get("all")))
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
            heads = [SealHeadView(h[0], h[1], h[2], *(h[3:5] if len(h) >= 5 else (None, None))) for h in r["heads"]]
            af.seals.append(SealView(r["id"], datetime.fromisoformat(r["at"]), r["root"],
                                     r.get("instances", len(heads)), heads, r.get("signature"), r.get("key_id"),
                                     r.get("last_head")))
    if af.directories:
        af.directories[None] = af.directories[max(k for k in af.directories if k is not None)]
    return af


def verify_file(af: AuditFile, instance_id: int | None = None, upto: int | None = None,
                pubkeys: list[Ed25519PublicKey] | None = None,
                roots: list[str] | None = None) -> list[ReplayResult | Failure]:
    """Chain, seals, projections-free checks and replay for the instances of an audit file, with
    nothing but the file (and, when given, the public keys and roots kept outside)."""
    serializer = StateSerializer()
    out: list[ReplayResult | Failure] = []
    sealed_ids = {h.instance_id for seal in af.seals for h in seal.heads}
    if instance_id is not None and instance_id not in af.instances and instance_id not in sealed_ids:
        raise NotFound(f"instance {instance_id} is not in the audit file")
    ids = [instance_id] if instance_id is not None else sorted(af.instances)
    out += check_seals(af.seals, pubkeys, roots)
    # A file of every instance must hold every sealed one; a file of some holds what it names.
    out += sealed_but_gone(af.seals, None if af.complete and instance_id is None else set(ids),
                            set(af.instances))
    ids = [i for i in ids if i in af.instances]
    sealed: dict[int, list[tuple[int, int, str]]] = {}
    for seal in af.seals:
        for h in seal.heads:
            sealed.setdefault(h.instance_id, []).append((seal.id, h.seq, h.hash))
    for iid in ids:
        inst = af.instances[iid]
        events = sorted(af.events.get(iid, []), key=lambda e: e.seq)
        fail = check_chain(iid, events, (inst["last_seq"], inst["last_hash"])) \
            or check_against_seals(iid, events, sealed.get(iid, []))
        if fail is not None:
            out.append(fail)
            continue
        d = af.definitions[inst["definition"]]
        built = build(d["id"], d["key"], d["files"])
        out.append(replay_events(iid, built, events, af.directories, serializer,
                                 stored_state=inst["state"] if upto is None else None, upto=upto,
                                 built_for=lambda i: build(i, af.definitions[i]["key"], af.definitions[i]["files"])))
    return out

