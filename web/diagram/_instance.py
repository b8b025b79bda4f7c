"""Markers for one process instance: the element states engine/inspection.py computes, drawn.

``instance_markers`` takes what ``Engine.instance()`` reports (its human tasks and the events it
waits on); ``markers_from_states`` takes any states of ``engine.inspection`` (a workflow's
task tree, a replayed step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.inspection import ElementState, view_states, wait_kind

from ._overlay import Marker

__all__ = ["instance_markers", "markers_from_states", "wait_kind"]


def markers_from_states(states: Mapping[str, ElementState]) -> dict[str, Marker]:
    """Element id -> Marker for ``render_svg``; a count of 1 is not shown, a due time is noted."""
    out: dict[str, Marker] = {}
    for element, st in states.items():
        due = st.due
        note = f"due {due.isoformat() if hasattr(due, 'isoformat') else due}" if due else None
        out[element] = Marker(st.state, count=st.count if st.count != 1 else None, waiting_for=st.waiting_for,
                              note=note)
    return out


def instance_markers(instance: Mapping[str, Any]) -> dict[str, Marker]:
    """Element id -> Marker for ``render_svg``, from ``Engine.instance(id)`` (see ``view_states``)."""
    return markers_from_states(view_states(instance))
