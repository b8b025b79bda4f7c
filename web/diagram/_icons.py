"""The small symbols inside shapes: event definitions, task types, activity markers and gateway
kinds. Each is drawn in its own design frame and placed with a transform, so one definition
serves every size; stroke widths are divided by the scale to stay thin."""

from __future__ import annotations

import math
from typing import Any

from lxml import etree

from .._svg import INK, fmt, sub

WHITE = "#ffffff"


def _group(parent: etree._Element, x: float, y: float, scale: float, cls: str) -> etree._Element:
    return sub(parent, "g", cls=cls, transform=f"translate({fmt(x)} {fmt(y)}) scale({fmt(round(scale, 4))})")


def _poly(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{fmt(round(x, 2))},{fmt(round(y, 2))}" for x, y in points)


def _regular(n: int, r: float, rotate: float = -90) -> list[tuple[float, float]]:
    return [(r * math.cos(math.radians(rotate + i * 360 / n)), r * math.sin(math.radians(rotate + i * 360 / n)))
            for i in range(n)]


# ---- events (design frame: a 36 wide event centred on 0,0) -------------------------------

def event_icon(parent: etree._Element, kind: str, cx: float, cy: float, size: float,
               filled: bool) -> None:
    """Draw the symbol of one event definition kind; ``filled`` for throwing events."""
    s = size / 36
    g = _group(parent, cx, cy, s, f"icon icon-{kind}")
    sw = 1.5 / s if s < 1 else 1.5
    fill = INK if filled else WHITE
    line = WHITE if filled else INK
    if kind == "timer":
        sub(g, "circle", cx=0, cy=0, r=11, fill=WHITE, stroke=INK, stroke_width=sw)
        for i in range(12):
            a = math.radians(i * 30)
            inner = 8 if i % 3 == 0 else 9.2
            sub(g, "line", x1=round(inner * math.cos(a), 2), y1=round(inner * math.sin(a), 2),
                x2=round(10.6 * math.cos(a), 2), y2=round(10.6 * math.sin(a), 2), stroke=INK, stroke_width=1)
        sub(g, "path", d="M0 0 L0 -7 M0 0 L5 2", fill="none", stroke=INK, stroke_width=sw,
            stroke_linecap="round")
    elif kind == "message":
        sub(g, "rect", x=-10, y=-7, width=20, height=14, fill=fill, stroke=INK, stroke_width=sw)
        sub(g, "polyline", points="-10,-7 0,1 10,-7", fill="none", stroke=line, stroke_width=sw)
    elif kind == "error":
        sub(g, "polygon", points=_poly([(-9, 9), (-4, -9), (2, 1), (8, -9), (4, 9), (-2, -1)]),
            fill=fill, stroke=INK, stroke_width=sw, stroke_linejoin="round")
    elif kind == "escalation":
        sub(g, "polygon", points=_poly([(0, -10), (8, 9), (0, 2), (-8, 9)]), fill=fill, stroke=INK,
            stroke_width=sw, stroke_linejoin="round")
    elif kind == "signal":
        sub(g, "polygon", points=_poly([(0, -10), (10, 8), (-10, 8)]), fill=fill, stroke=INK,
            stroke_width=sw, stroke_linejoin="round")
    elif kind == "conditional":
        sub(g, "rect", x=-7, y=-9, width=14, height=18, fill=WHITE, stroke=INK, stroke_width=sw)
        sub(g, "path", d="M-4 -5 H4 M-4 -1.5 H4 M-4 2 H4 M-4 5.5 H4", stroke=INK, stroke_width=1.2)
    elif kind == "link":
        sub(g, "polygon", points=_poly([(-9, -4), (2, -4), (2, -9), (10, 0), (2, 9), (2, 4), (-9, 4)]),
            fill=fill, stroke=INK, stroke_width=sw, stroke_linejoin="round")
    elif kind == "terminate":
        sub(g, "circle", cx=0, cy=0, r=10, fill=INK)
    elif kind == "compensate":
        sub(g, "polygon", points=_poly([(-11, 0), (-1, -7), (-1, 7)]), fill=fill, stroke=INK, stroke_width=sw)
        sub(g, "polygon", points=_poly([(-1, 0), (9, -7), (9, 7)]), fill=fill, stroke=INK, stroke_width=sw)
    elif kind == "cancel":
        sub(g, "path", d="M-7 -7 L7 7 M7 -7 L-7 7", stroke=INK, stroke_width=4, stroke_linecap="round",
            fill="none")
    elif kind == "multiple":
        sub(g, "polygon", points=_poly(_regular(5, 10)), fill=fill, stroke=INK, stroke_width=sw)
    elif kind == "parallelMultiple":
        sub(g, "polygon", points=_poly([(-3, -10), (3, -10), (3, -3), (10, -3), (10, 3), (3, 3), (3, 10),
                                         (-3, 10), (-3, 3), (-10, 3), (-10, -3), (-3, -3)]),
            fill=WHITE, stroke=INK, stroke_width=sw)


# ---- task types (design frame: an 18 x 18 box whose top left is 0,0) ---------------------

def _gear(teeth: int, outer: float, inner: float, cx: float, cy: float) -> list[tuple[float, float]]:
    points = []
    for i in range(teeth * 2):
        a = math.pi * i / teeth
        for da in (-0.18, 0.18):
            r = outer if i % 2 == 0 else inner
            points.append((cx + r * math.cos(a + da), cy + r * math.sin(a + da)))
    return points


def task_icon(parent: etree._Element, kind: str, x: float, y: float) -> None:
    """Draw the type symbol of a task in its top left corner (x, y: the symbol's corner)."""
    g = _group(parent, x, y, 1, f"icon icon-{kind}")
    common: dict[str, Any] = {"stroke": INK, "stroke_width": 1.1, "stroke_linejoin": "round"}
    if kind == "userTask":
        sub(g, "path", d="M1.5 18 C1.5 12.5 4.5 10.5 9 10.5 C13.5 10.5 16.5 12.5 16.5 18 Z", fill=WHITE, **common)
        sub(g, "circle", cx=9, cy=5.5, r=4, fill=WHITE, **common)
        sub(g, "path", d="M5.5 18 V14.5 M12.5 18 V14.5", fill="none", **common)
    elif kind == "manualTask":
        sub(g, "path", d="M1 9 C1 6.5 3 5 5 4.5 L8 3 H16 C17.3 3 17.3 5 16 5 H10 H17 C18.3 5 18.3 7.5 17 7.5 "
                         "H10 H16.5 C17.8 7.5 17.8 10 16.5 10 H10 H15 C16.3 10 16.3 12.5 15 12.5 H5 "
                         "C2.5 12.5 1 11.5 1 9 Z", fill=WHITE, **common)
    elif kind == "scriptTask":
        sub(g, "path", d="M4 1 H16 C13 4 13 6.5 15 9 C17 11.5 17 14 14 17 H2 C5 14 5 11.5 3 9 "
                         "C1 6.5 1 4 4 1 Z", fill=WHITE, **common)
        sub(g, "path", d="M5.5 5 H12.5 M6.5 9 H13.5 M6 13 H12.5", fill="none", stroke=INK, stroke_width=1)
    elif kind == "serviceTask":
        sub(g, "polygon", points=_poly(_gear(8, 6.2, 4.6, 7, 7)), fill=WHITE, **common)
        sub(g, "circle", cx=7, cy=7, r=2, fill=WHITE, **common)
        sub(g, "polygon", points=_poly(_gear(8, 5.2, 3.8, 12.5, 12.5)), fill=WHITE, **common)
        sub(g, "circle", cx=12.5, cy=12.5, r=1.6, fill=WHITE, **common)
    elif kind in ("sendTask", "receiveTask"):
        filled = kind == "sendTask"
        sub(g, "rect", x=0.5, y=3, width=17, height=12, fill=INK if filled else WHITE, **common)
        sub(g, "polyline", points="0.5,3 9,9.5 17.5,3", fill="none", stroke=WHITE if filled else INK,
            stroke_width=1.1)
    elif kind == "businessRuleTask":
        sub(g, "rect", x=0.5, y=2, width=17, height=14, fill=WHITE, **common)
        sub(g, "rect", x=0.5, y=2, width=17, height=4, fill=INK, stroke=INK, stroke_width=1.1)
        sub(g, "path", d="M0.5 11 H17.5 M6 6 V16", fill="none", stroke=INK, stroke_width=1)


# ---- activity markers (design frame: a 14 x 14 box whose top left is 0,0) ----------------

MARKER_SIZE = 14.0


def activity_marker(parent: etree._Element, kind: str, x: float, y: float) -> None:
    """Draw one bottom marker of an activity: ``parallel``, ``sequential``, ``loop``,
    ``collapsed``, ``adhoc`` or ``compensation``."""
    g = _group(parent, x, y, 1, f"marker marker-{kind}")
    if kind == "parallel":
        for bx in (2, 6, 10):
            sub(g, "rect", x=bx, y=1, width=2, height=12, fill=INK)
    elif kind == "sequential":
        for by in (2, 6, 10):
            sub(g, "rect", x=1, y=by, width=12, height=2, fill=INK)
    elif kind == "loop":
        sub(g, "path", d="M4.2 12 A5.5 5.5 0 1 1 10.5 11.6", fill="none", stroke=INK, stroke_width=1.5)
        sub(g, "polyline", points="1.5,10 4.6,12.4 2.8,15", fill="none", stroke=INK, stroke_width=1.5,
            stroke_linejoin="round")
    elif kind == "collapsed":
        sub(g, "rect", x=0.5, y=0.5, width=13, height=13, fill=WHITE, stroke=INK, stroke_width=1.2)
        sub(g, "path", d="M7 3.5 V10.5 M3.5 7 H10.5", stroke=INK, stroke_width=1.5)
    elif kind == "adhoc":
        sub(g, "path", d="M1 8.5 C3 4.5 5.5 4.5 7 7 C8.5 9.5 11 9.5 13 5.5", fill="none", stroke=INK,
            stroke_width=1.6)
    elif kind == "compensation":
        sub(g, "polygon", points="0.5,7 7,2.5 7,11.5", fill="none", stroke=INK, stroke_width=1.1)
        sub(g, "polygon", points="7,7 13.5,2.5 13.5,11.5", fill="none", stroke=INK, stroke_width=1.1)


# ---- gateways (design frame: a 50 wide diamond centred on 0,0) ---------------------------

def gateway_icon(parent: etree._Element, kind: str, cx: float, cy: float, size: float,
                 instantiate: bool = False, parallel_event: bool = False) -> None:
    """Draw the symbol inside a gateway of one kind (``exclusiveGateway``, ...)."""
    s = size / 50
    g = _group(parent, cx, cy, s, f"icon icon-{kind}")
    if kind == "exclusiveGateway":
        sub(g, "path", d="M-8 -8 L8 8 M8 -8 L-8 8", stroke=INK, stroke_width=3.6, stroke_linecap="round")
    elif kind == "parallelGateway":
        sub(g, "path", d="M0 -12 V12 M-12 0 H12", stroke=INK, stroke_width=3.6, stroke_linecap="round")
    elif kind == "inclusiveGateway":
        sub(g, "circle", cx=0, cy=0, r=11, fill="none", stroke=INK, stroke_width=2.6)
    elif kind == "complexGateway":
        sub(g, "path", d="M0 -12 V12 M-12 0 H12 M-8.5 -8.5 L8.5 8.5 M8.5 -8.5 L-8.5 8.5", stroke=INK,
            stroke_width=3, stroke_linecap="round")
    elif kind == "eventBasedGateway":
        sub(g, "circle", cx=0, cy=0, r=13, fill="none", stroke=INK, stroke_width=1.2)
        if not instantiate:
            sub(g, "circle", cx=0, cy=0, r=10.5, fill="none", stroke=INK, stroke_width=1.2)
        if parallel_event:
            sub(g, "path", d="M0 -6.5 V6.5 M-6.5 0 H6.5", stroke=INK, stroke_width=2.2)
        else:
            sub(g, "polygon", points=_poly(_regular(5, 6.5)), fill="none", stroke=INK, stroke_width=1.3)
