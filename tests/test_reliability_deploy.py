"""Deployment reads only what it was given, and large diagrams deploy and run.

No link out of a deployed folder, only regular files (a FIFO named x.bpmn is refused, never
waited on), sizes checked before reading; a linear diagram of 5,000 elements validates, deploys,
starts, runs and replays without hitting Python's recursion limit.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import BPMN, ORG
from engine import Engine
from engine.audit import Auditor
from engine.bundles import read_bundle
from engine.errors import DefinitionError


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    (folder / "forms").mkdir(parents=True)
    shutil.copy(BPMN / "user_task.bpmn", folder)
    shutil.copy(BPMN / "forms" / "simple.json", folder / "forms")
    return folder


def _problems(paths: list[Path]) -> str:
    with pytest.raises(DefinitionError) as info:
        read_bundle(paths)
    return "\n".join(str(p) for p in info.value.problems)


def test_folder__link_to_a_file_outside__refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "object"}')
    (folder / "forms" / "stolen.json").symlink_to(secret)
    assert "outside the folder" in _problems([folder])
    (folder / "forms" / "stolen.json").unlink()
    (folder / "inside.json").symlink_to(folder / "forms" / "simple.json")  # a link within is fine
    assert "forms/inside.json" in read_bundle([folder]).files


def test_folder__forms_folder_linked_outside__refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.move(str(folder / "forms"), outside)
    (folder / "forms").symlink_to(outside, target_is_directory=True)
    assert "outside the folder" in _problems([folder])


def test_folder__fifo_named_bpmn__refused_without_waiting(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / "x.bpmn")  # opening it for reading would wait for a writer forever
    assert "x.bpmn: is not a regular file" in _problems([folder])
    assert "not a regular file" in _problems([folder / "x.bpmn"])


def test_folder__a_folder_named_bpmn__refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "odd.bpmn").mkdir()
    assert "odd.bpmn: is not a regular file" in _problems([folder])


def test_oversize_file__refused_from_its_size_before_reading(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    with open(folder / "huge.bpmn", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: reading it would be slow, its size is not
    assert "huge.bpmn: file is 52,428,800 bytes; the limit is" in _problems([folder])


def linear(n: int) -> str:
    """A process of `n` user tasks in a row (2n + 3 elements with the flows), all alice's."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_long" '
            'targetNamespace="http://bpmn.io/schema/bpmn">\n<bpmn:process id="long" isExecutable="true">\n'
            '<bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F0</bpmn:outgoing></bpmn:startEvent>\n')
    tasks = [f'<bpmn:userTask id="T{i}" name="Step {i}" camunda:assignee="alice"><bpmn:incoming>F{i}'
             f'</bpmn:incoming><bpmn:outgoing>F{i + 1}</bpmn:outgoing></bpmn:userTask>' for i in range(n)]
    flows = [f'<bpmn:sequenceFlow id="F{i}" sourceRef="{"StartEvent_1" if i == 0 else f"T{i - 1}"}" '
             f'targetRef="{f"T{i}" if i < n else "EndEvent_1"}" />' for i in range(n + 1)]
    tail = (f'<bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F{n}</bpmn:incoming></bpmn:endEvent>\n'
            '</bpmn:process>\n</bpmn:definitions>\n')
    return head + "\n".join(tasks + flows) + "\n" + tail


@pytest.mark.slow
def test_linear_diagram_of_5000_elements__validates_deploys_runs_and_replays(tmp_path: Path) -> None:
    assert sys.getrecursionlimit() <= 1000  # the default: nothing raised it to make this pass
    f = tmp_path / "long.bpmn"
    f.write_text(linear(2500))
    url = str(tmp_path / "t.db")
    eng = Engine(url)
    eng.init()
    eng.load_directory(ORG)
    assert "long" in eng.validate([f]).processes
    assert eng.deploy([f])[0].created
    iid = eng.start("long", actor="alice")
    for _ in range(3):
        eng.complete(eng.tasks(user="alice", instance_id=iid)[0].id, "alice", {})
    assert eng.tasks(user="alice", instance_id=iid)[0].element_id == "T3"
    fresh = Engine(url)  # another process: the spec is built again from the stored files
    assert fresh.instance(iid)["status"] == "running"
    assert Auditor(fresh).verify([iid]) == (1, [])
