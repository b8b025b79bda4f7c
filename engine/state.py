"""The stored state of an instance: SpiffWorkflow's JSON without the process specs, in parts.

A state is stored in parts (format 2, storage/state_parts.py): a head, the top workflow without
its tasks and subprocesses; one part per subprocess, without its tasks; one part per task. A
command writes the parts that changed since the workflow was loaded or last saved. A whole state
(format 1, as releases before the parts stored it) loads too. Pruning (engine/prune.py) runs through here, so the live engine and the
replay cut the tree alike.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .spiff_state import _SPECS, _config


class StateSerializer:
    """JSON state of a workflow, without its specs. FORMAT is stamped on every stored state."""

    FORMAT = 1

    def __init__(self) -> None:
        self._inner = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config()))

    @staticmethod
    def prune(workflow: BpmnWorkflow) -> int:
        """Cut completed work no future step needs from the tree (engine/prune.py)."""
        from .prune import prune

        return prune(workflow)

    def dumps(self, workflow: BpmnWorkflow) -> str:
        return self._inner.serialize_json(workflow)

    def dumps_parts(self, workflow: BpmnWorkflow) -> tuple[str, dict[str, str]]:
        """The state in parts (format 2, storage/state_parts.py): its head (the top workflow
        without its tasks and subprocesses, listing their ids), one JSON text per task, by task
        id, and one per subprocess (without its tasks, listing their ids)."""
        import json

        from storage.state_parts import LAYOUT_KEY, SUB_PREFIX, subprocess_part

        inner = self._inner
        inner.registry._encoder_mode = True
        try:
            dct = inner.to_dict(workflow)
            dct[inner.VERSION_KEY] = inner.VERSION
            parts: dict[str, str] = {}
            # A task's dict given again (spiff_state.TigaoTaskConverter: a finished task) has the
            # text it had at the last save.
            texts_before = getattr(workflow, "tigao_texts", None) or {}
            texts: dict[str, tuple[dict[str, Any], str]] = {}
            encoder = inner._encoder_cls

            def task_parts(holder: dict[str, Any]) -> list[str]:
                tasks = holder.pop("tasks")
                for task_id, task in tasks.items():
                    seen = texts_before.get(task_id)
                    text = seen[1] if seen is not None and seen[0] is task else json.dumps(task, cls=encoder)
                    parts[task_id] = text
                    texts[task_id] = (task, text)
                return list(tasks)

            top = task_parts(dct)
            dct["tasks"] = {}
            subprocesses = dct.get("subprocesses", {})
            for sp_id, sp in subprocesses.items():
                parts[SUB_PREFIX + sp_id] = json.dumps(subprocess_part(sp, task_parts(sp)), cls=encoder)
            dct[LAYOUT_KEY] = {"tasks": top, "subprocesses": list(subprocesses)}
            dct["subprocesses"] = {}
            head = json.dumps(dct, cls=encoder)
        finally:
            inner.registry._encoder_mode = False
        workflow.tigao_texts = texts
        return head, parts

    def store(self, inst: Any, workflow: BpmnWorkflow) -> None:
        """Save `workflow` as the state of `inst` (storage/models.py Instance), writing only the
        parts that changed since it was loaded or last saved (`workflow.tigao_parts`)."""
        import json

        from sqlalchemy.orm.attributes import flag_modified

        from storage.state_parts import FORMAT_PARTS, changes

        head, parts = self.dumps_parts(workflow)
        if inst.state_format == FORMAT_PARTS:
            before = getattr(workflow, "tigao_parts", None)  # None: not known, all are replaced
        else:
            before = {}  # a whole state (or a new instance): no parts stored yet
        todo = changes(before, parts)
        inst.state_head = head
        inst.state_format = FORMAT_PARTS
        if todo is not None:
            inst.state_changes = json.dumps(todo)
            flag_modified(inst, "state_changes")  # even if the same text as the last command's
        workflow.tigao_parts = parts

    def loads(self, text: str, spec: Any, subprocess_specs: dict[str, Any], script_engine: Any) -> BpmnWorkflow:
        import json

        from storage.state_parts import LAYOUT_KEY, PARTS_KEY, SUB_PREFIX, subprocess_part

        dct = json.loads(text, cls=self._inner.json_decoder_cls)
        listing = dct.pop(PARTS_KEY, None)
        layout = dct.pop(LAYOUT_KEY, None)
        parts = None
        encoder = self._inner._encoder_cls
        if listing is not None or layout is not None:  # read from parts: what the database holds
            parts = {}
            for holder in [dct, *dct["subprocesses"].values()]:
                for task_id, task in holder["tasks"].items():
                    parts[task_id] = json.dumps(task, cls=encoder)
            if layout is not None:  # (a head listing every workflow's tasks held no subprocess parts)
                for sp_id, sp in dct["subprocesses"].items():
                    parts[SUB_PREFIX + sp_id] = json.dumps(subprocess_part(sp, list(sp["tasks"])), cls=encoder)
        self._inner.migrate(dct)
        token = _SPECS.set((spec, subprocess_specs))
        try:
            workflow = self._inner.from_dict(dct)
        finally:
            _SPECS.reset(token)
        workflow.script_engine = script_engine
        if parts is not None:
            workflow.tigao_parts = parts
        return workflow

    def data_text(self, data: dict[str, Any]) -> str:
        """Task data as JSON in the state's encoding (dates, decimals and the like as the
        serializer writes them)."""
        import json

        return json.dumps(self._inner.registry.convert(data), cls=self._inner._encoder_cls)

    def data_from_text(self, text: str) -> dict[str, Any]:
        import json

        return dict(self._inner.registry.restore(json.loads(text, cls=self._inner.json_decoder_cls)))

    def task_data(self, text: str, task_id: str) -> dict[str, Any] | None:
        """The data of one task of a stored state, without restoring the workflow: its branch of
        the tree is read from the JSON and the data deltas applied from the root down, as the
        full restore does. None if the state has no such task."""
        import json

        from storage.state_parts import bare

        dct = bare(json.loads(text, cls=self._inner.json_decoder_cls))
        self._inner.migrate(dct)
        registry = self._inner.registry
        for tasks in [dct["tasks"], *(sp["tasks"] for sp in dct.get("subprocesses", {}).values())]:
            if task_id not in tasks:
                continue
            chain = []
            node = tasks.get(task_id)
            while node is not None:
                chain.append(node)
                node = tasks.get(node["parent"]) if node.get("parent") else None
            data: dict[str, Any] = {}
            for node in reversed(chain):
                delta = node.get("delta")
                if delta and node.get("parent") is not None:
                    data = dict(data)
                    data.update(registry.restore(delta.get("updates", {})))
                    for key in delta.get("deletions", []):
                        data.pop(key, None)
                else:
                    data = registry.restore(node["data"])
            return data
        return None
