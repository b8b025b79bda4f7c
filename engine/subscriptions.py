"""The message_subscriptions projection: which waiting catch of an instance listens for which name.

One row per (waiting task, name): a multiple event that catches two messages is found by either.
Messages (engine/run.py) and signals (engine/signals.py) project through the same function.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import MessageSubscription


def project(s: Session, instance_id: int, kind: str, want: Iterable[tuple[str, str, str]]) -> None:
    """Make the instance's rows of `kind` ("message" or "signal") be `want`: (spiff id, name,
    element id) of each waiting catch; rows no longer wanted go, missing ones are added."""
    wanted = {(sid, name): element for sid, name, element in want}
    have = {(m.spiff_id, m.message_name): m for m in s.scalars(select(MessageSubscription).where(
        MessageSubscription.instance_id == instance_id, MessageSubscription.kind == kind))}
    for key, m in have.items():
        if key not in wanted:
            s.delete(m)
    for (sid, name), element in wanted.items():
        if (sid, name) not in have:
            s.add(MessageSubscription(instance_id=instance_id, message_name=name, spiff_id=sid,
                                      element_id=element, kind=kind))
