"""The BPMN parser: Camunda's, with the engine's task specs, event parsers and checks. (Part of
the engine's plug into SpiffWorkflow; see engine/spiff.py.)"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, full_tag
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, IntermediateCatchEvent, StartEvent
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent, ReceiveTask, SendTask
from SpiffWorkflow.util.task import TaskState
from SpiffWorkflow.specs.base import TaskSpec

from . import eventsub, links, services
from .camunda import InclusiveGatewayParser
from .spiff import TigaoInclusiveGateway, TigaoParallelGateway
from .spiff_events import TigaoBoundaryEventParser, TigaoEndEventParser, TigaoIntermediateCatchEventParser, TigaoIntermediateThrowEventParser, TigaoReceiveTaskParser, TigaoSendTaskParser, TigaoStartEventParser

# ---------------------------------------------------------------------------------------------
# Parser


def _predict_in_a_loop(self: TaskSpec, my_task: Any, seen: list[Any] | None = None, looked_ahead: int = 0,
                       mask: int = TaskState.PREDICTED_MASK) -> None:
    """SpiffWorkflow's `TaskSpec._predict`, the same steps in the same order, as a loop.

    SpiffWorkflow keeps every definite future task of an instance in its task tree, and predicts
    that tree by recursing once per level: a linear process of about 950 elements exceeded
    Python's recursion limit when it started. The method is defined once, on TaskSpec, and no
    spec class overrides it, so it is replaced here by this equivalent (a depth-first pre-order
    walk with an explicit stack; each child's condition is checked when its turn comes, as the
    recursive version checks it after the earlier siblings' branches are done). Raising the
    recursion limit instead would be one limit for every thread, and C code it guards (the JSON
    decoder, for one) would then overflow a normal thread's stack and crash the process.
    """
    todo: list[tuple[Any, Any, list[Any], int, bool]] = [(self, my_task, [] if seen is None else seen,
                                                          looked_ahead, False)]
    while todo:
        spec, task, seen_here, ahead, check = todo.pop()
        if check:  # a child: recurse into it only if the recursive version would have
            if not task.has_state(mask) or task in seen_here:
                continue
            seen_here = seen_here[:]
        if task.has_state(mask):
            spec._predict_hook(task)
        if task.has_state(TaskState.PREDICTED_MASK):
            seen_here.append(spec)
        if task.has_state(TaskState.DEFINITE_MASK) or ahead + 1 < spec.lookahead:
            for child in reversed(task.children):
                todo.append((child.task_spec, child, seen_here, ahead + 1, True))


TaskSpec._predict = _predict_in_a_loop  # type: ignore[method-assign]


class TigaoProcessParser(ProcessParser):
    """SpiffWorkflow's process parser, made to parse long diagrams without deep recursion.

    SpiffWorkflow parses an element by first parsing the targets of its outgoing flows, then
    connecting to them: a recursion two Python frames deep per element along the longest path,
    so a linear diagram of about 490 tasks exceeded Python's recursion limit (RecursionError at
    deploy, and at every command that builds the spec). Raising the limit is not safe: it is
    one limit for all threads, and C code guarded by it (the JSON decoder, for one) would then
    overflow a normal thread's stack and crash the process instead of failing cleanly.

    So a long process is parsed from the end backwards first: an explicit depth-first walk from
    its start events, in the order the recursion would take, lists the elements in post-order,
    and each is parsed when everything it leads to already is, so every call returns at once.
    Each element still connects its own outgoing flows, in the same order as before. Only a
    flow back to an element still being walked (a loop) recurses, as deep as that loop is long.
    Short processes (below LONG nodes, the usual case) are parsed exactly as before.
    """

    LONG = 300  # indexed nodes (elements and flows); the recursion stays far below the limit here

    def _index_process_nodes(self) -> None:
        super()._index_process_nodes()  # type: ignore[misc]
        for flow in links.flows(self.node):  # a link throw goes on at its catch
            self.outgoing_sequence_flows.setdefault(flow.get("sourceRef"), []).append(flow)

    def add_tasks(self) -> None:
        if len(self.nodes_by_id) > self.LONG:
            for node in self._post_order():
                self.parse_node(node)
        super().add_tasks()
        eventsub.wire(self)

    def _successors(self, node: Any) -> list[Any]:
        # The attached task parses its boundary events (and what follows them) before its flows.
        out = list(self.get_boundary_events(node.get("id")))
        for flow in self.get_outgoing_sequence_flows(node.get("id")):
            target = self.get_node_by_id(flow.get("targetRef"))
            if target is not None:
                out.append(target)
        return out

    def _post_order(self) -> list[Any]:
        order: list[Any] = []
        seen: set[str] = set()
        for start in self.xpath("./bpmn:startEvent"):
            if start.get("id") in seen:
                continue
            seen.add(start.get("id"))
            stack = [(start, iter(self._successors(start)))]
            while stack:
                node, successors = stack[-1]
                nxt = next(successors, None)
                if nxt is None:
                    stack.pop()
                    if not node.tag.endswith("boundaryEvent"):  # parsed by the task it is attached to
                        order.append(node)
                elif nxt.get("id") not in seen:
                    seen.add(nxt.get("id"))
                    stack.append((nxt, iter(self._successors(nxt))))
        return order


class TigaoParser(CamundaParser):
    PROCESS_PARSER_CLASS = TigaoProcessParser
    OVERRIDE_PARSER_CLASSES = dict(CamundaParser.OVERRIDE_PARSER_CLASSES)
    OVERRIDE_PARSER_CLASSES.update({
        full_tag("startEvent"): (TigaoStartEventParser, StartEvent),
        full_tag("intermediateCatchEvent"): (TigaoIntermediateCatchEventParser, IntermediateCatchEvent),
        full_tag("boundaryEvent"): (TigaoBoundaryEventParser, BoundaryEvent),
        full_tag("intermediateThrowEvent"): (TigaoIntermediateThrowEventParser, IntermediateThrowEvent),
        full_tag("endEvent"): (TigaoEndEventParser, EndEvent),
        full_tag("receiveTask"): (TigaoReceiveTaskParser, ReceiveTask),
        full_tag("sendTask"): (TigaoSendTaskParser, SendTask),
        full_tag("parallelGateway"): (BpmnParser.PARSER_CLASSES[full_tag("parallelGateway")][0],
                                      TigaoParallelGateway),
        full_tag("inclusiveGateway"): (InclusiveGatewayParser, TigaoInclusiveGateway),
        full_tag("businessRuleTask"): services.BUSINESS_RULE,  # as a service task too (engine/services.py)
        full_tag("exclusiveGateway"): (InclusiveGatewayParser,
                                       BpmnParser.PARSER_CLASSES[full_tag("exclusiveGateway")][1]),
    })
