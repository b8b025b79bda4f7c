"""Drawing of the BPMN shapes (pools, lanes, activities, events, gateways, data, artifacts)
and of their labels. Every shape becomes one <g> carrying ``data-element-id`` and
``data-bounds``; its first drawn child with class ``outline`` has exactly the DI bounds."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from .._svg import INK, MUTED, sub, text_block, wrap
from ._icons import MARKER_SIZE, WHITE, activity_marker, event_icon, gateway_icon, task_icon
from ._model import NS, Bounds, Shape, local
from ._words import DEFINITIONS, EVENT_WITH_DEFINITION, EVENTS, KINDS, NON_INTERRUPTING, Words, say

FONT = 12.0
LABEL_FONT = 11.0
LINE = 1.25  # line height in em
STROKE = 1.5
# A white outline behind external labels keeps them readable where a flow crosses them.
HALO: dict[str, Any] = {"stroke": "#ffffff", "stroke_width": 3, "stroke_linejoin": "round", "paint_order": "stroke"}
TASK_KINDS = {"task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
              "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess"}
GATEWAY_KINDS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "complexGateway",
                 "eventBasedGateway"}
THROW_KINDS = {"endEvent", "intermediateThrowEvent"}


def type_label(shape: Shape, words: Words | None = None) -> str:
    """A readable type: 'User task', 'Timer boundary event (non-interrupting)', ..., through
    `words` (a translation) when given."""
    generic = re.sub(r"(?<!^)([A-Z])", r" \1", shape.kind).lower()
    generic = generic[0].upper() + generic[1:] if generic else shape.kind
    if shape.event_defs:
        first = shape.event_defs[0]
        text = say(words, EVENT_WITH_DEFINITION,
                   definition=say(words, DEFINITIONS[first]) if first in DEFINITIONS else first,
                   event=say(words, EVENTS[shape.kind]) if shape.kind in EVENTS else generic.lower())
        text = text[:1].upper() + text[1:]
    else:
        text = say(words, KINDS[shape.kind]) if shape.kind in KINDS else generic
    if not is_interrupting(shape):
        text += " " + say(words, NON_INTERRUPTING)
    return text


def is_interrupting(shape: Shape) -> bool:
    """False for a non-interrupting boundary event or event sub-process start."""
    if shape.kind == "boundaryEvent":
        return shape.attr("cancelActivity", "true") != "false"
    if shape.kind == "startEvent":
        return shape.attr("isInterrupting", "true") != "false"
    return True


def shape_group(parent: etree._Element, shape: Shape, tooltip: str) -> etree._Element:
    """The <g> of one shape with its identity, geometry and tooltip."""
    b = shape.bounds
    g = sub(parent, "g", cls=f"bpmn-shape bpmn-{shape.kind}", data_element_id=shape.id,
            data_bounds=f"{b.x:g} {b.y:g} {b.w:g} {b.h:g}")
    sub(g, "title", tooltip)
    return g


def draw_shape(parent: etree._Element, shape: Shape, tooltip: str) -> etree._Element:
    """Draw one shape and its label; returns its group."""
    g = shape_group(parent, shape, tooltip)
    kind = shape.kind
    if kind == "participant":
        _pool(g, shape)
    elif kind == "lane":
        _lane(g, shape)
    elif kind in TASK_KINDS:
        _activity(g, shape)
    elif kind.endswith("Event"):
        _event(g, shape)
    elif kind in GATEWAY_KINDS:
        _gateway(g, shape)
    elif kind in ("dataObjectReference", "dataObject", "dataInput", "dataOutput"):
        _data_object(g, shape)
    elif kind == "dataStoreReference":
        _data_store(g, shape)
    elif kind == "textAnnotation":
        _annotation(g, shape)
    elif kind == "group":
        _group_artifact(g, shape)
    else:
        b = shape.bounds
        sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, rx=4, fill=WHITE, stroke=INK,
            stroke_width=STROKE)
        _inside_label(g, shape.name, b)
    return g


def _inside_label(g: etree._Element, text: str, b: Bounds, bottom_reserve: float = 0,
                  icon: bool = False) -> None:
    """A label centred in its box, clear of the type icon (18 high, 6 from the top left):
    centred when it fits so, else below the icon, else beside it (a narrower first line),
    shrinking to 11 and 10 px, and shortened with an ellipsis as a last resort."""
    if not text:
        return
    width, avail = max(b.w - 10, 10), b.h - 8 - bottom_reserve
    bottom = b.y + 4 + avail
    beside = width - 44  # the first line's width when it sits level with the icon
    for size in (FONT, 11.0, 10.0):
        lh = size * LINE
        lines = wrap(text, width, size, balance=True)
        block = len(lines) * lh
        top = b.y + 4 + (avail - block) / 2
        if not icon or top >= b.y + 27:
            if block <= avail:
                break
        elif block <= avail - 23:
            top = b.y + 27
            break
        else:
            lines = wrap(text, width, size, first_width=beside)
            block = len(lines) * lh
            top = max(b.y + 4 + (avail - block) / 2, b.y + 27 - lh)
            if top + block <= bottom:
                break
    else:
        lh = size * LINE
        top = b.y + 27 - lh if icon else b.y + 4
        lines = wrap(text, width, size, max_lines=max(int((bottom - top) // lh), 1),
                     first_width=beside if icon else None)
    text_block(g, lines, b.cx, top, size, size * LINE, cls="label")


def external_label(g: etree._Element, text: str, b: Bounds, label: Bounds | None) -> None:
    """A label outside its shape (events, gateways, data): in its DI label bounds, or below."""
    if not text:
        return
    if label is not None:
        width = max(label.w + 6, 36.0)
        lines = wrap(text, width, LABEL_FONT, max_lines=6, balance=True)
        block = len(lines) * LABEL_FONT * LINE
        top = label.y + (label.h - block) / 2 if block < label.h + LABEL_FONT else label.y
        text_block(g, lines, label.cx, top, LABEL_FONT, LABEL_FONT * LINE, cls="label", **HALO)
        return
    lines = wrap(text, 90, LABEL_FONT, max_lines=4, balance=True)
    text_block(g, lines, b.cx, b.y + b.h + 5, LABEL_FONT, LABEL_FONT * LINE, cls="label", **HALO)


def _vertical_label(g: etree._Element, text: str, strip: Bounds) -> None:
    """Text read bottom to top, centred in a vertical strip (a pool's or lane's header)."""
    if not text:
        return
    lines = wrap(text, max(strip.h - 12, 10), FONT, max_lines=max(int(strip.w // (FONT * LINE)), 1))
    block = len(lines) * FONT * LINE
    holder = sub(g, "g", transform=f"rotate(-90 {strip.cx:g} {strip.cy:g})")
    text_block(holder, lines, strip.cx, strip.cy - block / 2, FONT, FONT * LINE, cls="label")


def _header(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    if shape.horizontal:
        sub(g, "line", x1=b.x + 30, y1=b.y, x2=b.x + 30, y2=b.y + b.h, stroke=INK, stroke_width=1)
        _vertical_label(g, shape.name, Bounds(b.x, b.y, 30, b.h))
    else:
        sub(g, "line", x1=b.x, y1=b.y + 30, x2=b.x + b.w, y2=b.y + 30, stroke=INK, stroke_width=1)
        lines = wrap(shape.name, b.w - 12, FONT, max_lines=2)
        text_block(g, lines, b.cx, b.y + 15 - len(lines) * FONT * LINE / 2, FONT, FONT * LINE, cls="label")


def _pool(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, fill=WHITE, stroke=INK,
        stroke_width=STROKE)
    if shape.attr("processRef"):
        _header(g, shape)
    else:  # a black-box participant: the name in the middle
        _inside_label(g, shape.name, b)


def _lane(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, fill="none", stroke=INK,
        stroke_width=1)
    _header(g, shape)


def _bottom_markers(shape: Shape) -> list[str]:
    el = shape.el
    out: list[str] = []
    if el is None:
        return out
    mi = el.find("bpmn:multiInstanceLoopCharacteristics", NS)
    if mi is not None:
        out.append("sequential" if mi.get("isSequential") == "true" else "parallel")
    elif el.find("bpmn:standardLoopCharacteristics", NS) is not None:
        out.append("loop")
    if shape.kind in ("subProcess", "transaction", "adHocSubProcess") and not shape.expanded:
        out.append("collapsed")
    if shape.kind == "adHocSubProcess":
        out.append("adhoc")
    if el.get("isForCompensation") == "true":
        out.append("compensation")
    return out


def _activity(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    kind = shape.kind
    dash = "2 4" if shape.attr("triggeredByEvent") == "true" else None
    width = 4 if kind == "callActivity" else STROKE
    sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, rx=10, ry=10, fill=WHITE,
        stroke=INK, stroke_width=width, stroke_dasharray=dash, stroke_linecap="round" if dash else None)
    if kind == "transaction":
        sub(g, "rect", x=b.x + 3, y=b.y + 3, width=b.w - 6, height=b.h - 6, rx=7, ry=7, fill="none",
            stroke=INK, stroke_width=1.2)
    task_icon(g, kind, b.x + 6, b.y + 6)
    markers = _bottom_markers(shape)
    if markers:
        gap = 4.0
        total = len(markers) * MARKER_SIZE + (len(markers) - 1) * gap
        x = b.cx - total / 2
        for marker in markers:
            activity_marker(g, marker, x, b.y + b.h - MARKER_SIZE - 5)
            x += MARKER_SIZE + gap
    if shape.expanded:
        lines = wrap(shape.name, max(b.w - 20, 10), FONT, max_lines=2)
        text_block(g, lines, b.x + 10, b.y + 6, FONT, FONT * LINE, anchor="start", cls="label")
    else:
        has_icon = kind in ("userTask", "manualTask", "scriptTask", "serviceTask", "sendTask",
                            "receiveTask", "businessRuleTask")
        _inside_label(g, shape.name, b, bottom_reserve=MARKER_SIZE + 4 if markers else 0,
                      icon=has_icon and b.h >= 60)


def _event(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    r = min(b.w, b.h) / 2
    dash = None if is_interrupting(shape) else "5.5 3"
    kind = shape.kind
    if kind == "endEvent":
        sub(g, "circle", cls="outline", cx=b.cx, cy=b.cy, r=r, fill=WHITE, stroke=INK, stroke_width=4)
    elif kind == "startEvent":
        sub(g, "circle", cls="outline", cx=b.cx, cy=b.cy, r=r, fill=WHITE, stroke=INK, stroke_width=STROKE,
            stroke_dasharray=dash)
    else:
        sub(g, "circle", cls="outline", cx=b.cx, cy=b.cy, r=r, fill=WHITE, stroke=INK, stroke_width=1.2,
            stroke_dasharray=dash)
        sub(g, "circle", cx=b.cx, cy=b.cy, r=max(r - 3, 1), fill="none", stroke=INK, stroke_width=1.2,
            stroke_dasharray=dash)
    defs = shape.event_defs
    if defs:
        if len(defs) > 1:
            icon = "parallelMultiple" if shape.attr("parallelMultiple") == "true" else "multiple"
        else:
            icon = defs[0]
        event_icon(g, icon, b.cx, b.cy, 2 * r, filled=kind in THROW_KINDS)
    external_label(g, shape.name, b, shape.label)


def _gateway(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    points = f"{b.cx:g},{b.y:g} {b.x + b.w:g},{b.cy:g} {b.cx:g},{b.y + b.h:g} {b.x:g},{b.cy:g}"
    sub(g, "polygon", cls="outline", points=points, fill=WHITE, stroke=INK, stroke_width=STROKE,
        stroke_linejoin="round")
    if shape.kind != "exclusiveGateway" or shape.marker_visible:
        gateway_icon(g, shape.kind, b.cx, b.cy, min(b.w, b.h),
                     instantiate=shape.attr("instantiate") == "true",
                     parallel_event=shape.attr("eventGatewayType") == "Parallel")
    external_label(g, shape.name, b, shape.label)


def _data_object(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    fold = min(b.w, b.h) * 0.3
    sub(g, "path", cls="outline", fill=WHITE, stroke=INK, stroke_width=STROKE, stroke_linejoin="round",
        d=f"M{b.x:g} {b.y:g} H{b.x + b.w - fold:g} L{b.x + b.w:g} {b.y + fold:g} V{b.y + b.h:g} "
          f"H{b.x:g} Z")
    sub(g, "path", fill="none", stroke=INK, stroke_width=1.2,
        d=f"M{b.x + b.w - fold:g} {b.y:g} V{b.y + fold:g} H{b.x + b.w:g}")
    el = shape.el
    target = el
    if el is not None and local(el) == "dataObjectReference":
        root = el.getroottree()
        ref = el.get("dataObjectRef")
        found = root.xpath("//*[@id=$r]", r=ref) if ref else []
        target = found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else el
    if target is not None and target.get("isCollection") == "true":
        activity_marker(g, "parallel", b.cx - MARKER_SIZE / 2, b.y + b.h - MARKER_SIZE - 2)
    if shape.kind in ("dataInput", "dataOutput"):
        fill = INK if shape.kind == "dataOutput" else WHITE
        x, y = b.x + 4, b.y + 5
        sub(g, "polygon", fill=fill, stroke=INK, stroke_width=1,
            points=f"{x:g},{y + 3:g} {x + 6:g},{y + 3:g} {x + 6:g},{y:g} {x + 12:g},{y + 5:g} "
                   f"{x + 6:g},{y + 10:g} {x + 6:g},{y + 7:g} {x:g},{y + 7:g}")
    external_label(g, shape.name, b, shape.label)


def _data_store(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    ry = min(b.h * 0.12, 8)
    x0, x1, y0, y1 = b.x, b.x + b.w, b.y, b.y + b.h
    rx = b.w / 2
    # The side walls and the bottom arc; the top ellipse drawn whole, two rims below it.
    sub(g, "path", cls="outline", fill=WHITE, stroke=INK, stroke_width=STROKE,
        d=f"M{x0:g} {y0 + ry:g} V{y1 - ry:g} A{rx:g} {ry:g} 0 0 0 {x1:g} {y1 - ry:g} V{y0 + ry:g} "
          f"A{rx:g} {ry:g} 0 0 0 {x0:g} {y0 + ry:g} A{rx:g} {ry:g} 0 0 0 {x1:g} {y0 + ry:g}")
    for k in (1, 2):
        sub(g, "path", fill="none", stroke=INK, stroke_width=1.2,
            d=f"M{x0:g} {y0 + ry + k * ry * 0.8:g} A{rx:g} {ry:g} 0 0 0 {x1:g} {y0 + ry + k * ry * 0.8:g}")
    external_label(g, shape.name, b, shape.label)


def _annotation(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, fill="none", stroke="none")
    sub(g, "path", fill="none", stroke=INK, stroke_width=STROKE,
        d=f"M{b.x + 12:g} {b.y:g} H{b.x:g} V{b.y + b.h:g} H{b.x + 12:g}")
    if shape.name:
        lines = wrap(shape.name, max(b.w - 10, 10), FONT, max_lines=max(int((b.h - 6) // (FONT * LINE)), 1))
        text_block(g, lines, b.x + 5, b.y + 4, FONT, FONT * LINE, anchor="start", cls="label")


def _group_artifact(g: etree._Element, shape: Shape) -> None:
    b = shape.bounds
    sub(g, "rect", cls="outline", x=b.x, y=b.y, width=b.w, height=b.h, rx=10, ry=10, fill="none",
        stroke=INK, stroke_width=1.5, stroke_dasharray="10 5 2 5")
    if shape.name:
        if shape.label is not None:
            external_label(g, shape.name, b, shape.label)
        else:
            lines = wrap(shape.name, max(b.w - 20, 10), LABEL_FONT, max_lines=2)
            text_block(g, lines, b.cx, b.y + 5, LABEL_FONT, LABEL_FONT * LINE, cls="label", fill=MUTED)
