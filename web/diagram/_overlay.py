"""Run-time markers (completed, active, waiting, cancelled, failed) and diff highlights drawn
over a diagram, and the small legend that explains the colours used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.errors import InputError

from .._svg import sub, text_block, text_width
from ._icons import WHITE, event_icon
from ._model import Shape
from ._words import STATE_FOR, STATES, WAITING_FOR, Words, say

MARKER_STATES = ("completed", "active", "waiting", "cancelled", "failed")
HIGHLIGHT_KINDS = ("added", "changed", "removed")
COLORS = {
    "completed": "#2e8540", "active": "#1a66cc", "waiting": "#c76d00", "cancelled": "#7a7f87",
    "failed": "#cc2929", "added": "#2e8540", "changed": "#d98200", "removed": "#cc2929",
}
LEGEND_TEXT = {
    "completed": "completed", "active": "active", "waiting": "waiting", "cancelled": "cancelled",
    "failed": "failed", "added": "added", "changed": "changed", "removed": "removed",
}
WAIT_KINDS = ("timer", "message", "signal", "conditional", "escalation", "error")


@dataclass(frozen=True)
class Marker:
    """The run-time state of one element, drawn over the diagram.

    Attributes:
        state: one of ``completed``, ``active``, ``waiting``, ``cancelled``, ``failed``.
        count: how many tokens are there (shown in the badge; ``active`` with several tokens).
        waiting_for: what a ``waiting`` element waits for: ``timer``, ``message``, ``signal``...
        note: a line added to the element's tooltip (a due time, an error message).
    """

    state: str
    count: int | None = None
    waiting_for: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.state not in MARKER_STATES:
            raise InputError(f"unknown marker state '{self.state}'; use one of {', '.join(MARKER_STATES)}")
        if self.waiting_for is not None and self.waiting_for not in WAIT_KINDS:
            raise InputError(f"unknown waiting kind '{self.waiting_for}'; use one of {', '.join(WAIT_KINDS)}")
        if self.count is not None and self.count < 0:
            raise InputError("a marker's count cannot be negative")

    def describe(self, words: Words | None = None) -> str:
        """The marker in words, for the tooltip (through `words`, a translation, when given)."""
        text = say(words, STATES[self.state])
        if self.waiting_for:
            text = say(words, STATE_FOR, state=text, what=say(words, WAITING_FOR[self.waiting_for]))
        if self.count is not None and self.count != 1:
            text += f" ({self.count})"
        if self.note:
            text += f": {self.note}"
        return text


def as_marker(value: Marker | str) -> Marker:
    """Accept a bare state name where a Marker is expected."""
    return value if isinstance(value, Marker) else Marker(str(value))


def _outline(g: etree._Element, shape: Shape, pad: float, **attrs: Any) -> None:
    b = shape.bounds
    kind = shape.kind
    if kind.endswith("Event"):
        sub(g, "circle", cx=b.cx, cy=b.cy, r=min(b.w, b.h) / 2 + pad, **attrs)
    elif kind.endswith("Gateway"):
        sub(g, "polygon", points=f"{b.cx:g},{b.y - pad * 1.4:g} {b.x + b.w + pad * 1.4:g},{b.cy:g} "
                                       f"{b.cx:g},{b.y + b.h + pad * 1.4:g} {b.x - pad * 1.4:g},{b.cy:g}", **attrs)
    else:
        sub(g, "rect", x=b.x - pad, y=b.y - pad, width=b.w + 2 * pad, height=b.h + 2 * pad,
                  rx=12 if kind not in ("participant", "lane") else 2, **attrs)


def draw_highlight(layer: etree._Element, shape: Shape, kind: str) -> None:
    """A tinted, coloured outline around a shape (diff: added, changed, removed)."""
    color = COLORS[kind]
    g = sub(layer, "g", cls=f"highlight highlight-{kind}", data_element_id=shape.id)
    _outline(g, shape, 5, fill=color, fill_opacity=0.08, stroke=color, stroke_width=3,
             stroke_dasharray="6 4" if kind == "removed" else None)


def draw_marker(layer: etree._Element, shape: Shape, marker: Marker) -> None:
    """A coloured outline and a badge at the top right of the shape."""
    color = COLORS[marker.state]
    b = shape.bounds
    g = sub(layer, "g", cls=f"marker marker-{marker.state}", data_element_id=shape.id,
                  data_state=marker.state, data_count=marker.count)
    _outline(g, shape, 3.5, fill="none", stroke=color, stroke_width=2.5,
             stroke_dasharray="5 3" if marker.state == "cancelled" else None)
    round_shape = shape.kind.endswith("Event") or shape.kind.endswith("Gateway")
    bx, by = (b.x + b.w - 2, b.y + 2) if round_shape else (b.x + b.w - 3, b.y + 3)
    badge(g, marker, bx, by)


def badge(g: etree._Element, marker: Marker, cx: float, cy: float) -> None:
    """The round badge of a marker: a count, or a symbol for the state."""
    color = COLORS[marker.state]
    count = marker.count if marker.count is not None and (marker.count != 1 or marker.state == "active") else None
    if count is not None:
        label = str(count) if count < 1000 else "999+"
        w = max(18.0, text_width(label, 11) + 10)
        sub(g, "rect", cls="badge", x=cx - w / 2, y=cy - 9, width=w, height=18, rx=9, fill=color,
                  stroke=WHITE, stroke_width=1.5)
        text_block(g, [label], cx, cy - 8, 11, 16, fill=WHITE, font_weight="bold")
        return
    sub(g, "circle", cls="badge", cx=cx, cy=cy, r=9, fill=color, stroke=WHITE, stroke_width=1.5)
    state = marker.state
    if state == "completed":
        sub(g, "polyline", points=f"{cx - 4:g},{cy:g} {cx - 1:g},{cy + 3.5:g} {cx + 4.5:g},{cy - 3.5:g}",
                  fill="none", stroke=WHITE, stroke_width=2, stroke_linecap="round", stroke_linejoin="round")
    elif state == "active":
        sub(g, "circle", cx=cx, cy=cy, r=3.5, fill=WHITE)
    elif state == "waiting":
        kind = marker.waiting_for or "timer"
        event_icon(g, kind, cx, cy, 19, filled=False)
    elif state == "cancelled":
        sub(g, "path", d=f"M{cx - 3.5:g} {cy - 3.5:g} L{cx + 3.5:g} {cy + 3.5:g} M{cx + 3.5:g} "
                               f"{cy - 3.5:g} L{cx - 3.5:g} {cy + 3.5:g}",
                  stroke=WHITE, stroke_width=2, stroke_linecap="round")
    elif state == "failed":
        sub(g, "path", d=f"M{cx:g} {cy - 5:g} V{cy + 1:g}", stroke=WHITE, stroke_width=2.2,
                  stroke_linecap="round")
        sub(g, "circle", cx=cx, cy=cy + 4.2, r=1.3, fill=WHITE)


def legend_height() -> float:
    """The height the legend takes below the diagram."""
    return 28.0


def draw_legend(parent: etree._Element, x: float, y: float, states: list[str], highlights: list[str],
                labels: dict[str, str]) -> float:
    """Draw the legend entries left to right from (x, y); returns the width used."""
    g = sub(parent, "g", cls="legend")
    cursor = x
    for key in [s for s in MARKER_STATES if s in states] + [h for h in HIGHLIGHT_KINDS if h in highlights]:
        color = COLORS[key]
        item = sub(g, "g", cls=f"legend-item legend-{key}")
        if key in MARKER_STATES:
            sub(item, "rect", x=cursor, y=y + 4, width=22, height=16, rx=4, fill=WHITE, stroke=color,
                      stroke_width=2.2, stroke_dasharray="4 2" if key == "cancelled" else None)
            badge(item, Marker(key), cursor + 22, y + 5)
        else:
            sub(item, "rect", x=cursor, y=y + 4, width=22, height=16, rx=4, fill=color,
                      fill_opacity=0.08, stroke=color, stroke_width=2.5,
                      stroke_dasharray="4 2" if key == "removed" else None)
        text = labels.get(key, LEGEND_TEXT[key])
        text_block(item, [text], cursor + 38, y + 4, 12, 16, anchor="start")
        cursor += 38 + text_width(text, 12) + 22
    return cursor - x
