"""The words a diagram's tooltips and messages are made of, in English, each marked with `N_()`
so that the web app's message extraction (web/locale/build.py) finds them.

`render_svg(..., words=gettext)` passes every one of them through the caller's translation; with
no `words` they read as they are written here.
"""

from __future__ import annotations

from collections.abc import Callable

Words = Callable[[str], str]


def N_(text: str) -> str:  # noqa: N802 - the conventional marker name for extraction
    return text


def same(text: str) -> str:
    return text


# Element kinds as a tooltip names them (an event with a definition uses EVENTS below instead).
KINDS = {
    "task": N_("Task"), "userTask": N_("User task"), "manualTask": N_("Manual task"),
    "scriptTask": N_("Script task"), "serviceTask": N_("Service task"), "sendTask": N_("Send task"),
    "receiveTask": N_("Receive task"), "businessRuleTask": N_("Business rule task"),
    "callActivity": N_("Call activity"), "subProcess": N_("Sub process"), "transaction": N_("Transaction"),
    "adHocSubProcess": N_("Ad hoc sub process"),
    "startEvent": N_("Start event"), "endEvent": N_("End event"),
    "intermediateCatchEvent": N_("Intermediate catch event"),
    "intermediateThrowEvent": N_("Intermediate throw event"), "boundaryEvent": N_("Boundary event"),
    "exclusiveGateway": N_("Exclusive gateway"), "parallelGateway": N_("Parallel gateway"),
    "inclusiveGateway": N_("Inclusive gateway"), "complexGateway": N_("Complex gateway"),
    "eventBasedGateway": N_("Event based gateway"),
    "participant": N_("Participant"), "lane": N_("Lane"), "group": N_("Group"),
    "textAnnotation": N_("Text annotation"), "dataObjectReference": N_("Data object reference"),
    "dataObject": N_("Data object"), "dataInput": N_("Data input"), "dataOutput": N_("Data output"),
    "dataStoreReference": N_("Data store reference"),
}
# An event's kind after its definition: "Timer boundary event".
EVENTS = {
    "startEvent": N_("start event"), "endEvent": N_("end event"),
    "intermediateCatchEvent": N_("intermediate catch event"),
    "intermediateThrowEvent": N_("intermediate throw event"), "boundaryEvent": N_("boundary event"),
}
DEFINITIONS = {
    "timer": N_("timer"), "message": N_("message"), "error": N_("error"), "escalation": N_("escalation"),
    "signal": N_("signal"), "conditional": N_("conditional"), "link": N_("link"), "terminate": N_("terminate"),
    "compensate": N_("compensate"), "cancel": N_("cancel"), "multiple": N_("multiple"),
}
EVENT_WITH_DEFINITION = N_("%(definition)s %(event)s")  # the first letter is then capitalised
NON_INTERRUPTING = N_("(non-interrupting)")
# Connections, plain and as the default or a conditional flow.
EDGES = {"sequenceFlow": N_("Sequence flow"), "messageFlow": N_("Message flow"), "association": N_("Association"),
         "dataInputAssociation": N_("Data input"), "dataOutputAssociation": N_("Data output")}
DEFAULT_EDGES = {"sequenceFlow": N_("Default sequence flow")}
CONDITIONAL_EDGES = {"sequenceFlow": N_("Conditional sequence flow")}
# Markers and highlights in a tooltip: "waiting for timer (3): due ...".
STATES = {"completed": N_("completed"), "active": N_("active"), "waiting": N_("waiting"),
          "cancelled": N_("cancelled"), "failed": N_("failed"), "added": N_("added"), "changed": N_("changed"),
          "removed": N_("removed")}
WAITING_FOR = {"timer": N_("timer"), "message": N_("message"), "signal": N_("signal"),
               "conditional": N_("conditional"), "escalation": N_("escalation"), "error": N_("error")}
STATE_FOR = N_("%(state)s for %(what)s")
THIS_TASK = N_("this task")
DIAGRAM = N_("BPMN diagram")
NO_LAYOUT = N_("This diagram has no layout (BPMN DI) to draw.")
NOTHING = N_("This diagram has nothing to draw.")


def say(words: Words | None, text: str, **kw: str) -> str:
    """`text` through `words`, with its %(name)s fields filled."""
    out = (words or same)(text)
    return out % kw if kw else out
