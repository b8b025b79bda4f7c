"""History records as plain data, and the check of one instance's hash chain.

Shared by the database-side auditor and the audit-file reader, so both apply the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.models import Event

from . import history


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
    """One reason verification fails: the instance (0 for the database or a seal as a whole), the
    first failing sequence number when there is one, a kind and a sentence."""

    instance_id: int
    seq: int | None
    kind: str  # hash mismatch | broken link | gap | time goes backwards | seal mismatch | tail removed |
    #            instance missing | seal signature | seal root | projection mismatch | triggers |
    #            replay divergence
    detail: str

    def __str__(self) -> str:
        at = f" at seq {self.seq}" if self.seq is not None else ""
        where = f"instance {self.instance_id}" if self.instance_id else "database"
        return f"{where}{at}: {self.kind}: {self.detail}"


def check_chain(instance_id: int, events: list[EventRecord], head: tuple[int, str] | None = None) -> Failure | None:
    """The first broken link of one instance's chain, or None.

    Args:
        instance_id: the instance the events belong to.
        events: its events in sequence order.
        head: the instance row's (last_seq, last_hash), which must match the last event.
    """
    prev = history.GENESIS
    prev_at: datetime | None = None
    for expected_seq, e in enumerate(events, start=1):
        if e.seq != expected_seq:
            return Failure(instance_id, expected_seq, "gap", f"event {expected_seq} is missing (next is {e.seq})")
        if e.prev_hash != prev:
            return Failure(instance_id, e.seq, "broken link", "prev_hash does not match the event before")
        if history.chain_hash(prev, e.body()) != e.hash:
            return Failure(instance_id, e.seq, "hash mismatch", f"the {e.type} event was changed after it was written")
        # Equal times are normal (time stands still within one command); earlier ones are not.
        if prev_at is not None and e.at < prev_at:
            return Failure(instance_id, e.seq, "time goes backwards",
                           f"the {e.type} event is at {e.at.isoformat()}, before the event before it "
                           f"({prev_at.isoformat()})")
        prev, prev_at = e.hash, e.at
    if head is not None:
        last_seq, last_hash = head
        if last_seq > len(events):
            return Failure(instance_id, len(events) + 1, "tail removed",
                           f"the instance records {last_seq} events, {len(events)} remain")
        if last_seq < len(events):
            return Failure(instance_id, last_seq + 1, "hash mismatch",
                           f"the instance records {last_seq} events, but {len(events)} exist")
        if last_seq == len(events) and last_hash != prev:
            return Failure(instance_id, last_seq, "hash mismatch", "the chain head does not match the instance")
    return None


def check_against_seals(iid: int, events: list[EventRecord], heads: list[tuple[int, int, str]]) -> Failure | None:
    """The first sealed head of the instance that its (self-consistent) chain no longer has."""
    by_seq = {e.seq: e for e in events}
    for seal_id, seq, h in sorted(heads, key=lambda x: (x[1], x[0])):
        e = by_seq.get(seq)
        if e is None:
            return Failure(iid, seq, "tail removed", f"seal {seal_id} holds event {seq}, which is gone")
        if e.hash != h:
            return Failure(iid, seq, "seal mismatch",
                           f"event {seq} differs from seal {seal_id}: an event at or before seq {seq} was rewritten")
    return None
