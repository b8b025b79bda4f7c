"""The report dashboard's charts, drawn by the server from the campaign report (web/charts.py)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from engine.timeutil import parse_datetime

from .. import charts as ch
from .common import Page


def charts(report: dict[str, Any], page: Page) -> dict[str, Markup]:
    """SVG charts for report.html: phases, on-time rate, escalations, scores, complaints."""
    from campaign.complaints import complaint_breakdown

    _ = page._
    empty = _("No data")
    window = report.get("window") or {}
    lo = parse_datetime(window["from"]) if window.get("from") else None
    hi = parse_datetime(window["to"]) if window.get("to") else None
    breakdown = complaint_breakdown(page.engine, lo, hi)
    phases = [(p["name"], [(_("done"), p["done"]), (_("open"), p["open"])]) for p in report.get("phases", [])]
    on_time = [(d["name"], round((d["on_time_rate"] or 0) * 100, 1)) for d in report.get("departments", [])
               if d.get("on_time_rate") is not None]
    esc = report.get("escalations") or {}
    levels = [(_("overdue"), esc.get("overdue", 0)), (_("to the leader"), esc.get("level1", 0)),
              (_("to the office"), esc.get("level2", 0))]
    names = {d["id"]: d["name"] for d in report.get("departments", [])}
    scores = [(names.get(k, k), v) for k, v in ((report.get("evaluation") or {}).get("scores") or {}).items()
              if v is not None]
    out = {
        "phases": ch.stacked_bar_chart(phases, colors=["#4e9a5b", "#e08a3c"], empty_text=empty),
        "on_time": ch.bar_chart(sorted(on_time, key=lambda x: -x[1]), unit="%", empty_text=empty),
        "escalations": ch.bar_chart(levels, color="#c9504c", empty_text=empty),
        "scores": ch.bar_chart(sorted(scores, key=lambda x: -x[1]), color="#8067b7", empty_text=empty),
        "categories": ch.bar_chart(breakdown["by_category"], color="#3b6fb6", empty_text=empty),
        "months": ch.line_chart(breakdown["by_month"], empty_text=empty) if breakdown["by_month"]
        else ch.bar_chart([], empty_text=empty),
    }
    return {k: Markup(v) for k, v in out.items()}
