"""Link events: a link intermediate throw event goes on at the link catch event of the same name in
the same process or subprocess (BPMN's "off-page connector").

SpiffWorkflow 3.2 parses both as plain events, so the flow would stop at the throw and never reach
the catch. The parser is given one more sequence flow, from each throw to its catch, and the
flow runs through both events as through any plain intermediate event. A throw without its catch,
two catches of one name, or a link event without a name is refused at deployment, naming it.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from .errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_SCOPES = ("process", "subProcess", "transaction", "adHocSubProcess")


def _link_name(event: Any, ns: dict[str, str]) -> str | None:
    definition = event.find("bpmn:linkEventDefinition", ns)
    if definition is None:
        return None
    return (definition.get("name") or event.get("name") or "").strip()


def _scope_links(scope: Any, ns: dict[str, str]) -> tuple[list[tuple[Any, str]], dict[str, list[Any]]]:
    """(throw event, name) pairs and name -> catch events, among the direct children of `scope`."""
    throws = [(e, n) for e in scope.iterfind("bpmn:intermediateThrowEvent", ns)
              if (n := _link_name(e, ns)) is not None]
    catches: dict[str, list[Any]] = {}
    for e in scope.iterfind("bpmn:intermediateCatchEvent", ns):
        n = _link_name(e, ns)
        if n is not None:
            catches.setdefault(n, []).append(e)
    return throws, catches


def flows(scope: Any) -> list[Any]:
    """A sequence flow from every link throw of `scope` to its catch (for the parser; not in the file)."""
    ns = {"bpmn": BPMN_NS}
    throws, catches = _scope_links(scope, ns)
    out = []
    for event, name in throws:
        targets = catches.get(name, [])
        if len(targets) == 1:
            out.append(etree.Element(f"{{{BPMN_NS}}}sequenceFlow", id=f"{event.get('id')}.link",
                                     sourceRef=str(event.get("id")), targetRef=str(targets[0].get("id"))))
    return out


def check(name: str, proc: Any, ns: dict[str, str], problems: list[Problem]) -> None:
    """Append a problem for every link event of `proc` (and its subprocesses) that cannot be followed."""
    scopes = [proc, *(s for tag in _SCOPES[1:] for s in proc.iterfind(f".//bpmn:{tag}", ns))]
    for scope in scopes:
        throws, catches = _scope_links(scope, ns)
        thrown = {n for _, n in throws}
        for event, link in throws:
            if not link:
                problems.append(Problem(name, "a link throw event needs a name (the name of its link catch event)",
                                        element=event.get("id"), line=event.sourceline))
            elif link not in catches:
                problems.append(Problem(name, f"link throw event '{link}' has no link catch event of that name in "
                                              "the same process or subprocess", element=event.get("id"),
                                        line=event.sourceline))
            elif event.find("bpmn:outgoing", ns) is not None:
                problems.append(Problem(name, f"link throw event '{link}' has an outgoing sequence flow; the flow "
                                              "goes on at its link catch event", element=event.get("id"),
                                        line=event.sourceline))
        for link, events in catches.items():
            first = events[0]
            if not link:
                problems.append(Problem(name, "a link catch event needs a name (the name its link throw events use)",
                                        element=first.get("id"), line=first.sourceline))
                continue
            for dup in events[1:]:
                problems.append(Problem(name, f"link catch event '{link}' appears twice in the same process or "
                                              f"subprocess (also {first.get('id')}); a link name leads to one place",
                                        element=dup.get("id"), line=dup.sourceline))
            if link not in thrown:
                problems.append(Problem(name, f"link catch event '{link}' has no link throw event of that name in "
                                              "the same process or subprocess", element=first.get("id"),
                                        line=first.sourceline))
