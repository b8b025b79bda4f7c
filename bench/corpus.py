"""Run a folder of BPMN diagrams nobody here wrote, the way a new user would, and count what works.

    .venv/bin/python bench/corpus.py FOLDER [--timeout 30] [--rounds 60] [--json OUT] [--only TEXT]

For every `.bpmn` / `.bpmn20.xml` file under FOLDER (recursively) it builds a bundle of that file,
the sibling DMN files its business rule tasks name, the sibling diagrams its call activities name,
and the forms beside it; makes a new SQLite database on a simulated clock with a directory made
from the names the diagram uses (assignees, candidate users and groups, lanes; user `demo` is in
every role); then validates, deploys, starts every executable process and drives each instance:
completing open tasks with data made from their form (defaults, else a value of the field's
type), locking and completing external tasks as a worker would, delivering the messages instances
wait for, advancing the clock to the next timer and running the worker. A condition that names a variable nobody set is answered by retrying the
step with that variable set to `true` (the "data for its gateways" a person would give).

It prints one line per file (validated / started / completed / why not) and the totals. This is
a measurement, not a test: the diagrams stay outside the repository.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import signal
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from lxml import etree  # noqa: E402

from engine import Engine, EngineError, Worker  # noqa: E402
try:
    from engine.juel import expression_source  # noqa: E402
except ImportError:  # an engine without JUEL: guess from the Python text
    def expression_source(text: str) -> str:
        return text.strip()[2:-1] if text.strip().startswith("${") else text

CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
T0 = datetime(2024, 1, 8, 9, 0, tzinfo=timezone.utc)
MISSING_NAME = re.compile(r"name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")
FAILED_EXPR = re.compile(r"Error evaluating expression '(.*)'\. ;")


class Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise Timeout()


def _xml(path: Path) -> etree._Element | None:
    try:
        return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (etree.XMLSyntaxError, OSError):
        return None


def _ids(root: etree._Element, tag: str) -> set[str]:
    return {str(e.get("id")) for e in root.iter(tag) if e.get("id")}


def bundle_for(path: Path) -> list[Path]:
    """The file, plus the sibling diagrams and decisions it needs, plus its forms."""
    root = _xml(path)
    files = [path]
    if root is None:
        return files
    folder = path.parent
    siblings = [p for p in sorted(folder.iterdir()) if p != path and p.is_file()]
    processes = {}
    decisions = {}
    for p in siblings:
        if p.name.endswith((".bpmn", ".bpmn20.xml", ".dmn", ".dmn11.xml")):
            r = _xml(p)
            if r is None:
                continue
            for pid in _ids(r, f"{BPMN}process"):
                processes.setdefault(pid, p)
            for el in r.iter():
                if isinstance(el.tag, str) and el.tag.endswith("}decision") and el.get("id"):
                    decisions.setdefault(str(el.get("id")), p)
    todo = [root]
    seen = {path}
    while todo:
        r = todo.pop()
        for call in r.iter(f"{BPMN}callActivity"):
            p = processes.get(call.get("calledElement") or "")
            if p is not None and p not in seen:
                seen.add(p)
                files.append(p)
                sub = _xml(p)
                if sub is not None:
                    todo.append(sub)
        for brt in r.iter(f"{BPMN}businessRuleTask"):
            p = decisions.get(brt.get(f"{CAMUNDA}decisionRef") or "")
            if p is not None and p not in seen:
                seen.add(p)
                files.append(p)
    for p in siblings:
        if p.suffix in (".form", ".json") and p not in seen:
            seen.add(p)
            files.append(p)
    # Camunda Forms often live elsewhere in the project (src/main/webapp): take the ones it names.
    wanted = {PurePosixPath(k.split(":")[-1]).name for k in re.findall(r'formKey="camunda-forms:([^"]+)"',
                                                                        path.read_text(errors="replace"))}
    if wanted:
        top = path.parents[min(3, len(path.parents) - 1)]
        for p in sorted(top.rglob("*.form"))[:200]:
            if p.name in wanted and p not in seen and p.name not in {f.name for f in files}:
                seen.add(p)
                files.append(p)
    return files


def directory_for(files: list[Path]) -> str:
    """An organisation TOML naming every user, group and lane the diagrams use."""
    users = {"demo"}
    groups: set[str] = set()
    lanes: dict[str, str] = {}
    for f in files:
        root = _xml(f)
        if root is None:
            continue
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            for attr, target in (("assignee", users), ("candidateUsers", users), ("candidateGroups", groups)):
                v = el.get(f"{CAMUNDA}{attr}")
                if v and "{" not in v:
                    target.update(x.strip() for x in v.split(",") if x.strip())
            if el.tag == f"{BPMN}lane":
                name = (el.get("name") or str(el.get("id"))).replace('"', "'").replace("\n", " ")
                if name not in lanes.values():  # lanes of one name (in two pools) are one role
                    lanes[str(el.get("id"))] = name
    safe = re.compile(r"^[A-Za-z0-9_.-]+$")
    users = {u for u in users if safe.match(u)}
    groups = {g for g in groups if safe.match(g)}
    out = ['[roles.staff]\nname = "staff"\n']
    for g in sorted(groups - {"staff"}):
        out.append(f'[roles."{g}"]\nname = "{g}"\n')
    for lid, name in sorted(lanes.items()):
        if safe.match(lid) and lid not in groups:
            out.append(f'[roles."{lid}"]\nname = "{name}"\n')
    roles = ["staff"] + sorted(groups - {"staff"}) + sorted(l for l in lanes if safe.match(l) and l not in groups)
    out.append('[departments.org]\nname = "org"\nhead = "demo"\n')
    for u in sorted(users):
        member_of = json.dumps(roles if u == "demo" else ["staff"])
        out.append(f'[users."{u}"]\nname = "{u}"\ndepartment = "org"\nroles = {member_of}\n')
    return "\n".join(out)


def sample_value(schema: dict[str, Any]) -> Any:
    if "default" in schema:
        return schema["default"]
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "oneOf" in schema and schema["oneOf"]:
        first = schema["oneOf"][0]
        return first.get("const", sample_value(first))
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if t == "boolean":
        return True
    if t in ("integer", "number"):
        return schema.get("minimum", 1)
    if t == "array":
        items = schema.get("items", {})
        return [sample_value(items)] if schema.get("minItems") else []
    if t == "object":
        return {}
    if schema.get("format") == "date-time":
        return "2024-01-08T09:00:00+00:00"
    if schema.get("format") == "date":
        return "2024-01-08"
    text = "x" * max(int(schema.get("minLength", 1)), 1)
    if schema.get("pattern"):
        for candidate in (text, "1", "true", "C-1", "a@b.example", "2024-01-08", "12:00"):
            if re.search(schema["pattern"], candidate):
                return candidate
    return text


def form_data(schema: dict[str, Any] | None) -> dict[str, Any]:
    if not schema:
        return {}
    props = schema.get("properties", {}) or {}
    required = set(schema.get("required", []) or [])
    return {k: sample_value(v) for k, v in props.items() if k in required or "default" in v}


def _guess(exc: EngineError, data: dict[str, Any]) -> dict[str, Any] | None:
    """Data for the variable a failed condition needed: the literal it is compared with, else true."""
    m = MISSING_NAME.search(str(exc))
    if m and m.group(1) not in data:
        return {**data, m.group(1): True}
    m = FAILED_EXPR.search(str(exc))
    if not m:
        return None
    try:
        tree = ast.parse(expression_source(m.group(1)), mode="eval")
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id not in data \
                and isinstance(node.comparators[0], ast.Constant):
            return {**data, node.left.id: node.comparators[0].value}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in data and node.id not in ("true", "false", "null"):
            return {**data, node.id: True}
    return None


def _retrying(fn: Any, data: dict[str, Any]) -> Any:
    """Call fn(data); when a condition names an unset variable, set it (see _guess) and call again."""
    for _ in range(6):
        try:
            return fn(data)
        except EngineError as exc:
            guessed = _guess(exc, data)
            if guessed is None:
                raise
            data = guessed
    return fn(data)


def drive(engine: Engine, rounds: int) -> tuple[bool, str]:
    """Work every instance until all end or nothing more can be done. (completed, why not)."""
    worker = Worker(engine, name="corpus")
    for round_no in range(rounds):
        running = engine.instances(status="running")
        if not running:
            return True, ""
        progressed = False
        for t in engine.tasks(scope="all"):
            user = t.assignee or (t.candidate_users[0] if t.candidate_users else None)
            if user is None:
                d = engine.directory()
                user = next((u for u in sorted(d.users) if set(d.groups_of(u)) & set(t.candidate_groups)), "demo")
            schema = engine.task_form(t.id)
            _retrying(lambda data, t=t, user=user: engine.complete(t.id, user, data), form_data(schema))
            progressed = True
            break
        if progressed:
            continue
        for inst in running:
            waiting = engine.instance(inst["id"])["waiting"]
            msgs = [w for w in waiting if "Message" in w["event"] or "Multiple" in w["event"]]
            if msgs:
                names = _subscriptions(engine, inst["id"])
                if names:
                    name = names[round_no % len(names)]  # in turn: a parallel catch wants each
                    _retrying(lambda data, n=name, i=inst["id"]: engine.message(n, data, actor="demo",
                                                                                   instance_id=i), {})
                    progressed = True
                    break
        if progressed:
            continue
        if _work_external(engine):
            continue
        due = worker.next_due()
        if due is not None:
            now = engine.now()
            if due > now:
                engine.set_clock(due + timedelta(seconds=1))
            worker.run_once()
            continue
        info = engine.instance(running[0]["id"])
        waits = ", ".join(f"{w['element']} ({w['event']})" for w in info["waiting"]) or "nothing visible"
        return False, f"stuck: instance {info['id']} waits for {waits}"
    return False, f"still running after {rounds} rounds"


def _work_external(engine: Engine) -> bool:
    """Act as an external-task worker: lock one open task of any topic and complete it."""
    open_tasks = engine.external_tasks()
    if not open_tasks:
        return False
    topics = [{"topic": t, "lock_duration": 60_000} for t in sorted({str(x["topic"]) for x in open_tasks})]
    for task in engine.fetch_and_lock("corpus", topics, max_tasks=1):
        _retrying(lambda data, t=task: engine.complete_external(t["id"], "corpus", data), {})
        return True
    return False


def _subscriptions(engine: Engine, instance_id: int) -> list[str]:
    from sqlalchemy import select

    from storage.models import MessageSubscription

    with engine._tx() as s:
        return list(s.scalars(select(MessageSubscription.message_name)
                              .where(MessageSubscription.instance_id == instance_id)))


def run_file(path: Path, work: Path, rounds: int) -> dict[str, Any]:
    res: dict[str, Any] = {"file": str(path), "validated": False, "started": False, "completed": False, "why": ""}
    files = bundle_for(path)
    folder = work / "bundle"
    (folder / "forms").mkdir(parents=True)
    for f in files:
        target = folder / f.name if f.suffix not in (".json",) else folder / "forms" / f.name
        if f.name.endswith(".bpmn20.xml"):
            target = folder / (f.name[: -len(".bpmn20.xml")] + ".bpmn")
        target.write_bytes(f.read_bytes())
    org = work / "org.toml"
    org.write_text(directory_for(files), encoding="utf-8")
    engine = Engine(str(work / "t.db"))
    try:
        engine.init(simulated=T0)
        engine.load_directory(org)
        names = [folder / (f.name[: -len(".bpmn20.xml")] + ".bpmn") if f.name.endswith(".bpmn20.xml")
                 else folder / f.name for f in files if f.suffix != ".json"]
        main = names[0]
        engine.validate([*names, folder / "forms"] if any((folder / "forms").iterdir()) else names)
        res["validated"] = True
        deployed = engine.deploy([*names, folder / "forms"] if any((folder / "forms").iterdir()) else names,
                                 actor="demo")
        own = _own_processes(main)
        keys = [d.key for d in deployed if d.key in own] or [d.key for d in deployed]
        if not keys:
            res["why"] = "no executable process"
            return res
        started = 0
        for key in keys:
            try:
                _retrying(lambda data, k=key: engine.start(k, data, actor="demo"), {})
                started += 1
            except EngineError as exc:
                msg = str(exc)
                m = re.search(r"'tigao message ([^']+)'", msg)
                if m:
                    _retrying(lambda data, n=m.group(1): engine.message(n, data, actor="demo"), {})
                    started += 1
                else:
                    res["why"] = f"start: {type(exc).__name__}: {' '.join(msg.split())}"
        if not started:
            worker = Worker(engine, name="corpus")
            due = worker.next_due()
            if due is not None:
                engine.set_clock(max(due, engine.now()) + timedelta(seconds=1))
                worker.run_once()
                started = len(engine.instances())
        if not started:
            res["why"] = res["why"] or "nothing could start it"
            return res
        res["started"] = True
        res["completed"], res["why"] = drive(engine, rounds)
    except Timeout:
        res["why"] = "timed out (hangs)"
    except EngineError as exc:
        res["why"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    except Exception as exc:  # noqa: BLE001 - a crash of the engine is what this counts
        res["why"] = f"CRASH {type(exc).__name__}: {' '.join(str(exc).split())}"
        res["crash"] = True
    finally:
        engine.close()
    return res


def _own_processes(path: Path) -> set[str]:
    root = _xml(path)
    if root is None:
        return set()
    return {str(p.get("id")) for p in root.iter(f"{BPMN}process") if p.get("isExecutable", "true") != "false"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--timeout", type=int, default=30, help="seconds per file")
    ap.add_argument("--rounds", type=int, default=60, help="driving rounds per file")
    ap.add_argument("--json", metavar="OUT", help="write every result as JSON lines")
    ap.add_argument("--only", metavar="TEXT", help="only files whose path contains TEXT")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith((".bpmn", ".bpmn20.xml")))
    if args.only:
        paths = [p for p in paths if args.only in str(p)]
    signal.signal(signal.SIGALRM, _alarm)
    results = []
    out = open(args.json, "w", encoding="utf-8") if args.json else None  # noqa: SIM115
    for p in paths:
        with tempfile.TemporaryDirectory(prefix="tigao_corpus_") as tmp:
            signal.alarm(args.timeout)
            try:
                res = run_file(p, Path(tmp), args.rounds)
            except Timeout:
                res = {"file": str(p), "validated": False, "started": False, "completed": False,
                       "why": "timed out (hangs)"}
            finally:
                signal.alarm(0)
        results.append(res)
        rel = str(p.relative_to(folder))
        flags = "".join("x" if res[k] else "." for k in ("validated", "started", "completed"))
        print(f"{flags}  {rel[-70:]:70}  {res['why'][:160]}", flush=True)
        if out:
            out.write(json.dumps(res) + "\n")
    if out:
        out.close()
    n = len(results)
    v = sum(r["validated"] for r in results)
    s = sum(r["started"] for r in results)
    c = sum(r["completed"] for r in results)
    crashes = sum(bool(r.get("crash")) for r in results)
    print(f"\nfiles {n}  validated {v}  started {s}  completed {c}  crashes {crashes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
