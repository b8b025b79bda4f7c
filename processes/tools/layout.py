"""Lay out Tigao's BPMN diagrams: regenerate the BPMN DI from the process model.

The semantic part of a .bpmn file (processes, lanes, tasks, flows) is the source of truth.
This tool reads it and rewrites the diagram part so that the file opens cleanly in Camunda
Modeler and bpmn-js:

* ``bpmn:incoming`` / ``bpmn:outgoing`` of every flow node are synchronised with the
  sequence flows (Camunda Modeler writes them, SpiffWorkflow ignores them);
* the ``bpmndi:BPMNDiagram`` is replaced by a new one: a shape for the participant, every lane
  and every flow node (expanded embedded sub-processes included), an edge with waypoints for
  every sequence flow, and label bounds for named events, gateways and flows.

Layout: left to right. Once loop edges (found by a depth-first search) are set aside, every
node starts one gap to the right of its rightmost predecessor; a node sits in the band of its
lane, on the row of its predecessor unless it would overlap another node there. Edges are
orthogonal, avoid crossing nodes, and loop edges run back underneath their rows.

Usage::

    python processes/tools/layout.py processes/*.bpmn

After editing a diagram in Camunda Modeler there is no need to run this tool; it is for files
edited as text.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"

FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "task", "userTask", "scriptTask", "serviceTask", "businessRuleTask", "manualTask",
    "sendTask", "receiveTask", "callActivity", "subProcess", "transaction",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
    "complexGateway",
}
EVENT_TAGS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent"}
GATEWAY_TAGS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway",
                "eventBasedGateway", "complexGateway"}
CONTAINER_TAGS = {"subProcess", "transaction"}

TASK_W, TASK_H = 100, 80
EVENT_SIZE = 36
GATEWAY_SIZE = 50
COLUMN_GAP = 50          # horizontal space between a node and the next one
ROW_TOP = 30             # space above the nodes of a row
ROW_BOTTOM = 40          # space below them; loop edges run here
LANE_LABEL_W = 30        # the strip holding a lane's (or participant's) name
PARTICIPANT_LABEL_W = 30
CONTENT_LEFT = 50        # space between the lane label strip and the first node
CONTENT_RIGHT = 50
SUB_PAD_X, SUB_PAD_TOP, SUB_PAD_BOTTOM = 30, 30, 10
ORIGIN_X, ORIGIN_Y = 160, 80
CHAR_W = 12              # a CJK character at bpmn-js' default 12px font
LINE_H = 14
LABEL_MAX_W = 90


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def is_flow_node(element: etree._Element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace == BPMN \
        and local(element) in FLOW_NODE_TAGS


@dataclass
class Box:
    """A laid out node, relative to the container it was laid out in."""

    element: etree._Element
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0
    inner: Layout | None = None

    @property
    def id(self) -> str:
        return self.element.get("id")

    @property
    def kind(self) -> str:
        return local(self.element)

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass
class Band:
    """A horizontal band: a lane, or the whole container when it has no lanes."""

    lane: etree._Element | None
    node_ids: list[str]
    y: float = 0.0
    height: float = 0.0
    row_heights: list[float] = field(default_factory=list)


@dataclass
class Layout:
    """The laid out content of a process or an embedded sub-process."""

    boxes: dict[str, Box]
    flows: list[etree._Element]
    back_flows: set[str]
    bands: list[Band]
    width: float
    height: float

    def incoming(self, node_id: str) -> list[etree._Element]:
        return [f for f in self.flows if f.get("targetRef") == node_id]

    def outgoing(self, node_id: str) -> list[etree._Element]:
        return [f for f in self.flows if f.get("sourceRef") == node_id]

    def shift(self, dx: float, dy: float) -> None:
        for box in self.boxes.values():
            box.x += dx
            box.y += dy
            if box.inner is not None:
                box.inner.shift(dx, dy)
        for band in self.bands:
            band.y += dy


def node_size(element: etree._Element) -> tuple[float, float]:
    kind = local(element)
    if kind in EVENT_TAGS:
        return EVENT_SIZE, EVENT_SIZE
    if kind in GATEWAY_TAGS:
        return GATEWAY_SIZE, GATEWAY_SIZE
    return TASK_W, TASK_H


def sync_flow_refs(container: etree._Element) -> None:
    """Rewrite bpmn:incoming/outgoing of the container's flow nodes from its sequence flows."""
    flows = container.findall(q(BPMN, "sequenceFlow"))
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for flow in flows:
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow.get("id"))
        incoming.setdefault(flow.get("targetRef"), []).append(flow.get("id"))
    for node in container:
        if not is_flow_node(node):
            continue
        for ref in node.findall(q(BPMN, "incoming")) + node.findall(q(BPMN, "outgoing")):
            node.remove(ref)
        position = 0
        for child in node:
            if local(child) in ("documentation", "extensionElements"):
                position += 1
            else:
                break
        refs = [("incoming", f) for f in incoming.get(node.get("id"), [])]
        refs += [("outgoing", f) for f in outgoing.get(node.get("id"), [])]
        for offset, (tag, flow_id) in enumerate(refs):
            ref = etree.Element(q(BPMN, tag))
            ref.text = flow_id
            node.insert(position + offset, ref)
        if local(node) in CONTAINER_TAGS:
            sync_flow_refs(node)


def topological_order(node_ids: list[str], flows: list[etree._Element]) -> tuple[list[str], set[str]]:
    """Nodes in topological order once the loop (back) edges of a depth-first search from the
    start nodes are dropped, and the ids of those loop edges."""
    successors: dict[str, list[etree._Element]] = {n: [] for n in node_ids}
    has_incoming: set[str] = set()
    for flow in flows:
        successors.setdefault(flow.get("sourceRef"), []).append(flow)
        has_incoming.add(flow.get("targetRef"))
    starts = [n for n in node_ids if n not in has_incoming] or node_ids[:1]

    back: set[str] = set()
    post_order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        state[node] = 1
        # Visiting the successors last to first makes the reverse post-order list the
        # branches of a split in the order their flows are written.
        for flow in reversed(successors.get(node, [])):
            target = flow.get("targetRef")
            if state.get(target) == 1:
                back.add(flow.get("id"))
            elif target not in state:
                visit(target)
        state[node] = 2
        post_order.append(node)

    for start in starts + node_ids:
        if start not in state:
            visit(start)
    return list(reversed(post_order)), back


def layout_container(container: etree._Element, lanes: list[etree._Element]) -> Layout:
    """Lay out the direct flow nodes of a process or sub-process, relative to (0, 0)."""
    nodes = [n for n in container if is_flow_node(n)]
    node_ids = [n.get("id") for n in nodes]
    flows = container.findall(q(BPMN, "sequenceFlow"))
    boxes: dict[str, Box] = {}
    for node in nodes:
        if local(node) in CONTAINER_TAGS:
            inner = layout_container(node, [])
            width = inner.width + 2 * SUB_PAD_X
            height = inner.height + SUB_PAD_TOP + SUB_PAD_BOTTOM
            inner.shift(SUB_PAD_X, SUB_PAD_TOP)
            boxes[node.get("id")] = Box(node, width, height, inner=inner)
        else:
            boxes[node.get("id")] = Box(node, *node_size(node))

    order, back = topological_order(node_ids, flows)
    forward = [f for f in flows if f.get("id") not in back]

    # x: every node starts one gap to the right of its rightmost predecessor.
    x: dict[str, float] = {n: 0.0 for n in node_ids}
    for node_id in order:
        for flow in forward:
            if flow.get("sourceRef") == node_id:
                target = flow.get("targetRef")
                x[target] = max(x[target], x[node_id] + boxes[node_id].width + COLUMN_GAP)

    # Bands: one per lane (in document order), or a single one.
    bands: list[Band] = []
    lane_of: dict[str, int] = {}
    for lane in lanes:
        refs = [r.text for r in lane.findall(q(BPMN, "flowNodeRef")) if r.text in boxes]
        for ref in refs:
            lane_of.setdefault(ref, len(bands))
        bands.append(Band(lane, refs))
    if not bands:
        bands.append(Band(None, []))
    for node_id in node_ids:
        lane_of.setdefault(node_id, 0)

    # Rows: a node prefers the row of its first predecessor in the same band, and moves to
    # another row of its band when it would overlap a node already placed there.
    predecessors: dict[str, list[str]] = {}
    for flow in forward:
        predecessors.setdefault(flow.get("targetRef"), []).append(flow.get("sourceRef"))
    row: dict[str, int] = {}
    occupied: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for node_id in order:
        band = lane_of[node_id]
        preferred = 0
        for pred in predecessors.get(node_id, []):
            if lane_of.get(pred) == band and pred in row:
                preferred = row[pred]
                break
        span = (x[node_id] - COLUMN_GAP / 2, x[node_id] + boxes[node_id].width + COLUMN_GAP / 2)
        for candidate in [preferred] + [r for r in range(len(node_ids)) if r != preferred]:
            taken = occupied.setdefault((band, candidate), [])
            if all(span[1] <= left or span[0] >= right for left, right in taken):
                taken.append(span)
                row[node_id] = candidate
                break

    width = max((x[n] + boxes[n].width for n in node_ids), default=TASK_W)
    y = 0.0
    for index, band in enumerate(bands):
        rows = max((row[n] for n in node_ids if lane_of[n] == index), default=0) + 1
        tallest = [TASK_H] * rows
        for node_id in node_ids:
            if lane_of[node_id] == index:
                tallest[row[node_id]] = max(tallest[row[node_id]], boxes[node_id].height)
        band.row_heights = [ROW_TOP + h + ROW_BOTTOM for h in tallest]
        band.y = y
        band.height = sum(band.row_heights)
        for node_id in node_ids:
            if lane_of[node_id] != index:
                continue
            box = boxes[node_id]
            r = row[node_id]
            centre_y = y + sum(band.row_heights[:r]) + ROW_TOP + tallest[r] / 2
            box.x = x[node_id]
            box.y = centre_y - box.height / 2
            if box.inner is not None:
                box.inner.shift(box.x, box.y)
        y += band.height
    return Layout(boxes, flows, back, bands, width, y)


Point = tuple[float, float]


def segments(points: list[Point]) -> list[tuple[Point, Point]]:
    return list(zip(points, points[1:]))


def crosses_box(a: Point, b: Point, box: Box, margin: float = 4) -> bool:
    """Whether the axis-parallel segment a-b runs through the box (grown by a margin)."""
    left, right = min(a[0], b[0]), max(a[0], b[0])
    top, bottom = min(a[1], b[1]), max(a[1], b[1])
    return left < box.right + margin and right > box.x - margin \
        and top < box.bottom + margin and bottom > box.y - margin


def overlaps(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether two axis-parallel segments run on top of each other for a stretch."""
    if abs(a[0] - b[0]) < 1 and abs(c[0] - d[0]) < 1 and abs(a[0] - c[0]) < 3:
        low, high = max(min(a[1], b[1]), min(c[1], d[1])), min(max(a[1], b[1]), max(c[1], d[1]))
        return high - low > 3
    if abs(a[1] - b[1]) < 1 and abs(c[1] - d[1]) < 1 and abs(a[1] - c[1]) < 3:
        low, high = max(min(a[0], b[0]), min(c[0], d[0])), min(max(a[0], b[0]), max(c[0], d[0]))
        return high - low > 3
    return False


def candidate_routes(flow: etree._Element, layout: Layout, source: Box, target: Box) -> list[list[Point]]:
    """Orthogonal routes worth trying for one sequence flow, the preferred one first."""
    if flow.get("id") in layout.back_flows:
        left, right = min(source.cx, target.cx), max(source.cx, target.cx)
        between = [b for b in layout.boxes.values() if b.right >= left and b.x <= right]
        same_rows = [b for b in between if abs(b.cy - source.cy) < 1 or abs(b.cy - target.cy) < 1]
        below = max([source.bottom, target.bottom] + [b.bottom for b in same_rows]) + ROW_BOTTOM / 2
        above = min([source.y, target.y] + [b.y for b in same_rows]) - ROW_TOP / 2
        return [[(source.cx, source.bottom), (source.cx, below), (target.cx, below), (target.cx, target.bottom)],
                [(source.cx, source.y), (source.cx, above), (target.cx, above), (target.cx, target.y)]]
    exit_x, entry_x = source.right + COLUMN_GAP / 2, target.x - COLUMN_GAP / 2
    detours = []
    for level in sorted({b.bottom + ROW_BOTTOM / 2 for b in layout.boxes.values()}
                        | {b.y - ROW_TOP / 2 for b in layout.boxes.values()},
                        key=lambda level: abs(level - target.cy) + abs(level - source.cy)):
        detours.append([(source.right, source.cy), (exit_x, source.cy), (exit_x, level),
                        (entry_x, level), (entry_x, target.cy), (target.x, target.cy)])
    if abs(source.cy - target.cy) < 1:
        return [[(source.right, source.cy), (target.x, target.cy)]] + detours
    down = target.cy > source.cy
    vertical_first = [(source.cx, source.bottom if down else source.y),
                      (source.cx, target.cy), (target.x, target.cy)]
    horizontal_first = [(source.right, source.cy), (target.cx, source.cy),
                        (target.cx, target.y if down else target.bottom)]
    zigzags = []
    middle = (source.right + target.x) / 2
    for x in (middle, entry_x, exit_x):
        for offset in (0, -8, 8, -16, 16):
            zigzags.append([(source.right, source.cy), (x + offset, source.cy),
                            (x + offset, target.cy), (target.x, target.cy)])
    # As bpmn-js draws them: a split leaves by its top or bottom corner, a join is entered
    # there; otherwise a flow leaves by the right and enters by the left side.
    if source.kind in GATEWAY_TAGS and len(layout.outgoing(source.id)) > 1:
        return [vertical_first, horizontal_first] + zigzags + detours
    if target.kind in GATEWAY_TAGS and len(layout.incoming(target.id)) > 1:
        return [horizontal_first, vertical_first] + zigzags + detours
    return zigzags + [vertical_first, horizontal_first] + detours


def route(flow: etree._Element, layout: Layout, drawn: list[tuple[Point, Point]]) -> list[Point]:
    """Waypoints for a sequence flow: the first candidate route that crosses no other node and
    does not run on top of an edge already drawn; failing that, the first that crosses no node."""
    source = layout.boxes[flow.get("sourceRef")]
    target = layout.boxes[flow.get("targetRef")]
    obstacles = [b for b in layout.boxes.values() if b is not source and b is not target]
    candidates = candidate_routes(flow, layout, source, target)

    def clear(points: list[Point]) -> bool:
        return not any(crosses_box(a, b, box) for a, b in segments(points) for box in obstacles)

    def alone(points: list[Point]) -> bool:
        return not any(overlaps(a, b, c, d) for a, b in segments(points) for c, d in drawn)

    for choice in [c for c in candidates if clear(c) and alone(c)] + \
            [c for c in candidates if clear(c)] + candidates[:1]:
        drawn.extend(segments(choice))
        return choice
    raise AssertionError("unreachable")


def label_size(text: str) -> tuple[float, float]:
    width = min(max(len(text) * CHAR_W, 2 * CHAR_W), LABEL_MAX_W)
    lines = math.ceil(len(text) * CHAR_W / LABEL_MAX_W) or 1
    return width, lines * LINE_H


def add_bounds(parent: etree._Element, x: float, y: float, w: float, h: float,
               tag: str = "Bounds") -> None:
    etree.SubElement(parent, q(DC, tag), x=fmt(x), y=fmt(y), width=fmt(w), height=fmt(h))


def fmt(value: float) -> str:
    return str(int(round(value)))


def add_label(shape: etree._Element, x: float, y: float, text: str) -> None:
    w, h = label_size(text)
    label = etree.SubElement(shape, q(BPMNDI, "BPMNLabel"))
    add_bounds(label, x - w / 2, y, w, h)


def route_all(layout: Layout) -> dict[str, list[Point]]:
    """Waypoints of every sequence flow of the layout and of its sub-processes."""
    drawn: list[tuple[Point, Point]] = []
    routes = {flow.get("id"): route(flow, layout, drawn) for flow in layout.flows}
    for box in layout.boxes.values():
        if box.inner is not None:
            routes.update(route_all(box.inner))
    return routes


def gateway_label_y(box: Box, height: float, routes: dict[str, list[Point]]) -> float:
    """Above the gateway, unless a flow uses its top corner; then below, unless that is used too."""
    ends = [p for points in routes.values() for p in (points[0], points[-1])]
    top_used = any(abs(x - box.cx) < 1 and abs(y - box.y) < 1 for x, y in ends)
    bottom_used = any(abs(x - box.cx) < 1 and abs(y - box.bottom) < 1 for x, y in ends)
    if top_used and not bottom_used:
        return box.bottom + 7
    return box.y - height - 7


def emit_shapes(plane: etree._Element, layout: Layout, routes: dict[str, list[Point]]) -> None:
    for node_id, box in layout.boxes.items():
        attributes = {"id": f"{node_id}_di", "bpmnElement": node_id}
        if box.kind in CONTAINER_TAGS:
            attributes["isExpanded"] = "true"
        shape = etree.SubElement(plane, q(BPMNDI, "BPMNShape"), attributes)
        add_bounds(shape, box.x, box.y, box.width, box.height)
        name = box.element.get("name")
        if name and box.kind in EVENT_TAGS:
            add_label(shape, box.cx, box.bottom + 7, name)
        elif name and box.kind in GATEWAY_TAGS:
            _, h = label_size(name)
            add_label(shape, box.cx, gateway_label_y(box, h, routes), name)
        if box.inner is not None:
            emit_shapes(plane, box.inner, routes)


def emit_edges(plane: etree._Element, layout: Layout, routes: dict[str, list[Point]]) -> None:
    for flow in layout.flows:
        edge = etree.SubElement(plane, q(BPMNDI, "BPMNEdge"),
                                id=f"{flow.get('id')}_di", bpmnElement=flow.get("id"))
        points = routes[flow.get("id")]
        for x, y in points:
            etree.SubElement(edge, q(DI, "waypoint"), x=fmt(x), y=fmt(y))
        name = flow.get("name")
        if name:
            # Beside the first segment long enough to hold a label.
            w, h = label_size(name)
            pairs = segments(points)
            (x0, y0), (x1, y1) = next((p for p in pairs if math.dist(*p) >= 40), pairs[0])
            label = etree.SubElement(edge, q(BPMNDI, "BPMNLabel"))
            if abs(x0 - x1) < 1:
                add_bounds(label, x0 + 6, (y0 + y1) / 2 - h / 2, w, h)
            elif y0 < min(points[0][1], points[-1][1]) - 1:   # a loop running over the top
                add_bounds(label, min(x0, x1) + 8, y0 + 4, w, h)
            else:
                add_bounds(label, min(x0, x1) + 8, y0 - h - 4, w, h)
    for box in layout.boxes.values():
        if box.inner is not None:
            emit_edges(plane, box.inner, routes)


def build_diagram(root: etree._Element) -> etree._Element:
    processes = root.findall(q(BPMN, "process"))
    if len(processes) != 1:
        raise SystemExit("layout.py handles files with exactly one process")
    process = processes[0]
    collaboration = root.find(q(BPMN, "collaboration"))
    participant = None
    if collaboration is not None:
        for candidate in collaboration.findall(q(BPMN, "participant")):
            if candidate.get("processRef") == process.get("id"):
                participant = candidate
    lanes = process.findall(f"{q(BPMN, 'laneSet')}/{q(BPMN, 'lane')}")

    layout = layout_container(process, lanes)
    left = ORIGIN_X + (PARTICIPANT_LABEL_W if participant is not None else 0)
    left += LANE_LABEL_W if lanes else 0
    layout.shift(left + CONTENT_LEFT, ORIGIN_Y)
    pool_width = (PARTICIPANT_LABEL_W if participant is not None else 0) \
        + (LANE_LABEL_W if lanes else 0) + CONTENT_LEFT + layout.width + CONTENT_RIGHT

    diagram = etree.Element(q(BPMNDI, "BPMNDiagram"), id=f"BPMNDiagram_{process.get('id')}")
    plane_element = collaboration.get("id") if participant is not None else process.get("id")
    plane = etree.SubElement(diagram, q(BPMNDI, "BPMNPlane"),
                             id=f"BPMNPlane_{process.get('id')}", bpmnElement=plane_element)
    if participant is not None:
        shape = etree.SubElement(plane, q(BPMNDI, "BPMNShape"), id=f"{participant.get('id')}_di",
                                 bpmnElement=participant.get("id"), isHorizontal="true")
        add_bounds(shape, ORIGIN_X, ORIGIN_Y, pool_width, layout.height)
    if lanes:
        lane_x = ORIGIN_X + (PARTICIPANT_LABEL_W if participant is not None else 0)
        lane_width = pool_width - (PARTICIPANT_LABEL_W if participant is not None else 0)
        for band in layout.bands:
            shape = etree.SubElement(plane, q(BPMNDI, "BPMNShape"), id=f"{band.lane.get('id')}_di",
                                     bpmnElement=band.lane.get("id"), isHorizontal="true")
            add_bounds(shape, lane_x, band.y, lane_width, band.height)
    routes = route_all(layout)
    emit_shapes(plane, layout, routes)
    emit_edges(plane, layout, routes)
    return diagram


def layout_file(path: Path) -> None:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    tree = etree.parse(str(path), parser)
    root = tree.getroot()
    for process in root.findall(q(BPMN, "process")):
        sync_flow_refs(process)
    for old in root.findall(q(BPMNDI, "BPMNDiagram")):
        root.remove(old)
    root.append(build_diagram(root))
    etree.indent(tree, space="  ")
    body = etree.tostring(tree, encoding="UTF-8", xml_declaration=False)
    body = body.replace(b'"/>', b'" />')  # empty elements as Camunda Modeler writes them
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n")


def main(argv: list[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("files", nargs="+", type=Path, help=".bpmn files to lay out in place")
    for path in arguments.parse_args(argv).files:
        layout_file(path)
        print(f"laid out {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
