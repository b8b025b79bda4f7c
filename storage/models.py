"""SQLAlchemy 2.0 ORM models: the classes the engine works with, mapped onto the tables of
`storage.schema` (the one schema definition; read-only paths query those tables with Core).

The serialized SpiffWorkflow state lives in `instances.state`; everything a list, a worker or a
report needs (human tasks, timers, message subscriptions) is projected into its own indexed table
in the same transaction, so no query ever has to load serialized state.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, deferred, object_session

from . import schema
from .state_parts import FORMAT_PARTS, compose
from .schema import LIST_ORDER, JsonType, UTCDateTime

__all__ = ["LIST_ORDER", "JsonType", "UTCDateTime"]  # re-exported: they used to live here


class Base(DeclarativeBase):
    metadata = schema.metadata


class Setting(Base):
    """Key/value settings of one database: the clock mode and the simulated time."""

    __table__ = schema.settings
    key: Mapped[str]
    value: Mapped[str]


class Definition(Base):
    """One version of one process key, with every file needed to rebuild it."""

    __table__ = schema.definitions

    id: Mapped[int]
    key: Mapped[str]
    version: Mapped[int]
    name: Mapped[str | None]
    content_hash: Mapped[str]
    files: Mapped[dict[str, str]]
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str | None]


class Instance(Base):
    __table__ = schema.instances

    id: Mapped[int]
    definition_id: Mapped[int]
    process_key: Mapped[str]
    business_key: Mapped[str | None]
    status: Mapped[str]
    # `state` reads either format as the whole state (see the hybrid below); the column is the head.
    state_head: Mapped[str] = column_property(schema.instances.c.state)
    state_format: Mapped[int]
    state_changes: Mapped[str | None]
    started_at: Mapped[datetime]
    started_by: Mapped[str | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None]
    last_seq: Mapped[int]
    last_hash: Mapped[str]
    # The state's version, for optimistic concurrency: the engine raises it when it writes the
    # state, not when a command only appends history (a claim keeps cached workflows valid).
    version: Mapped[int]

    __mapper_args__ = {"version_id_col": schema.instances.c.version, "version_id_generator": False,
                       "exclude_properties": ["state"]}

    @hybrid_property
    def state(self) -> str:
        """The whole stored state as one JSON text, whichever format holds it."""
        if self.state_format != FORMAT_PARTS:
            return self.state_head
        session = object_session(self)
        assert session is not None, "a state in parts is read through the instance's session"
        rows = session.execute(select(StatePart.part, StatePart.body)
                               .where(StatePart.instance_id == self.id)).all()
        return compose(self.state_head, {part: body for part, body in rows})

    @state.inplace.setter
    def _state_setter(self, text: str) -> None:
        """Store a whole state (format 1); parts the instance had are dropped."""
        had_parts = self.state_format == FORMAT_PARTS
        self.state_head = text
        self.state_format = 1
        if had_parts:
            self.state_changes = json.dumps({"all": True})

    @state.inplace.expression
    @classmethod
    def _state_expression(cls) -> Any:
        return cls.state_head


class StatePart(Base):
    """One part (a task) of an instance's state stored in parts."""

    __table__ = schema.state_parts

    instance_id: Mapped[int]
    part: Mapped[str]
    body: Mapped[str]


class HumanTask(Base):
    """Projection of a user task: what task lists and deadline checks read."""

    __table__ = schema.human_tasks

    id: Mapped[int]
    instance_id: Mapped[int]
    spiff_id: Mapped[str]
    element_id: Mapped[str]
    name: Mapped[str | None]
    lane: Mapped[str | None]
    role: Mapped[str | None]
    assignee: Mapped[str | None]
    state: Mapped[str]
    priority: Mapped[int]
    form_key: Mapped[str | None]
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    follow_up_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None]
    overdue_since: Mapped[datetime | None]
    escalation_level: Mapped[int]
    # Read only where asked (`task_data`, the report): task lists load rows, not their data.
    completed_data: Mapped[str | None] = deferred(schema.human_tasks.c.completed_data)


class TaskCandidate(Base):
    """A candidate of an open human task: a user id or a group (role or department) id."""

    __table__ = schema.task_candidates

    task_id: Mapped[int]
    kind: Mapped[str]
    value: Mapped[str]


class Timer(Base):
    """Something due at a time: a BPMN timer event, or a human task's due date or follow-up.

    kinds: "timer" (a waiting BPMN timer event), "due" (a human task falls due),
    "followup" (a reminder), "escalate" (the grace period after a due date ends),
    "start" (a timer start event of a deployed definition: starts a new instance).
    """

    __table__ = schema.timers

    id: Mapped[int]
    instance_id: Mapped[int | None]
    definition_id: Mapped[int | None]
    kind: Mapped[str]
    spiff_id: Mapped[str | None]
    task_id: Mapped[int | None]
    element_id: Mapped[str | None]
    due_at: Mapped[datetime]
    state: Mapped[str]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    fired_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any] | None]
    error: Mapped[str | None]


class MessageSubscription(Base):
    """An instance waiting for a message (intermediate catch or boundary event)."""

    __table__ = schema.message_subscriptions

    id: Mapped[int]
    instance_id: Mapped[int]
    message_name: Mapped[str]
    spiff_id: Mapped[str]
    element_id: Mapped[str]
    # "message", or "signal" (a signal catch: every waiting instance receives a broadcast).
    kind: Mapped[str]


class Event(Base):
    """One entry of an instance's append-only, hash-chained history."""

    __table__ = schema.events

    id: Mapped[int]
    instance_id: Mapped[int]
    seq: Mapped[int]
    at: Mapped[datetime]
    actor: Mapped[str | None]
    type: Mapped[str]
    element_id: Mapped[str | None]
    task_id: Mapped[int | None]
    definition_id: Mapped[int]
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str]
    hash: Mapped[str]


class Seal(Base):
    """A checkpoint of every instance's chain head, and one Merkle root over them."""

    __table__ = schema.seals

    id: Mapped[int]
    at: Mapped[datetime]
    sealer: Mapped[str | None]
    root: Mapped[str]
    instances: Mapped[int]
    # Ed25519 signature (hex) over the seal's statement, and the sha256 fingerprint of the key.
    signature: Mapped[str | None]
    key_id: Mapped[str | None]
    # "instance:seq" of the last head, signed, so that removing the last head is named.
    last_head: Mapped[str | None]


class SealHead(Base):
    __table__ = schema.seal_heads

    seal_id: Mapped[int]
    instance_id: Mapped[int]
    seq: Mapped[int]
    hash: Mapped[str]
    signature: Mapped[str | None]
    # "instance:seq" of the head before this one in the seal, signed with it: a removed head is
    # named by its neighbour.
    prev_head: Mapped[str | None]


class DirectoryVersion(Base):
    """Every directory ever loaded, so a replay sees the organisation an instance ran with."""

    __table__ = schema.directory_versions

    id: Mapped[int]
    loaded_at: Mapped[datetime]
    content: Mapped[dict[str, Any]]
    hash: Mapped[str]


class Notification(Base):
    __table__ = schema.notifications

    id: Mapped[int]
    recipient: Mapped[str]
    at: Mapped[datetime]
    kind: Mapped[str]
    task_id: Mapped[int | None]
    instance_id: Mapped[int | None]
    message: Mapped[str]
    read_at: Mapped[datetime | None]


class Department(Base):
    __table__ = schema.departments
    id: Mapped[str]
    name: Mapped[str]
    head: Mapped[str | None]
    parent: Mapped[str | None]


class Role(Base):
    __table__ = schema.roles
    id: Mapped[str]
    name: Mapped[str]


class User(Base):
    __table__ = schema.users
    id: Mapped[str]
    name: Mapped[str]
    department: Mapped[str | None]


class UserRole(Base):
    __table__ = schema.user_roles
    user_id: Mapped[str]
    role_id: Mapped[str]


# ----------------------------------------------------------------------------- identity (server)
# Keyed by the user id as text, not a foreign key: reloading the directory replaces the users
# table, and a password or token must survive that (it stops working if the user is gone).
class Credential(Base):
    __table__ = schema.credentials
    user_id: Mapped[str]
    password_hash: Mapped[str]
    updated_at: Mapped[datetime]


class ApiToken(Base):
    __table__ = schema.api_tokens
    id: Mapped[int]
    user_id: Mapped[str]
    name: Mapped[str | None]
    token_hash: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    __table__ = schema.web_sessions
    id: Mapped[int]
    token_hash: Mapped[str]
    user_id: Mapped[str]
    csrf: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed logins per key ("user:ID" or "addr:IP"): counted, slowed, locked for a while."""

    __table__ = schema.login_failures
    key: Mapped[str]
    count: Mapped[int]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class PublicCase(Base):
    """A case started by a member of the public, with the tracking code they were given."""

    __table__ = schema.public_cases

    id: Mapped[int]
    code: Mapped[str]
    instance_id: Mapped[int]
    process_key: Mapped[str]
    address: Mapped[str]
    created_at: Mapped[datetime]


class ExternalTask(Base):
    """A service task waiting for its work: fetched and locked by an external worker
    (`camunda:type="external"`, `handler` empty), or run in process by the deadline worker
    (`handler` names a registered callable). One row per waiting SpiffWorkflow task."""

    __table__ = schema.external_tasks

    id: Mapped[int]
    instance_id: Mapped[int]
    process_key: Mapped[str]
    spiff_id: Mapped[str]
    element_id: Mapped[str]
    topic: Mapped[str]
    handler: Mapped[str | None]
    business_key: Mapped[str | None]
    priority: Mapped[int]
    retries: Mapped[int | None]
    state: Mapped[str]
    lock_owner: Mapped[str | None]
    lock_expires_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    error_message: Mapped[str | None]
    error_details: Mapped[str | None]
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Incident(Base):
    """Something failed and waits for an operator: a script, a handler, a timer, or an external
    task out of retries. `ref` names the failed row (`timer:7`, `external:3`)."""

    __table__ = schema.incidents

    id: Mapped[int]
    instance_id: Mapped[int | None]
    element_id: Mapped[str | None]
    kind: Mapped[str]
    ref: Mapped[str | None]
    message: Mapped[str]
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]
