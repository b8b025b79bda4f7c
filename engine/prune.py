"""Pruning: completed work that no future step needs leaves the live task tree.

SpiffWorkflow keeps every task an instance ever ran in its task tree, and a loop makes the tree one
pass deeper each time round: the stored state, and the cost of every command on it, grow with the
instance's age. After each command (and after each input in a replay, which must end in the same
tree) `prune` cuts, in the top workflow and in every subprocess:

* the completed ancestors of the live frontier: the tree is re-rooted at the completed task just
  above the point where the paths to every unfinished task (and to the workflow's last completed
  task) part, so finished loop passes, branches past their join and everything before them go;
* completed subprocesses and call activities whose activity has finished.

What stays is what SpiffWorkflow still reads: every unfinished task (ready, waiting, started and
predicted ones) with the tasks between them and the new root, so a join in progress still sees
the branches that reached it and where they split, a multi-instance activity its instances, a
boundary event its activity; the root holds the data its subtree inherited; and the ids of live
tasks never change (human tasks, timers and the replay's id map refer to them). The history events
keep everything an auditor needs about the work that was cut.

What was cut is summed up on the new root's internal data (`PRUNED_KEY`): element id ->
completed/cancelled, and the sequence flows its tokens took, so a diagram still shows where the
instance has been. Both are bounded by the size of the diagram, not by the instance's age.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.util.task import TaskState

PRUNED_KEY = "pruned"

# A task whose token reached its element (predicted and cancelled tasks never held one).
REACHED = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED | TaskState.ERROR


def prune(wf: Any) -> int:
    """Cut completed work from `wf` (a top workflow); the number of tasks removed."""
    # A finished subprocess goes first, while its activity (whose root keeps its marks) is there.
    removed = _drop_finished_subprocesses(wf)
    for w in [wf, *wf.subprocesses.values()]:
        removed += _reroot(w)
    return removed + _drop_finished_subprocesses(wf)


def task_count(wf: Any) -> int:
    """Tasks in the tree of `wf` and its subprocesses."""
    return len(wf.tasks) + sum(len(sp.tasks) for sp in wf.subprocesses.values())


def pruned_elements(wf: Any) -> dict[str, str]:
    """Element id -> completed/cancelled, of the tasks cut from `wf` and its subprocesses."""
    out: dict[str, str] = {}
    for w in [wf, *wf.subprocesses.values()]:
        for bpmn_id, state in (w.task_tree.internal_data.get(PRUNED_KEY) or {}).get("elements", {}).items():
            if out.get(bpmn_id) != "completed":
                out[bpmn_id] = state
    return out


def taken_flows(wf: Any) -> set[tuple[str, str, str]]:
    """(process or subprocess id, source element, target element) of every sequence flow a token
    of `wf` went along: from the live tree and from what was cut from it."""
    taken: set[tuple[str, str, str]] = set()
    for w in [wf, *wf.subprocesses.values()]:
        taken.update(tuple(f) for f in (w.task_tree.internal_data.get(PRUNED_KEY) or {}).get("flows", []))
        for t in w.tasks.values():
            flow = _flow(t)
            if flow is not None:
                taken.add(flow)
    return taken


def _waited_at_join(task: Any) -> bool:
    """A join's task of a branch that arrived before the others: SpiffWorkflow cancels it when
    the last branch arrives, but its token did go along the flow into the join."""
    from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin

    parent = task.parent
    return (task.has_state(TaskState.CANCELLED) and isinstance(task.task_spec, UnstructuredJoin)
            and parent is not None and parent.has_state(TaskState.COMPLETED))


def _flow(task: Any) -> tuple[str, str, str] | None:
    parent = task.parent
    if parent is None or not (task.has_state(REACHED) or _waited_at_join(task)):
        return None
    src = getattr(parent.task_spec, "bpmn_id", None)
    dst = getattr(task.task_spec, "bpmn_id", None)
    if not src or not dst:
        return None
    return (task.workflow.spec.name, src, dst)


def _record(target: Any, tasks: list[Any], marks: dict[str, Any] | None = None) -> None:
    """Remember on `target` (a root task) the elements and flows of `tasks`, which are cut."""
    marks = marks if marks is not None else dict(target.internal_data.get(PRUNED_KEY) or {})
    elements = dict(marks.get("elements", {}))
    flows = {tuple(f) for f in marks.get("flows", [])}
    for t in tasks:
        bpmn_id = getattr(t.task_spec, "bpmn_id", None)
        if bpmn_id and t.state in (TaskState.COMPLETED, TaskState.CANCELLED):
            if elements.get(bpmn_id) != "completed":
                elements[bpmn_id] = "completed" if t.state == TaskState.COMPLETED else "cancelled"
        flow = _flow(t)
        if flow is not None:
            flows.add(flow)
    if elements or flows:
        target.internal_data[PRUNED_KEY] = {"elements": dict(sorted(elements.items())),
                                            "flows": [list(f) for f in sorted(flows)]}


def _reroot(w: Any) -> int:
    root = w.task_tree
    keep = [t for t in w.tasks.values() if t.has_state(TaskState.NOT_FINISHED_MASK)]
    last = w.last_task
    if last is not None and last.id in w.tasks:
        keep.append(last)  # a finished workflow keeps only its last task, with the data it ended with
    if not keep:
        return 0
    wanted = {t.id for t in keep}
    # The tasks on a path from the root to a kept task.
    on_path: set[Any] = set()
    for t in keep:
        node = t
        while node is not None and node.id not in on_path:
            on_path.add(node.id)
            node = node.parent
    # Down from the root while there is one way on and nothing kept here.
    node = root
    while node.id not in wanted:
        ways = [c for c in node._children if c in on_path]
        if len(ways) != 1:
            break
        node = w.tasks[ways[0]]
    # One up: a live task keeps the finished task it inherited its data from, and a branch point
    # (a boundary event's split, a gateway) stays below the root with its branches, so a token
    # hung from the root (engine/migration.py start_before) is not one of its branches.
    node = node.parent
    if node is None or node is root or not node.has_state(TaskState.FINISHED_MASK):
        return 0
    # An explicit walk: iterating a task stops at SpiffWorkflow's depth limit (1,000), and a long
    # chain of predicted tasks below it would be cut while still linked.
    subtree: set[Any] = set()
    stack = [node.id]
    while stack:
        tid = stack.pop()
        if tid not in subtree:
            subtree.add(tid)
            stack.extend(w.tasks[tid]._children)
    cut = [t for tid, t in w.tasks.items() if tid not in subtree]
    # The flow into the new root is taken, and remembered with the cut tasks.
    _record(node, cut + [node], root.internal_data.get(PRUNED_KEY) or {})
    for t in cut:
        del w.tasks[t.id]
    node._parent = None
    w.task_tree = node
    return len(cut)


def _drop_finished_subprocesses(wf: Any) -> int:
    """Remove subprocesses whose activity has finished (or was itself cut), innermost first."""
    removed = 0
    changed = True
    while changed:
        changed = False
        for sp_id, sp in list(wf.subprocesses.items()):
            owner = _owner(wf, sp)
            if owner is not None and not owner.has_state(TaskState.FINISHED_MASK):
                continue
            if any(other.parent_task_id in sp.tasks for other in wf.subprocesses.values() if other is not sp):
                continue  # its own subprocesses go first
            if owner is not None:
                tasks = list(sp.tasks.values())
                _record(owner.workflow.task_tree, tasks)
                # What the subprocess had itself cut before.
                inner = sp.task_tree.internal_data.get(PRUNED_KEY) or {}
                if inner:
                    _merge(owner.workflow.task_tree, inner)
            removed += len(sp.tasks)
            del wf.subprocesses[sp_id]
            changed = True
    return removed


def _merge(target: Any, marks: dict[str, Any]) -> None:
    mine = dict(target.internal_data.get(PRUNED_KEY) or {})
    elements = dict(mine.get("elements", {}))
    for bpmn_id, state in marks.get("elements", {}).items():
        if elements.get(bpmn_id) != "completed":
            elements[bpmn_id] = state
    flows = {tuple(f) for f in mine.get("flows", [])} | {tuple(f) for f in marks.get("flows", [])}
    target.internal_data[PRUNED_KEY] = {"elements": dict(sorted(elements.items())),
                                        "flows": [list(f) for f in sorted(flows)]}


def _owner(wf: Any, sp: Any) -> Any:
    """The task that runs subprocess `sp`, or None if it is no longer in any tree."""
    task = wf.tasks.get(sp.parent_task_id)
    if task is not None:
        return task
    for other in wf.subprocesses.values():
        if other is not sp and sp.parent_task_id in other.tasks:
            return other.tasks[sp.parent_task_id]
    return None
