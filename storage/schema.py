"""The tables the engine keeps, as SQLAlchemy Core `Table` objects: the one schema definition.

The ORM classes of `storage.models` are mapped onto these same tables; code that only reads (the
task list of `tigao tasks`) queries them with SQLAlchemy Core and never imports the ORM, which
costs a command line more to import than the query costs to run.

The serialized SpiffWorkflow state lives in `instances.state`; everything a list, a worker or a
report needs (human tasks, timers, message subscriptions) is projected into its own indexed table
in the same transaction, so no query ever has to load serialized state.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from .basics import SCHEMA_REVISION  # noqa: E402,F401 - the revision these tables match


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

metadata = MetaData()

# A column is NOT NULL where it says so (and in the primary key); the ORM classes of
# storage/models.py annotate it `Mapped[X]`, a nullable one `Mapped[X | None]`.

# Key/value settings of one database: the clock mode and the simulated time.
settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# One version of one process key, with every file needed to rebuild it.
definitions = Table(
    "definitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), index=True, nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(500)),
    Column("content_hash", String(64), nullable=False),
    Column("files", JsonType, nullable=False),
    Column("deployed_at", UTCDateTime, nullable=False),
    Column("deployed_by", String(200)),
    UniqueConstraint("key", "version", name="uq_definitions_key_version"),
)


instances = Table(
    "instances", metadata,
    Column("id", Integer, primary_key=True),
    Column("definition_id", ForeignKey("definitions.id"), index=True, nullable=False),
    Column("process_key", String(200), nullable=False),
    Column("business_key", String(200), index=True),
    Column("status", String(20), index=True, nullable=False),
    # Format 1: the whole SpiffWorkflow state. Format 2: its head, the tasks being rows of
    # `state_parts` (storage/state_parts.py).
    Column("state", Text, nullable=False),
    Column("state_format", Integer, default=1, nullable=False),
    # Parts to write, applied to `state_parts` by a trigger in the same UPDATE (then NULL again).
    Column("state_changes", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_by", String(200)),
    Column("ended_at", UTCDateTime),
    Column("end_reason", Text),
    Column("last_seq", Integer, default=0, nullable=False),
    Column("last_hash", String(64), nullable=False),
    # The state's version, for optimistic concurrency: the engine raises it when it writes the
    # state, not when a command only appends history (a claim keeps cached workflows valid).
    Column("version", Integer, nullable=False, default=1),
    Index("ix_instances_key_status", "process_key", "status"),
)

# One part (a task) of an instance's state stored in parts; written by the trigger of migration
# 0013 from `instances.state_changes`.
state_parts = Table(
    "state_parts", metadata,
    Column("instance_id", ForeignKey("instances.id"), primary_key=True),
    Column("part", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)


# The order task lists are shown in: due tasks first (earliest first), then priority, then id.
LIST_ORDER = (text("(due_at IS NULL)"), "due_at", text("priority DESC"), "id")

# Projection of a user task: what task lists and deadline checks read.
human_tasks = Table(
    "human_tasks", metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", ForeignKey("instances.id"), nullable=False),
    Column("spiff_id", String(36), unique=True, nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("name", String(500)),
    Column("lane", String(200)),
    Column("role", String(200)),
    Column("assignee", String(200)),
    Column("state", String(20), nullable=False),
    Column("priority", Integer, default=50, nullable=False),
    Column("form_key", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime),
    Column("follow_up_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("completed_by", String(200)),
    Column("overdue_since", UTCDateTime),
    Column("escalation_level", Integer, default=0, nullable=False),
    # The data the task completed with, its process variables and the form (migration 0015), in
    # the state's JSON encoding: what the task shows once pruning has cut it from the live tree.
    Column("completed_data", Text),
    Index("ix_human_tasks_state_assignee", "state", "assignee"),
    Index("ix_human_tasks_state_due", "state", "due_at"),
    Index("ix_human_tasks_instance_state", "instance_id", "state"),
    # Task lists in display order (migration 0003): no sort over all open tasks.
    # The assignee last (migration 0014): whether a row walked is the user's is read from the index.
    Index("ix_human_tasks_list", "state", *LIST_ORDER, "assignee"),
    Index("ix_human_tasks_assignee_list", "assignee", "state", *LIST_ORDER),
    Index("ix_human_tasks_instance_list", "instance_id", "state", *LIST_ORDER),
    Index("ix_human_tasks_any_list", *LIST_ORDER),
)


# A candidate of an open human task: a user id or a group (role or department) id.
task_candidates = Table(
    "task_candidates", metadata,
    Column("task_id", ForeignKey("human_tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "user" | "group"
    Column("value", String(200), primary_key=True),
    Index("ix_task_candidates_kind_value", "kind", "value"),
)


# Something due at a time: a BPMN timer event, or a human task's due date or follow-up.
# "timer" (a waiting BPMN timer event), "due" (a human task falls due),
# "followup" (a reminder), "escalate" (the grace period after a due date ends),
# "start" (a timer start event of a deployed definition: starts a new instance).
timers = Table(
    "timers", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("instance_id", ForeignKey("instances.id"), index=True),
    Column("definition_id", ForeignKey("definitions.id")),
    Column("kind", String(12), nullable=False),
    Column("spiff_id", String(36)),
    Column("task_id", ForeignKey("human_tasks.id"), index=True),
    Column("element_id", String(200)),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(12), nullable=False),  # pending | fired | cancelled | failed
    Column("claimed_by", String(100)),
    Column("claimed_until", UTCDateTime),
    Column("fired_at", UTCDateTime),
    Column("payload", JsonType),
    Column("error", Text),
    Index("ix_timers_state_due", "state", "due_at"),
)


# An instance waiting for a message (intermediate catch or boundary event).
message_subscriptions = Table(
    "message_subscriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", ForeignKey("instances.id"), index=True, nullable=False),
    Column("message_name", String(200), nullable=False),
    Column("spiff_id", String(36), nullable=False),
    Column("element_id", String(200), nullable=False),
    # "message", or "signal" (a signal catch: every waiting instance receives a broadcast).
    Column("kind", String(20), server_default="message", default="message", nullable=False),
    Index("ix_message_subscriptions_name", "message_name"),
)


# One entry of an instance's append-only, hash-chained history.
events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("instance_id", Integer, index=True, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200)),
    Column("type", String(40), nullable=False),
    Column("element_id", String(200)),
    Column("task_id", Integer),
    Column("definition_id", Integer, nullable=False),
    Column("payload", JsonType, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("instance_id", "seq", name="uq_events_instance_seq"),
    Index("ix_events_type_at", "type", "at"),
)


# A checkpoint of every instance's chain head, and one Merkle root over them.
seals = Table(
    "seals", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("sealer", String(200)),
    Column("root", String(64), nullable=False),
    Column("instances", Integer, nullable=False),
    # Ed25519 signature (hex) over the seal's statement, and the sha256 fingerprint of the key.
    Column("signature", String(128)),
    Column("key_id", String(64)),
    # "instance:seq" of the last head, signed, so that removing the last head is named.
    Column("last_head", String(40)),
)


seal_heads = Table(
    "seal_heads", metadata,
    Column("seal_id", ForeignKey("seals.id"), primary_key=True),
    Column("instance_id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", String(128)),
    # "instance:seq" of the head before this one in the seal, signed with it: a removed head is
    # named by its neighbour.
    Column("prev_head", String(40)),
)


# Every directory ever loaded, so a replay sees the organisation an instance ran with.
directory_versions = Table(
    "directory_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("content", JsonType, nullable=False),
    Column("hash", String(64), nullable=False),
)


notifications = Table(
    "notifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("task_id", Integer),
    Column("instance_id", Integer),
    Column("message", Text, nullable=False),
    Column("read_at", UTCDateTime),
    Index("ix_notifications_recipient", "recipient", "at"),
)


departments = Table(
    "departments", metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("head", String(200)),
    Column("parent", String(200)),
)


roles = Table(
    "roles", metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(500), nullable=False),
)


users = Table(
    "users", metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("department", String(200), index=True),
)


user_roles = Table(
    "user_roles", metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", String(200), primary_key=True),
    Index("ix_user_roles_role", "role_id"),
)


# ----------------------------------------------------------------------------- identity (server)
# Keyed by the user id as text, not a foreign key: reloading the directory replaces the users
# table, and a password or token must survive that (it stops working if the user is gone).
credentials = Table(
    "credentials", metadata,
    Column("user_id", String(200), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(200), index=True, nullable=False),
    Column("name", String(200)),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)


web_sessions = Table(
    "web_sessions", metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("user_id", String(200), index=True, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)


# Failed logins per key ("user:ID" or "addr:IP"): counted, slowed, locked for a while.
login_failures = Table(
    "login_failures", metadata,
    Column("key", String(300), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)


# A case started by a member of the public, with the tracking code they were given.
public_cases = Table(
    "public_cases", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(20), unique=True, nullable=False),
    Column("instance_id", ForeignKey("instances.id"), index=True, nullable=False),
    Column("process_key", String(200), nullable=False),
    Column("address", String(64), nullable=False),  # a salted hash, never the address itself
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_public_cases_created", "created_at"),
    Index("ix_public_cases_address", "address", "created_at"),
)


# A service task waiting for its work: fetched and locked by an external worker
# (`camunda:type="external"`, `handler` empty), or run in process by the deadline worker
# (`handler` names a registered callable). One row per waiting SpiffWorkflow task.
external_tasks = Table(
    "external_tasks", metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", ForeignKey("instances.id"), index=True, nullable=False),
    Column("process_key", String(200), nullable=False),
    Column("spiff_id", String(36), nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("handler", String(200)),
    Column("business_key", String(200)),
    Column("priority", Integer, nullable=False),
    Column("retries", Integer),
    Column("state", String(12), nullable=False),  # open | completed | cancelled
    Column("lock_owner", String(200)),
    Column("lock_expires_at", UTCDateTime),
    Column("not_before", UTCDateTime),  # a failure's retry timeout
    Column("error_message", Text),
    Column("error_details", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index("ix_external_tasks_fetch", "state", "topic", "priority"),
)


# Something failed and waits for an operator: a script, a handler, a timer, or an external
# task out of retries. `ref` names the failed row (`timer:7`, `external:3`).
incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", ForeignKey("instances.id"), index=True),
    Column("element_id", String(200)),
    Column("kind", String(20), nullable=False),  # script | handler | timer | external
    Column("ref", String(60)),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(200)),
    Index("ix_incidents_open", "resolved_at", "created_at"),
)
