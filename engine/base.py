"""The engine's ground floor: construction, the database connection and its transactions, the
clock, the directory and the checks of who may act. The other parts of `Engine` are mixins on it."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, select
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage import db as dbmod
from storage.models import Department, DirectoryVersion, Role, Setting, User, UserRole

from . import history, signals
from .assignment import Dept, Directory, Person, parse_directory_file
from .clock import Clock, SettableClock
from .errors import Conflict, EngineError, InputError, NotAllowed, StorageError
from .retry import Busy, Contention, Overtaken, is_bad_value, is_busy, is_contention, retrying
from .values import PUBLIC_ACTOR, READ_ONLY_ROLE, short_error as _short

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    from .definitions import BuiltCache
    from .run import Run
    from .scripting import TigaoScriptEngine
    from .state import StateSerializer
# SpiffWorkflow, lxml and jsonschema (definitions, scripting, spiff, forms) are imported where they
# are used, so that reading the projections (a task list) starts without them.

WF_CACHE_SIZE = 256  # instances whose last saved workflow object is kept in memory
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
MAX_CLOCK_YEAR = 9000  # a simulated clock stays far enough from year 9999 for due dates and cycles
SETTINGS = ("clock", "sim_now", "directory_version")  # read at the start of every transaction


class EngineBase:
    """Connection, transactions, clock and directory; one instance per database URL."""

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
        self._optimistic_sessions: sessionmaker[Session] | None = None  # SQLite only (see _tx)
        self._overtaken = False  # the last optimistic transaction met another writer: lock the next
        self._directory: Directory | None = None
        self._wf_cache: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._saved_runs: list[Run] = []
        self._batch: Any = None  # while engine/groupcommit.py runs a batch of commands on this Engine
        self._signal_queue: Any = None  # while a broadcast runs: the signals still to deliver
        self._directory_stamp: str | None = None
        self.directory_version: int | None = None
        self._tx_directory_stamp: str | None = None
        self._settings_pending = False  # a folded settings read is still to come (see _tx)
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
            from .state import StateSerializer

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
            if self._sa.dialect.name == "sqlite":
                self._optimistic_sessions = dbmod.optimistic_session_factory(self._sa)
                event.listen(self._optimistic_sessions, "before_commit", history.flush_pending)
            # History events are inserted in one batch, with the chain head, just before commit.
            event.listen(self._sessions, "before_commit", history.flush_pending)
        return self._sa

    def close(self) -> None:
        if self._sa is not None:
            self._sa.dispose()
            self._sa = None

    @contextmanager
    def _tx(self, read: bool = False, fold_settings: bool = False, optimistic: bool = False) -> Iterator[Session]:
        """One transaction; `read=True` for one that only reads (it never takes the write lock).

        With `fold_settings` the clock and the directory stamp are not read at once: the command's
        first query selects them (`settings_columns`) and hands them to `_use_settings`, one
        statement fewer. Only once a directory is cached (so the command can name its candidate
        groups before it knows the stamp; it checks the stamp after) and outside a batch (whose
        shared transaction read them when it began).

        With `optimistic` (SQLite, outside a batch) the transaction begins deferred: the command
        reads and runs SpiffWorkflow without the write lock, so a long step does not hold up the
        other writers; its first write takes the lock, or fails at once when another writer holds it
        or committed since the command began (`Overtaken`: `retrying` runs the command again at
        once, and that run takes the lock up front). The instance's version is checked at the
        write besides (the UPDATE names it), as on PostgreSQL.
        """
        self._connect()
        assert self._sessions is not None
        batch = self._batch
        if batch is None:
            self._saved_runs: list[Run] = []
        sessions = self._read_sessions if read else self._sessions
        deferred = False
        if optimistic and not read and batch is None and self._optimistic_sessions is not None:
            if self._overtaken:
                self._overtaken = False  # the run again after being overtaken: behind the lock
            else:
                sessions, deferred = self._optimistic_sessions, True
        try:
            if batch is not None:  # one savepoint of a shared transaction (engine/groupcommit.py)
                with batch.savepoint(self) as session:
                    yield session
                return
            with sessions() as session, session.begin():
                if fold_settings and self._directory is not None:
                    self._settings_pending = True
                else:
                    self._sync_clock(session)
                try:
                    yield session
                finally:
                    self._settings_pending = False
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
            if deferred and is_busy(exc):
                self._overtaken = True
                raise Overtaken("another writer came first (" + _short(exc) + ")") from exc
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
            # Plain SQL on the session's connection: the ORM's select path costs three times the
            # query (73 against 24 us here), paid by every transaction.
            rows = dict(session.connection().exec_driver_sql(_SETTINGS_SQL).all())
        except (OperationalError, DatabaseError) as exc:
            msg = str(exc).lower()
            if "no such table" in msg or "undefinedtable" in msg or "relation" in msg and "does not exist" in msg:
                raise StorageError(f"'{self.safe_url}' is not a Tigao database (no tables): run 'tigao init'") \
                    from exc
            raise
        self._use_settings(rows)

    def _use_settings(self, rows: Any) -> None:
        """Set the command's clock and directory stamp from the settings (`rows`: a mapping of
        key to value, or a row with `settings_columns`)."""
        if not isinstance(rows, dict):
            rows = {key: getattr(rows, f"setting_{key}") for key in SETTINGS}
        self._settings_pending = False
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

    def downgrade(self, revision: str) -> str:
        """Take the database's schema back to `revision`, for an earlier release (each migration
        after it undoes itself); the revision it was at before."""
        sa = self._connect()
        try:
            with sa.connect() as conn:
                before = dbmod.schema_revision(conn)
            dbmod.downgrade(sa, revision)
        except dbmod.DatabaseProblem as exc:
            raise InputError(str(exc)) from exc
        except (OperationalError, DatabaseError) as exc:
            raise StorageError(_storage_message(self.safe_url, exc)) from exc
        self.close()  # what this Engine cached belongs to the schema it no longer has
        return before or "?"

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


    def check_acting(self, user: str) -> None:
        """A user who may change what is stored: known to the directory, and not only an auditor."""
        with self._tx() as s:
            self._check_actor(s, user, acting=True)

    def check_reader(self, user: str) -> None:
        """Anyone in the directory may read the history; unknown users may not."""
        with self._tx(read=True) as s:
            self._check_actor(s, user, acting=False)


def settings_columns() -> list[Any]:
    """The settings a transaction starts from, as columns to add to a command's first query (read
    back by `Engine._use_settings`)."""
    return [select(Setting.value).where(Setting.key == key).scalar_subquery().label(f"setting_{key}")
            for key in SETTINGS]


# The settings read that starts a transaction (fixed keys, so no parameters: the same text on
# every database driver).
_SETTINGS_SQL = "SELECT key, value FROM settings WHERE key IN (" + ", ".join(f"'{k}'" for k in SETTINGS) + ")"


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

