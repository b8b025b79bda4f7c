"""The server-drawn BPMN diagrams: every shipped diagram renders, shapes sit on their DI bounds,
flows on their waypoints, markers and highlights land on the ids given, labels stay text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from engine.errors import DefinitionError, InputError
from web.diagram import Marker, render_svg

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
NS = {"bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI", "dc": "http://www.omg.org/spec/DD/20100524/DC",
      "di": "http://www.omg.org/spec/DD/20100524/DI", "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "s": "http://www.w3.org/2000/svg"}
RENDER = ROOT / "tests" / "bpmn" / "render"
GOOD = sorted([*(ROOT / "processes").glob("*.bpmn"), *(ROOT / "tests" / "bpmn").glob("*.bpmn"),
               *RENDER.glob("*.bpmn")])
# Bad files that are still well-formed XML without a DOCTYPE render too (their faults are semantic).
BAD = sorted(p for p in (ROOT / "tests" / "bpmn" / "bad").glob("*.bpmn")
             if p.name not in ("malformed.bpmn", "xxe.bpmn", "billion_laughs.bpmn"))


def _svg(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"))


def _groups(svg: etree._Element, cls: str) -> dict[str, etree._Element]:
    return {g.get("data-element-id"): g for g in svg.iter(f"{SVG}g")
            if cls in (g.get("class") or "").split() and g.get("data-element-id")}


def _outline_box(el: etree._Element) -> tuple[float, float, float, float]:
    tag = etree.QName(el).localname
    if tag == "rect":
        return tuple(float(el.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]
    if tag == "circle":
        cx, cy, r = (float(el.get(k)) for k in ("cx", "cy", "r"))
        return (cx - r, cy - r, 2 * r, 2 * r)
    if tag == "polygon":
        pts = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
    else:  # a path of absolute M/H/V/L/A commands (data objects and stores)
        pts, x, y = [], 0.0, 0.0
        for cmd, args in re.findall(r"([MLHVZA])([^MLHVZA]*)", el.get("d")):
            nums = [float(n) for n in args.split()]
            if cmd in "MLA":
                x, y = nums[-2:]
            elif cmd == "H":
                x = nums[0]
            elif cmd == "V":
                y = nums[0]
            pts.append((x, y))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _plane(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot().find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)


@pytest.mark.parametrize("path", GOOD + BAD, ids=lambda p: str(p.relative_to(ROOT)))
def test_render__every_shipped_diagram__boxes_equal_di_bounds(path: Path) -> None:
    svg = _svg(render_svg(path.read_text(encoding="utf-8")))
    assert svg.find(".//s:script", NS) is None
    shapes = _groups(svg, "bpmn-shape")
    plane = _plane(path)
    di_shapes = plane.findall("bpmndi:BPMNShape", NS)
    assert di_shapes and len(shapes) == len(di_shapes)
    for di in di_shapes:
        b = di.find("dc:Bounds", NS)
        want = tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))
        group = shapes[di.get("bpmnElement")]
        assert tuple(map(float, group.get("data-bounds").split())) == want
        outline = next(el for el in group.iter() if "outline" in (el.get("class") or ""))
        got = _outline_box(outline)
        if "bpmn-dataStoreReference" in group.get("class"):
            assert (got[0], got[2]) == (want[0], want[2])  # the rims are arcs: x extent only
        else:
            assert got == pytest.approx(want, abs=0.01), di.get("bpmnElement")
        assert group.find(f"{SVG}title") is not None


@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(p.relative_to(ROOT)))
def test_render__every_flow__drawn_on_its_waypoints(path: Path) -> None:
    svg = _svg(render_svg(path.read_text(encoding="utf-8")))
    edges = _groups(svg, "bpmn-edge")
    di_edges = _plane(path).findall("bpmndi:BPMNEdge", NS)
    assert len(edges) == len(di_edges)
    for di in di_edges:
        want = [(float(w.get("x")), float(w.get("y"))) for w in di.findall("di:waypoint", NS)]
        group = edges[di.get("bpmnElement")]
        got = [tuple(map(float, p.split(","))) for p in group.get("data-waypoints").split()]
        assert got == want
        line = group.find("s:path[@class='line']", NS)
        numbers = [float(n) for n in re.findall(r"-?[\d.]+", line.get("d"))]
        # The line passes through every inner waypoint; sequence flows end in an arrow at the last.
        inner = list(zip(numbers[::2], numbers[1::2]))
        for point in want[1:-1]:
            assert point in inner
        if "bpmn-sequenceFlow" in group.get("class"):
            arrow = group.find("s:polygon[@class='arrow']", NS)
            assert tuple(map(float, arrow.get("points").split()[0].split(","))) == pytest.approx(want[-1])


def test_render__fixture_diagrams__cover_every_element_kind() -> None:
    drawn = "".join(render_svg(p.read_text(encoding="utf-8")) for p in RENDER.glob("*.bpmn"))
    kinds = ["participant", "lane", "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask",
             "receiveTask", "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
             "startEvent", "intermediateCatchEvent", "intermediateThrowEvent", "endEvent", "boundaryEvent",
             "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
             "dataObjectReference", "dataStoreReference", "textAnnotation", "group", "sequenceFlow",
             "messageFlow", "association", "dataInputAssociation", "dataOutputAssociation"]
    for kind in kinds:
        assert f"bpmn-{kind}\"" in drawn or f"bpmn-{kind} " in drawn, kind
    for icon in ["timer", "message", "error", "escalation", "signal", "conditional", "link", "terminate",
                 "compensate", "cancel", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask",
                 "receiveTask", "businessRuleTask"]:
        assert f'class="icon icon-{icon}"' in drawn, icon
    for marker in ["parallel", "sequential", "loop", "collapsed", "adhoc", "compensation"]:
        assert f'class="marker marker-{marker}"' in drawn, marker
    assert 'class="conditional-marker"' in drawn and 'class="default-marker"' in drawn
    assert 'stroke-dasharray="5.5 3"' in drawn  # non-interrupting events are dashed


def test_render__markers__drawn_on_the_ids_given_with_counts_and_legend() -> None:
    xml = (ROOT / "processes" / "complaint.bpmn").read_text(encoding="utf-8")
    markers = {"StartEvent_complaint": "completed", "Flow_start_register": Marker("completed"),
               "Task_register_complaint": Marker("active", count=3),
               "CallActivity_complaint_rectification": Marker("waiting", waiting_for="message", note="due 05-01"),
               "Script_complaint_channel": Marker("failed", note="script error"),
               "Task_notify_complainant": Marker("cancelled"), "Not_in_diagram": Marker("active")}
    svg = _svg(render_svg(xml, markers=markers, title="投訴 #12"))
    found = {g.get("data-element-id"): g.get("data-state") for g in svg.iterfind(".//s:g[@data-state]", NS)}
    assert found == {"StartEvent_complaint": "completed", "Task_register_complaint": "active",
                     "CallActivity_complaint_rectification": "waiting", "Script_complaint_channel": "failed",
                     "Task_notify_complainant": "cancelled"}
    active = svg.find(".//s:g[@data-element-id='Task_register_complaint'][@data-state]", NS)
    assert "3" in "".join(active.itertext())
    flow = _groups(svg, "bpmn-edge")["Flow_start_register"]
    assert flow.find("s:path", NS).get("stroke") != "#22242a"
    task_title = _groups(svg, "bpmn-shape")["CallActivity_complaint_rectification"].findtext(f"{SVG}title")
    assert "waiting for message" in task_title and "due 05-01" in task_title
    legend = "".join(svg.find(".//s:g[@class='legend']", NS).itertext())
    for word in ("completed", "active", "waiting", "cancelled", "failed"):
        assert word in legend


def test_render__highlight__outlines_and_translated_legend() -> None:
    xml = (ROOT / "tests" / "bpmn" / "user_task.bpmn").read_text(encoding="utf-8")
    svg = _svg(render_svg(xml, highlight={"Task_fill": "changed"}, legend_labels={"changed": "已修改"}))
    assert svg.find(".//s:g[@class='highlight highlight-changed'][@data-element-id='Task_fill']", NS) is not None
    assert "已修改" in "".join(svg.find(".//s:g[@class='legend']", NS).itertext())
    plain = render_svg(xml)
    assert "legend" not in plain and "highlight" not in plain


def test_render__hostile_labels_and_title__stay_text() -> None:
    xml = (RENDER / "render_collaboration.bpmn").read_text(encoding="utf-8")
    text = render_svg(xml, title='<script>alert(1)</script>\x07 "t"')
    svg = _svg(text)
    assert svg.find(".//s:script", NS) is None and "<script>" not in text
    label = "".join(_groups(svg, "bpmn-shape")["C_send"].itertext())
    assert '<script>alert("x")</script>' in label.replace("\n", "").replace("(\"x\")", "(\"x\")")
    assert "alert(1)" in svg.findtext(f"{SVG}title")


def test_render__collaboration__all_pools_or_one_process() -> None:
    xml = (RENDER / "render_collaboration.bpmn").read_text(encoding="utf-8")
    everything = _groups(_svg(render_svg(xml)), "bpmn-shape")
    assert {"Part_citizen", "Part_hotline", "Part_media", "Lane_intake", "H_handle", "C_send"} <= set(everything)
    assert len(_groups(_svg(render_svg(xml)), "bpmn-messageFlow")) == 3
    one = _svg(render_svg(xml, process_id="hotline"))
    shapes = _groups(one, "bpmn-shape")
    assert "Part_hotline" in shapes and "H_handle" in shapes
    assert "Part_citizen" not in shapes and "C_send" not in shapes and "Part_media" not in shapes
    assert not _groups(one, "bpmn-messageFlow")
    box = [float(v) for v in one.get("viewBox").split()]
    assert box[1] > 190  # fitted to the hotline pool, not to the whole collaboration


def test_render__long_labels__wrapped_inside_their_box() -> None:
    xml = (RENDER / "render_collaboration.bpmn").read_text(encoding="utf-8")
    group = _groups(_svg(render_svg(xml)), "bpmn-shape")["H_handle"]
    lines = [t.text for t in group.iterfind(".//s:tspan", NS)]
    assert len(lines) >= 3
    x, y, w, h = map(float, group.get("data-bounds").split())
    assert all(x <= float(t.get("x")) <= x + w and y <= float(t.get("y")) <= y + h
               for t in group.iterfind(".//s:tspan", NS))


def test_render__bad_input__clear_errors() -> None:
    with pytest.raises(DefinitionError, match="DOCTYPE"):
        render_svg((ROOT / "tests" / "bpmn" / "bad" / "xxe.bpmn").read_text(encoding="utf-8"))
    with pytest.raises(DefinitionError, match="DOCTYPE"):
        render_svg((ROOT / "tests" / "bpmn" / "bad" / "billion_laughs.bpmn").read_text(encoding="utf-8"))
    with pytest.raises(DefinitionError, match="malformed"):
        render_svg((ROOT / "tests" / "bpmn" / "bad" / "malformed.bpmn").read_text(encoding="utf-8"))
    xml = (ROOT / "processes" / "complaint.bpmn").read_text(encoding="utf-8")
    with pytest.raises(InputError, match="no process 'nope'.*complaint"):
        render_svg(xml, process_id="nope")
    with pytest.raises(InputError, match="unknown marker state 'done'"):
        render_svg(xml, markers={"Task_register_complaint": "done"})
    with pytest.raises(InputError, match="unknown highlight"):
        render_svg(xml, highlight={"Task_register_complaint": "bold"})


def test_render__no_di__says_so() -> None:
    xml = ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" '
           'targetNamespace="x"><bpmn:process id="p"><bpmn:startEvent id="s"/></bpmn:process></bpmn:definitions>')
    svg = _svg(render_svg(xml, title="p"))
    assert "no layout" in "".join(svg.itertext())


def test_render__vertical_pool_and_drill_down_plane() -> None:
    xml = (RENDER / "render_vertical.bpmn").read_text(encoding="utf-8")
    svg = _svg(render_svg(xml))
    shapes = _groups(svg, "bpmn-shape")
    assert "V_inner_task" not in shapes and "V_drill" in shapes  # the main plane only
    assert shapes["Part_vertical"].find(".//s:g[@transform]", NS) is None  # a header read left to right
    assert shapes["V_drill"].find(".//s:g[@class='marker marker-collapsed']", NS) is not None
    inner = _groups(_svg(render_svg(xml, process_id="V_drill")), "bpmn-shape")
    assert set(inner) == {"V_inner_start", "V_inner_task"}
    assert inner["V_inner_task"].get("data-bounds") == "270 78 100 80"


def test_render__broken_di_numbers__left_out() -> None:
    xml = (ROOT / "tests" / "bpmn" / "user_task.bpmn").read_text(encoding="utf-8")
    plane = _plane(ROOT / "tests" / "bpmn" / "user_task.bpmn")
    task = next(s for s in plane.findall("bpmndi:BPMNShape", NS) if s.get("bpmnElement") == "Task_fill")
    b = task.find("dc:Bounds", NS)
    old = f'x="{b.get("x")}" y="{b.get("y")}"'
    assert old in xml
    broken = xml.replace(old, 'x="NaN" y="inf"').replace('<di:waypoint x="', '<di:waypoint x="1e99', 1)
    svg = _svg(render_svg(broken))
    assert "Task_fill" not in _groups(svg, "bpmn-shape")
    assert all(abs(float(v)) < 1e7 for v in svg.get("viewBox").split())
