"""Read a BPMN 2.0 file into what the renderer draws: shapes and edges with their DI geometry
and the semantic facts that decide how each one looks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lxml import etree

from engine.bundles import parse_xml
from engine.errors import InputError

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI}

EDGE_KINDS = {"sequenceFlow", "messageFlow", "association", "dataInputAssociation",
              "dataOutputAssociation", "conversationLink"}
CONTAINER_KINDS = {"subProcess", "transaction", "adHocSubProcess"}
EVENT_DEFINITIONS = ("timer", "message", "error", "escalation", "signal", "conditional", "link",
                     "terminate", "compensate", "cancel")


@dataclass(frozen=True)
class Bounds:
    """A DI rectangle."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Shape:
    """One BPMNShape and the semantic element it draws."""

    id: str
    kind: str
    name: str
    bounds: Bounds
    label: Bounds | None
    el: etree._Element | None
    depth: int = 0
    expanded: bool = False
    horizontal: bool = True
    event_defs: list[str] = field(default_factory=list)
    marker_visible: bool = True

    def attr(self, name: str, default: str | None = None) -> str | None:
        """A semantic attribute of the element (None when it has no element)."""
        return default if self.el is None else self.el.get(name, default)


@dataclass
class Edge:
    """One BPMNEdge: a flow or an association, with its waypoints."""

    id: str
    kind: str
    name: str
    points: list[tuple[float, float]]
    label: Bounds | None
    el: etree._Element | None
    is_default: bool = False
    is_conditional: bool = False


@dataclass
class Diagram:
    """What one BPMN plane shows, filtered to one process when asked."""

    shapes: list[Shape]
    edges: list[Edge]
    has_di: bool


def local(el: etree._Element) -> str:
    """The element's tag without its namespace."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _bounds(el: etree._Element | None) -> Bounds | None:
    if el is None:
        return None
    try:
        x, y, w, h = (float(el.get(k, "0")) for k in ("x", "y", "width", "height"))
    except ValueError:
        return None
    # Hostile or broken DI (NaN, infinities, absurd sizes) is left out rather than drawn.
    if not all(math.isfinite(v) and abs(v) < 1e7 for v in (x, y, w, h)):
        return None
    return Bounds(x, y, max(w, 0.0), max(h, 0.0))


def element_name(el: etree._Element | None, by_id: dict[str, etree._Element]) -> str:
    """The label a person reads: the name, an annotation's text, a group's category value."""
    if el is None:
        return ""
    kind = local(el)
    if kind == "textAnnotation":
        return "".join(el.findtext("bpmn:text", "", NS) or "").strip()
    if kind == "group":
        value = by_id.get(el.get("categoryValueRef", ""))
        return (value.get("value", "") if value is not None else "") or el.get("name", "")
    name = el.get("name", "")
    state = el.find("bpmn:dataState", NS)
    if state is not None and state.get("name"):
        name = f"{name}\n[{state.get('name')}]" if name else f"[{state.get('name')}]"
    return name


def event_definitions(el: etree._Element) -> list[str]:
    """The kinds of an event's definitions (``timer``, ``message``, ...), in document order."""
    kinds = []
    for child in el:
        kind = local(child)
        if kind.endswith("EventDefinition"):
            kinds.append(kind[: -len("EventDefinition")])
        elif kind == "eventDefinitionRef":
            kinds.append("multiple")
    return kinds


def load(bpmn_xml: str, process_id: str | None = None) -> Diagram:
    """Parse the file (hardened: no DOCTYPE, no entities) and collect the plane to draw.

    Raises:
        DefinitionError: the file is not well-formed XML or declares a DOCTYPE.
        InputError: ``process_id`` names no process of the file (nor a sub-process drawn on a
            plane of its own).
    """
    root = parse_xml("diagram.bpmn", bpmn_xml)
    by_id = {str(el.get("id")): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")
             and etree.QName(el).namespace == BPMN}
    owner: dict[str, str] = {}  # element id -> id of the process it belongs to
    processes = root.findall("bpmn:process", NS)
    for proc in processes:
        pid = proc.get("id", "")
        for child in proc.iter():
            if isinstance(child.tag, str) and child.get("id"):
                owner[str(child.get("id"))] = pid
    for part in root.iterfind(".//bpmn:participant", NS):
        if part.get("processRef"):
            owner[part.get("id", "")] = part.get("processRef", "")

    # A collapsed sub-process may have its content on a plane of its own (drill down).
    own_plane = next((p for p in root.iterfind("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
                      if process_id and p.get("bpmnElement") == process_id
                      and local(by_id.get(process_id, root)) in CONTAINER_KINDS), None)
    plane = own_plane if own_plane is not None else _choose_plane(
        root, by_id, process_id, [p.get("id", "") for p in processes])
    if plane is None:
        return Diagram([], [], has_di=False)

    def keep(el_id: str) -> bool:
        return process_id is None or own_plane is not None or owner.get(el_id) == process_id

    shapes: list[Shape] = []
    edges: list[Edge] = []
    for di in plane:
        kind = local(di)
        ref = di.get("bpmnElement", "")
        if not keep(ref):
            continue
        el = by_id.get(ref)
        if kind == "BPMNShape":
            bounds = _bounds(di.find("dc:Bounds", NS))
            if bounds is None or el is None:
                continue
            shapes.append(_shape(el, di, bounds, by_id))
        elif kind == "BPMNEdge":
            points = []
            for wp in di.iterfind("di:waypoint", NS):
                try:
                    point = (float(wp.get("x", "0")), float(wp.get("y", "0")))
                except ValueError:
                    continue
                if all(math.isfinite(v) and abs(v) < 1e7 for v in point):
                    points.append(point)
            if len(points) < 2 or el is None:
                continue
            edges.append(_edge(el, di, points, by_id))
    return Diagram(shapes, edges, has_di=True)


def _choose_plane(root: etree._Element, by_id: dict[str, etree._Element], process_id: str | None,
                  process_ids: list[str]) -> etree._Element | None:
    planes = root.findall("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    if process_id is not None and process_id not in process_ids:
        known = ", ".join(process_ids) or "none"
        raise InputError(f"the diagram has no process '{process_id}' (its processes: {known})")
    if process_id is None:
        return planes[0] if planes else None
    for plane in planes:
        target = by_id.get(plane.get("bpmnElement", ""))
        if target is None:
            continue
        if target.get("id") == process_id:
            return plane
        if local(target) == "collaboration" and any(
                p.get("processRef") == process_id for p in target.iterfind("bpmn:participant", NS)):
            return plane
    return planes[0] if planes else None


def _shape(el: etree._Element, di: etree._Element, bounds: Bounds,
           by_id: dict[str, etree._Element]) -> Shape:
    kind = local(el)
    depth = sum(1 for a in el.iterancestors() if local(a) in CONTAINER_KINDS)
    label = _bounds(di.find("bpmndi:BPMNLabel/dc:Bounds", NS))
    if label is not None and label.w <= 0:
        label = None
    expanded = di.get("isExpanded") == "true"
    if kind in CONTAINER_KINDS and di.get("isExpanded") is None:
        # Without the flag, a box much larger than a task is an expanded sub-process.
        expanded = bounds.w > 150 or bounds.h > 120
    return Shape(id=el.get("id", ""), kind=kind, name=element_name(el, by_id), bounds=bounds,
                 label=label, el=el, depth=depth, expanded=expanded,
                 horizontal=di.get("isHorizontal", "true") != "false",
                 event_defs=event_definitions(el) if kind.endswith("Event") else [],
                 marker_visible=di.get("isMarkerVisible", "true") != "false")


def _edge(el: etree._Element, di: etree._Element, points: list[tuple[float, float]],
          by_id: dict[str, etree._Element]) -> Edge:
    kind = local(el)
    label = _bounds(di.find("bpmndi:BPMNLabel/dc:Bounds", NS))
    if label is not None and label.w <= 0:
        label = None
    is_default = is_conditional = False
    if kind == "sequenceFlow":
        source = by_id.get(el.get("sourceRef", ""))
        is_default = source is not None and source.get("default") == el.get("id")
        # The mini-diamond marks a condition on a flow leaving an activity (not a gateway).
        is_conditional = (el.find("bpmn:conditionExpression", NS) is not None and source is not None
                          and not local(source).endswith("Gateway"))
    return Edge(id=el.get("id", ""), kind=kind, name=element_name(el, by_id), points=points,
                label=label, el=el, is_default=is_default, is_conditional=is_conditional)
