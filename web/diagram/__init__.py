"""BPMN 2.0 diagrams drawn by the server as SVG, from their BPMN DI, with run-time markers.

    from web.diagram import Marker, render_svg
    svg = render_svg(xml, markers={"Task_review": Marker("active", count=3)})
    svg = render_svg(xml, markers=instance_markers(engine.instance(instance_id)))

The SVG needs no JavaScript and no CSS: pages inline it, an exported report embeds it.
"""

from ._instance import instance_markers
from ._overlay import HIGHLIGHT_KINDS, MARKER_STATES, WAIT_KINDS, Marker
from ._render import render_svg

__all__ = ["HIGHLIGHT_KINDS", "MARKER_STATES", "WAIT_KINDS", "Marker", "instance_markers", "render_svg"]
