"""Moving a running workflow to another version, and an administrator's changes to one.

Each function here changes a SpiffWorkflow workflow in memory and nothing else; the engine calls
it inside a command's transaction and records the input as a history event, and replay calls the
same function with the recorded input, so a migrated or modified instance still replays to the
state that is stored (DESIGN.md: one code path applies an input, live and in replay).

Migration aligns every task of the instance (top process and every running subprocess) with the
element of the same id in the new version, or with the one `mapping` names. A task that is still
in progress (ready, waiting, started) without a counterpart makes the migration refused before
anything changes. Finished tasks without a counterpart leave the live tree (the history keeps
them); predicted tasks are predicted again from the new version.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from .errors import InputError

LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
SPLIT = ".BoundaryEventSplit"  # SpiffWorkflow's parent of an activity with boundary events
PENDING = TaskState.PREDICTED_MASK | TaskState.FUTURE  # not reached yet: predicted again after a move


def _workflows(wf: Any) -> list[Any]:
    """The top workflow and every running subprocess (call activities included)."""
    return [wf, *(sp for sp in wf.subprocesses.values() if not sp.completed)]


def _label(task: Any) -> str:
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) or spec.name


def _is_element(spec: Any) -> bool:
    """A BPMN element a person can name (not one of SpiffWorkflow's internal specs)."""
    return bool(getattr(spec, "bpmn_id", None)) and not spec.name.endswith((".EndJoin", "BoundaryEventSplit",
                                                                            "BoundaryEventJoin"))


def waiting_elements(wf: Any) -> list[str]:
    """The element ids where the instance has work in progress, sorted, each once."""
    return sorted({_label(t) for w in _workflows(wf) for t in w.get_tasks(state=LIVE, skip_subprocesses=True)})


def check_migration(wf: Any, new_spec: Any, new_subs: dict[str, Any], mapping: dict[str, str]) -> list[str]:
    """Why `wf` cannot move to the new version (empty when it can), without changing it."""
    problems: list[str] = []
    for w in _workflows(wf):
        target = new_spec if w is wf else new_subs.get(w.spec.name)
        live = w.get_tasks(state=LIVE, skip_subprocesses=True)
        if target is None:
            if live:
                problems.append(f"subprocess '{w.spec.name}' (at {', '.join(sorted({_label(t) for t in live}))}) "
                                "does not exist in the new version")
            continue
        for t in live:
            name = mapping.get(t.task_spec.name, t.task_spec.name)
            if name not in target.task_specs:
                problems.append(f"'{_label(t)}' is {TaskState.get_name(t.state).lower()} and the new version has "
                                f"no element '{name}'" + ("" if t.task_spec.name in mapping
                                                          else f"; map it with --map {_label(t)}=NEW_ID"))
            elif f"{name}{SPLIT}" in target.task_specs and not (t.parent is not None
                                                                and t.parent.task_spec.name.endswith(SPLIT)):
                # Its boundary events would never be created, and the end of the activity would
                # wait for them forever.
                problems.append(f"'{name}' has boundary events in the new version that '{_label(t)}' did not have; "
                                "a task in progress cannot gain them: finish it first, or cancel it and start "
                                "before it after the move")
    return sorted(set(problems))


def migrate(wf: Any, new_spec: Any, new_subs: dict[str, Any], mapping: dict[str, str]) -> dict[str, int]:
    """Move `wf` onto the new specs in place; call `check_migration` first. Returns counts."""
    problems = check_migration(wf, new_spec, new_subs, mapping)
    if problems:
        raise InputError("; ".join(problems))
    moved = dropped = 0
    wf.subprocess_specs = new_subs
    for w in _workflows(wf):
        target = new_spec if w is wf else new_subs[w.spec.name]
        w.spec = target
        # Tree order, parents first, so that a removed parent's children are already re-linked.
        for t in list(w.get_tasks(skip_subprocesses=True)):
            if t.id not in w.tasks:
                continue
            new = target.task_specs.get(mapping.get(t.task_spec.name, t.task_spec.name))
            if new is not None:
                t.task_spec = new
                moved += 1
            elif t.has_state(PENDING):
                w._remove_task(t.id)
            elif t.parent is None:  # a finished root (pruning re-roots the tree at a finished task)
                dropped += 1
                t.task_spec = target.start  # it keeps its data; its element is gone
            else:  # finished, and gone from the new version: splice it out of the tree
                dropped += 1
                _splice(w, t)
        for t in w.get_tasks(state=LIVE, skip_subprocesses=True):
            _predict_again(t)
    return {"moved": moved, "dropped": dropped}


def _splice(w: Any, t: Any) -> None:
    parent = t.parent
    if parent is None:
        raise InputError(f"the new version has no root task '{t.task_spec.name}'")
    at = parent._children.index(t.id)
    kids = list(t._children)
    for c in t.children:
        c._parent = parent.id
    parent._children[at:at + 1] = kids
    t._children = []
    w.tasks.pop(t.id)
    if w.last_task is t:
        w.last_task = next((w.tasks[k] for k in kids if k in w.tasks), parent)


def _predict_again(t: Any) -> None:
    """Replace a live task's predicted children by those of its (new) element."""
    for child in list(t.children):
        if child.has_state(PENDING):
            t.workflow._remove_task(child.id)
    t.task_spec._predict_hook(t)
    for child in t.children:
        if child.has_state(PENDING):
            child.task_spec._predict(child, mask=PENDING)


# ----------------------------------------------------------------------------- modifications
def cancel_activity(wf: Any, element: str) -> int:
    """Cancel every token of `element` still in progress (with its boundary events); the count."""
    targets = [t for w in _workflows(wf) for t in w.get_tasks(state=LIVE, skip_subprocesses=True)
               if _label(t) == element and _is_element(t.task_spec)]
    if not targets:
        at = waiting_elements(wf)
        raise InputError(f"nothing is in progress at '{element}'; the instance is at: {', '.join(at) or 'nothing'}")
    for t in targets:
        parent = t.parent
        # A task with boundary events sits under a split with them: cancel them with it.
        if parent is not None and parent.task_spec.name.endswith("BoundaryEventSplit"):
            parent.cancel()
        else:
            t.cancel()
    return len(targets)


def start_before(wf: Any, element: str) -> str:
    """Put a new token before `element` (of the top process or a running subprocess); its process."""
    for w in _workflows(wf):
        spec = w.spec.task_specs.get(element)
        if spec is None or not _is_element(spec):
            continue
        if spec.__class__.__name__ == "BoundaryEvent":
            raise InputError(f"'{element}' is a boundary event, which belongs to its activity; start before "
                             "the activity instead")
        last = w.last_task if w.last_task is not None and w.last_task.id in w.tasks else w.task_tree
        current = deepcopy(last.data)
        # The new token hangs from the root, not from the last task: ending another token (its
        # boundary split, say) must not end this one.
        t = Task(w, spec, parent=w.task_tree, state=TaskState.FUTURE)
        spec._predict(t, mask=PENDING)
        spec._update(t)
        t.data = DeepMerge.merge(t.data, current)  # it sees the process data as it is now
        return str(w.spec.name)
    raise InputError(f"no element '{element}' in this version of the process or in its running subprocesses")


def set_variable(wf: Any, name: str, value: Any) -> None:
    """Set a process variable where the next steps of the top process read it."""
    targets = list(wf.get_tasks(state=LIVE, skip_subprocesses=True))
    if wf.last_task is not None:
        targets.append(wf.last_task)
    if not targets:
        targets.append(wf.task_tree)
    for t in targets:
        t.data[name] = value
