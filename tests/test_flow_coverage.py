"""Every sequence flow of every campaign diagram (processes/*.bpmn) is taken by at least one test.

The campaign tests (tests/test_campaign.py) and the demo (tests/test_demo.py) record, from the
stored state of every instance they ran, the sequence flows their tokens went along
(campaign_support.record_flows). This module runs after them (pytest runs test files in name
order) and fails on any flow never taken. Run alone, it first runs on SQLite every campaign
scenario the session has not run, so it never passes for lack of data.
"""

from __future__ import annotations

from pathlib import Path

from campaign_support import RAN, SCENARIOS, TAKEN, all_flows, flow_index, run_scenario
from engine import Engine


def test_flow_index__holds_every_sequence_flow_once() -> None:
    index = flow_index()
    flows = all_flows()
    assert len(flows) == len(index)
    files = {name for name, _ in flows}
    assert files == {p.name for p in (Path(__file__).resolve().parent.parent / "processes").glob("*.bpmn")}
    # Flows inside embedded sub-processes are keyed by the sub-process, where SpiffWorkflow runs them.
    assert ("SubProcess_self_check", "Task_self_check", "Gateway_self_problem") in index


def test_every_sequence_flow_of_every_campaign_diagram_is_taken(tmp_path: Path) -> None:
    for name in sorted(set(SCENARIOS) - RAN):
        url = str(tmp_path / f"{name}.db")
        Engine(url).init()
        run_scenario(name, url, tmp_path)
    missing = sorted(all_flows() - TAKEN)
    assert not missing, "sequence flows no test takes: " + ", ".join(f"{f}:{flow}" for f, flow in missing)
