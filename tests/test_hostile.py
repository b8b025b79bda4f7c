"""Hostile input end to end, on SQLite and PostgreSQL: every escape is refused at deployment or
stopped within its bound when it runs, with a clear error naming the element and the bound; the
transaction rolls back (row counts and rows unchanged) and the engine goes on serving."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from cli import main
from conftest import BPMN, ORG, set_simulated
from engine import Engine, Worker, limits
from engine.errors import DefinitionError, ScriptError
from test_bad_input import snapshot

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Defs" targetNamespace="http://bpmn.io/schema/bpmn">')


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def process(pid: str, nodes: str, flows: list[tuple[str, str, str]], props: str = "") -> str:
    """A process without diagram information: nodes, then (source, target, condition) flows."""
    flow_xml = "".join(
        f'<bpmn:sequenceFlow id="F{i}" sourceRef="{a}" targetRef="{b}">'
        + (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{_esc(c)}</bpmn:conditionExpression>'
           if c else "") + "</bpmn:sequenceFlow>"
        for i, (a, b, c) in enumerate(flows))
    ext = (f'<bpmn:extensionElements><camunda:properties>{props}</camunda:properties></bpmn:extensionElements>'
           if props else "")
    xml = f'{HEAD}<bpmn:process id="{pid}" isExecutable="true">{ext}{nodes}{flow_xml}</bpmn:process></bpmn:definitions>'
    root = etree.fromstring(xml.encode("utf-8"))
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    for i, (a, b, _c) in reversed(list(enumerate(flows))):  # incoming and outgoing come first in a node
        for node, tag in ((by_id[a], "outgoing"), (by_id[b], "incoming")):
            ref = etree.Element(f"{{{BPMN_NS}}}{tag}")
            ref.text = f"F{i}"
            node.insert(0, ref)
    for node in by_id.values():
        node[:] = sorted(node, key=lambda el: {"incoming": 0, "outgoing": 1}.get(etree.QName(el).localname, 2))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def script_process(script: str, props: str = "") -> str:
    nodes = ('<bpmn:startEvent id="StartEvent_1"/>'
             f'<bpmn:scriptTask id="Script_hostile" scriptFormat="python"><bpmn:script>{_esc(script)}</bpmn:script>'
             '</bpmn:scriptTask><bpmn:userTask id="Task_after" camunda:assignee="alice"/><bpmn:endEvent id="EndEvent_1"/>')
    return process("hostile", nodes, [("StartEvent_1", "Script_hostile", ""), ("Script_hostile", "Task_after", ""),
                                      ("Task_after", "EndEvent_1", "")], props)


def write(tmp_path: Path, name: str, xml: str) -> Path:
    path = tmp_path / name
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.fixture
def eng(db_url: str) -> Iterator[Engine]:
    set_simulated(db_url)
    e = Engine(db_url)
    e.load_directory(ORG)
    e.deploy([BPMN / "user_task.bpmn"])
    yield e
    e.close()


@pytest.fixture
def low_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Lower limits for the count bounds, so that hitting them is quick."""
    yield monkeypatch
    limits.reset()


def set_limits(mp: pytest.MonkeyPatch, **values: str) -> None:
    for var, value in values.items():
        mp.setenv(var, value)
    limits.reset()


# --------------------------------------------------------------------------------- escapes
ESCAPES = {
    "match_class_pattern": "match a:\n    case object(__class__=c):\n        env = c",
    "match_mapping": "match order:\n    case {'amount': x}:\n        y = x",
    "str_format": "y = '{0.__class__.__init__.__globals__}'.format(a)",
    "format_map": "y = '{a}'.format_map(order)",
    "fstring_dunder": "y = f'{a.__class__}'",
    "generator_frame": "g = (i for i in [1])\ny = g.gi_frame.f_globals",
    "traceback": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    y = e.__traceback__.tb_frame",
    "getattr": "y = getattr(a, '__class__')",
    "subscript_dunder": "y = order['__class__'].__mro__",
    "decorator": "@len\ndef f():\n    pass",
    "lambda_default": "f = lambda b=__builtins__: b\ny = f()",
    "comprehension": "y = [c.__subclasses__() for c in [a.__class__]]",
    "unicode_eval": "y = ｅｖａｌ('1')",
    "import": "import os\ny = os.environ",
    "class": "class A:\n    pass",
    "shadow_builtin": "len = 1",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_deploy__escape__is_refused_naming_element_and_line(eng: Engine, db_url: str, tmp_path: Path,
                                                              name: str) -> None:
    path = write(tmp_path, "hostile.bpmn", script_process(ESCAPES[name]))
    before = snapshot(db_url)
    result = CliRunner().invoke(main, ["--db", db_url, "deploy", str(path), "--as", "alice"])
    assert result.exit_code == 4, result.output
    assert "Script_hostile" in result.output and "not allowed" in result.output
    assert "Traceback" not in result.output
    assert snapshot(db_url) == before


# --------------------------------------------------------------------------------- bounds
BOUNDS = {
    "infinite_loop": ("while True:\n    pass", "CPU time"),
    "huge_power": ("x = 10 ** 10 ** 10", "TIGAO_MAX_INT_BITS"),
    "huge_padding": ("x = f'{a:>9999999999}'", "TIGAO_MAX_STRING"),
    "gigabyte_string": ("x = 'x' * (1024 ** 3)", "TIGAO_MAX_STRING"),
    "doubling_string": ("x = 'x' * 500000\nwhile True:\n    x = x + x", "TIGAO_MAX_STRING"),
    "not_json": ("x = {1, 2}", "variable 'x' is a set"),
}


MEMORY_HOG = "x = []\nwhile True:\n    x.append('a' * 100000)"


def test_start__script_hits_memory_bound__in_a_new_process__stops_naming_it_and_rolls_back(
        eng: Engine, db_url: str, tmp_path: Path) -> None:
    """The memory bound is the growth of the resident set. A long-lived process (this test run,
    after two thousand tests) holds freed memory that a script refills without growing it, so a
    script can run into its CPU bound first; a new process, as each CLI command is, has none."""
    import subprocess
    import sys

    eng.deploy([write(tmp_path, "hostile.bpmn", script_process(MEMORY_HOG))])
    before = snapshot(db_url)
    r = subprocess.run([sys.executable, "-m", "cli", "--db", db_url, "start", "hostile", "--data", '{"a": 1}',
                        "--as", "alice"], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stdout
    assert "Script_hostile" in r.stderr and "memory bound" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(db_url) == before


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_start__script_hits_bound__stops_naming_element_and_bound_and_rolls_back(
        eng: Engine, db_url: str, tmp_path: Path, name: str) -> None:
    script, words = BOUNDS[name]
    eng.deploy([write(tmp_path, "hostile.bpmn", script_process(script))])
    before = snapshot(db_url)
    with pytest.raises(ScriptError) as info:
        eng.start("hostile", {"a": 1}, actor="alice")
    assert "Script_hostile" in info.value.message and words.lower() in info.value.message.lower()
    assert snapshot(db_url) == before
    # The engine goes on serving.
    iid = eng.start("user_task", actor="alice")
    assert eng.instance(iid)["status"] == "running"


def test_cli__bound__exits_with_script_error_and_no_traceback(eng: Engine, db_url: str, tmp_path: Path) -> None:
    eng.deploy([write(tmp_path, "hostile.bpmn", script_process("while True:\n    pass"))])
    before = snapshot(db_url)
    result = CliRunner().invoke(main, ["--db", db_url, "start", "hostile", "--as", "alice"])
    assert result.exit_code == 10, result.output
    assert "Script_hostile" in result.output and "CPU time" in result.output and "Traceback" not in result.output
    assert snapshot(db_url) == before


def test_bounds__in_a_threaded_server__one_request_stops_the_others_go_on(
        eng: Engine, db_url: str, tmp_path: Path) -> None:
    eng.deploy([write(tmp_path, "hostile.bpmn", script_process("while True:\n    pass"))])
    failures: list[str] = []

    def hostile() -> None:
        other = Engine(db_url)
        try:
            other.start("hostile", actor="alice")
        except ScriptError as exc:
            failures.append(exc.message)
        finally:
            other.close()

    t = threading.Thread(target=hostile)
    t.start()
    started = [eng.start("user_task", actor="alice") for _ in range(3)]
    t.join(timeout=120)
    assert not t.is_alive()
    assert len(failures) == 1 and "CPU time" in failures[0]
    assert all(eng.instance(i)["status"] == "running" for i in started)


def test_process_property__raises_the_bound_within_the_admin_limit(eng: Engine, tmp_path: Path,
                                                                     low_limits: pytest.MonkeyPatch) -> None:
    set_limits(low_limits, TIGAO_SCRIPT_CPU_MAX="2")
    prop = '<camunda:property name="tigao.script.cpu" value="5"/>'
    with pytest.raises(DefinitionError, match="administrator's limit 2"):
        eng.deploy([write(tmp_path, "hostile.bpmn", script_process("x = 1", prop))])
    prop = '<camunda:property name="tigao.script.cpu" value="0.2"/>'
    eng.deploy([write(tmp_path, "hostile.bpmn", script_process("while True:\n    pass", prop))])
    with pytest.raises(ScriptError, match="0.2 s"):
        eng.start("hostile", actor="alice")


# --------------------------------------------------------------------------------- bounded work
def test_call_activity__calls_itself__stops_at_the_depth_limit(eng: Engine, db_url: str, tmp_path: Path) -> None:
    nodes = ('<bpmn:startEvent id="StartEvent_1"/><bpmn:callActivity id="Call_self" calledElement="selfcall"/>'
             '<bpmn:endEvent id="EndEvent_1"/>')
    eng.deploy([write(tmp_path, "selfcall.bpmn", process("selfcall", nodes, [("StartEvent_1", "Call_self", ""),
                                                                              ("Call_self", "EndEvent_1", "")]))])
    before = snapshot(db_url)
    with pytest.raises(ScriptError, match="TIGAO_MAX_CALL_DEPTH") as info:
        eng.start("selfcall", actor="alice")
    assert "Call_self" in info.value.message
    assert snapshot(db_url) == before


def _loop_process() -> str:
    nodes = ('<bpmn:startEvent id="StartEvent_1"/><bpmn:scriptTask id="Script_count"><bpmn:script>n = n + 1</bpmn:script>'
             '</bpmn:scriptTask><bpmn:exclusiveGateway id="Gw" default="F2"/><bpmn:endEvent id="EndEvent_1"/>')
    return process("spin", nodes, [("StartEvent_1", "Script_count", ""), ("Script_count", "Gw", ""), ("Gw", "EndEvent_1", ""),
                                   ("Gw", "Script_count", "n > -1")])


def test_loop__without_a_wait__stops_at_the_step_limit(eng: Engine, db_url: str, tmp_path: Path,
                                                         low_limits: pytest.MonkeyPatch) -> None:
    set_limits(low_limits, TIGAO_MAX_STEPS="200")
    eng.deploy([write(tmp_path, "spin.bpmn", _loop_process())])
    before = snapshot(db_url)
    with pytest.raises(ScriptError, match="TIGAO_MAX_STEPS"):
        eng.start("spin", {"n": 0}, actor="alice")
    assert snapshot(db_url) == before


def _mi_process(n: int) -> str:
    nodes = ('<bpmn:startEvent id="StartEvent_1"/>'
             f'<bpmn:scriptTask id="Script_items"><bpmn:script>items = list(range({n}))</bpmn:script></bpmn:scriptTask>'
             '<bpmn:userTask id="Task_each" camunda:assignee="alice"><bpmn:multiInstanceLoopCharacteristics '
             'camunda:collection="items" camunda:elementVariable="item"/></bpmn:userTask><bpmn:endEvent id="EndEvent_1"/>')
    return process("fanout", nodes, [("StartEvent_1", "Script_items", ""), ("Script_items", "Task_each", ""),
                                     ("Task_each", "EndEvent_1", "")])


@pytest.mark.parametrize(("variable", "words"), [("TIGAO_MAX_MULTI_INSTANCE", "Task_each"),
                                                 ("TIGAO_MAX_NEW_TASKS", "human tasks created")])
def test_multi_instance__too_many__stops_at_the_limit(eng: Engine, db_url: str, tmp_path: Path,
                                                       low_limits: pytest.MonkeyPatch, variable: str,
                                                       words: str) -> None:
    set_limits(low_limits, **{variable: "5"})
    eng.deploy([write(tmp_path, "fanout.bpmn", _mi_process(6))])
    before = snapshot(db_url)
    with pytest.raises(ScriptError, match=variable) as info:
        eng.start("fanout", actor="alice")
    assert words in info.value.message
    assert snapshot(db_url) == before
    eng.deploy([write(tmp_path, "fanout.bpmn", _mi_process(5))])
    assert len(eng.tasks(scope="all", instance_id=eng.start("fanout", actor="alice"))) == 5


@pytest.mark.parametrize(("data", "words"), [
    ("[" * 10000 + "]" * 10000, "nested"),
    (json.dumps({"a": {"b": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}), "64 levels"),
    (json.dumps({"a": "x" * 1_100_000}), "TIGAO_MAX_STRING"),
    (json.dumps({"a": ["x" * 1000] * 2000}), "TIGAO_MAX_JSON_BYTES"),
    (json.dumps({"len": 1}), "reserved"),
    (json.dumps({"__builtins__": {}}), "reserved"),
])
def test_submitted_json__too_deep_too_big_or_reserved__is_refused(eng: Engine, db_url: str, data: str,
                                                                   words: str) -> None:
    before = snapshot(db_url)
    if data.startswith("["):
        data = '{"a": ' + data + "}"
    result = CliRunner().invoke(main, ["--db", db_url, "start", "user_task", "--as", "alice", "--data", data])
    assert result.exit_code == 3, result.output
    assert words.lower() in result.output.lower() and "Traceback" not in result.output
    assert snapshot(db_url) == before


def test_cycle_timer__after_a_year_down__bounded_catch_up_then_on_schedule(eng: Engine, tmp_path: Path) -> None:
    text = (BPMN / "cycle_boundary.bpmn").read_text(encoding="utf-8")
    text = text.replace("R3/2012-04-01T00:00:00+08:00/P3M", "R/2012-03-01T09:00:00Z/PT1S")
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "ack.json").write_text((BPMN / "forms" / "ack.json").read_text(encoding="utf-8"))
    eng.deploy([write(tmp_path, "cycle_boundary.bpmn", text), tmp_path / "forms"])
    iid = eng.start("cycle_boundary", actor="alice")
    eng.advance_clock(timedelta(days=365))
    fired = [f for f in Worker(eng).run_once(limit=1000) if f.instance_id == iid]
    catchup = limits.current().timer_catchup
    assert 0 < len(fired) <= catchup  # not 31 million passes
    events = [e for e in eng.history(iid) if e.type == "timer_fired"]
    # The first occurrence fired at the start (it was due at once); then `catchup` late ones.
    assert len(events) == 1 + catchup and events[-1].payload["skipped"] > 31_000_000
    assert [f for f in Worker(eng).run_once() if f.instance_id == iid] == []  # on schedule again
    eng.advance_clock(timedelta(seconds=1))
    assert len([f for f in Worker(eng).run_once() if f.instance_id == iid]) == 1


def test_start_timer_cycle__after_a_year_down__starts_a_bounded_number(eng: Engine, tmp_path: Path) -> None:
    text = (BPMN / "timer_cycle.bpmn").read_text(encoding="utf-8")
    text = text.replace("R3/2012-04-01T00:00:00+08:00/P3M", "R/PT1S")
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "ack.json").write_text((BPMN / "forms" / "ack.json").read_text(encoding="utf-8"))
    eng.deploy([write(tmp_path, "timer_cycle.bpmn", text), tmp_path / "forms"])
    eng.advance_clock(timedelta(days=365))
    Worker(eng).run_once(limit=1000)
    catchup = limits.current().timer_catchup
    assert len(eng.instances(key="timer_cycle")) == catchup  # not 31 million
    skips = [e for i in eng.instances(key="timer_cycle") for e in eng.history(i["id"]) if e.type == "timer_skipped"]
    assert len(skips) == 1 and skips[0].payload["skipped"] > 31_000_000
    eng.advance_clock(timedelta(seconds=1))
    Worker(eng).run_once(limit=1000)
    assert len(eng.instances(key="timer_cycle")) == catchup + 1  # on schedule again: one per second


def test_dmn_expression__hits_bound__stops_naming_the_rule_task(eng: Engine, db_url: str, tmp_path: Path) -> None:
    dmn = (BPMN / "decision.dmn").read_text(encoding="utf-8").replace("<text>score</text>",
                                                                       "<text>10 ** 10 ** 10</text>", 1)
    write(tmp_path, "decision.dmn", dmn)
    (tmp_path / "business_rule.bpmn").write_text((BPMN / "business_rule.bpmn").read_text(encoding="utf-8"))
    import shutil

    shutil.copytree(BPMN / "forms", tmp_path / "forms")
    eng.deploy([tmp_path])
    iid = eng.start("business_rule", actor="alice")
    task = eng.tasks(scope="all", instance_id=iid)[0]
    before = snapshot(db_url)
    with pytest.raises(ScriptError, match="TIGAO_MAX_INT_BITS") as info:
        eng.complete(task.id, task.assignee or "alice", {"score": 90})
    assert "Rule_grade" in info.value.message
    after = snapshot(db_url)
    assert {t: n for t, (n, _) in after.items() if t != "events"} == \
           {t: n for t, (n, _) in before.items() if t != "events"}
    assert after["events"][0] == before["events"][0] + 1  # only the script_failed event


def test_worker__timer_step_hits_bound__marks_it_failed_and_goes_on(eng: Engine, tmp_path: Path) -> None:
    nodes = ('<bpmn:startEvent id="StartEvent_1"/><bpmn:intermediateCatchEvent id="Wait"><bpmn:timerEventDefinition>'
             '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
             '<bpmn:scriptTask id="Script_spin"><bpmn:script>while True:\n    pass</bpmn:script></bpmn:scriptTask>'
             '<bpmn:endEvent id="EndEvent_1"/>')
    eng.deploy([write(tmp_path, "later.bpmn", process("later", nodes, [
        ("StartEvent_1", "Wait", ""), ("Wait", "Script_spin", ""), ("Script_spin", "EndEvent_1", "")]))])
    bad = eng.start("later", actor="alice")
    good = eng.start("user_task", actor="alice")
    eng.advance_clock(timedelta(hours=2))
    fired = Worker(eng).run_once()
    assert [f.outcome for f in fired if f.instance_id == bad] == ["failed"]
    failed = [e for e in eng.history(bad) if e.type == "script_failed"]
    assert failed and "CPU time" in failed[0].payload["error"] and "Script_spin" in failed[0].payload["error"]
    assert eng.instance(bad)["status"] == "running" and eng.instance(good)["status"] == "running"
