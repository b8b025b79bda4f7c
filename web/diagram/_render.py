"""Assemble a whole diagram: layers in drawing order, markers, highlights, legend, title and a
viewBox fitted to the content."""

from __future__ import annotations

from collections.abc import Mapping

from engine.errors import InputError

from .._svg import INK, MUTED, new_svg, serialize, sub, text_block, text_width, wrap
from ._edges import draw_edge
from ._model import CONTAINER_KINDS, Bounds, Diagram, Edge, Shape, load
from ._overlay import (
    COLORS,
    HIGHLIGHT_KINDS,
    Marker,
    as_marker,
    draw_highlight,
    draw_legend,
    draw_marker,
    legend_height,
)
from ._shapes import draw_shape, type_label
from ._words import CONDITIONAL_EDGES, DEFAULT_EDGES, DIAGRAM, EDGES, NO_LAYOUT, NOTHING, STATES, Words, say

MARGIN = 20.0
TITLE_SIZE = 15.0


def _order(shape: Shape) -> tuple[int, int]:
    """Drawing layer: pools, lanes, groups, open sub-processes (outer first), then the rest,
    boundary events last so they sit on their host's border."""
    if shape.kind == "participant":
        return (0, 0)
    if shape.kind == "lane":
        return (1, shape.depth)
    if shape.kind == "group":
        return (2, 0)
    if shape.kind in CONTAINER_KINDS and shape.expanded:
        return (3, shape.depth)
    if shape.kind == "boundaryEvent":
        return (6, 0)
    return (5, 0)


def _extent(diagram: Diagram) -> Bounds | None:
    xs: list[float] = []
    ys: list[float] = []
    for shape in diagram.shapes:
        b = shape.bounds
        xs += [b.x, b.x + b.w]
        ys += [b.y, b.y + b.h]
        if shape.label is not None:
            xs += [shape.label.x - 6, shape.label.x + shape.label.w + 6]
            ys += [shape.label.y, shape.label.y + shape.label.h + 4]
        elif shape.name and (shape.kind.endswith("Event") or shape.kind.endswith("Gateway")
                             or shape.kind.startswith("data")):
            lines = wrap(shape.name, 90, 11, max_lines=4)
            xs += [b.cx - 48, b.cx + 48]
            ys += [b.y + b.h + 8 + len(lines) * 14]
    for edge in diagram.edges:
        xs += [p[0] for p in edge.points]
        ys += [p[1] for p in edge.points]
        if edge.label is not None:
            xs += [edge.label.x - 6, edge.label.x + edge.label.w + 6]
            ys += [edge.label.y, edge.label.y + edge.label.h + 4]
    if not xs:
        return None
    return Bounds(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _tooltip(name: str, kind: str, marker: Marker | None, change: str | None, words: Words | None = None) -> str:
    parts = [name.replace("\n", " ")] if name else []
    parts.append(kind)
    if marker is not None:
        parts.append(marker.describe(words))
    if change is not None:
        parts.append(say(words, STATES[change]))
    return " · ".join(parts)


def _edge_type(edge: Edge, words: Words | None = None) -> str:
    if edge.is_default:
        table = DEFAULT_EDGES
    elif edge.is_conditional:
        table = CONDITIONAL_EDGES
    else:
        table = EDGES
    if edge.kind in table:
        return say(words, table[edge.kind])
    text = EDGES.get(edge.kind, edge.kind)
    if edge.is_default:
        return "Default " + text.lower()
    if edge.is_conditional:
        return "Conditional " + text.lower()
    return text


def render_svg(bpmn_xml: str, *, process_id: str | None = None,
               markers: Mapping[str, Marker | str] | None = None,
               highlight: Mapping[str, str] | None = None, title: str | None = None,
               legend_labels: Mapping[str, str] | None = None, legend: bool = True,
               words: Words | None = None) -> str:
    """Draw a BPMN 2.0 diagram from its BPMN DI as a standalone SVG document.

    Args:
        bpmn_xml: the BPMN file's text (parsed with DOCTYPE and entities refused).
        process_id: draw only this process (its pool, lanes and elements); all of them if None.
            The id of a collapsed sub-process whose content has a plane of its own draws that plane.
        markers: element id -> run-time state (a ``Marker`` or a bare state name).
        highlight: element id -> ``added`` / ``changed`` / ``removed`` (a diff on this diagram).
        title: a heading drawn above the diagram (and the SVG's own <title>).
        legend_labels: the legend's words per state or highlight kind (translated by the page).
        legend: whether to draw the legend for the markers and highlights used.
        words: a translation (gettext) for the tooltips' and messages' own words (element kinds,
            states); the English words are in ``_words.py``. Labels from the diagram stay as they are.

    Returns:
        An ``<svg>`` element as text: viewBox fitted to the content, one ``<g>`` per element with
        ``data-element-id``, a ``<title>`` tooltip each, no script.

    Raises:
        DefinitionError: the text is not well-formed XML or declares a DOCTYPE or entities.
        InputError: an unknown process id, marker state or highlight kind.
    """
    marks = {k: as_marker(v) for k, v in (markers or {}).items()}
    lights = dict(highlight or {})
    for key, kind in lights.items():
        if kind not in HIGHLIGHT_KINDS:
            raise InputError(f"unknown highlight '{kind}' for '{key}'; use one of {', '.join(HIGHLIGHT_KINDS)}")
    diagram = load(bpmn_xml, process_id)
    extent = _extent(diagram)
    if extent is None:
        return _empty(title, say(words, NO_LAYOUT if not diagram.has_di else NOTHING))
    drawn = {s.id for s in diagram.shapes} | {e.id for e in diagram.edges}
    used_states = sorted({m.state for k, m in marks.items() if k in drawn})
    used_lights = sorted({v for k, v in lights.items() if k in drawn})
    show_legend = legend and bool(used_states or used_lights)
    top = extent.y - MARGIN - (TITLE_SIZE * 2 if title else 0)
    left = extent.x - MARGIN
    width = extent.w + 2 * MARGIN
    height = extent.y + extent.h + MARGIN - top + (legend_height() if show_legend else 0)
    root = new_svg(width, height, left, top, cls="tigao-bpmn", role="img",
                   aria_label=title or say(words, DIAGRAM))
    sub(root, "title", title or say(words, DIAGRAM))
    sub(root, "rect", cls="background", x=left, y=top, width=width, height=height, fill="#ffffff")
    if title:
        text_block(root, [title], left + MARGIN, top + MARGIN * 0.6, TITLE_SIZE, TITLE_SIZE * 1.3,
                   anchor="start", font_weight="bold", cls="diagram-title")

    shapes_layer = sub(root, "g", cls="layer-containers")
    edges_layer = sub(root, "g", cls="layer-edges")
    nodes_layer = sub(root, "g", cls="layer-shapes")
    labels_layer = sub(root, "g", cls="layer-labels")
    overlay = sub(root, "g", cls="layer-overlay")
    ordered = sorted(diagram.shapes, key=_order)
    for shape in ordered:
        layer = shapes_layer if _order(shape)[0] < 5 else nodes_layer
        tip = _tooltip(shape.name, type_label(shape, words), marks.get(shape.id), lights.get(shape.id), words)
        draw_shape(layer, shape, tip)
    for edge in diagram.edges:
        mark = marks.get(edge.id)
        change = lights.get(edge.id)
        color = COLORS[mark.state] if mark else COLORS[change] if change else INK
        draw_edge(edges_layer, edge, _tooltip(edge.name, _edge_type(edge, words), mark, change, words), color=color,
                  width=2.5 if (mark or change) else 1.5, labels=labels_layer)
    for shape in ordered:
        if shape.id in lights:
            draw_highlight(overlay, shape, lights[shape.id])
    for shape in ordered:
        if shape.id in marks:
            draw_marker(overlay, shape, marks[shape.id])
    if show_legend:
        draw_legend(root, left + MARGIN, extent.y + extent.h + MARGIN * 0.5, used_states, used_lights,
                    dict(legend_labels) if legend_labels else
                    {k: say(words, v) for k, v in STATES.items()} if words else {})
    return serialize(root)


def _empty(title: str | None, message: str) -> str:
    width = max(360.0, text_width(message, 13) + 40, text_width(title or "", TITLE_SIZE) + 40)
    root = new_svg(width, 80, cls="tigao-bpmn tigao-bpmn-empty", role="img", aria_label=title or message)
    sub(root, "title", title or message)
    sub(root, "rect", x=0.5, y=0.5, width=width - 1, height=79, rx=6, fill="#ffffff", stroke="#c9ccd2",
        stroke_dasharray="4 3")
    if title:
        text_block(root, [title], 20, 12, TITLE_SIZE, 20, anchor="start", font_weight="bold")
    text_block(root, [message], 20, 44 if title else 32, 13, 18, anchor="start", fill=MUTED)
    return serialize(root)
