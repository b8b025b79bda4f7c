"""What the operators' page tests share: a process in two versions, drawn (with BPMN DI), whose
first step is an external task, and a way to put an instance into each situation the pages show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import Engine

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'id="Defs_ops" targetNamespace="http://bpmn.io/schema/bpmn">\n')


def _node(eid: str, kind: str, name: str) -> str:
    if kind == "external":
        return (f'<bpmn:serviceTask id="{eid}" name="{name}" camunda:type="external" camunda:topic="charge"/>\n')
    if kind == "user":
        return f'<bpmn:userTask id="{eid}" name="{name}" camunda:candidateGroups="staff"/>\n'
    return f'<bpmn:{kind} id="{eid}" name="{name}"/>\n'


def line(process: str, name: str, steps: list[tuple[str, str, str]]) -> str:
    """start -> steps -> end, laid out left to right; each step is (id, kind, name)."""
    nodes = [("StartEvent_1", "startEvent", "開始"), *steps, ("EndEvent_1", "endEvent", "結束")]
    body = "".join(_node(*n) for n in nodes)
    flows = "".join(f'<bpmn:sequenceFlow id="Flow_{i}" sourceRef="{a[0]}" targetRef="{b[0]}"/>\n'
                    for i, (a, b) in enumerate(zip(nodes, nodes[1:])))
    shapes, edges, x = [], [], 150
    boxes = {}
    for eid, kind, _ in nodes:
        w, h = (36, 36) if kind.endswith("Event") else (100, 80)
        y = 120 - h / 2
        boxes[eid] = (x, y, w, h)
        shapes.append(f'<bpmndi:BPMNShape id="{eid}_di" bpmnElement="{eid}"><dc:Bounds x="{x}" y="{y:g}" '
                      f'width="{w}" height="{h}"/></bpmndi:BPMNShape>\n')
        x += w + 60
    for i, (a, b) in enumerate(zip(nodes, nodes[1:])):
        ax, _ay, aw, _ah = boxes[a[0]]
        bx = boxes[b[0]][0]
        edges.append(f'<bpmndi:BPMNEdge id="Flow_{i}_di" bpmnElement="Flow_{i}"><di:waypoint x="{ax + aw}" y="120"/>'
                     f'<di:waypoint x="{bx}" y="120"/></bpmndi:BPMNEdge>\n')
    return (HEAD + f'<bpmn:process id="{process}" name="{name}" isExecutable="true">\n' + body + flows
            + '</bpmn:process>\n<bpmndi:BPMNDiagram id="Diagram_1"><bpmndi:BPMNPlane id="Plane_1" '
            f'bpmnElement="{process}">\n' + "".join(shapes) + "".join(edges)
            + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n</bpmn:definitions>\n")


# Version 1 charges by an external worker, then a person reviews; version 2 renames the review.
V1 = line("ops_order", "訂單", [("Task_charge", "external", "扣款"), ("Task_review", "user", "審核訂單")])
V2 = line("ops_order", "訂單", [("Task_charge", "external", "扣款"), ("Task_check", "user", "檢查訂單")])


def deploy(engine: Engine, version: int, actor: str = "ada") -> None:
    """Deploy version 1 or 2 (instances start on the newest: deploy 2 after starting those to move)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ops_order.bpmn").write_text((V1, V2)[version - 1], encoding="utf-8")
        [result] = engine.deploy([tmp], actor=actor)
    assert result.version == version


def _lock(engine: Engine, iid: int, ms: int = 600_000) -> dict[str, Any]:
    """Worker pay-1 fetches and locks the external task of instance `iid` (and no other)."""
    key = engine.instance(iid)["business_key"]
    [row] = engine.fetch_and_lock("pay-1", [{"topic": "charge", "lock_duration": ms, "business_key": key}],
                                  max_tasks=10)
    return row


def at_charge(engine: Engine, locked: bool = False) -> int:
    """An instance of version 1 waiting at its external task (locked by worker pay-1 if asked)."""
    from uuid import uuid4

    iid = engine.start("ops_order", {"amount": 120}, actor="alice", business_key=f"order-{uuid4().hex[:8]}")
    if locked:
        _lock(engine, iid)
    return iid


def at_review(engine: Engine) -> int:
    """An instance of version 1 whose external task is done: it waits at Task_review."""
    iid = at_charge(engine)
    engine.complete_external(_lock(engine, iid)["id"], "pay-1", {"paid": True})
    return iid


def with_incident(engine: Engine) -> tuple[int, dict[str, Any]]:
    """An instance whose external task failed with no retries left: one open incident."""
    iid = at_charge(engine)
    engine.external_failure(_lock(engine, iid)["id"], "pay-1", "the payment gateway is down", retries=0)
    inc = next(i for i in engine.incidents(instance_id=iid))
    return iid, inc
