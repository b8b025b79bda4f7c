"""Drawing of the connections: sequence flows (with their default and conditional markers),
message flows, associations and data associations, with their arrowheads and labels."""

from __future__ import annotations

import math
from itertools import pairwise

from lxml import etree

from .._svg import INK, sub, text_block, wrap
from ._icons import WHITE
from ._model import Edge
from ._shapes import HALO, LABEL_FONT, LINE

Point = tuple[float, float]


def _unit(a: Point, b: Point) -> tuple[float, float, float]:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    return dx / length, dy / length, length


def _path(points: list[Point]) -> str:
    head, *rest = points
    return f"M{head[0]:g} {head[1]:g} " + " ".join(f"L{x:g} {y:g}" for x, y in rest)


def _r(v: float) -> str:
    return f"{round(v, 2):g}"


def _arrow(points: list[Point], length: float = 11, half: float = 3.6) -> tuple[str, Point]:
    """The arrowhead at the last waypoint and the point where the line should stop."""
    tip, before = points[-1], points[-2]
    ux, uy, _ = _unit(before, tip)
    bx, by = tip[0] - ux * length, tip[1] - uy * length
    px, py = -uy * half, ux * half
    poly = f"{_r(tip[0])},{_r(tip[1])} {_r(bx + px)},{_r(by + py)} {_r(bx - px)},{_r(by - py)}"
    return poly, (bx + ux * 1.5, by + uy * 1.5)


def _open_arrow(g: etree._Element, tip: Point, before: Point, color: str, fill: str = "none") -> None:
    ux, uy, _ = _unit(before, tip)
    bx, by = tip[0] - ux * 10, tip[1] - uy * 10
    px, py = -uy * 5, ux * 5
    tag = "polygon" if fill != "none" else "polyline"
    sub(g, tag, points=f"{_r(bx + px)},{_r(by + py)} {_r(tip[0])},{_r(tip[1])} {_r(bx - px)},{_r(by - py)}",
        fill=fill, stroke=color, stroke_width=1.5, stroke_linejoin="round")


def midpoint(points: list[Point]) -> Point:
    """The point halfway along the polyline."""
    lengths = [_unit(a, b)[2] for a, b in pairwise(points)]
    half = sum(lengths) / 2
    for (a, b), seg in zip(pairwise(points), lengths):
        if half <= seg:
            ux, uy, _ = _unit(a, b)
            return a[0] + ux * half, a[1] + uy * half
        half -= seg
    return points[-1]


def draw_edge(parent: etree._Element, edge: Edge, tooltip: str, color: str = INK,
              width: float = 1.5, labels: etree._Element | None = None) -> etree._Element:
    """Draw one connection; its group carries ``data-element-id`` and ``data-waypoints``.
    Its label goes into ``labels`` (a layer above the shapes) when given."""
    pts = edge.points
    g = sub(parent, "g", cls=f"bpmn-edge bpmn-{edge.kind}", data_element_id=edge.id,
            data_waypoints=" ".join(f"{x:g},{y:g}" for x, y in pts))
    sub(g, "title", tooltip)
    kind = edge.kind
    if kind == "sequenceFlow":
        poly, stop = _arrow(pts)
        line = pts[:-1] + [stop]
        start = pts[0]
        if edge.is_conditional:
            ux, uy, _ = _unit(pts[0], pts[1])
            px, py = -uy * 5.5, ux * 5.5
            a, c = pts[0], (pts[0][0] + ux * 18, pts[0][1] + uy * 18)
            m = (pts[0][0] + ux * 9, pts[0][1] + uy * 9)
            sub(g, "polygon", cls="conditional-marker", fill=WHITE, stroke=color, stroke_width=1.3,
                points=f"{_r(a[0])},{_r(a[1])} {_r(m[0] + px)},{_r(m[1] + py)} {_r(c[0])},{_r(c[1])} "
                       f"{_r(m[0] - px)},{_r(m[1] - py)}")
            start = c
        sub(g, "path", cls="line", d=_path([start] + line[1:]), fill="none", stroke=color,
            stroke_width=width, stroke_linejoin="round")
        sub(g, "polygon", cls="arrow", points=poly, fill=color, stroke=color, stroke_width=1,
            stroke_linejoin="round")
        if edge.is_default:
            ux, uy, _ = _unit(pts[0], pts[1])
            cx, cy = pts[0][0] + ux * 12, pts[0][1] + uy * 12
            # A slash across the line, tilted 45 degrees from it.
            dx, dy = (ux - uy) * 5, (uy + ux) * 5
            sub(g, "line", cls="default-marker", x1=_r(cx - dx), y1=_r(cy - dy), x2=_r(cx + dx),
                y2=_r(cy + dy), stroke=color, stroke_width=1.6)
    elif kind == "messageFlow":
        ux, uy, _ = _unit(pts[0], pts[1])
        start = (pts[0][0] + ux * 4.5, pts[0][1] + uy * 4.5)
        sub(g, "path", cls="line", d=_path([start] + pts[1:]), fill="none", stroke=color, stroke_width=width,
            stroke_dasharray="10 6")
        sub(g, "circle", cx=pts[0][0], cy=pts[0][1], r=4.5, fill=WHITE, stroke=color, stroke_width=1.3)
        _open_arrow(g, pts[-1], pts[-2], color, fill=WHITE)
    else:
        sub(g, "path", cls="line", d=_path(pts), fill="none", stroke=color, stroke_width=width,
            stroke_dasharray="0.5 5", stroke_linecap="round")
        direction = edge.el.get("associationDirection", "None") if edge.el is not None else "None"
        if kind in ("dataInputAssociation", "dataOutputAssociation") or direction in ("One", "Both"):
            _open_arrow(g, pts[-1], pts[-2], color)
        if direction == "Both":
            _open_arrow(g, pts[0], pts[1], color)
    if edge.name:
        holder = g if labels is None else sub(labels, "g", cls="bpmn-label", data_element_id=edge.id)
        _edge_label(holder, edge)
    return g


def _edge_label(g: etree._Element, edge: Edge) -> None:
    size = LABEL_FONT
    if edge.label is not None:
        b = edge.label
        lines = wrap(edge.name, max(b.w + 6, 30), size, max_lines=4)
        block = len(lines) * size * LINE
        top = b.y + (b.h - block) / 2 if block < b.h + size else b.y
        text_block(g, lines, b.cx, top, size, size * LINE, cls="label", **HALO)
        return
    x, y = midpoint(edge.points)
    lines = wrap(edge.name, 90, size, max_lines=3)
    text_block(g, lines, x + 4, y - 4 - len(lines) * size * LINE, size, size * LINE, anchor="start",
               cls="label", **HALO)
