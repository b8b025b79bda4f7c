"""Small Camunda-style diagrams written by the tests: a process body wrapped in a BPMN file."""

from __future__ import annotations

from pathlib import Path

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_{key}" '
        'targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler" exporterVersion="5.20.0">\n')


def bpmn(key: str, body: str, extra: str = "", executable: bool = True) -> str:
    """A BPMN file with one process `key` holding `body` (and `extra` at definitions level)."""
    flag = "true" if executable else "false"
    return (HEAD.format(key=key) + extra
            + f'  <bpmn:process id="{key}" isExecutable="{flag}">\n{body}\n  </bpmn:process>\n'
            + "</bpmn:definitions>\n")


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def chain(*nodes: str) -> str:
    """Sequence flows joining the element ids in order: Flow_a_b from a to b."""
    return "\n".join(f'    <bpmn:sequenceFlow id="Flow_{a}_{b}" sourceRef="{a}" targetRef="{b}" />'
                     for a, b in zip(nodes, nodes[1:]))
