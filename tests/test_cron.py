"""Quartz cron in timeCycle: timers and timer start events, on the engine's clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine, Worker
from engine.cron import next_after, occurrence, to_croniter
from helpers import assert_roundtrip, open_tasks

TZ8 = timezone(timedelta(hours=8))  # the display time zone of the tests (Asia/Shanghai)


@pytest.mark.parametrize(("quartz", "after", "expected"), [
    ("0 0 9 ? * MON-FRI", datetime(2012, 3, 2, 9, 0, tzinfo=TZ8), datetime(2012, 3, 5, 9, 0, tzinfo=TZ8)),  # Fri -> Mon
    ("0 0 9 ? * 2-6", datetime(2012, 3, 2, 9, 0, tzinfo=TZ8), datetime(2012, 3, 5, 9, 0, tzinfo=TZ8)),  # Quartz 2 = MON
    ("0 0/30 * * * ?", datetime(2012, 3, 2, 9, 10, tzinfo=TZ8), datetime(2012, 3, 2, 9, 30, tzinfo=TZ8)),
    ("0 0 12 L * ?", datetime(2012, 2, 1, tzinfo=TZ8), datetime(2012, 2, 29, 12, 0, tzinfo=TZ8)),
    ("0 0 12 15W * ?", datetime(2012, 9, 1, tzinfo=TZ8), datetime(2012, 9, 14, 12, 0, tzinfo=TZ8)),  # 15th is Sat
    ("0 0 12 ? * 6#3", datetime(2012, 3, 1, tzinfo=TZ8), datetime(2012, 3, 16, 12, 0, tzinfo=TZ8)),  # 3rd Friday
    ("0 0 12 ? * 6L", datetime(2012, 3, 1, tzinfo=TZ8), datetime(2012, 3, 30, 12, 0, tzinfo=TZ8)),  # last Friday
    ("0 0 8 1 1 ? 2014", datetime(2012, 3, 1, tzinfo=TZ8), datetime(2014, 1, 1, 8, 0, tzinfo=TZ8)),
])
def test_next_after__quartz_fields__as_quartz_reads_them(quartz: str, after: datetime, expected: datetime) -> None:
    assert next_after(quartz, after) == expected


def test_occurrence__counts_from_the_anchor_in_any_order() -> None:
    anchor = datetime(2012, 3, 1, 0, 0, tzinfo=TZ8)
    assert occurrence("0 0 9 * * ?", anchor, 2) == datetime(2012, 3, 3, 9, 0, tzinfo=TZ8)
    assert occurrence("0 0 9 * * ?", anchor, 3) == datetime(2012, 3, 4, 9, 0, tzinfo=TZ8)
    assert occurrence("0 0 9 * * ?", anchor, 0) == datetime(2012, 3, 1, 9, 0, tzinfo=TZ8)


@pytest.mark.parametrize(("quartz", "why"), [
    ("0 0 12 LW * ?", "'LW', 'L-n'"),
    ("0 0 12 1 * MON", "either a day of month or a day of week"),
    ("0 0 12 * *", "6 or 7 fields"),
    ("0 0 25 * * ?", "not a cron expression Tigao can run"),
])
def test_to_croniter__what_croniter_cannot_run__says_why(quartz: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        to_croniter(quartz)


def _catch(cycle: str) -> str:
    return bpmn("cron_catch", f"""
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_work" camunda:candidateGroups="staff" />
    <bpmn:boundaryEvent id="Boundary_daily" attachedToRef="Task_work" cancelActivity="false">
      <bpmn:timerEventDefinition id="Timer_1"><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="Task_remind" camunda:candidateGroups="staff" />
    <bpmn:endEvent id="EndEvent_1" /><bpmn:endEvent id="EndEvent_2" />
""" + chain("StartEvent_1", "Task_work", "EndEvent_1") + chain("Boundary_daily", "Task_remind", "EndEvent_2"))


def test_boundary_cycle__quartz_workdays__fires_each_workday_morning(engine: Engine, tmp_path: Path) -> None:
    # T0 is Thursday 2012-03-01 17:00 in Asia/Shanghai.
    engine.deploy([write(tmp_path, "cron_catch.bpmn", _catch("0 0 9 ? * MON-FRI"))])
    iid = engine.start("cron_catch", actor="alice")
    assert engine.instance(iid)["waiting"][0]["due"] == datetime(2012, 3, 2, 1, 0, tzinfo=timezone.utc)
    engine.set_clock(datetime(2012, 3, 6, 12, 0, tzinfo=TZ8))  # Tuesday noon: Fri, Mon and Tue fired
    Worker(engine).run_once()
    assert_roundtrip(engine, iid)
    fired = [e.payload["due_at"] for e in engine.history(iid) if e.type == "timer_fired"]
    assert fired == ["2012-03-02T01:00:00+00:00", "2012-03-05T01:00:00+00:00", "2012-03-06T01:00:00+00:00"]
    assert sorted(t.element_id for t in open_tasks(engine, iid)).count("Task_remind") == 3


def test_deploy__unsupported_quartz__is_refused_naming_the_event(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "cron_bad.bpmn", _catch("0 0 12 LW * ?"))])
    assert info.value.problems[0].element == "Boundary_daily"
    assert "timeCycle" in info.value.problems[0].message


def test_timer_start__quartz__starts_one_instance_per_occurrence(engine: Engine, tmp_path: Path) -> None:
    start = bpmn("cron_start", """
    <bpmn:startEvent id="StartEvent_1"><bpmn:timerEventDefinition id="Timer_1">
      <bpmn:timeCycle xsi:type="bpmn:tFormalExpression">0 0 9 ? * MON-FRI</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:userTask id="Task_daily" camunda:candidateGroups="staff" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_daily", "EndEvent_1"))
    engine.deploy([write(tmp_path, "cron_start.bpmn", start)])
    engine.set_clock(datetime(2012, 3, 7, 10, 0, tzinfo=TZ8))  # Fri, Mon, Tue, Wed at 09:00
    Worker(engine).run_once()
    started = engine.instances(key="cron_start")
    assert len(started) == 4
    dues = sorted(engine.history(i["id"])[0].payload["due_at"] for i in started)
    assert [datetime.fromisoformat(d).astimezone(TZ8).day for d in dues] == [2, 5, 6, 7]
