"""Messages and signals from outside: delivered to the instances waiting, or starting new ones
(mixed into Engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage.models import Instance, MessageSubscription

from . import signals
from .errors import Conflict, InputError, NotFound
from .retry import retrying
from .values import check_data

if TYPE_CHECKING:
    from .core import Engine
    from .run import Run


class MessagingApi:
    """message, signal."""

    @retrying
    def message(self: Engine, name: str, data: dict[str, Any] | None = None, actor: str | None = None,
                business_key: str | None = None, instance_id: int | None = None) -> dict[str, Any]:
        """Deliver a message: to the instance waiting for it, else start the process it starts."""
        data = check_data(data)
        with self._tx(read=True) as s:
            self._check_actor(s, actor)
            q = select(MessageSubscription.instance_id).where(MessageSubscription.message_name == name,
                                                              MessageSubscription.kind == "message")
            if instance_id is not None:
                q = q.where(MessageSubscription.instance_id == instance_id)
            if business_key is not None:
                q = q.join(Instance, Instance.id == MessageSubscription.instance_id) \
                    .where(Instance.business_key == business_key)
            waiting = sorted(set(s.scalars(q)))
        if len(waiting) > 1:
            raise Conflict(f"{len(waiting)} instances wait for message '{name}' ({', '.join(map(str, waiting[:10]))}); "
                           "choose one with --instance ID or --business-key KEY")
        if waiting:
            def body(run: Run) -> None:
                run.deliver(name, data, actor)

            self._run_on(waiting[0], actor, body)
            return {"delivered_to": waiting[0]}
        if instance_id is not None:
            raise NotFound(f"instance {instance_id} is not waiting for message '{name}'")
        with self._tx() as s:
            starters = []
            for d in self._latest_definitions(s).values():
                built = self._built(d)
                if name in built.analysis.processes[d.key].message_starts:
                    starters.append((d, built))
            if not starters:
                raise NotFound(f"no instance waits for message '{name}' and no deployed process starts with it")
            started = []
            for d, built in starters:
                run = self._new_run(s, d, built, {}, business_key, actor, {"via": "message", "message": name})
                run.deliver(name, data, actor)
                run.finish(actor)
                started.append(run.inst.id)
            return {"started": started}

    def signal(self: Engine, name: str, data: dict[str, Any] | None = None, actor: str | None = None) -> dict[str, Any]:
        """Broadcast signal `name`: every waiting instance receives it, every process starting with it
        starts (one transaction each); NotFound when nothing at all waits for it."""
        data = check_data(data)
        if not isinstance(name, str) or not name.strip():
            raise InputError("a signal needs a name")
        with self._tx(read=True) as s:
            self._check_actor(s, actor)
        result = signals.broadcast(self, name, data, actor)
        if not (result.delivered_to or result.started or result.failed):
            raise NotFound(f"no instance waits for signal '{name}' and no deployed process starts with it")
        return result.to_json()

