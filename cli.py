"""The `tigao` command line: parse, call the engine, print, exit with the error's code."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from engine.errors import Conflict, EngineError, InputError
from engine.timeutil import add_iso_duration, display_tz, fmt, is_duration, zone_name

if TYPE_CHECKING:
    from engine import Engine

# The engine (SQLAlchemy, SpiffWorkflow, lxml, jsonschema) is imported by the commands that use
# it, not here: `tigao --help` and a task list start without the modules they do not need.


def parse_json_arg(text: str | None) -> dict[str, Any] | None:
    """`JSON` or `@file` from the command line (see engine.values.parse_json_arg)."""
    from engine.values import parse_json_arg as parse

    return parse(text)


def parse_when(text: str) -> datetime:
    """An ISO 8601 date-time or date from the command line (see engine.values.parse_when)."""
    from engine.values import parse_when as parse

    return parse(text)


# ----------------------------------------------------------------------------- output helpers
TABLE_WIDTH = 100  # columns a table fits by default; --wide shows every value in full
_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?|[^\s,;]+[,;]?\s*|[\s,;]+")
ELLIPSIS = "\u2026"


def _width(text: str) -> int:
    if text.isascii():  # most cells: one column per character, no per-character look-up
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _wide() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get("tigao.wide"))


def _set_wide(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().meta["tigao.wide"] = True


wide_option = click.option("--wide", is_flag=True, expose_value=False, callback=_set_wide,
                           help=f"Show every value in full instead of fitting the table to {TABLE_WIDTH} columns.")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return fmt(v)
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v).replace("\n", " ")


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` columns at a word or field boundary (a date-time counts as one word),
    with an ellipsis; a value is never cut in the middle unless it alone is wider than the column."""
    if _width(text) <= width:
        return text
    out = ""
    for m in _TOKEN.finditer(text):
        if _width(out + m.group(0).rstrip()) + 1 > width:
            break
        out += m.group(0)
    out = out.rstrip(" ,;")
    if not out:  # one value wider than the whole column: cut it, visibly
        for ch in text:
            if _width(out + ch) + 1 > width:
                break
            out += ch
    return out + ELLIPSIS


def _fit(widths: list[int], floors: list[int], limit: int) -> list[int]:
    """Narrow the widest shrinkable columns until the row fits `limit` columns."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > limit:
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        if widths[i] <= floors[i]:
            break  # nothing left to narrow: the row stays wider than the limit
        widths[i] -= 1
    return widths


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str = "(none)") -> None:
    """Print rows as an aligned table; `columns` is (key, heading).

    A column holding times is headed with the display time zone. The table fits TABLE_WIDTH
    columns (long text is cut at a word or field boundary with an ellipsis; times, ids and
    headings are never cut) unless `--wide` is given.
    """
    if not rows:
        click.echo(empty)
        return
    timed = {k for k, _ in columns if any(isinstance(r.get(k), datetime) for r in rows)}
    headings = [f"{h} ({zone_name()})" if k in timed and h else h for k, h in columns]
    cells = [[_cell(r.get(k)) for k, _ in columns] for r in rows]

    def natural(heads: list[str]) -> list[int]:
        return [max([_width(h)] + [_width(c[i]) for c in cells]) for i, h in enumerate(heads)]

    widths = natural(headings)
    if not _wide() and sum(widths) + 2 * (len(widths) - 1) > TABLE_WIDTH and len(timed) > 1:
        # Name the zone once, in the first time column, when naming it in each does not fit.
        first = next(i for i, (k, _) in enumerate(columns) if k in timed)
        headings = [h if i == first or k not in timed else plain
                    for i, ((k, plain), h) in enumerate(zip(columns, headings))]
        widths = natural(headings)
    if not _wide():
        floors = [w if (k in timed or all(_width(c[i]) <= 8 for c in cells)) else max(_width(h), 8)
                  for i, ((k, _), h, w) in enumerate(zip(columns, headings, widths))]
        widths = _fit(widths, floors, TABLE_WIDTH)
        cells = [[shorten(x, w) for x, w in zip(c, widths)] for c in cells]
    click.echo("  ".join(_pad(h, w) for h, w in zip(headings, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for c in cells:
        click.echo("  ".join(_pad(x, w) for x, w in zip(c, widths)).rstrip())


def dump_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "to_json"):
        return v.to_json()
    raise TypeError(f"not JSON: {type(v).__name__}")


# ----------------------------------------------------------------------------- error handling
class Ctx:
    def __init__(self, db: str | None, debug: bool):
        self.db = db
        self.debug = debug
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from engine import Engine

            self._engine = Engine(self.db)
        return self._engine


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn engine errors into one line on stderr and the error's exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_object(Ctx) and ctx.find_object(Ctx).debug)  # type: ignore[union-attr]
        try:
            if ctx.meta.get("tigao.anonymous"):
                what = " ".join(ctx.command_path.split()[1:]) or ctx.info_name
                raise InputError(f"'{what}' changes what is stored and the history records who did it: "
                                 "give --as USER (a user id from the directory) or set TIGAO_USER")
            return fn(*args, **kwargs)
        except BrokenPipeError:
            # The reader closed the pipe (`tigao history 1 | head -3`): that is normal, not an error.
            # Point stdout at /dev/null so that the interpreter's final flush stays quiet too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except EngineError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc.message}", err=True)
            for line in exc.details():
                click.echo(f"  {line}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, code 1
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)", err=True)
            ctx.exit(1)

    return wrapper


def _actor_given(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if not (value and value.strip()):
        ctx.meta["tigao.anonymous"] = True  # refused by `handled` with a clear message (exit 3)
    return value


def actor_option(required: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--as USER` (or TIGAO_USER). `required`: the command acts, and refuses to act anonymously."""
    if required:
        return click.option("--as", "actor", metavar="USER", envvar="TIGAO_USER", callback=_actor_given,
                            help="The acting user, recorded in the history (a user id from the directory; "
                                 "or TIGAO_USER). Required.")
    return click.option("--as", "actor", metavar="USER", envvar="TIGAO_USER",
                        help="The reading user (a user id from the directory; or TIGAO_USER).")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", envvar="TIGAO_DB", metavar="URL",
              help="Database: a SQLite file path (default ./tigao.db) or postgresql://user@host/db. Env: TIGAO_DB.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@wide_option
@click.version_option(package_name="tigao")
@click.pass_context
def main(ctx: click.Context, db: str | None, debug: bool) -> None:
    """Tigao: a durable BPMN 2.0 workflow engine with deadlines, escalation and audit."""
    ctx.obj = Ctx(db, debug)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")


pass_ctx = click.make_pass_decorator(Ctx)


# ----------------------------------------------------------------------------- init, clock, directory
@main.command()
@click.option("--simulated", metavar="ISO", help="Create a database on a simulated clock starting at ISO.")
@pass_ctx
@handled
def init(c: Ctx, simulated: str | None) -> None:
    """Create a database, or upgrade an existing one to the current schema."""
    start = parse_when(simulated) if simulated else None
    what = c.engine.init(simulated=start)
    click.echo(f"{what} database {c.engine.safe_url}" + (f" (simulated clock at {fmt(start, zone=True)})" if start else ""))


@main.command()
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm: what later revisions added is dropped.")
@pass_ctx
@handled
def downgrade(c: Ctx, revision: str, yes: bool) -> None:
    """Take the database's schema back to REVISION, to go back to an earlier release (e.g. 0012:
    states stored in parts are put back in one column). `tigao init` upgrades again."""
    if not yes:
        raise InputError(f"downgrading drops what the revisions after {revision} added; "
                         "back the database up, then run again with --yes")
    before = c.engine.downgrade(revision)
    click.echo(f"downgraded database {c.engine.safe_url} from {before} to {revision}")


def _check_actor(c: Ctx, actor: str) -> None:
    """An acting user the engine does not check itself: known to the directory, not only an auditor."""
    c.engine.check_acting(actor)


def _clock_json(c: Ctx, now: datetime) -> dict[str, Any]:
    return {"now": now.isoformat(), "local": now.astimezone(display_tz()).isoformat(), "zone": zone_name(),
            "clock": "simulated" if c.engine.simulated else "system"}


def _clock_moved(c: Ctx, verb: str, now: datetime, as_json: bool) -> None:
    if as_json:
        dump_json(_clock_json(c, now))
    else:
        click.echo(f"clock {verb} {fmt(now, seconds=True, zone=True)}")


@main.group(invoke_without_command=True)
@json_option
@click.pass_context
@handled
def clock(ctx: click.Context, as_json: bool) -> None:
    """Show the engine's time (in the display time zone, TIGAO_TZ); `set` and `advance` move a
    simulated clock."""
    if ctx.invoked_subcommand is None:
        c: Ctx = ctx.obj
        now = c.engine.now()
        if as_json:
            dump_json(_clock_json(c, now))
            return
        kind = "simulated" if c.engine.simulated else "system"
        click.echo(f"{fmt(now, seconds=True, zone=True)} ({kind} clock)")


@clock.command("set")
@click.argument("when")
@actor_option(required=True)
@json_option
@pass_ctx
@handled
def clock_set(c: Ctx, when: str, actor: str, as_json: bool) -> None:
    """Set the simulated clock to WHEN (ISO 8601; without an offset, the display time zone); it
    never moves back."""
    target = parse_when(when)
    _check_actor(c, actor)
    _clock_moved(c, "set to", c.engine.set_clock(target), as_json)


@clock.command("advance")
@click.argument("duration")
@actor_option(required=True)
@json_option
@pass_ctx
@handled
def clock_advance(c: Ctx, duration: str, actor: str, as_json: bool) -> None:
    """Move the simulated clock forward by DURATION (ISO 8601, e.g. P3D, PT4H)."""
    if not is_duration(duration):
        raise InputError(f"'{duration}' is not an ISO 8601 duration (e.g. P3D, PT4H, P1M)")
    _check_actor(c, actor)
    now = c.engine.now()
    _clock_moved(c, "advanced to", c.engine.set_clock(add_iso_duration(now, duration)), as_json)


@main.group()
def directory() -> None:
    """The organisation directory: users, departments, roles."""


@directory.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@actor_option(required=True)
@pass_ctx
@handled
def directory_load(c: Ctx, file: str, actor: str) -> None:
    """Load (or re-load, replacing) the directory from a TOML FILE. The first load may be done
    --as admin (nobody is in the directory yet)."""
    _check_actor(c, actor)
    counts = c.engine.load_directory(file)
    click.echo(f"loaded {counts['users']} users, {counts['departments']} departments, {counts['roles']} roles")


@directory.command("show")
@json_option
@wide_option
@pass_ctx
@handled
def directory_show(c: Ctx, as_json: bool) -> None:
    """List the users with their department and roles."""
    d = c.engine.directory()
    rows = [{"id": u.id, "name": u.name, "department": u.department, "roles": u.roles,
             "head": "yes" if d.head_of(u.department) == u.id else ""} for u in sorted(d.users.values(),
                                                                                      key=lambda u: u.id)]
    if as_json:
        dump_json(rows)
    else:
        table(rows, [("id", "USER"), ("name", "NAME"), ("department", "DEPARTMENT"), ("head", "HEAD"),
                     ("roles", "ROLES")])


# ----------------------------------------------------------------------------- definitions
@main.command()
@click.argument("paths", nargs=-1, required=True)
@pass_ctx
@handled
def validate(c: Ctx, paths: tuple[str, ...]) -> None:
    """Check BPMN/DMN/form files or folders as deploy would, without storing anything."""
    analysis = c.engine.validate(list(paths))
    for key, info in sorted(analysis.processes.items()):
        click.echo(f"{'ok' if info.executable else 'doc'}  {key}  ({info.file})")
    for warning in analysis.warnings:
        click.echo(f"warning: {warning}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@actor_option(required=True)
@wide_option
@pass_ctx
@handled
def deploy(c: Ctx, paths: tuple[str, ...], actor: str | None) -> None:
    """Validate and deploy files or folders; each changed process becomes a new version. A form
    or called process not among PATHS is taken from the deployed version."""
    results = c.engine.deploy(list(paths), actor=actor)
    table([{"key": r.key, "version": r.version, "id": r.definition_id,
            "result": "deployed" if r.created else "unchanged"} for r in results],
          [("key", "PROCESS"), ("version", "VERSION"), ("id", "DEFINITION"), ("result", "RESULT")])


@main.command()
@json_option
@wide_option
@pass_ctx
@handled
def definitions(c: Ctx, as_json: bool) -> None:
    """List deployed process versions."""
    rows = c.engine.definitions()
    if as_json:
        dump_json(rows)
    else:
        table(rows, [("key", "PROCESS"), ("version", "VERSION"), ("id", "ID"), ("name", "NAME"),
                     ("deployed_at", "DEPLOYED"), ("hash", "HASH"), ("instances", "INSTANCES")])


# ----------------------------------------------------------------------------- instances
@main.command()
@click.argument("key")
@click.option("--data", metavar="JSON|@FILE", help="Initial process variables: a JSON object, or @file.json.")
@click.option("--business-key", metavar="KEY", help="Your own key for the instance (a case number), to find it by.")
@actor_option(required=True)
@json_option
@wide_option
@pass_ctx
@handled
def start(c: Ctx, key: str, data: str | None, business_key: str | None, actor: str | None,
          as_json: bool) -> None:
    """Start an instance of process KEY (its newest version)."""
    iid = c.engine.start(key, parse_json_arg(data), business_key=business_key, actor=actor)
    detail = c.engine.instance(iid)
    if as_json:
        dump_json({"id": iid, "status": detail["status"], "tasks": [t for t in detail["tasks"]]})
    else:
        click.echo(f"started instance {iid} of {key} v{detail['version']}: {detail['status']}")
        _print_tasks([t for t in detail["tasks"] if t.state == "open"])


@main.command()
@click.option("--status", type=click.Choice(["running", "completed", "cancelled"]),
              help="Only instances in this state (default: all).")
@click.option("--key", metavar="PROCESS", help="Only instances of this process key.")
@click.option("--business-key", metavar="KEY", help="Only the instance(s) with this business key.")
@click.option("--limit", default=200, show_default=True, help="At most this many instances (newest first).")
@json_option
@wide_option
@pass_ctx
@handled
def instances(c: Ctx, status: str | None, key: str | None, business_key: str | None, limit: int,
              as_json: bool) -> None:
    """List instances, newest first."""
    rows = c.engine.instances(status, key, business_key, limit)
    if as_json:
        dump_json(rows)
    else:
        table(rows, [("id", "ID"), ("key", "PROCESS"), ("version", "V"), ("business_key", "BUSINESS KEY"),
                     ("status", "STATUS"), ("open_tasks", "OPEN TASKS"), ("started_at", "STARTED"),
                     ("ended_at", "ENDED")])


@main.command()
@click.argument("instance_id", type=int)
@json_option
@wide_option
@pass_ctx
@handled
def show(c: Ctx, instance_id: int, as_json: bool) -> None:
    """Show an instance: status, data, tasks, what it waits for."""
    d = c.engine.instance(instance_id)
    # Work waiting outside the engine's own steps: external tasks and in-process handler steps.
    external = c.engine.external_tasks(instance_id=instance_id, state="any", handlers=True)
    if as_json:
        dump_json({**d, "external_tasks": external})
        return
    click.echo(f"instance {d['id']}  {d['key']} v{d['version']}  {d['status']}"
               + (f"  business key {d['business_key']}" if d["business_key"] else ""))
    click.echo(f"started {fmt(d['started_at'])} by {d['started_by'] or '-'}"
               + (f"; ended {fmt(d['ended_at'])}" if d["ended_at"] else "") + f" ({zone_name()})"
               + (f" ({d['end_reason']})" if d["end_reason"] else "") + f"; {d['events']} events")
    click.echo("data: " + json.dumps(d["data"], ensure_ascii=False, sort_keys=True))
    if d["waiting"]:
        click.echo("waiting for:")
        table([{"element": w["element"], "name": w["name"], "event": w["event"], "due": w["due"]}
               for w in d["waiting"]], [("element", "ELEMENT"), ("name", "NAME"), ("event", "EVENT"), ("due", "DUE")])
    click.echo("tasks:")
    _print_tasks(d["tasks"], with_state=True)
    if external:
        click.echo("external tasks:")
        table([{"id": x["id"], "element": x["element_id"], "topic": x["topic"] if not x["handler"] else "",
                "handler": x["handler"] or "", "state": x["state"], "locked_by": x["worker_id"] or "",
                "until": x["lock_expires_at"] if x["worker_id"] else "",
                "retries": "" if x["retries"] is None else x["retries"], "error": x["error_message"] or ""}
               for x in external],
              [("id", "ID"), ("element", "ELEMENT"), ("topic", "TOPIC"), ("handler", "HANDLER"), ("state", "STATE"),
               ("locked_by", "LOCKED BY"), ("until", "LOCK UNTIL"), ("retries", "RETRIES"), ("error", "ERROR")])


@main.command()
@click.argument("instance_id", type=int)
@click.option("--reason", required=True, help="Why; recorded in the history.")
@actor_option(required=True)
@pass_ctx
@handled
def cancel(c: Ctx, instance_id: int, reason: str, actor: str | None) -> None:
    """Cancel a running instance."""
    c.engine.cancel(instance_id, reason, actor=actor)
    click.echo(f"cancelled instance {instance_id}")


@main.command()
@click.argument("instance_id", type=int, required=False)
@click.option("--from", "source", metavar="KEY:VERSION", help="Every running instance of this version.")
@click.option("--to", "to_version", type=int, required=True, help="The version to move to.")
@click.option("--map", "pairs", metavar="OLD=NEW", multiple=True,
              help="Element OLD of the old version is NEW in the new one (default: the same id). Repeatable.")
@click.option("--reason", required=True, help="Why; recorded in the history.")
@actor_option(required=True)
@json_option
@pass_ctx
@handled
def migrate(c: Ctx, instance_id: int | None, source: str | None, to_version: int, pairs: tuple[str, ...],
            reason: str, actor: str | None, as_json: bool) -> None:
    """Move running instance INSTANCE_ID (or every one of --from KEY:VERSION) to version --to (admins)."""
    if (instance_id is None) == (source is None):
        raise InputError("give either an INSTANCE_ID or --from KEY:VERSION")
    if instance_id is not None:
        r = c.engine.migrate(instance_id, to_version, list(pairs), actor=actor, reason=reason)
        if as_json:
            dump_json(r)
        else:
            click.echo(f"instance {instance_id} moved from version {r['from']} to {r['to']}")
        return
    key, _, ver = (source or "").rpartition(":")
    if not key or not ver.isdigit():
        raise InputError(f"--from '{source}' is not KEY:VERSION, e.g. --from claim:1")
    report = c.engine.migrate_all(key, int(ver), to_version, list(pairs), actor=actor, reason=reason)
    if as_json:
        dump_json(report.to_json())
    else:
        click.echo(f"moved {len(report.moved)}: {', '.join(map(str, report.moved)) or '-'}")
        for iid, why in report.refused.items():
            click.echo(f"refused {iid}: {why}")
    if report.refused:
        raise Conflict(f"{len(report.refused)} of {len(report.moved) + len(report.refused)} instances were "
                       "refused and left unchanged (see above)")


@main.command()
@click.argument("instance_id", type=int)
@click.option("--cancel", "cancel_element", metavar="ELEMENT", help="Cancel the activity ELEMENT.")
@click.option("--start-before", "start_element", metavar="ELEMENT", help="Start a new token before ELEMENT.")
@click.option("--set", "assignment", metavar="NAME=JSON", help="Set process variable NAME to a JSON value.")
@click.option("--reason", required=True, help="Why; recorded in the history.")
@actor_option(required=True)
@pass_ctx
@handled
def modify(c: Ctx, instance_id: int, cancel_element: str | None, start_element: str | None,
           assignment: str | None, reason: str, actor: str | None) -> None:
    """Change a running instance (admins): cancel an activity, start before an element, set a variable."""
    given = [x for x in (cancel_element, start_element, assignment) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --cancel ELEMENT, --start-before ELEMENT, --set NAME=JSON")
    if cancel_element is not None:
        c.engine.cancel_activity(instance_id, cancel_element, actor=actor, reason=reason)
        click.echo(f"instance {instance_id}: cancelled {cancel_element}")
    elif start_element is not None:
        c.engine.start_before(instance_id, start_element, actor=actor, reason=reason)
        click.echo(f"instance {instance_id}: started before {start_element}")
    else:
        name, sep, raw = (assignment or "").partition("=")
        if not sep:
            raise InputError(f"--set '{assignment}' is not NAME=JSON, e.g. --set amount=5 or --set note='\"x\"'")
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise InputError(f"--set {name}={raw!r}: the value is not JSON; give e.g. {name}=5, {name}=true, "
                             f"{name}='\"text\"' or {name}='{{\"a\": 1}}'") from None
        c.engine.set_variable(instance_id, name.strip(), value, actor=actor, reason=reason)
        click.echo(f"instance {instance_id}: {name.strip()} = {json.dumps(value, ensure_ascii=False)}")


@main.command()
@click.argument("name")
@click.option("--data", metavar="JSON|@FILE", help="Message payload: becomes process variables.")
@click.option("--business-key", metavar="KEY", help="Deliver to (or start) the instance with this key.")
@click.option("--instance", "instance_id", type=int, help="Deliver to this instance.")
@actor_option(required=True)
@json_option
@pass_ctx
@handled
def message(c: Ctx, name: str, data: str | None, business_key: str | None, instance_id: int | None,
            actor: str | None, as_json: bool) -> None:
    """Send message NAME: to the instance waiting for it, or start the process it starts."""
    result = c.engine.message(name, parse_json_arg(data), actor=actor, business_key=business_key,
                              instance_id=instance_id)
    if as_json:
        dump_json(result)
    elif "started" in result:
        click.echo(f"message '{name}' started instance(s) {', '.join(map(str, result['started']))}")
    else:
        click.echo(f"message '{name}' delivered to instance {result['delivered_to']}")


@main.command("signal")
@click.argument("name")
@click.option("--data", metavar="JSON|@FILE", help="Signal payload: becomes process variables of every receiver.")
@actor_option(required=True)
@json_option
@pass_ctx
@handled
def signal_command(c: Ctx, name: str, data: str | None, actor: str | None, as_json: bool) -> None:
    """Broadcast signal NAME to every waiting instance; start every process that starts with it."""
    result = c.engine.signal(name, parse_json_arg(data), actor=actor)
    if as_json:
        dump_json(result)
        return
    if result["delivered_to"]:
        click.echo(f"signal '{name}' delivered to instance(s) {', '.join(map(str, result['delivered_to']))}")
    if result["started"]:
        click.echo(f"signal '{name}' started instance(s) {', '.join(map(str, result['started']))}")
    for f in result["failed"]:
        where = f"instance {f['instance']}" if "instance" in f else f"process {f['process']}"
        click.echo(f"signal '{name}' failed at {where}: {f['error']}", err=True)
    if result["truncated"]:
        from engine.signals import MAX_DELIVERIES

        click.echo(f"signal '{name}' stopped after {MAX_DELIVERIES} deliveries (signals that cause signals)", err=True)


# ----------------------------------------------------------------------------- tasks
def _print_tasks(tasks: list[Any], with_state: bool = False) -> None:
    rows = []
    for t in tasks:
        who = t.assignee or ",".join(t.candidate_users + [f"@{g}" for g in t.candidate_groups])
        rows.append({"id": t.id, "instance": t.instance_id, "name": t.name, "who": who, "due": t.due_at,
                     "late": "OVERDUE" if t.overdue and t.state == "open" else ("late" if t.overdue else ""),
                     "form": t.form_key, "state": t.state, "prio": t.priority})
    cols = [("id", "TASK"), ("instance", "INSTANCE"), ("name", "NAME"), ("who", "ASSIGNEE/CANDIDATES"),
            ("due", "DUE"), ("late", ""), ("form", "FORM")]
    if with_state:
        cols.append(("state", "STATE"))
    table(rows, cols, empty="(no tasks)")


@main.command()
@actor_option()
@click.option("--mine", is_flag=True, help="Only tasks assigned to me.")
@click.option("--all", "all_", is_flag=True, help="Every open task, whoever may work on it.")
@click.option("--group", metavar="GROUP", help="Tasks offered to this role or department.")
@click.option("--instance", "instance_id", type=int, help="Tasks of one instance.")
@click.option("--overdue", is_flag=True, help="Only tasks past their due date.")
@click.option("--state", type=click.Choice(["open", "completed", "cancelled", "any"]), default="open",
              show_default=True, help="Tasks in this state (any: every state).")
@click.option("--limit", default=500, show_default=True, help="At most this many tasks (soonest due first).")
@json_option
@wide_option
@pass_ctx
@handled
def tasks(c: Ctx, actor: str | None, mine: bool, all_: bool, group: str | None, instance_id: int | None,
          overdue: bool, state: str, limit: int, as_json: bool) -> None:
    """Tasks USER may work on: assigned to them, or unassigned with them a candidate."""
    scope = "mine" if mine else "all" if (all_ or (actor is None and (group or instance_id or overdue))) \
        else "available"
    from engine import quickread

    # On SQLite the standard library's sqlite3 alone (engine/quickread.py); elsewhere SQLAlchemy
    # Core without the Engine's imports (engine/reader.py); the Engine answers what both leave to
    # it (an older schema, an unknown user, a database error), with its messages.
    rows = quickread.list_tasks(c.db, actor, scope, group, instance_id, overdue, state, limit)
    if rows is None:
        from engine.reader import list_tasks

        rows = list_tasks(c.db, actor, scope, group, instance_id, overdue, state, limit)
    if rows is None:
        rows = c.engine.tasks(actor, scope=scope, group=group, instance_id=instance_id, overdue=overdue,
                              state=state, limit=limit)
    if as_json:
        dump_json([t.to_json() for t in rows])
    else:
        _print_tasks(rows, with_state=state != "open")
        if len(rows) == limit:
            click.echo(f"(the first {limit}; more with --limit N)", err=True)


@main.command()
@click.argument("task_id", type=int)
@json_option
@wide_option
@pass_ctx
@handled
def task(c: Ctx, task_id: int, as_json: bool) -> None:
    """Show one task: its data and its form's fields, with their descriptions and allowed values.
    Values already on the task (from a message or an earlier step) need not be sent again."""
    from engine.formview import fields, task_defaults, undeclared_fields

    t = c.engine.task(task_id)
    data = c.engine.task_data(task_id) if t.state == "open" else {}
    form = c.engine.task_form(task_id)
    if as_json:
        dump_json({"task": t.to_json(), "data": data, "form": form,
                   "fields": [f.to_json() for f in fields(form, data)] if form else [],
                   "defaults": task_defaults(form, data) if form else {},
                   "undeclared_fields": undeclared_fields(form) if form else None})
        return
    _print_tasks([t], with_state=True)
    click.echo("data: " + json.dumps(data, ensure_ascii=False, sort_keys=True))
    if not form:
        return
    title = form.get("title")
    click.echo(f"form {t.form_key}" + (f": {title}" if title else ""))
    if form.get("description"):
        click.echo(f"  {form['description']}")
    shown = fields(form, data)
    table([{"field": f.name, "type": f.type, "required": "yes" if f.required else "", "title": f.title,
            "values": ", ".join(f"{v}={n}" if n else json.dumps(v, ensure_ascii=False) for v, n in f.choices),
            "now": json.dumps(f.value, ensure_ascii=False) if f.has_value else ""} for f in shown],
          [("field", "FIELD"), ("type", "TYPE"), ("required", "REQUIRED"), ("title", "TITLE"),
           ("values", "VALUES"), ("now", "ON THE TASK")])
    described = [f for f in shown if f.description]
    if described:
        click.echo("fields:")
        for f in described:
            click.echo(f"  {f.name}: {f.description}")
    if t.state == "open":
        known = [f.name for f in shown if f.has_value]
        if known:
            click.echo(f"already on the task, kept unless you send another value: {', '.join(known)}")
        click.echo(f"other fields: {undeclared_fields(form)}")


@main.command()
@click.argument("task_id", type=int)
@actor_option(required=True)
@pass_ctx
@handled
def claim(c: Ctx, task_id: int, actor: str) -> None:
    """Claim a task you are a candidate for."""
    c.engine.claim(task_id, actor)
    click.echo(f"task {task_id} claimed by {actor}")


@main.command()
@click.argument("task_id", type=int)
@actor_option(required=True)
@pass_ctx
@handled
def unclaim(c: Ctx, task_id: int, actor: str) -> None:
    """Give a claimed task back to its candidates."""
    c.engine.unclaim(task_id, actor)
    click.echo(f"task {task_id} returned to its candidates")


@main.command()
@click.argument("task_id", type=int)
@click.argument("to_user")
@actor_option(required=True)
@pass_ctx
@handled
def delegate(c: Ctx, task_id: int, to_user: str, actor: str) -> None:
    """Hand a task you hold to TO_USER."""
    c.engine.delegate(task_id, actor, to_user)
    click.echo(f"task {task_id} delegated to {to_user}")


@main.command()
@click.argument("task_id", type=int)
@click.option("--data", metavar="JSON|@FILE", help="The form's field values.")
@actor_option(required=True)
@pass_ctx
@handled
def complete(c: Ctx, task_id: int, data: str | None, actor: str) -> None:
    """Complete a task with its form data."""
    c.engine.complete(task_id, actor, parse_json_arg(data))
    click.echo(f"task {task_id} completed by {actor}")


# ----------------------------------------------------------------------------- deadlines
@main.command()
@click.option("--once", is_flag=True, help="Do one pass over what is due, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--wait", is_flag=True, help="On SQLite, wait for another worker to stop instead of exiting.")
@pass_ctx
@handled
def worker(c: Ctx, once: bool, interval: float, wait: bool) -> None:
    """Fire due timers, due dates and escalations, each in its own transaction, in due order."""
    from engine import Worker

    # The worker logs what it fires with the engine's (possibly simulated) times in its message;
    # a wall-clock stamp beside them would only mislead.
    log = logging.getLogger("tigao.worker")
    for old in [h for h in log.handlers if getattr(h, "tigao_cli", False)]:
        log.removeHandler(old)
    handler = logging.StreamHandler()
    handler.tigao_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("worker: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG if c.debug else logging.INFO)
    w = Worker(c.engine)
    now = c.engine.now()
    click.echo(f"worker on {c.engine.safe_url}: {'simulated' if c.engine.simulated else 'system'} clock at "
               f"{fmt(now, seconds=True, zone=True)}; times below are in {zone_name()}", err=True)

    def stop(signum: int, _frame: Any) -> None:
        click.echo(f"stopping after the transaction in flight (signal {signum})", err=True)
        w.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not w.acquire_lease():
        if not wait:
            raise Conflict("another worker is running on this SQLite database (one at a time on SQLite); "
                           "use --wait to wait for it, or PostgreSQL for several workers")
        time.sleep(interval)
    try:
        total = 0
        while not w.stopping:
            fired = w.run_once()  # each firing is logged (stderr) as it happens
            total += len(fired)
            if once:
                break
            w.acquire_lease()
            w.idle(interval)  # heartbeats while it waits
        click.echo(f"worker done: {total} fired")
    finally:
        w.release_lease()


@main.command()
@click.option("--department", metavar="DEPT", help="Only tasks of people in this department (a department id).")
@json_option
@wide_option
@pass_ctx
@handled
def overdue(c: Ctx, department: str | None, as_json: bool) -> None:
    """Open tasks past their due date."""
    rows = c.engine.tasks(scope="all", overdue=True, department=department)
    if as_json:
        dump_json([t.to_json() for t in rows])
    else:
        _print_tasks(rows)


@main.command()
@actor_option()
@click.option("--unread", is_flag=True, help="Only notifications not yet marked read.")
@json_option
@wide_option
@pass_ctx
@handled
def notifications(c: Ctx, actor: str | None, unread: bool, as_json: bool) -> None:
    """Notifications for a user (--as): overdue tasks, reminders, escalations."""
    if not actor:
        raise InputError("whose notifications? give --as USER (or set TIGAO_USER)")
    rows = [{"id": n.id, "at": n.at, "kind": n.kind, "task": n.task_id, "instance": n.instance_id,
             "message": n.message} for n in c.engine.notifications(actor, unread)]
    if as_json:
        dump_json(rows)
    else:
        table(rows, [("id", "ID"), ("at", "AT"), ("kind", "KIND"), ("task", "TASK"), ("message", "MESSAGE")])


# ----------------------------------------------------------------------------- history
@main.command("history")
@click.argument("instance_id", type=int)
@json_option
@wide_option
@pass_ctx
@handled
def history_cmd(c: Ctx, instance_id: int, as_json: bool) -> None:
    """The instance's history: who did what, when."""
    from engine.audit import summarize

    events = c.engine.history(instance_id)
    if as_json:
        dump_json([{"seq": e.seq, "at": e.at, "actor": e.actor, "type": e.type, "element": e.element_id,
                    "task": e.task_id, "payload": e.payload, "hash": e.hash} for e in events])
        return
    names = c.engine.element_names(instance_id)
    table([{"seq": e.seq, "at": fmt(e.at, seconds=True), "actor": e.actor, "type": e.type,
            "element": names.get(e.element_id or "", e.element_id), "summary": summarize(e)} for e in events],
          [("seq", "SEQ"), ("at", f"TIME ({zone_name()})"), ("actor", "ACTOR"), ("type", "TYPE"),
           ("element", "ELEMENT"), ("summary", "SUMMARY")])


# ----------------------------------------------------------------------------- audit
def _auditor(c: Ctx, actor: str | None) -> Any:
    from engine.audit import Auditor

    if actor:
        c.engine.check_reader(actor)
    return Auditor(c.engine)


@main.group()
def audit() -> None:
    """Audit checkpoints."""


@audit.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The private key file to write (mode 0600); the public key goes to FILE.pub.")
@pass_ctx
@handled
def audit_keygen(c: Ctx, out: str) -> None:
    """Make an Ed25519 key pair for signing seals. Keep the private key off the database server."""
    from engine.seals import keygen

    priv, pub, fp = keygen(out)
    click.echo(f"private key {priv} (keep it secret and outside the database)")
    click.echo(f"public key  {pub} (give it to auditors: tigao verify --pubkey {pub})")
    click.echo(f"fingerprint {fp}")


@audit.command("seal")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Sign the seal with this Ed25519 private key (from 'tigao audit keygen').")
@actor_option(required=True)
@pass_ctx
@handled
def audit_seal(c: Ctx, key_file: str | None, actor: str) -> None:
    """Record every instance's chain head and print one Merkle root to keep outside the system."""
    from engine.seals import fingerprint, load_private_key

    key = load_private_key(key_file) if key_file else None
    seal_id, root, n = _auditor(c, actor).seal(actor, key)
    click.echo(f"seal {seal_id} over {n} instances")
    click.echo(f"root {root}")
    if key is not None:
        click.echo(f"signed by key {fingerprint(key.public_key())}")


def _anchors(pubkeys: tuple[str, ...], roots: tuple[str, ...]) -> tuple[list[Any], list[str]]:
    from engine.seals import load_public_key, read_roots

    return [load_public_key(p) for p in pubkeys], read_roots(roots)


pubkey_option = click.option("--pubkey", "pubkeys", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                             help="Every seal must be signed by this public key (repeatable).")
root_option = click.option("--root", "roots", multiple=True, metavar="HEX|FILE",
                           help="A seal root kept outside the database, or a file of them (repeatable); "
                                "each must be a seal's root.")


@main.command()
@click.argument("instance_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Every instance.")
@click.option("--no-replay", is_flag=True, help="Check the chains and seals only.")
@pubkey_option
@root_option
@actor_option()
@json_option
@pass_ctx
@handled
def verify(c: Ctx, instance_id: int | None, all_: bool, no_replay: bool, pubkeys: tuple[str, ...],
           roots: tuple[str, ...], actor: str | None, as_json: bool) -> None:
    """Verify triggers, hash chains, seals, task projections and replays; exit 0 when all hold."""
    if (instance_id is None) == (not all_):
        raise InputError("give an instance ID or --all")
    keys, root_list = _anchors(pubkeys, roots)
    auditor = _auditor(c, actor)
    ids = [instance_id] if instance_id is not None else None
    with click.progressbar(length=1, label="verifying", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(1)

        n, failures = auditor.verify(ids, replay=not no_replay, progress=progress, pubkeys=keys, roots=root_list)
    checks = "chain, seals" + (", signatures" if keys else "") + (", outside roots" if root_list else "") \
        + ", tasks" + ("" if no_replay else ", replay")
    if as_json:
        dump_json({"ok": not failures, "instances": n, "checks": checks,
                   "failures": [{"instance": f.instance_id or None, "seq": f.seq, "kind": f.kind, "detail": f.detail,
                                 "message": str(f)} for f in failures]})
    else:
        for f in failures:
            click.echo(f"FAIL {f}")
    if failures:
        click.echo(f"{len(failures)} failure{'' if len(failures) == 1 else 's'}; {n} instances checked", err=True)
        click.get_current_context().exit(11)
    if not as_json:
        click.echo(f"ok: {n} instances verified ({checks})")


def _print_steps(result: Any, step: int | None) -> None:
    steps = result.steps
    if step is not None:
        chosen = [s for s in steps if s.seq == step]
        if not chosen:
            last = steps[-1].seq if steps else 0
            if result.divergence:  # the replay stopped early; the divergence is the answer
                click.echo(f"no step {step}: the replay stopped after step {last}")
                return
            raise InputError(f"no step {step}: instance {result.instance_id} has {last} steps; "
                             f"give --step 1 to {last}" if last else
                             f"no step {step}: instance {result.instance_id} has no steps")
        s = chosen[-1]
        click.echo(f"after step {s.seq} ({s.type} by {s.actor or '-'} at {fmt(s.at, seconds=True)}):")
        click.echo("open tasks: " + (", ".join(s.open_tasks) or "(none)"))
        click.echo("data: " + json.dumps(s.data, ensure_ascii=False, sort_keys=True))
        for name, d in s.subprocesses.items():
            click.echo(f"data in {name}: " + json.dumps(d, ensure_ascii=False, sort_keys=True))
        click.echo("changed: " + json.dumps(s.changed, ensure_ascii=False, sort_keys=True))
        return
    table([{"seq": s.seq, "at": fmt(s.at, seconds=True), "type": s.type, "actor": s.actor,
            "open": ", ".join(s.open_tasks), "changed": json.dumps(s.changed, ensure_ascii=False, sort_keys=True)}
           for s in steps],
          [("seq", "SEQ"), ("at", "TIME"), ("type", "TYPE"), ("actor", "ACTOR"), ("open", "OPEN TASKS"),
           ("changed", "CHANGED")])


@main.command()
@click.argument("instance_id", type=int, required=False)
@click.option("--step", type=int, help="Show the state after this sequence number.")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False), help="Replay from an audit file.")
@pubkey_option
@root_option
@actor_option()
@json_option
@wide_option
@pass_ctx
@handled
def replay(c: Ctx, instance_id: int | None, step: int | None, from_file: str | None, pubkeys: tuple[str, ...],
           roots: tuple[str, ...], actor: str | None, as_json: bool) -> None:
    """Rebuild an instance from its recorded inputs at the recorded times and compare."""
    from engine.audit import Failure, read_audit_file, verify_file

    if step is not None and instance_id is None:
        raise InputError("--step needs an instance ID")
    if from_file:
        keys, root_list = _anchors(pubkeys, roots)
        results = verify_file(read_audit_file(from_file), instance_id, upto=None, pubkeys=keys, roots=root_list)
    else:
        if instance_id is None:
            raise InputError("give an instance ID (or --from-file FILE)")
        if pubkeys or roots:
            raise InputError("--pubkey and --root check an audit file here (--from-file); "
                             "for the database use 'tigao verify'")
        results = [_auditor(c, actor).replay(instance_id)]
    if step is not None:
        for r in results:
            if not isinstance(r, Failure) and not r.divergence and not any(s.seq == step for s in r.steps):
                _print_steps(r, step)  # raises: says how many steps there are
    bad = 0
    for r in results:
        if isinstance(r, Failure):
            click.echo(f"FAIL {r}")
            bad += 1
            continue
        if as_json:
            dump_json({"instance": r.instance_id, "ok": r.ok, "divergence": str(r.divergence) if r.divergence else None,
                       "steps": [{"seq": s.seq, "at": s.at, "type": s.type, "actor": s.actor,
                                  "open_tasks": s.open_tasks, "data": s.data, "subprocesses": s.subprocesses,
                                  "changed": s.changed} for s in r.steps
                                 if step is None or s.seq == step]})
        else:
            click.echo(f"instance {r.instance_id}: {len(r.steps)} steps replayed")
            if step is not None or instance_id is not None:
                _print_steps(r, step)
            click.echo(f"FAIL {r.divergence}" if r.divergence else
                       "ok: the replayed state equals the stored state")
        if not r.ok:
            bad += 1
    if bad:
        click.get_current_context().exit(11)


@main.command()
@click.argument("instance_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Every instance.")
@click.option("--format", "fmt_", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="JSON lines (replayable with 'tigao replay --from-file') or CSV of the events.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (default: standard output).")
@actor_option()
@pass_ctx
@handled
def export(c: Ctx, instance_id: int | None, all_: bool, fmt_: str, out: str | None, actor: str | None) -> None:
    """A self-contained audit file: definitions, directory, events, seals and stored states."""
    if (instance_id is None) == (not all_):
        raise InputError("give an instance ID or --all")
    lines = _auditor(c, actor).export([instance_id] if instance_id is not None else None, fmt_)
    if out:
        try:
            with open(out, "w", encoding="utf-8") as f:
                for line in lines:
                    f.write(line + "\n")
        except OSError as exc:  # a full disk, a device, a folder that is not writable
            raise InputError(f"cannot write '{out}': {exc.strerror}; choose a file you can write") from exc
        click.echo(f"wrote {out}")
    else:
        for line in lines:
            click.echo(line)


@main.group("db")
def db_group() -> None:
    """Database administration."""


@db_group.command("roles")
@click.option("--owner", required=True, metavar="ROLE", help="The role that owns the tables and runs 'tigao init'.")
@click.option("--app", "app", required=True, metavar="ROLE",
              help="The role the server and the worker connect as: INSERT and SELECT only on the history.")
@click.option("--apply", "apply_", is_flag=True,
              help="Run the SQL on --db (as a superuser) instead of printing it.")
@pass_ctx
@handled
def db_roles(c: Ctx, owner: str, app: str, apply_: bool) -> None:
    """A least-privilege PostgreSQL setup: print (or apply) the SQL for an owner and an application role."""
    from engine.roles import apply_roles, role_statements

    if not apply_:
        click.echo("\n".join(role_statements(owner, app)))
        return
    apply_roles(c.engine, owner, app)
    click.echo(f"roles set: {owner} owns the tables; {app} may only INSERT and SELECT on events, seals "
               "and seal_heads")


# ----------------------------------------------------------------------------- demo and campaign report
@main.command("demo")
@click.option("--db", "demo_db", metavar="URL",
              help="A new database for the demo (default: a new file demo-SEED.db here); an existing "
                   "one must be empty. TIGAO_DB is not used: the demo never writes into your database.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the year: same seed, same year.")
@click.option("--complaints", default=24, show_default=True, type=click.IntRange(min=0),
              help="Complaints arriving during the year.")
@click.option("--staff", type=click.IntRange(min=0), metavar="N",
              help="A smaller bureau: each department's head, the bureau roles and N further staff.")
@click.pass_context
@handled
def demo_cmd(ctx: click.Context, demo_db: str | None, seed: int, complaints: int, staff: int | None) -> None:
    """Play the whole Improvement Year (2012-03-01 to 2012-12-31) on a simulated clock into a new
    database, then print the campaign report."""
    import os

    from campaign.demo import run_demo
    from campaign.report import format_report
    from storage.db import safe_url, sqlite_path

    c: Ctx = ctx.obj
    parent = ctx.parent
    given = c.db if parent is not None and \
        parent.get_parameter_source("db") == click.core.ParameterSource.COMMANDLINE else None
    db = demo_db or given or f"demo-{seed}.db"
    path = sqlite_path(db) if "://" in db else db
    if not (demo_db or given) and path and os.path.exists(path):
        raise InputError(f"'{path}' already exists and the demo does not overwrite it; remove it, or give "
                         "another file with --db")
    shown = safe_url(db) if "://" in db else db
    click.echo(f"playing the Improvement Year into {shown} (seed {seed}, {complaints} complaints"
               + (f", {staff} staff per department" if staff is not None else "") + ")")
    report_ = run_demo(db, seed=seed, complaints=complaints, staff_limit=staff, progress=click.echo)
    click.echo("")
    click.echo(format_report(report_))
    campaign = report_["campaign"]["instance"]
    click.echo("")
    click.echo("explore it with:")
    for command in ("tasks --all --state any", "instances", f"history {campaign}", f"show {campaign}", "report"):
        click.echo(f"  tigao --db {shown} {command}")
    click.echo("or in a browser (u05 is an administrator of the sample bureau, audit01 its auditor):")
    click.echo(f"  tigao --db {shown} passwd u05 && tigao --db {shown} serve   # http://127.0.0.1:8080/")


@main.command("report")
@click.option("--from", "date_from", metavar="DATE", help="Start of the window (a date or an ISO date-time).")
@click.option("--to", "date_to", metavar="DATE", help="End of the window (a date, to the end of that day).")
@json_option
@pass_ctx
@handled
def report_cmd(c: Ctx, date_from: str | None, date_to: str | None, as_json: bool) -> None:
    """The campaign report: phases, departments, complaints, escalations, discipline, evaluation."""
    from campaign.report import campaign_report, format_report

    result = campaign_report(c.engine, date_from, date_to)
    if as_json:
        dump_json(result)
    else:
        click.echo(format_report(result))


# ----------------------------------------------------------------------------- server and identity
def _quiet_server_class() -> Any:
    import contextlib

    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn's server, but SIGTERM/Ctrl-C end it with exit code 0 after requests in flight
        (uvicorn itself re-raises the signal once it has stopped, which reads as a crash)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return QuietServer


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--no-worker", is_flag=True, help="Do not run the deadline worker here (run 'tigao worker').")
@click.option("--no-group-commit", is_flag=True,
              help="Commit each request's command alone (default: concurrent commands share one durable "
                   "commit; also TIGAO_GROUP_COMMIT=0).")
@pass_ctx
@handled
def serve(c: Ctx, host: str, port: int, no_worker: bool, no_group_commit: bool) -> None:
    """Run the HTTP server: the /api/v1 API (docs at /api/v1/docs) and Camunda's /engine-rest."""
    import socket

    import uvicorn

    from web.app import create_app

    server_class = _quiet_server_class()
    c.engine.now()  # a missing or unreachable database stops here, with its message
    c.engine.close()
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from exc
    for name in ("tigao.http", "tigao.worker"):
        logging.getLogger(name).setLevel(logging.INFO)
    import sys

    from web.app import SWITCH_INTERVAL

    # A thread back from the database (or an fsync) waits for the GIL while request threads
    # compute; Python's default 5 ms turns every statement of a contended command into a wait of
    # up to that long. A shorter interval keeps the committing thread moving.
    sys.setswitchinterval(SWITCH_INTERVAL)
    app = create_app(c.db, worker=not no_worker, group_commit=False if no_group_commit else None)
    click.echo(f"serving {c.engine.safe_url} on http://{host}:{port}/api/v1 (docs /api/v1/docs)"
               + ("" if no_worker else " with the deadline worker"), err=True)
    server = server_class(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                         timeout_graceful_shutdown=30))
    server.run()
    click.echo("server stopped", err=True)


@main.command("passwd")
@click.argument("user")
@pass_ctx
@handled
def passwd(c: Ctx, user: str) -> None:
    """Set USER's password (asked twice on a terminal; read from standard input otherwise)."""
    from engine.identity import Identity

    if sys.stdin.isatty():
        password = click.prompt(f"password for {user}", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    Identity(c.engine).set_password(user, password)
    click.echo(f"password set for {user}")


@main.group()
def token() -> None:
    """API tokens: `Authorization: Bearer TOKEN`, or HTTP Basic with the token as the password."""


@token.command("create")
@click.argument("user")
@click.option("--name", metavar="NAME", help="What the token is for (shown by 'token list').")
@click.option("--expires", metavar="DURATION", help="ISO 8601 duration until it expires, e.g. P90D.")
@pass_ctx
@handled
def token_create(c: Ctx, user: str, name: str | None, expires: str | None) -> None:
    """Create a token for USER and print it once (only its hash is stored)."""
    from datetime import timezone

    from engine.identity import Identity

    delta = None
    if expires:
        if not is_duration(expires):
            raise InputError(f"'{expires}' is not an ISO 8601 duration (e.g. P90D, PT12H)")
        now = datetime.now(timezone.utc)
        delta = add_iso_duration(now, expires) - now
        if delta.total_seconds() <= 0:
            raise InputError("--expires must be a positive duration")
    token_id, secret = Identity(c.engine).create_token(user, name, delta)
    click.echo(f"token {token_id} for {user}" + (f", expires in {expires}" if expires else "")
               + " (shown once; keep it secret):", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--user", metavar="USER", help="Only this user's tokens.")
@json_option
@pass_ctx
@handled
def token_list(c: Ctx, user: str | None, as_json: bool) -> None:
    """Tokens (never their secrets): who, what for, expiry, revocation, last use."""
    from engine.identity import Identity

    rows = Identity(c.engine).tokens(user)
    if as_json:
        dump_json([t.to_json() for t in rows])
        return
    table([t.__dict__ for t in rows], [("id", "ID"), ("user", "USER"), ("name", "NAME"), ("created_at", "CREATED"),
                                       ("expires_at", "EXPIRES"), ("revoked_at", "REVOKED"),
                                       ("last_used_at", "LAST USED")])


@token.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
@handled
def token_revoke(c: Ctx, token_id: int) -> None:
    """Revoke token TOKEN_ID: it stops working at once."""
    from engine.identity import Identity

    t = Identity(c.engine).revoke_token(token_id)
    click.echo(f"token {t.id} of {t.user} revoked")


# ----------------------------------------------------------------------------- external tasks and incidents
@main.command("external-tasks")
@click.option("--topic", metavar="TOPIC", help="Only tasks of this topic.")
@click.option("--instance", "instance_id", type=int, help="Only tasks of this instance.")
@click.option("--handlers", is_flag=True, help="Also the steps in-process handlers run.")
@json_option
@pass_ctx
@handled
def external_tasks(c: Ctx, topic: str | None, instance_id: int | None, handlers: bool, as_json: bool) -> None:
    """Open external tasks: topic, instance, lock holder and expiry, retries, last error."""
    rows = c.engine.external_tasks(topic=topic, instance_id=instance_id, handlers=handlers)
    if as_json:
        dump_json(rows)
        return
    table([{**r, "topic": r["handler"] and f"handler:{r['handler']}" or r["topic"]} for r in rows],
          [("id", "ID"), ("topic", "TOPIC"), ("instance_id", "INSTANCE"), ("element_id", "ELEMENT"),
           ("priority", "PRIO"), ("worker_id", "LOCKED BY"), ("lock_expires_at", "UNTIL"), ("retries", "RETRIES"),
           ("error_message", "ERROR")], empty="(no external tasks)")


@main.command()
@click.option("--all", "all_", is_flag=True, help="Resolved incidents too.")
@json_option
@pass_ctx
@handled
def incidents(c: Ctx, all_: bool, as_json: bool) -> None:
    """Failed steps waiting for an operator, and running instances that wait for nothing (stuck)."""
    rows = c.engine.incidents(include_resolved=all_)
    stuck = c.engine.stuck_instances()
    if as_json:
        dump_json({"incidents": rows, "stuck": stuck})
        return
    table(rows, [("id", "INCIDENT"), ("instance_id", "INSTANCE"), ("element_id", "ELEMENT"), ("kind", "KIND"),
                 ("created_at", "SINCE"), ("resolved_at", "RESOLVED"), ("message", "MESSAGE")],
          empty="(no open incidents)")
    if stuck:
        click.echo("stuck (running, waiting for nothing):")
        table(stuck, [("instance_id", "INSTANCE"), ("key", "PROCESS"), ("started_at", "STARTED"),
                      ("message", "WHY")])


@main.command()
@click.argument("incident_id", type=int)
@actor_option(required=True)
@pass_ctx
@handled
def retry(c: Ctx, incident_id: int, actor: str | None) -> None:
    """Run the failed step of incident INCIDENT_ID again; resolved when it succeeds."""
    result = c.engine.retry_incident(incident_id, actor or "")
    click.echo(f"incident {incident_id} resolved: {result['how']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
