"""SQLAlchemy 2.0 models: the tables the engine keeps.

The serialized SpiffWorkflow state lives in `instances.state`; everything a list, a worker or a
report needs (human tasks, timers, message subscriptions) is projected into its own indexed table
in the same transaction, so no query ever has to load serialized state.
"""

from __future__ import annotations

from datetime import datetime, timezone
import json
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import select
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session
from sqlalchemy.types import TypeDecorator

from .state_parts import FORMAT_PARTS, compose


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as an aware UTC datetime.

    SQLite has no time zone type, so values are normalised to UTC on the way in and given the
    UTC zone on the way out; PostgreSQL keeps `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# A generic JSON column; PostgreSQL gets JSON (not JSONB) so key order in payloads is kept as written.
JsonType = JSON().with_variant(JSON(), "postgresql")


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """Key/value settings of one database: the clock mode and the simulated time."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Definition(Base):
    """One version of one process key, with every file needed to rebuild it."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_definitions_key_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict[str, str]] = mapped_column(JsonType)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str | None] = mapped_column(String(200))


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_key_status", "process_key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(200))
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Format 1: the whole SpiffWorkflow state. Format 2: its head, the tasks being rows of
    # `state_parts` (storage/state_parts.py); `state` reads either as the whole state.
    state_head: Mapped[str] = mapped_column("state", Text)
    state_format: Mapped[int] = mapped_column(Integer, default=1)
    # Parts to write, applied to `state_parts` by a trigger in the same UPDATE (then NULL again).
    state_changes: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str | None] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(Text)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # The state's version, for optimistic concurrency: the engine raises it when it writes the
    # state, not when a command only appends history (a claim keeps cached workflows valid).
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

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
    """One part (a task) of an instance's state stored in parts; written by the trigger of
    migration 0013 from `instances.state_changes`."""

    __tablename__ = "state_parts"

    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    part: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


# The order task lists are shown in: due tasks first (earliest first), then priority, then id.
LIST_ORDER = (text("(due_at IS NULL)"), "due_at", text("priority DESC"), "id")


class HumanTask(Base):
    """Projection of a user task: what task lists and deadline checks read."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        Index("ix_human_tasks_state_assignee", "state", "assignee"),
        Index("ix_human_tasks_state_due", "state", "due_at"),
        Index("ix_human_tasks_instance_state", "instance_id", "state"),
        # Task lists in display order (migration 0003): no sort over all open tasks.
        Index("ix_human_tasks_list", "state", *LIST_ORDER),
        Index("ix_human_tasks_assignee_list", "assignee", "state", *LIST_ORDER),
        Index("ix_human_tasks_instance_list", "instance_id", "state", *LIST_ORDER),
        Index("ix_human_tasks_any_list", *LIST_ORDER),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    spiff_id: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(500))
    lane: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    form_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(200))
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)


class TaskCandidate(Base):
    """A candidate of an open human task: a user id or a group (role or department) id."""

    __tablename__ = "task_candidates"
    __table_args__ = (Index("ix_task_candidates_kind_value", "kind", "value"),)

    task_id: Mapped[int] = mapped_column(ForeignKey("human_tasks.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "user" | "group"
    value: Mapped[str] = mapped_column(String(200), primary_key=True)


class Timer(Base):
    """Something due at a time: a BPMN timer event, or a human task's due date or follow-up.

    kinds: "timer" (a waiting BPMN timer event), "due" (a human task falls due),
    "followup" (a reminder), "escalate" (the grace period after a due date ends),
    "start" (a timer start event of a deployed definition: starts a new instance).
    """

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    definition_id: Mapped[int | None] = mapped_column(ForeignKey("definitions.id"))
    kind: Mapped[str] = mapped_column(String(12))
    spiff_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_tasks.id"), index=True)
    element_id: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12))  # pending | fired | cancelled | failed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)


class MessageSubscription(Base):
    """An instance waiting for a message (intermediate catch or boundary event)."""

    __tablename__ = "message_subscriptions"
    __table_args__ = (Index("ix_message_subscriptions_name", "message_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    message_name: Mapped[str] = mapped_column(String(200))
    spiff_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    # "message", or "signal" (a signal catch: every waiting instance receives a broadcast).
    kind: Mapped[str] = mapped_column(String(20), server_default="message", default="message")


class Event(Base):
    """One entry of an instance's append-only, hash-chained history."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("instance_id", "seq", name="uq_events_instance_seq"),
        Index("ix_events_type_at", "type", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    element_id: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[int | None] = mapped_column(Integer)
    definition_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Seal(Base):
    """A checkpoint of every instance's chain head, and one Merkle root over them."""

    __tablename__ = "seals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    sealer: Mapped[str | None] = mapped_column(String(200))
    root: Mapped[str] = mapped_column(String(64))
    instances: Mapped[int] = mapped_column(Integer)
    # Ed25519 signature (hex) over the seal's statement, and the sha256 fingerprint of the key.
    signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(64))
    # "instance:seq" of the last head, signed, so that removing the last head is named.
    last_head: Mapped[str | None] = mapped_column(String(40))


class SealHead(Base):
    __tablename__ = "seal_heads"

    seal_id: Mapped[int] = mapped_column(ForeignKey("seals.id"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128))
    # "instance:seq" of the head before this one in the seal, signed with it: a removed head is
    # named by its neighbour.
    prev_head: Mapped[str | None] = mapped_column(String(40))


class DirectoryVersion(Base):
    """Every directory ever loaded, so a replay sees the organisation an instance ran with."""

    __tablename__ = "directory_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content: Mapped[dict[str, Any]] = mapped_column(JsonType)
    hash: Mapped[str] = mapped_column(String(64))


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_recipient", "recipient", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    task_id: Mapped[int | None] = mapped_column(Integer)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    head: Mapped[str | None] = mapped_column(String(200))
    parent: Mapped[str | None] = mapped_column(String(200))


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    department: Mapped[str | None] = mapped_column(String(200), index=True)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (Index("ix_user_roles_role", "role_id"),)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(String(200), primary_key=True)


# ----------------------------------------------------------------------------- identity (server)
# Keyed by the user id as text, not a foreign key: reloading the directory replaces the users
# table, and a password or token must survive that (it stops working if the user is gone).
class Credential(Base):
    __tablename__ = "credentials"
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """Failed logins per key ("user:ID" or "addr:IP"): counted, slowed, locked for a while."""

    __tablename__ = "login_failures"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PublicCase(Base):
    """A case started by a member of the public, with the tracking code they were given."""

    __tablename__ = "public_cases"
    __table_args__ = (Index("ix_public_cases_created", "created_at"),
                      Index("ix_public_cases_address", "address", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))  # a salted hash, never the address itself
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExternalTask(Base):
    """A service task waiting for its work: fetched and locked by an external worker
    (`camunda:type="external"`, `handler` empty), or run in process by the deadline worker
    (`handler` names a registered callable). One row per waiting SpiffWorkflow task."""

    __tablename__ = "external_tasks"
    __table_args__ = (Index("ix_external_tasks_fetch", "state", "topic", "priority"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(200))
    spiff_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200))
    handler: Mapped[str | None] = mapped_column(String(200))
    business_key: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))  # open | completed | cancelled
    lock_owner: Mapped[str | None] = mapped_column(String(200))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a failure's retry timeout
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Incident(Base):
    """Something failed and waits for an operator: a script, a handler, a timer, or an external
    task out of retries. `ref` names the failed row (`timer:7`, `external:3`)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "resolved_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    element_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # script | handler | timer | external
    ref: Mapped[str | None] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
