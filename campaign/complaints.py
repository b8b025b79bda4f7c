"""Complaints by problem category and by month, for the report dashboard.

Counted from the history alone: a complaint is a `complaint` instance started in the window (by
month of its start in the display time zone); its category is the one registered on the
registration task (`Task_register_complaint`, field `category`, one of the plan's six problems).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.core import Engine
from engine.timeutil import display_tz
from storage.models import Event, Instance

CATEGORIES = {1: "服務態度差", 2: "大局觀念薄", 3: "行政慢作為", 4: "行政不作為", 5: "行政亂作為", 6: "利益個人化"}
REGISTER = "Task_register_complaint"


def complaint_breakdown(engine: Engine, lo: datetime | None = None, hi: datetime | None = None) -> dict[str, Any]:
    """{"by_category": [(label, n)], "by_month": [("2012-03", n)], "total": n} for complaints started in [lo, hi]."""
    tz = display_tz()
    with engine._tx() as s:
        q = select(Instance.id, Instance.started_at).where(Instance.process_key == "complaint")
        if lo is not None:
            q = q.where(Instance.started_at >= lo)
        if hi is not None:
            q = q.where(Instance.started_at <= hi)
        started = dict(s.execute(q).all())
        cats: dict[int, Any] = {}
        if started:
            rows = s.execute(select(Event.instance_id, Event.payload).where(
                Event.type == "task_completed", Event.element_id == REGISTER,
                Event.instance_id.in_(list(started))))
            for iid, payload in rows:
                cats[iid] = ((payload or {}).get("data") or {}).get("category")
    months = Counter(at.astimezone(tz).strftime("%Y-%m") for at in started.values())
    by_cat = Counter(cats.values())
    return {
        "total": len(started),
        "by_month": sorted(months.items()),
        "by_category": [(f"{k}. {v}", by_cat.get(k, 0)) for k, v in CATEGORIES.items()]
        + ([("not yet registered", len(started) - len(cats))] if len(started) > len(cats) else []),
    }
