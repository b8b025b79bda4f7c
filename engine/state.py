"""The stored state of an instance: SpiffWorkflow's JSON without the process specs, in parts.

A state is stored in parts (format 2, storage/state_parts.py): a head, the workflow and its
subprocesses without their tasks, and one part per task; a command writes the parts that changed
since the workflow was loaded or last saved. A whole state (format 1, as releases before the parts
stored it) loads too. Pruning (engine/prune.py) runs through here, so the live engine and the
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
        """The state in parts (format 2): its head (the workflow and its subprocesses without
        their tasks, listing the task ids of each) and one JSON text per task, by task id."""
        import json

        from storage.state_parts import PARTS_KEY

        inner = self._inner
        inner.registry._encoder_mode = True
        try:
            dct = inner.to_dict(workflow)
            dct[inner.VERSION_KEY] = inner.VERSION
            parts: dict[str, str] = {}
            listing: dict[str, list[str]] = {}
            # A task's dict given again (spiff_state.TigaoTaskConverter: a finished task) has the
            # text it had at the last save.
            texts_before = getattr(workflow, "tigao_texts", None) or {}
            texts: dict[str, tuple[dict[str, Any], str]] = {}
            encoder = inner._encoder_cls
            for owner, holder in [("", dct), *dct.get("subprocesses", {}).items()]:
                tasks = holder.pop("tasks")
                holder["tasks"] = {}
                listing[owner] = list(tasks)
                for task_id, task in tasks.items():
                    seen = texts_before.get(task_id)
                    text = seen[1] if seen is not None and seen[0] is task else json.dumps(task, cls=encoder)
                    parts[task_id] = text
                    texts[task_id] = (task, text)
            dct[PARTS_KEY] = listing
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

        from storage.state_parts import PARTS_KEY

        dct = json.loads(text, cls=self._inner.json_decoder_cls)
        listing = dct.pop(PARTS_KEY, None)
        parts = None
        if listing is not None:  # read from parts: what the database holds, as they were written
            parts = {}
            for owner in listing:
                holder = dct if owner == "" else dct["subprocesses"][owner]
                for task_id, task in holder["tasks"].items():
                    parts[task_id] = json.dumps(task, cls=self._inner._encoder_cls)
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

        dct = json.loads(text, cls=self._inner.json_decoder_cls)
        dct.pop("tigao_parts", None)
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
