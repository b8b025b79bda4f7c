"""Diagrams on pages: an instance with its markers, a definition version, a diff on the newer version."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from engine.inspection import ElementState, element_states, instance_picture

from ..diagram import Marker, render_svg
from ..diagram._words import THIS_TASK
from .vocabulary import LEGEND_WORDS


class Legend(dict[str, str]):
    """The legend's words in the page's language, carrying the page's translation, which the
    diagram's tooltips go through as well."""

    def __init__(self, words: dict[str, str], translate: Any):
        super().__init__(words)
        self.translate = translate


def _markers(states: dict[str, ElementState], focus: str | None = None, words: Any = None) -> dict[str, Marker]:
    out = {}
    for element, st in states.items():
        note = None
        if focus and element == focus:
            note = (words or str)(THIS_TASK)
        out[element] = Marker(st.state, count=st.count if st.count != 1 else None, waiting_for=st.waiting_for,
                              note=note)
    return out


def _safe_render(xml: str | None, **kw: Any) -> Markup:
    if not xml:
        return Markup('<p class="muted">(no diagram)</p>')
    labels = kw.get("legend_labels")
    kw.setdefault("words", getattr(labels, "translate", None))
    try:
        return Markup(render_svg(xml, **kw))
    except Exception as exc:  # noqa: BLE001 - a drawing problem never breaks the page around it
        from markupsafe import escape

        return Markup(f'<p class="muted">(the diagram could not be drawn: {escape(str(exc)[:200])})</p>')


def legend(translate: Any) -> Legend:
    """The legend's words in the page's language (the words are in vocabulary.py); the diagram's
    tooltips are translated with the same `translate`."""
    return Legend({k: translate(k) for k in LEGEND_WORDS}, translate)


def instance_svg(engine: Any, instance_id: int, focus: str | None = None, labels: dict[str, str] | None = None
                 ) -> Markup:
    pic = instance_picture(engine, instance_id)
    xml = pic.files.get(pic.main_file) if pic.main_file else None
    markers = _markers(pic.states, focus, getattr(labels, "translate", None))
    return _safe_render(xml, process_id=pic.process_key, markers=markers, legend_labels=labels)


def states_svg(files: dict[str, str], main_file: str | None, process_key: str, wf: Any,
               labels: dict[str, str] | None = None) -> Markup:
    """A diagram with the markers of a workflow object (a replayed step)."""
    xml = files.get(main_file) if main_file else None
    return _safe_render(xml, process_id=process_key, markers=_markers(element_states(wf)), legend_labels=labels)


def definition_svg(files: dict[str, str], main_file: str | None, process_key: str,
                   highlight: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Markup:
    xml = files.get(main_file) if main_file else None
    return _safe_render(xml, process_id=process_key, highlight=highlight, legend_labels=labels)
