"""An instance's diagram: the markers come from the engine's own view of the instance (real
SQLite and PostgreSQL databases), and land on the diagram it runs on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lxml import etree

from engine import Engine
from engine.inspection import instance_picture
from helpers import complete
from web.diagram import Marker, instance_markers, render_svg
from web.diagram._instance import markers_from_states, wait_kind

BPMN = Path(__file__).resolve().parent / "bpmn"
NS = {"s": "http://www.w3.org/2000/svg"}


def _drawn(xml: str, markers: dict[str, Marker]) -> dict[str, tuple[str, str]]:
    svg = etree.fromstring(render_svg(xml, markers=markers).encode("utf-8"))
    return {g.get("data-element-id"): (g.get("data-state"), g.get("data-count"))
            for g in svg.iterfind(".//s:g[@data-state]", NS)}


def test_instance_markers__open_task_and_boundary_timer(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    markers = instance_markers(engine.instance(iid))
    assert markers["Task_wait"].state == "active"
    timer = markers["Boundary_timeout"]
    assert timer.state == "waiting" and timer.waiting_for == "timer" and "due" in (timer.note or "")
    drawn = _drawn((BPMN / "timers.bpmn").read_text(encoding="utf-8"), markers)
    assert drawn["Task_wait"][0] == "active" and drawn["Boundary_timeout"][0] == "waiting"


def test_instance_markers__multi_instance_count_then_completed(engine: Engine) -> None:
    iid = engine.start("multi_instance", actor="dora")
    open_review = [t for t in engine.instance(iid)["tasks"] if t.element_id == "Task_review" and t.state == "open"]
    assert len(open_review) > 1
    markers = instance_markers(engine.instance(iid))
    assert markers["Task_review"] == Marker("active", count=len(open_review))
    xml = (BPMN / "multi_instance.bpmn").read_text(encoding="utf-8")
    assert _drawn(xml, markers)["Task_review"] == ("active", str(len(open_review)))
    for _ in open_review:
        complete(engine, iid, "Task_review", {"approve": True})
    markers = instance_markers(engine.instance(iid))
    assert markers["Task_review"].state == "completed"
    assert markers["Task_sign"].state == "active"


def test_instance_markers__cancelled_instance(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    engine.advance_clock(timedelta(hours=1))
    engine.cancel(iid, "filed twice", actor="alice")
    markers = instance_markers(engine.instance(iid))
    assert markers["Task_wait"].state == "cancelled"
    assert all(m.state != "active" for m in markers.values())


def test_wait_kind__spiff_event_classes() -> None:
    assert wait_kind("DurationTimerEventDefinition") == "timer"
    assert wait_kind("TimeDateEventDefinition") == "timer"
    assert wait_kind("CycleTimerEventDefinition") == "timer"
    assert wait_kind("MessageEventDefinition") == "message"
    assert wait_kind("NoneEventDefinition") is None


def test_instance_markers__agree_with_the_task_tree_states_the_pages_draw(engine: Engine) -> None:
    """The markers from Engine.instance() and from the workflow tree come out of one set of rules."""
    for key in ("multi_instance", "timers"):
        iid = engine.start(key, actor="dora" if key == "multi_instance" else "alice")
        from_view = instance_markers(engine.instance(iid))
        from_tree = markers_from_states(instance_picture(engine, iid).states)
        assert from_view, key
        for element, marker in from_view.items():
            assert (from_tree[element].state, from_tree[element].count, from_tree[element].waiting_for) == \
                (marker.state, marker.count, marker.waiting_for), element
