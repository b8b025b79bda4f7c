"""The Engine facade: every command is one transaction over storage, SpiffWorkflow and history."""

from __future__ import annotations

import hashlib
import json
from copy import deepcopy
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from sqlalchemy import and_, delete, event, func, or_, select
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage import db as dbmod
from storage.models import (
    Definition,
    Department,
    DirectoryVersion,
    Event,
    HumanTask,
    Instance,
    MessageSubscription,
    Notification,
    Role,
    Setting,
    TaskCandidate,
    User,
    UserRole,
)

from . import history, limits, signals
from .assignment import Dept, Directory, Person, parse_directory_file, split_ids
from .clock import Clock, SettableClock
from .external import ExternalTaskApi
from .incidents import IncidentApi
from .errors import (
    Conflict,
    EngineError,
    InputError,
    NotAllowed,
    NotFound,
    ScriptError,
    StorageError,
)
from .retry import Busy, Contention, is_bad_value, is_busy, is_contention, retrying
from .tasklist import task_list_query
from .timeutil import due_from, parse_datetime

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    from .definitions import Analysis, Built, BuiltCache
    from .scripting import TigaoScriptEngine
    from .spiff import StateSerializer
# SpiffWorkflow, lxml and jsonschema (definitions, scripting, spiff, forms) are imported where they
# are used, so that reading the projections (a task list) starts without them.

T = TypeVar("T")
WF_CACHE_SIZE = 256  # instances whose last saved workflow object is kept in memory
READ_ONLY_ROLE = "auditor"
PUBLIC_ACTOR = "public"  # the name history gives a case filed by the public (engine/public.py)
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
MAX_CLOCK_YEAR = 9000  # a simulated clock stays far enough from year 9999 for due dates and cycles
MAX_DATA_BYTES = 5 * 1024 * 1024  # a --data @file


@dataclass
class DeployResult:
    key: str
    version: int
    definition_id: int
    created: bool


@dataclass
class TaskView:
    id: int
    instance_id: int
    element_id: str
    name: str | None
    role: str | None
    assignee: str | None
    candidate_users: list[str]
    candidate_groups: list[str]
    state: str
    priority: int
    form_key: str | None
    created_at: datetime
    due_at: datetime | None
    follow_up_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    overdue: bool
    process_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat()
        return d


class Engine(ExternalTaskApi, IncidentApi):
    """The public facade of the runtime. One instance per database URL; thread-safe per call."""

    def __init__(self, url: str | None = None, clock: Clock | None = None):
        self.url = dbmod.normalise_url(url)
        self.safe_url = dbmod.safe_url(self.url)
        self._given_clock = clock
        self.clock: Clock = clock or Clock()
        self._script_engine: TigaoScriptEngine | None = None
        self._serializer: StateSerializer | None = None
        self._built_cache: BuiltCache | None = None
        # Set by engine/public.py while it files a case for the public (actor PUBLIC_ACTOR).
        self.public_desk = False
        self._sa: Any = None
        self._sessions: sessionmaker[Session] | None = None
        self._read_sessions: sessionmaker[Session] | None = None
        self._directory: Directory | None = None
        self._wf_cache: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._saved_runs: list[Run] = []
        self._signal_queue: Any = None  # while a broadcast runs: the signals still to deliver
        self._directory_stamp: str | None = None
        self.directory_version: int | None = None
        self._tx_directory_stamp: str | None = None
        self.simulated = False

    @property
    def script_engine(self) -> TigaoScriptEngine:
        if self._script_engine is None:  # built on first use: see the imports
            from .scripting import TigaoScriptEngine

            self._script_engine = TigaoScriptEngine(self.clock, self._directory)
        return self._script_engine

    @property
    def serializer(self) -> StateSerializer:
        if self._serializer is None:
            from .spiff import StateSerializer

            self._serializer = StateSerializer()
        return self._serializer

    @property
    def built(self) -> BuiltCache:
        if self._built_cache is None:
            from .definitions import BuiltCache

            self._built_cache = BuiltCache()
        return self._built_cache

    # ------------------------------------------------------------------ connection & transactions
    @property
    def dialect(self) -> str:
        return self._connect().dialect.name

    def _connect(self, create: bool = False) -> Any:
        if self._sa is None:
            try:
                if not create:
                    dbmod.check_exists(self.url)
                self._sa = dbmod.make_engine(self.url)
            except dbmod.DatabaseProblem as exc:
                raise StorageError(str(exc)) from exc
            self._sessions = dbmod.session_factory(self._sa)
            self._read_sessions = dbmod.read_session_factory(self._sa)
            # History events are inserted in one batch, with the chain head, just before commit.
            event.listen(self._sessions, "before_commit", history.flush_pending)
        return self._sa

    def close(self) -> None:
        if self._sa is not None:
            self._sa.dispose()
            self._sa = None

    @contextmanager
    def _tx(self, read: bool = False) -> Iterator[Session]:
        """One transaction; `read=True` for one that only reads (it never takes the write lock)."""
        self._connect()
        assert self._sessions is not None
        self._saved_runs: list[Run] = []
        sessions = self._read_sessions if read else self._sessions
        try:
            with sessions() as session, session.begin():
                self._sync_clock(session)
                yield session
            for run in self._saved_runs:  # committed: these objects are what the database holds
                self._wf_cache[run.inst.id] = (run.inst.version, run.wf)
                self._wf_cache.move_to_end(run.inst.id)
            while len(self._wf_cache) > WF_CACHE_SIZE:
                self._wf_cache.popitem(last=False)
            thrown = [(n, run.inst.id, run.finish_actor) for run in self._saved_runs for n in run.thrown_signals]
            for name, origin, by in thrown:  # committed: now the other instances hear the signals
                signals.broadcast(self, name, {}, by, origin=origin)
        except EngineError:
            raise
        except OverflowError as exc:  # e.g. an id past SQLite's 64-bit integers, a date past 9999
            raise InputError(f"a number or date is out of range ({exc}): ids are whole numbers up to "
                             f"{MAX_ID}, dates end in year 9999") from exc
        except UnicodeError as exc:  # a lone surrogate (an undecodable command-line byte) in some text
            raise InputError(f"text is not valid UTF-8 ({exc.reason} at position {getattr(exc, 'start', '?')}); "
                             "give UTF-8 text") from exc
        except StaleDataError as exc:
            raise Conflict("the instance was changed by someone else at the same time; reload and try again") \
                from exc
        except IntegrityError as exc:
            raise Conflict(f"a concurrent change collided with this one; try again ({_short(exc)})") from exc
        except (OperationalError, DatabaseError) as exc:
            if is_contention(exc):  # aborted for locks, nothing changed: the command may run again
                raise Contention("the database was busy with a conflicting change (" + _short(exc) + ")") from exc
            if is_busy(exc):
                raise Busy(_storage_message(self.safe_url, exc)) from exc
            if is_bad_value(exc):
                raise InputError(f"the database cannot store a value given ({_short(exc)}): ids are whole numbers "
                                 f"up to {MAX_ID}, and text may not hold NUL characters") from exc
            raise StorageError(_storage_message(self.safe_url, exc)) from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {_short(exc)}") from exc

    def _sync_clock(self, session: Session) -> None:
        try:
            rows = dict(session.execute(select(Setting.key, Setting.value)
                                        .where(Setting.key.in_(["clock", "sim_now", "directory_version"]))).all())
        except (OperationalError, DatabaseError) as exc:
            msg = str(exc).lower()
            if "no such table" in msg or "undefinedtable" in msg or "relation" in msg and "does not exist" in msg:
                raise StorageError(f"'{self.safe_url}' is not a Tigao database (no tables): run 'tigao init'") \
                    from exc
            raise
        self.simulated = rows.get("clock") == "simulated"
        self._tx_directory_stamp = rows.get("directory_version")
        if self._given_clock is not None:
            base = self._given_clock.now()
        elif self.simulated:
            base = datetime.fromisoformat(rows["sim_now"])
        else:
            base = datetime.now(timezone.utc)
        # Time stands still within one transaction: every "now" of a command (events, due dates,
        # timers evaluated by SpiffWorkflow) is the same instant, which is what replay sets.
        self.clock = SettableClock(base)
        if self._script_engine is not None:
            self._script_engine.clock = self.clock

    # ------------------------------------------------------------------ init & clock
    def init(self, simulated: datetime | None = None) -> str:
        """Create or upgrade the database. With `simulated`, its clock is stored in it."""
        sa = self._connect(create=True)
        path = dbmod.sqlite_path(self.url)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            dbmod.upgrade(sa)
        except (OperationalError, DatabaseError) as exc:
            raise StorageError(_storage_message(self.safe_url, exc)) from exc
        assert self._sessions is not None
        with self._sessions() as s, s.begin():
            existing = s.get(Setting, "clock")
            if existing is None:
                s.add(Setting(key="clock", value="simulated" if simulated else "system"))
                if simulated:
                    s.add(Setting(key="sim_now", value=simulated.astimezone(timezone.utc).isoformat()))
                s.add(Setting(key="created_at", value=datetime.now(timezone.utc).isoformat()))
                return "created"
            if simulated is not None and existing.value != "simulated":
                raise InputError("this database runs on the real clock; --simulated only applies to a new one")
        return "upgraded"

    def now(self) -> datetime:
        with self._tx(read=True):
            return self.clock.now()

    @retrying
    def set_clock(self, when: datetime) -> datetime:
        with self._tx() as s:
            if not self.simulated:
                raise NotAllowed("this database runs on the real clock, which cannot be set; "
                                 "create a simulated one with 'tigao init --simulated ISO'")
            clock = self.clock
            assert isinstance(clock, SettableClock)
            if when.year >= MAX_CLOCK_YEAR:
                raise InputError(f"{when.isoformat()} is too far ahead: the simulated clock goes up to year "
                                 f"{MAX_CLOCK_YEAR - 1} (due dates and timers count on from it)")
            clock.set(when)
            s.merge(Setting(key="sim_now", value=clock.now().isoformat()))
            return clock.now()

    def advance_clock(self, delta: timedelta) -> datetime:
        with self._tx(read=True):
            if not self.simulated:
                raise NotAllowed("this database runs on the real clock, which cannot be moved")
            target = self.clock.now() + delta
        return self.set_clock(target)

    # ------------------------------------------------------------------ directory
    @retrying
    def load_directory(self, path: str | Path) -> dict[str, int]:
        """Replace the directory with the file's content; the previous versions stay on record."""
        users, depts, roles = parse_directory_file(path)
        content = Directory(users, depts, roles).to_content()
        with self._tx() as s:
            s.execute(delete(UserRole))
            s.execute(delete(User))
            s.execute(delete(Department))
            s.execute(delete(Role))
            s.flush()
            s.add_all(Role(id=r, name=n) for r, n in roles.items())
            s.add_all(Department(id=d.id, name=d.name, head=d.head, parent=d.parent) for d in depts)
            s.add_all(User(id=u.id, name=u.name, department=u.department) for u in users)
            s.flush()
            s.add_all(UserRole(user_id=u.id, role_id=r) for u in users for r in u.roles)
            version = DirectoryVersion(loaded_at=self.clock.now(), content=content,
                                       hash=hashlib.sha256(history.canonical(content)).hexdigest())
            s.add(version)
            s.flush()
            s.merge(Setting(key="directory_version", value=str(version.id)))
            self._tx_directory_stamp = str(version.id)
        self._directory = None
        return {"users": len(users), "departments": len(depts), "roles": len(roles), "version": version.id}

    def directory(self) -> Directory:
        with self._tx(read=True) as s:
            return self._dir(s)

    def _dir(self, s: Session) -> Directory:
        # The stamp was read with the clock at the start of the transaction (one query for both).
        stamp = self._tx_directory_stamp
        if self._directory is None or stamp != self._directory_stamp:
            roles_of: dict[str, list[str]] = {}
            for uid, rid in s.execute(select(UserRole.user_id, UserRole.role_id).order_by(UserRole.role_id)):
                roles_of.setdefault(uid, []).append(rid)
            users = [Person(u.id, u.name, u.department, roles_of.get(u.id, [])) for u in s.scalars(select(User))]
            depts = [Dept(d.id, d.name, d.head, d.parent) for d in s.scalars(select(Department))]
            roles = {r.id: r.name for r in s.scalars(select(Role))}
            self._directory = Directory(users, depts, roles)
            self._directory_stamp = stamp
            self.directory_version = int(stamp) if stamp and stamp.isdigit() else None
        if self._script_engine is not None:
            self._script_engine.directory = self._directory
        return self._directory

    def _check_actor(self, s: Session, actor: str | None, acting: bool = True) -> Directory:
        d = self._dir(s)
        # Every actor is a person of the directory: `system` is the engine's own name in history
        # (the worker's acts) and no one may act under it, nor under any name not on file. Before
        # the first directory load nobody can be checked, so the operator names themself (the
        # first `directory load --as admin`).
        if actor == PUBLIC_ACTOR and self.public_desk:
            return d  # the public hotline's own name, used only by engine/public.py
        if actor is not None and actor not in d.users and (bool(d.users) or actor == "system" or not actor):
            raise NotAllowed(f"unknown user '{actor}'; users come from the directory ('tigao directory load')"
                             + ("; 'system' is the engine's own name and cannot be used" if actor == "system" else ""))
        if acting and actor and d.has_role(actor, READ_ONLY_ROLE) and len(d.users[actor].roles) == 1:
            raise NotAllowed(f"'{actor}' is an auditor and may only read; this command changes state")
        return d

    # ------------------------------------------------------------------ definitions
    def validate(self, paths: list[str | Path]) -> Analysis:
        from .definitions import analyse, read_bundle, with_deployed_forms

        bundle = read_bundle(paths)
        with self._tx(read=True) as s:
            directory = self._dir(s)
            latest = self._latest_definitions(s)
            bundle = with_deployed_forms(bundle, [d.files for d in latest.values()])
        return analyse(bundle, directory, set(latest))

    @retrying
    def deploy(self, paths: list[str | Path], actor: str | None = None) -> list[DeployResult]:
        from .definitions import analyse, content_hash, files_for, read_bundle, with_deployed_forms

        bundle = read_bundle(paths)
        with self._tx() as s:
            self._check_actor(s, actor)
            directory = self._dir(s)
            latest = self._latest_definitions(s)
            bundle = with_deployed_forms(bundle, [d.files for d in latest.values()])
            analysis = analyse(bundle, directory, set(latest))
            now = self.clock.now()
            results = []
            deployed_files = {k: d.files for k, d in latest.items()}
            for key in sorted(analysis.processes):
                info = analysis.processes[key]
                if not info.executable:
                    continue
                files = files_for(key, analysis, bundle, deployed_files)
                digest = content_hash(files)
                current = latest.get(key)
                if current is not None and current.content_hash == digest:
                    results.append(DeployResult(key, current.version, current.id, False))
                    continue
                d = Definition(key=key, version=(current.version + 1) if current else 1, name=info.name,
                               content_hash=digest, files=files, deployed_at=now, deployed_by=actor)
                s.add(d)
                s.flush()
                results.append(DeployResult(key, d.version, d.id, True))
                from .deadlines import schedule_start_timers

                schedule_start_timers(self, s, d, info, now)
            return results

    def _latest_definitions(self, s: Session) -> dict[str, Definition]:
        sub = select(Definition.key, func.max(Definition.version).label("v")).group_by(Definition.key).subquery()
        rows = s.scalars(select(Definition).join(sub, and_(Definition.key == sub.c.key,
                                                           Definition.version == sub.c.v)))
        return {d.key: d for d in rows}

    def process_keys(self) -> list[str]:
        """The keys of every deployed process (cheap: no files are read)."""
        with self._tx(read=True) as s:
            return sorted(s.scalars(select(Definition.key).distinct()))

    def definitions(self) -> list[dict[str, Any]]:
        with self._tx(read=True) as s:
            counts = dict(s.execute(select(Instance.definition_id, func.count()).group_by(Instance.definition_id))
                          .all())
            return [
                {"id": d.id, "key": d.key, "version": d.version, "name": d.name, "hash": d.content_hash[:12],
                 "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "instances": counts.get(d.id, 0),
                 "files": sorted(d.files)}
                for d in s.scalars(select(Definition).order_by(Definition.key, Definition.version))
            ]

    def definition_files(self, key: str, version: int) -> dict[str, str]:
        """The files (name -> text) deployed as `key` version `version`."""
        with self._tx() as s:
            d = s.scalar(select(Definition).where(Definition.key == key, Definition.version == version))
            if d is None:
                raise NotFound(f"no version {version} of process '{key}'; 'tigao definitions' lists them")
            return dict(d.files)

    def _built(self, d: Definition) -> Built:
        return self.built.get(d.id, d.key, d.files)

    # ------------------------------------------------------------------ instances
    @retrying
    def start(self, key: str, data: dict[str, Any] | None = None, business_key: str | None = None,
              actor: str | None = None) -> int:
        data = _check_data(data)
        with self._tx() as s:
            self._check_actor(s, actor)
            d = self._latest_definitions(s).get(key)
            if d is None:
                raise NotFound(f"no process '{key}' is deployed; 'tigao definitions' lists what is")
            built = self._built(d)
            info = built.analysis.processes[key]
            if info.message_starts and not _has_plain_start(built):
                raise InputError(f"process '{key}' starts when message '{info.message_starts[0]}' arrives; "
                                 f"send it with 'tigao message {info.message_starts[0]}'")
            from .camunda_start import with_start_form

            data = with_start_form(info.start, built.forms, data)  # the start form, with its defaults
            run = self._new_run(s, d, built, data, business_key, actor, {"via": "start"})
            run.advance()
            run.finish(actor)
            return run.inst.id

    def _new_run(self, s: Session, d: Definition, built: Built, data: dict[str, Any], business_key: str | None,
                 actor: str | None, how: dict[str, Any]) -> Run:
        from .spiff import TigaoWorkflow

        from .camunda_start import initiator_data

        now = self.clock.now()
        self._dir(s)
        data = {**data, **initiator_data(built.analysis.processes[d.key].start, how, actor)}  # camunda:initiator
        wf = TigaoWorkflow(built.spec, built.subprocess_specs, script_engine=self.script_engine)
        wf.task_tree.data.update(data)
        for child in wf.task_tree.children:
            child.data.update(data)
        inst = Instance(definition_id=d.id, process_key=d.key, business_key=business_key, status="running",
                        state="", started_at=now, started_by=actor, last_seq=0, last_hash=history.GENESIS)
        s.add(inst)
        s.flush()
        run = Run(self, s, inst, built, wf, now)
        run.event("instance_started", actor, {"data": data, "business_key": business_key,
                                               "definition": {"key": d.key, "version": d.version}, **how})
        return run

    def _run_on(self, instance_id: int, actor: str | None, body: Callable[[Run], T],
                acting: bool = True) -> T:
        """Load an instance under lock, apply `body`, advance the engine, sync and save; one transaction.

        A script that fails rolls everything back; the failure itself is then recorded as an event.
        """
        try:
            with self._tx() as s:
                self._check_actor(s, actor, acting)
                run = self._load_run(s, instance_id)
                result = body(run)
                run.advance()
                run.finish(actor)
                return result
        except ScriptError as exc:
            self._record_failure(instance_id, actor, exc)
            raise

    def _load_run(self, s: Session, instance_id: int, for_update: bool = True) -> Run:
        inst = s.scalar(select(Instance).where(Instance.id == instance_id).with_for_update())
        # A definition row never changes: once built, it is not read again.
        built = self.built.peek(inst.definition_id) if inst is not None else None
        if built is None:
            inst, _d, built = self._instance_built(s, instance_id, lock=True)
        self._dir(s)
        # The workflow this process saved last is reused when the stored version is still the one
        # it saved (no one else changed the instance since); it is taken out of the cache, so a
        # command that fails can never leave a half-changed object behind.
        cached = self._wf_cache.pop(instance_id, None) if for_update else None
        if cached is not None and cached[0] == inst.version:
            wf = cached[1]
        else:
            wf = self.serializer.loads(inst.state, built.spec, built.subprocess_specs, self.script_engine)
        return Run(self, s, inst, built, wf, self.clock.now())

    def _record_failure(self, instance_id: int, actor: str | None, exc: ScriptError) -> None:
        try:
            with self._tx() as s:
                inst = s.scalar(select(Instance).where(Instance.id == instance_id).with_for_update())
                if inst is not None:
                    history.append(s, inst, "script_failed", self.clock.now(), actor,
                                   {"error": exc.message, "element": getattr(exc, "element", None)},
                                   element_id=getattr(exc, "element", None))
        except EngineError:
            pass

    @retrying
    def cancel(self, instance_id: int, reason: str, actor: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InputError("give a reason for cancelling (--reason TEXT); it goes into the history")

        def body(run: Run) -> None:
            if run.inst.status != "running":
                raise Conflict(f"instance {instance_id} is {run.inst.status}, not running")
            run.wf.cancel()
            run.event("instance_cancelled", actor, {"reason": reason})
            run.cancelled = reason

        self._run_on(instance_id, actor, body)

    # An administrator's changes to running instances (engine/modify.py).
    @retrying
    def migrate(self, instance_id: int, to_version: int, mapping: dict[str, str] | None = None,
                actor: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Move a running instance to version `to_version` (element ids map to themselves unless mapped)."""
        from . import modify

        return modify.migrate(self, instance_id, to_version, mapping, actor, reason)

    def migrate_all(self, key: str, from_version: int, to_version: int, mapping: dict[str, str] | None = None,
                    actor: str | None = None, reason: str | None = None) -> Any:
        """Migrate every running instance of `key`:`from_version`; a report of moved and refused."""
        from . import modify

        return modify.migrate_all(self, key, from_version, to_version, mapping, actor, reason)

    @retrying
    def cancel_activity(self, instance_id: int, element_id: str, actor: str | None = None,
                        reason: str | None = None) -> None:
        from . import modify

        modify.cancel_activity(self, instance_id, element_id, actor, reason)

    @retrying
    def start_before(self, instance_id: int, element_id: str, actor: str | None = None,
                     reason: str | None = None) -> None:
        from . import modify

        modify.start_before(self, instance_id, element_id, actor, reason)

    @retrying
    def set_variable(self, instance_id: int, name: str, value: Any, actor: str | None = None,
                     reason: str | None = None) -> None:
        from . import modify

        modify.set_variable(self, instance_id, name, value, actor, reason)

    def instances(self, status: str | None = None, key: str | None = None, business_key: str | None = None,
                  limit: int = 200, started_after: datetime | None = None, started_before: datetime | None = None,
                  offset: int = 0) -> list[dict[str, Any]]:
        with self._tx(read=True) as s:
            q = select(Instance.id, Instance.process_key, Definition.version, Instance.business_key,
                       Instance.status, Instance.started_at, Instance.ended_at, Instance.started_by) \
                .join(Definition, Definition.id == Instance.definition_id)
            if status:
                q = q.where(Instance.status == status)
            if key:
                q = q.where(Instance.process_key == key)
            if business_key:
                q = q.where(Instance.business_key == business_key)
            if started_after:
                q = q.where(Instance.started_at >= started_after)
            if started_before:
                q = q.where(Instance.started_at < started_before)
            q = q.order_by(Instance.id.desc()).offset(offset).limit(limit)
            rows = s.execute(q).all()
            open_counts = dict(s.execute(
                select(HumanTask.instance_id, func.count()).where(HumanTask.state == "open",
                                                                  HumanTask.instance_id.in_([r.id for r in rows]))
                .group_by(HumanTask.instance_id)).all())
            return [{"id": r.id, "key": r.process_key, "version": r.version, "business_key": r.business_key,
                     "status": r.status, "started_at": r.started_at, "ended_at": r.ended_at,
                     "started_by": r.started_by, "open_tasks": open_counts.get(r.id, 0)} for r in rows]

    def _instance_built(self, s: Session, instance_id: int, lock: bool = False) -> tuple[Instance, Definition, Built]:
        """An instance with the definition version it runs on, built; NotFound if there is none."""
        q = select(Instance).where(Instance.id == instance_id)
        inst = s.scalar(q.with_for_update() if lock else q)
        if inst is None:
            raise NotFound(f"no instance {instance_id}; 'tigao instances' lists them")
        d = s.get(Definition, inst.definition_id)
        assert d is not None
        return inst, d, self._built(d)

    def instance(self, instance_id: int) -> dict[str, Any]:
        from SpiffWorkflow.util.task import TaskState

        from .spiff import next_timer_due

        with self._tx(read=True) as s:
            inst, d, built = self._instance_built(s, instance_id)
            wf = self.serializer.loads(inst.state, built.spec, built.subprocess_specs, self.script_engine)
            tasks = self._task_views(s, select(HumanTask).where(HumanTask.instance_id == instance_id)
                                     .order_by(HumanTask.id))
            waiting = [{"element": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name,
                        "event": type(t.task_spec.event_definition).__name__,
                        "due": next_timer_due(t)} for t in wf.get_tasks(state=TaskState.WAITING)
                       if getattr(t.task_spec, "event_definition", None) is not None]
            return {"id": inst.id, "key": inst.process_key, "version": d.version, "definition_id": d.id,
                    "business_key": inst.business_key, "status": inst.status, "started_at": inst.started_at,
                    "started_by": inst.started_by, "ended_at": inst.ended_at, "end_reason": inst.end_reason,
                    "data": process_data(wf), "tasks": tasks, "waiting": waiting, "events": inst.last_seq}

    # ------------------------------------------------------------------ tasks
    def tasks(self, user: str | None = None, scope: str = "available", group: str | None = None,
              instance_id: int | None = None, overdue: bool = False, state: str = "open",
              department: str | None = None, limit: int = 500, due_before: datetime | None = None,
              unassigned: bool = False, offset: int = 0, process_key: str | None = None) -> list[TaskView]:
        """Task list from the projection tables.

        scope: "available" (assigned to the user, or unassigned with the user a candidate),
        "mine" (assigned to the user), "all" (every task).
        """
        with self._tx(read=True) as s:
            q = task_list_query(self._check_actor(s, user, acting=False), self.clock.now(), user, scope, group, instance_id, overdue, state,
                                department, limit, due_before, unassigned, process_key, offset)
            return self._task_views(s, q)

    def task_count(self, user: str | None = None, scope: str = "available", group: str | None = None,
                   instance_id: int | None = None, overdue: bool = False, state: str = "open",
                   department: str | None = None, due_before: datetime | None = None, unassigned: bool = False,
                   process_key: str | None = None, cap: int | None = None) -> int:
        """How many tasks `tasks` would list with the same filters and no limit.

        With `cap`, counting stops after `cap` + 1 tasks (a page shows "1,000+"), so its cost
        follows the cap, not the number of open tasks.
        """
        with self._tx(read=True) as s:
            d = self._check_actor(s, user, acting=False)
            if cap is None:
                q = task_list_query(d, self.clock.now(), user, scope, group, instance_id, overdue, state,
                                    department, None, due_before, unassigned, process_key)
            else:  # walk the list's own index, in display order, and stop past the cap
                q = task_list_query(d, self.clock.now(), user, scope, group, instance_id, overdue, state,
                                    department, cap + 1, due_before, unassigned, process_key)
            return int(s.scalar(select(func.count()).select_from(q.with_only_columns(HumanTask.id).subquery())) or 0)

    def task(self, task_id: int) -> TaskView:
        with self._tx(read=True) as s:
            views = self._task_views(s, select(HumanTask).where(HumanTask.id == task_id))
            if not views:
                raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
            return views[0]

    def task_data(self, task_id: int) -> dict[str, Any]:
        """The data a task sees (its process variables), for filling its form."""
        with self._tx(read=True) as s:
            row = self._task_row(s, task_id)
            version, state = s.execute(select(Instance.version, Instance.state)
                                       .where(Instance.id == row.instance_id)).one()
            cached = self._wf_cache.get(row.instance_id)
            if cached is not None and cached[0] == version:
                t = cached[1].get_task_from_id(UUID(row.spiff_id))
                return deepcopy(t.data) if t is not None else {}
            # Only the task's own branch of the stored state is read, not the whole workflow.
            return self.serializer.task_data(state, row.spiff_id) or {}

    def task_form(self, task_id: int) -> dict[str, Any] | None:
        with self._tx(read=True) as s:
            row = self._task_row(s, task_id)
            built = self._instance_built(s, row.instance_id)[2]
            return built.forms.get(row.form_key) if row.form_key else None

    def _task_views(self, s: Session, q: Any) -> list[TaskView]:
        rows = list(s.scalars(q))
        if not rows:
            return []
        cands: dict[int, tuple[list[str], list[str]]] = {r.id: ([], []) for r in rows}
        for c in s.scalars(select(TaskCandidate).where(TaskCandidate.task_id.in_(list(cands)))
                           .order_by(TaskCandidate.value)):
            cands[c.task_id][0 if c.kind == "user" else 1].append(c.value)
        keys = dict(s.execute(select(Instance.id, Instance.process_key)
                              .where(Instance.id.in_({r.instance_id for r in rows}))).all())
        now = self.clock.now()
        return [TaskView(r.id, r.instance_id, r.element_id, r.name, r.role, r.assignee, cands[r.id][0],
                         cands[r.id][1], r.state, r.priority, r.form_key, r.created_at, r.due_at, r.follow_up_at,
                         r.completed_at, r.completed_by,
                         bool(r.due_at and (r.completed_at or now) > r.due_at), keys.get(r.instance_id))
                for r in rows]

    def _task_row(self, s: Session, task_id: int, lock: bool = False) -> HumanTask:
        q = select(HumanTask).where(HumanTask.id == task_id)
        if lock:  # read again under the lock: what an earlier read of this session saw may be stale
            q = q.with_for_update().execution_options(populate_existing=True)
        row = s.scalar(q)
        if row is None:
            raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
        return row

    @staticmethod
    def _lock_instance(s: Session, instance_id: int) -> None:
        s.execute(select(Instance.id).where(Instance.id == instance_id).with_for_update())

    def _candidates(self, s: Session, task_id: int) -> tuple[list[str], list[str]]:
        users, groups = [], []
        for c in s.scalars(select(TaskCandidate).where(TaskCandidate.task_id == task_id)):
            (users if c.kind == "user" else groups).append(c.value)
        return users, groups

    def _may_work(self, s: Session, d: Directory, row: HumanTask, user: str) -> bool:
        if row.assignee is not None:
            return row.assignee == user
        users, groups = self._candidates(s, row.id)
        return user in users or bool(set(groups) & set(d.groups_of(user)))

    def _open_task(self, s: Session, task_id: int, user: str | None) -> tuple[HumanTask, Directory]:
        if not user:
            raise InputError("say who you are with --as USER")
        d = self._check_actor(s, user)
        # One lock order everywhere (the instance, then its task and timer rows), so that a user and
        # the worker, which locks the instance before it touches its tasks, cannot deadlock.
        # (SQLite has no row locks: a writer holds the whole database from BEGIN IMMEDIATE.)
        if s.get_bind().dialect.name != "sqlite":
            self._lock_instance(s, self._task_row(s, task_id).instance_id)
        row = self._task_row(s, task_id, lock=True)
        if row.state != "open":
            raise Conflict(f"task {task_id} is already {row.state}"
                           + (f" (by {row.completed_by})" if row.completed_by else ""))
        return row, d

    def _open_task_with_siblings(self, s: Session, task_id: int, user: str | None) \
            -> tuple[HumanTask, Directory, list[HumanTask]]:
        """As `_open_task`, with the instance's open tasks read (and locked) in the same query, so
        the completion does not read them again when it projects the tasks."""
        if not user:
            raise InputError("say who you are with --as USER")
        d = self._check_actor(s, user)
        of_instance = select(HumanTask.instance_id).where(HumanTask.id == task_id).scalar_subquery()
        # The instance first, then its rows: the one lock order (see _open_task). SQLite has no row
        # locks (a writer holds the whole database from BEGIN IMMEDIATE), so it needs no statement.
        if s.get_bind().dialect.name != "sqlite":
            s.execute(select(Instance.id).where(Instance.id == of_instance).with_for_update())
        rows = list(s.scalars(select(HumanTask).where(or_(
            HumanTask.id == task_id, and_(HumanTask.instance_id == of_instance, HumanTask.state == "open")))
            .with_for_update()))
        row = next((r for r in rows if r.id == task_id), None)
        if row is None:
            raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
        if row.state != "open":
            raise Conflict(f"task {task_id} is already {row.state}"
                           + (f" (by {row.completed_by})" if row.completed_by else ""))
        return row, d, rows

    @retrying
    def claim(self, task_id: int, user: str) -> None:
        with self._tx() as s:
            row, d = self._open_task(s, task_id, user)
            if row.assignee == user:
                return
            if row.assignee is not None:
                raise Conflict(f"task {task_id} is already claimed by {row.assignee}")
            if not self._may_work(s, d, row, user):
                raise NotAllowed(f"{user} is not a candidate for task {task_id} ({row.name}); "
                                 "only its candidate users and groups may claim it")
            row.assignee = user
            row.claimed_at = self.clock.now()
            self._task_event(s, row, "task_claimed", user, {"assignee": user})

    @retrying
    def unclaim(self, task_id: int, user: str) -> None:
        with self._tx() as s:
            row, _ = self._open_task(s, task_id, user)
            if row.assignee != user:
                raise NotAllowed(f"task {task_id} is not claimed by {user}"
                                 + (f" but by {row.assignee}" if row.assignee else ""))
            if not s.scalar(select(func.count()).select_from(TaskCandidate).where(TaskCandidate.task_id == row.id)):
                raise Conflict(f"task {task_id} was assigned by the process and has no candidates to return to; "
                               "delegate it instead")
            row.assignee = None
            row.claimed_at = None
            self._task_event(s, row, "task_unclaimed", user, {})

    @retrying
    def delegate(self, task_id: int, user: str, to_user: str) -> None:
        with self._tx() as s:
            row, d = self._open_task(s, task_id, user)
            if to_user not in d.users:
                raise NotFound(f"no user '{to_user}' in the directory")
            if not self._may_work(s, d, row, user):
                raise NotAllowed(f"{user} may not delegate task {task_id}: it is "
                                 + (f"assigned to {row.assignee}" if row.assignee else "not theirs"))
            previous = row.assignee
            row.assignee = to_user
            row.claimed_at = self.clock.now()
            self._task_event(s, row, "task_delegated", user, {"from": previous, "to": to_user})

    def _task_event(self, s: Session, row: HumanTask, type_: str, actor: str, payload: dict[str, Any]) -> None:
        inst = s.scalar(select(Instance).where(Instance.id == row.instance_id).with_for_update())
        assert inst is not None
        history.append(s, inst, type_, self.clock.now(), actor, {"spiff_id": row.spiff_id, **payload},
                       element_id=row.element_id, task_id=row.id)

    @retrying
    def complete(self, task_id: int, user: str, data: dict[str, Any] | None = None) -> None:
        """Complete a human task as `user` with form `data`; one transaction."""
        from SpiffWorkflow.util.task import TaskState

        from . import forms as formsmod
        from .formview import with_defaults

        data = _check_data(data)
        instance_id = None
        try:
            with self._tx() as s:
                row, d, open_rows = self._open_task_with_siblings(s, task_id, user)
                instance_id = row.instance_id
                if not self._may_work(s, d, row, user):
                    if row.assignee:
                        raise NotAllowed(f"task {task_id} ({row.name}) is assigned to {row.assignee}, not {user}")
                    raise NotAllowed(f"{user} is not a candidate for task {task_id} ({row.name})")
                run = self._load_run(s, row.instance_id)
                run.open_rows = open_rows
                t = run.wf.get_task_from_id(UUID(row.spiff_id))
                if t is None or t.state != TaskState.READY:
                    raise Conflict(f"task {task_id} is no longer waiting for input")
                if row.form_key:
                    schema = run.built.forms.get(row.form_key)
                    if schema is not None:  # values already on the task count: no need to send them again
                        formsmod.validate(row.form_key, schema, with_defaults(schema, t.data, data))
                now = self.clock.now()
                t.data.update(data)
                row.state = "completed"
                row.completed_at = now
                row.completed_by = user
                if row.due_at is not None or row.follow_up_at is not None:
                    run.closed_task_ids.append(row.id)  # (only a task with a deadline has timers to void)
                if row.assignee is None:
                    row.assignee = user
                run.event("task_completed", user, {"spiff_id": row.spiff_id, "data": data},
                          element_id=row.element_id, task_id=row.id)
                run.run_task(t)
                run.advance()
                run.finish(user)
        except ScriptError as exc:
            if instance_id is not None:
                self._record_failure(instance_id, user, exc)
            raise

    # ------------------------------------------------------------------ messages
    @retrying
    def message(self, name: str, data: dict[str, Any] | None = None, actor: str | None = None,
                business_key: str | None = None, instance_id: int | None = None) -> dict[str, Any]:
        """Deliver a message: to the instance waiting for it, else start the process it starts."""
        data = _check_data(data)
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
                run.advance()
                run.deliver(name, data, actor)
                run.advance()
                run.finish(actor)
                started.append(run.inst.id)
            return {"started": started}

    def signal(self, name: str, data: dict[str, Any] | None = None, actor: str | None = None) -> dict[str, Any]:
        """Broadcast signal `name`: every waiting instance receives it, every process starting with it
        starts (one transaction each); NotFound when nothing at all waits for it."""
        data = _check_data(data)
        if not isinstance(name, str) or not name.strip():
            raise InputError("a signal needs a name")
        with self._tx(read=True) as s:
            self._check_actor(s, actor)
        result = signals.broadcast(self, name, data, actor)
        if not (result.delivered_to or result.started or result.failed):
            raise NotFound(f"no instance waits for signal '{name}' and no deployed process starts with it")
        return result.to_json()

    # ------------------------------------------------------------------ history
    def history(self, instance_id: int) -> list[Event]:
        with self._tx(read=True) as s:
            if s.get(Instance, instance_id) is None:
                raise NotFound(f"no instance {instance_id}")
            return list(s.scalars(select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)))

    def element_names(self, instance_id: int) -> dict[str, str]:
        """Element id -> name (label) for the diagrams an instance runs on."""
        with self._tx(read=True) as s:
            built = self._instance_built(s, instance_id)[2]
        names: dict[str, str] = {}
        for spec in [built.spec, *built.subprocess_specs.values()]:
            for ts in spec.task_specs.values():
                bid, label = getattr(ts, "bpmn_id", None), getattr(ts, "bpmn_name", None)
                if bid and label:
                    names[bid] = label
        return names

    def check_acting(self, user: str) -> None:
        """A user who may change what is stored: known to the directory, and not only an auditor."""
        with self._tx() as s:
            self._check_actor(s, user, acting=True)

    def check_reader(self, user: str) -> None:
        """Anyone in the directory may read the history; unknown users may not."""
        with self._tx(read=True) as s:
            self._check_actor(s, user, acting=False)

    def notifications(self, user: str, unread_only: bool = False) -> list[Notification]:
        with self._tx(read=True) as s:
            self._check_actor(s, user, acting=False)
            q = select(Notification).where(Notification.recipient == user)
            if unread_only:
                q = q.where(Notification.read_at.is_(None))
            return list(s.scalars(q.order_by(Notification.at, Notification.id)))

    def mark_notification_read(self, notification_id: int, user: str) -> Notification:
        """Mark one of `user`'s notifications read (idempotent); NotFound for anyone else's."""
        with self._tx() as s:
            n = s.get(Notification, notification_id)
            if n is None or n.recipient != user:
                raise NotFound(f"no notification {notification_id} for {user}")
            if n.read_at is None:
                n.read_at = self.clock.now()
            return n


class Run:
    """One instance loaded inside a transaction: apply inputs, advance, project, save."""

    def __init__(self, engine: Engine, s: Session, inst: Instance, built: Built, wf: BpmnWorkflow, now: datetime):
        self.engine = engine
        self.s = s
        self.inst = inst
        self.built = built
        self.wf = wf
        self.now = now
        self.cancelled: str | None = None  # the reason, once cancelled
        self.new_tasks: list[HumanTask] = []
        self.closed_task_ids: list[int] = []
        self.open_rows: list[HumanTask] | None = None  # the instance's open tasks, if already read
        # Timer occurrences fired during this command are recorded by the timer sync; the worker
        # marks the first one as the trigger of its pass (an input for replay).
        self.trigger_pending = False
        self.actor_for_timers: str | None = None
        self.thrown_signals: list[str] = []  # broadcast to other instances once committed
        self.finish_actor: str | None = None

    def event(self, type_: str, actor: str | None, payload: dict[str, Any], element_id: str | None = None,
              task_id: int | None = None) -> Event:
        if type_ in history.INPUT_TYPES:
            # Replay runs each input with the organisation that was in force.
            payload = {**payload, "dir": self.engine.directory_version}
        return history.append(self.s, self.inst, type_, self.now, actor, payload, element_id, task_id)

    def _guard(self, fn: Callable[[], Any]) -> Any:
        from SpiffWorkflow.exceptions import SpiffWorkflowException

        try:
            with limits.scope(limits.for_process(self.built.analysis.processes[self.inst.process_key].properties)):
                return fn()
        except EngineError:
            raise
        except (SpiffWorkflowException, ValueError, TypeError, KeyError, NameError, ZeroDivisionError,
                AttributeError, IndexError, OverflowError, RecursionError) as exc:
            inner = exc.__cause__ or exc.__context__
            if isinstance(inner, ScriptError):
                raise inner from exc  # a script bound, wrapped by SpiffWorkflow's DMN engine
            element = None
            task = getattr(exc, "task", None)
            if task is not None:
                element = getattr(task.task_spec, "bpmn_id", None)
            msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            err = ScriptError(f"process step failed{f' at {element}' if element else ''}: {msg}; "
                              "nothing was changed")
            err.element = element  # type: ignore[attr-defined]
            raise err from exc

    def run_task(self, t: Any) -> None:
        self._guard(t.run)

    def advance(self) -> None:
        self._guard(self.wf.do_engine_steps)

    def deliver(self, name: str, data: dict[str, Any], actor: str | None) -> None:
        from SpiffWorkflow.util.task import TaskState

        from .spiff import message_catchers, send_message

        targets = message_catchers(self.wf.get_tasks(state=TaskState.WAITING), name)
        if not targets:
            raise NotFound(f"instance {self.inst.id} is not waiting for message '{name}'")
        task, ev = targets[0]
        self.event("message_received", actor, {"name": name, "data": data}, element_id=task.task_spec.bpmn_id)
        self._guard(lambda: send_message(self.wf, task, ev, data))

    def finish(self, actor: str | None) -> None:
        """Project tasks, timers and subscriptions; close the instance if done; save the state."""
        from SpiffWorkflow.util.task import TaskState

        from .deadlines import on_task_created, record_fired_timers, sync_timers

        s, inst, now = self.s, self.inst, self.now
        directory = self.engine._dir(s)
        tasks = self.wf.get_tasks()  # one walk of the tree serves every projection below
        waiting = [t for t in tasks if t.state == TaskState.WAITING]
        record_fired_timers(self, tasks)
        ready = [t for t in tasks if t.state == TaskState.READY and t.task_spec.manual]
        ready_ids = {str(t.id) for t in ready}
        if self.open_rows is not None:  # read with the command's own task row
            open_rows = {r.spiff_id: r for r in self.open_rows if r.state == "open"}
        else:
            open_rows = {r.spiff_id: r for r in s.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id,
                                                                                   HumanTask.state == "open"))}
        for sid, row in open_rows.items():
            if sid not in ready_ids:
                row.state = "cancelled"
                row.completed_at = now
                if row.due_at is not None or row.follow_up_at is not None:
                    self.closed_task_ids.append(row.id)  # (only a task with a deadline has timers to void)
                self.event("task_cancelled", actor, {"spiff_id": sid}, element_id=row.element_id, task_id=row.id)
        limits.check_count(sum(1 for t in ready if str(t.id) not in open_rows), "max_new_tasks",
                           "human tasks created by one command")
        for t in ready:
            if str(t.id) in open_rows:
                continue
            row = self._create_task(t, directory)
            on_task_created(self, row)
        sync_timers(self, waiting)
        from .external import sync as sync_external

        sync_external(self, tasks)
        if self.built.has_messages:
            self._sync_subscriptions(waiting)
        if self.built.has_signals:
            from .spiff import pop_thrown_signals

            signals.sync(self, waiting)
            self.thrown_signals, self.finish_actor = pop_thrown_signals(self.wf), actor
        if self.inst.status == "running":
            if self.cancelled:
                inst.status = "cancelled"
                inst.ended_at = now
                inst.end_reason = self.cancelled
            elif self.wf.is_completed():
                inst.status = "completed"
                inst.ended_at = now
                self.event("instance_completed", actor, {"data": process_data(self.wf)})
        try:
            inst.state = self.engine.serializer.dumps(self.wf)
        except (TypeError, ValueError) as exc:
            raise ScriptError(f"process data is not JSON-serialisable ({exc}); scripts must produce JSON values") \
                from exc
        inst.version = (inst.version or 0) + 1
        history.flush_pending(s)  # the events and the instance row, each written once
        s.flush()
        self.engine._saved_runs.append(self)

    def _create_task(self, t: Any, directory: Directory) -> HumanTask:
        spec = t.task_spec
        meta = self.built.task_meta.get((t.workflow.spec.name, spec.bpmn_id))
        if meta is None:
            meta = next((m for (owner, eid), m in self.built.task_meta.items() if eid == spec.bpmn_id), None)
        from .scripting import is_expression

        se = self.engine.script_engine

        def value(text: str | None) -> Any:
            if text is None or not str(text).strip():
                return None
            if is_expression(text):
                return self._guard(lambda: se.evaluate(t, text))
            return text

        assignee = value(meta.assignee) if meta else None
        if isinstance(assignee, (list, tuple)):
            assignee = assignee[0] if assignee else None
        cand_users = split_ids(value(meta.candidate_users)) if meta else []
        cand_groups = split_ids(value(meta.candidate_groups)) if meta else []
        role = directory.role_for_lane(meta.lane, meta.lane_id) if meta else None
        if role is None and getattr(spec, "lane", None):
            role = directory.role_for_lane(spec.lane)
        if not assignee and not cand_users and not cand_groups and role:
            cand_groups = [role]
        elif not assignee and not cand_users and not cand_groups:
            from .camunda import default_candidates

            info = self.built.analysis.processes.get(self.inst.process_key)
            cand_users, cand_groups = default_candidates(info.properties if info else {},
                                                       [u for u, p in directory.users.items()
                                                        if set(p.roles) != {READ_ONLY_ROLE}])
        due = self._when(value(meta.due_date) if meta else None, "dueDate", spec.bpmn_id)
        follow = self._when(value(meta.follow_up_date) if meta else None, "followUpDate", spec.bpmn_id)
        prio_raw = value(meta.priority) if meta else None
        try:
            priority = int(prio_raw) if prio_raw is not None else 50
        except (TypeError, ValueError):
            raise ScriptError(f"priority of {spec.bpmn_id} is '{prio_raw}', not a whole number") from None
        row = HumanTask(instance_id=self.inst.id, spiff_id=str(t.id), element_id=spec.bpmn_id,
                        name=spec.bpmn_name or spec.bpmn_id, lane=meta.lane if meta else None, role=role,
                        assignee=str(assignee) if assignee else None, state="open", priority=priority,
                        form_key=meta.form_key if meta else None, created_at=self.now, due_at=due,
                        follow_up_at=follow, escalation_level=0)
        self.s.add(row)
        self.s.flush()
        self.s.add_all([TaskCandidate(task_id=row.id, kind="user", value=u) for u in dict.fromkeys(cand_users)])
        self.s.add_all([TaskCandidate(task_id=row.id, kind="group", value=g) for g in dict.fromkeys(cand_groups)])
        self.event("task_created", None, {
            "spiff_id": row.spiff_id, "name": row.name, "assignee": row.assignee,
            "candidate_users": list(dict.fromkeys(cand_users)), "candidate_groups": list(dict.fromkeys(cand_groups)),
            "due_at": due.isoformat() if due else None, "form_key": row.form_key, "priority": priority,
        }, element_id=row.element_id, task_id=row.id)
        self.new_tasks.append(row)
        return row

    def _when(self, v: Any, attr: str, element: str) -> datetime | None:
        if v is None:
            return None
        if isinstance(v, datetime):
            return v.astimezone(timezone.utc) if v.tzinfo else v.replace(tzinfo=timezone.utc)
        try:
            return due_from(str(v), self.now)
        except ValueError as exc:
            raise ScriptError(f"camunda:{attr} of {element}: {exc}") from exc

    def _sync_subscriptions(self, waiting: list[Any]) -> None:
        from .spiff import message_catchers

        want = {str(t.id): (ev.name, t.task_spec.bpmn_id) for t, ev in message_catchers(waiting)}
        have = {m.spiff_id: m for m in self.s.scalars(select(MessageSubscription)
                                                       .where(MessageSubscription.instance_id == self.inst.id,
                                                              MessageSubscription.kind == "message"))}
        for sid, m in have.items():
            if sid not in want:
                self.s.delete(m)
        for sid, (name, element) in want.items():
            if sid not in have:
                self.s.add(MessageSubscription(instance_id=self.inst.id, message_name=name, spiff_id=sid,
                                               element_id=element))


def process_data(wf: BpmnWorkflow) -> dict[str, Any]:
    """The instance's process variables as seen by its most recent task."""
    last = wf.last_task
    if last is None:
        return dict(wf.task_tree.data)
    return dict(last.data)


def _has_plain_start(built: Built) -> bool:
    """Whether the process has a start event without a trigger (so `tigao start` may start it)."""
    return any(ts.__class__.__name__ == "StartEvent"
               and ts.event_definition.__class__.__name__ == "NoneEventDefinition"
               for ts in built.spec.task_specs.values())


def _check_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("data must be a JSON object, e.g. '{\"amount\": 5}'")
    from .scripting import HELPER_NAMES, ensure_json

    try:
        ensure_json(data)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("data holds text that is not valid UTF-8 (a lone surrogate such as \\ud800, or an "
                         "undecodable byte); give UTF-8 text") from exc
    shadowing = sorted(set(data) & HELPER_NAMES)
    if shadowing:
        raise InputError(f"field name(s) {', '.join(shadowing)} are reserved for the script helpers; "
                         "rename them")
    return data


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]


def _storage_message(url: str, exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).lower()
    where = dbmod.sqlite_path(url) or url.split("@")[-1]
    if "database" in text and "does not exist" in text:
        return (f"database '{where}' does not exist on that server: create it first (e.g. createdb), "
                "then run 'tigao init'")
    if "database is locked" in text or "database table is locked" in text:
        return f"database '{where}' is locked by another process; try again when it is done"
    if "file is not a database" in text or "not a database" in text:
        return f"'{where}' is not a database file; point --db at a Tigao database or run 'tigao init' on a new path"
    if "unable to open database" in text:
        return f"cannot open database file '{where}': check the path and permissions"
    if "connection" in text or "could not" in text or "timeout" in text or "refused" in text:
        return f"cannot reach the database at '{where}': {_short(exc)}"
    if "no such table" in text or "does not exist" in text:
        return f"'{where}' is not a Tigao database (missing tables): run 'tigao init'"
    return f"database error at '{where}': {_short(exc)}"


def parse_json_arg(text: str | None) -> dict[str, Any] | None:
    """`JSON` or `@file` from the command line."""
    if text is None:
        return None
    raw = text
    if text.startswith("@"):
        raw = _read_data_file(text[1:])
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise InputError("data is nested too deeply; give a flat JSON object of field values") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"data is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                         "give an object like '{\"field\": 1}' or @file.json") from exc
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits (a CPU-time guard)
        raise InputError(f"data holds a number too long to read ({_short(exc)}); give numbers of at most "
                         "4,300 digits, or the value as a string") from exc
    if not isinstance(value, dict):
        raise InputError("data must be a JSON object, e.g. '{\"field\": 1}'")
    return value


def _read_data_file(name: str) -> str:
    """A regular file of at most MAX_DATA_BYTES of UTF-8, checked before it is read."""
    import os
    import stat

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read data file '{name}': {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_DATA_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"data file '{name}' is not a regular file (a device, pipe or folder); "
                             "give a JSON file")
        raise InputError(f"data file '{name}' is {st.st_size:,} bytes; the limit is {MAX_DATA_BYTES:,}")
    with os.fdopen(fd, "rb") as f:
        blob = f.read(MAX_DATA_BYTES + 1)  # a file that grows meanwhile is still cut at the limit
    if len(blob) > MAX_DATA_BYTES:
        raise InputError(f"data file '{name}' is larger than {MAX_DATA_BYTES:,} bytes")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"data file '{name}' is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def parse_when(text: str) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
