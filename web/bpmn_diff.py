"""What changed between two versions of a process: the elements added, removed and changed
(with each changed attribute, old and new value), and a highlight map to draw on the newer
diagram with ``web.diagram.render_svg(new_xml, highlight=diff.highlight())``.

Elements are matched by id, as Camunda Modeler keeps ids stable across edits. Attributes are
read the way a person thinks of them: ``name``, ``type``, ``assignee``, ``candidateGroups``,
``dueDate``, ``formKey``, ``condition``, ``script``, ``timer``, ``multiInstance``, ``lane``,
the extension elements (inputs, outputs, properties, listeners) one by one. A change of layout
only (a shape moved, a flow re-routed) is listed apart, in ``moved``, and not highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.bundles import parse_xml
from engine.errors import InputError

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI"}
# Children that describe their parent rather than being elements of their own.
_FACETS = {"incoming", "outgoing", "conditionExpression", "script", "documentation", "extensionElements",
           "multiInstanceLoopCharacteristics", "standardLoopCharacteristics", "flowNodeRef", "laneSet",
           "childLaneSet", "ioSpecification", "property", "dataState", "text", "categoryValue",
           "sourceRef", "targetRef", "condition", "loopCardinality", "completionCondition",
           "timeDate", "timeDuration", "timeCycle", "eventDefinitionRef"}
_CONTAINERS = {"definitions", "process", "subProcess", "transaction", "adHocSubProcess", "collaboration",
               "laneSet", "lane", "childLaneSet", "category"}


@dataclass(frozen=True)
class Change:
    """One attribute of one element, before and after (None: absent)."""

    attribute: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ElementDiff:
    """An element added, removed or changed; ``changes`` is empty for added and removed ones."""

    id: str
    type: str
    name: str
    changes: tuple[Change, ...] = ()


@dataclass
class BpmnDiff:
    """The differences between two versions of one process."""

    added: list[ElementDiff] = field(default_factory=list)
    removed: list[ElementDiff] = field(default_factory=list)
    changed: list[ElementDiff] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when nothing but the layout (or nothing at all) differs."""
        return not (self.added or self.removed or self.changed or self.files)

    def highlight(self) -> dict[str, str]:
        """Element id -> ``added`` / ``changed``, for ``render_svg(new_xml, highlight=...)``."""
        out = {e.id: "added" for e in self.added}
        out.update({e.id: "changed" for e in self.changed})
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the page's .json twin)."""
        def element(e: ElementDiff) -> dict[str, Any]:
            return {"id": e.id, "type": e.type, "name": e.name,
                    "changes": [{"attribute": c.attribute, "old": c.old, "new": c.new} for c in e.changes]}
        return {"added": [element(e) for e in self.added], "removed": [element(e) for e in self.removed],
                "changed": [element(e) for e in self.changed], "moved": list(self.moved),
                "files": dict(self.files)}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return " ".join("".join(str(t) for t in el.itertext()).split()) or ""


def _attr_name(qname: str | bytes) -> str:
    return str(etree.QName(qname).localname)


def _ref_label(by_id: dict[str, etree._Element], ref: str | None) -> str | None:
    """A referenced message/error/signal/escalation by its name (and code), else the id."""
    if not ref:
        return ref
    target = by_id.get(ref)
    if target is None:
        return ref
    code = target.get("errorCode") or target.get("escalationCode")
    name = target.get("name") or ref
    return f"{name} ({code})" if code else name


def _facts(el: etree._Element, by_id: dict[str, etree._Element], lanes: dict[str, str]) -> dict[str, str]:
    """Everything about an element a person may have changed, as attribute -> text."""
    facts: dict[str, str] = {"type": _local(el)}
    for key, value in el.attrib.items():
        name = _attr_name(key)
        if name != "id":
            facts[name] = str(value)
    for child in el:
        kind = _local(child)
        if kind in ("conditionExpression", "script", "documentation"):
            facts["condition" if kind == "conditionExpression" else kind] = _text(child) or ""
        elif kind.endswith("EventDefinition"):
            _event_facts(facts, child, by_id)
        elif kind == "multiInstanceLoopCharacteristics":
            facts["multiInstance"] = "sequential" if child.get("isSequential") == "true" else "parallel"
            for key, value in child.attrib.items():
                if _attr_name(key) not in ("id", "isSequential"):
                    facts[_attr_name(key)] = str(value)
            for part in ("loopCardinality", "completionCondition"):
                node = child.find(f"bpmn:{part}", NS)
                if node is not None:
                    facts[part] = _text(node) or ""
        elif kind == "standardLoopCharacteristics":
            facts["loop"] = _text(child.find("bpmn:loopCondition", NS)) or "standard"
        elif kind == "extensionElements":
            _extension_facts(facts, child)
        elif kind == "text" and _local(el) == "textAnnotation":
            facts["text"] = _text(child) or ""
        elif kind == "dataState":
            facts["dataState"] = child.get("name", "")
    if el.get("id") in lanes:
        facts["lane"] = lanes[el.get("id", "")]
    if _local(el) == "group":
        category = by_id.get(el.get("categoryValueRef", ""))
        if category is not None:
            facts["name"] = category.get("value", "")
    return facts


def _event_facts(facts: dict[str, str], definition: etree._Element, by_id: dict[str, etree._Element]) -> None:
    kind = _local(definition)[: -len("EventDefinition")]
    facts["event"] = f"{facts['event']}, {kind}" if "event" in facts else kind
    for part in ("timeDate", "timeDuration", "timeCycle"):
        node = definition.find(f"bpmn:{part}", NS)
        if node is not None:
            facts["timer"] = f"{part} {_text(node)}"
    for ref in ("messageRef", "errorRef", "signalRef", "escalationRef"):
        if definition.get(ref):
            facts[ref[: -len("Ref")]] = _ref_label(by_id, definition.get(ref)) or ""
    condition = definition.find("bpmn:condition", NS)
    if condition is not None:
        facts["condition"] = _text(condition) or ""
    if kind == "link" and definition.get("name"):
        facts["link"] = definition.get("name", "")


def _extension_facts(facts: dict[str, str], ext: etree._Element) -> None:
    """One fact per extension (``in:all``, ``property:public``, ``inputOutput``...), canonical text."""
    for item in ext.iter():
        if item is ext or not isinstance(item.tag, str) or len(item):
            continue  # leaves only: the container elements are described by their leaves
        path = [_local(a) for a in item.iterancestors() if a is not ext and ext in a.iterancestors()]
        label = next((item.get(k) for k in ("name", "id", "variables", "target", "source", "event") if item.get(k)), "")
        key = ".".join([*reversed(path), _local(item)]) + (f":{label}" if label else "")
        attrs = " ".join(f"{_attr_name(k)}={v!s}" for k, v in sorted((str(k), str(v)) for k, v in item.attrib.items()))
        value = " ".join(p for p in (attrs, _text(item) or "") if p)
        facts[key] = f"{facts[key]}; {value}" if key in facts else value


def _elements(root: etree._Element, process_id: str | None) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Element id -> facts, and element id -> layout signature."""
    by_id = {str(el.get("id")): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")
             and etree.QName(el).namespace == BPMN}
    processes = {p.get("id") for p in root.iterfind("bpmn:process", NS)}
    if process_id is not None and process_id not in processes:
        raise InputError(f"the file has no process '{process_id}' (its processes: "
                         f"{', '.join(sorted(p for p in processes if p)) or 'none'})")
    lanes: dict[str, str] = {}
    for node_ref in root.iter(f"{{{BPMN}}}flowNodeRef"):
        lane = node_ref.getparent()
        if node_ref.text and lane is not None:
            lanes[node_ref.text.strip()] = lane.get("name") or lane.get("id") or ""
    out: dict[str, dict[str, str]] = {}
    for el_id, el in by_id.items():
        kind = _local(el)
        parent = el.getparent()
        if (parent is None or kind in _FACETS or kind.endswith("EventDefinition")
                or _local(parent) not in _CONTAINERS | {"participant"} or kind in ("definitions", "laneSet")):
            continue
        if process_id is not None:
            owner = next((a.get("id") for a in el.iterancestors() if _local(a) == "process"),
                         el.get("processRef") if kind == "participant" else el_id if kind == "process" else None)
            if owner != process_id:
                continue
        out[el_id] = _facts(el, by_id, lanes)
    layout: dict[str, str] = {}
    for di in root.iter(f"{{{NS['bpmndi']}}}BPMNShape", f"{{{NS['bpmndi']}}}BPMNEdge"):
        ref = str(di.get("bpmnElement") or "")
        numbers = [f"{b.get('x')},{b.get('y')},{b.get('width') or ''},{b.get('height') or ''}"
                   for b in di.iter(f"{{{NS['dc']}}}Bounds", f"{{{NS['di']}}}waypoint")]
        layout[ref] = " ".join(numbers) + (f" expanded={di.get('isExpanded')}" if di.get("isExpanded") else "")
    return out, layout


def diff_bpmn(old_xml: str, new_xml: str, *, process_id: str | None = None) -> BpmnDiff:
    """Compare two BPMN files (or one process in both).

    Raises:
        DefinitionError: either file is not well-formed XML or declares a DOCTYPE.
        InputError: ``process_id`` is in neither file.
    """
    old_root, new_root = parse_xml("old.bpmn", old_xml), parse_xml("new.bpmn", new_xml)
    new, new_layout = _elements(new_root, process_id)
    try:
        old, old_layout = _elements(old_root, process_id)
    except InputError:
        old, old_layout = {}, {}  # a process new in this version: everything is added
    return _compare(old, old_layout, new, new_layout)


def _compare(old: dict[str, dict[str, str]], old_layout: dict[str, str], new: dict[str, dict[str, str]],
             new_layout: dict[str, str]) -> BpmnDiff:
    diff = BpmnDiff()
    for el_id, facts in new.items():
        if el_id not in old:
            diff.added.append(ElementDiff(el_id, facts["type"], facts.get("name", "")))
            continue
        before = old[el_id]
        changes = tuple(Change(key, before.get(key), facts.get(key))
                        for key in sorted(set(before) | set(facts), key=_order)
                        if before.get(key) != facts.get(key))
        if changes:
            diff.changed.append(ElementDiff(el_id, facts["type"], facts.get("name", ""), changes))
        elif old_layout.get(el_id) != new_layout.get(el_id):
            diff.moved.append(el_id)
    for el_id, facts in old.items():
        if el_id not in new:
            diff.removed.append(ElementDiff(el_id, facts["type"], facts.get("name", "")))
    return diff


def _order(key: str) -> tuple[int, str]:
    first = ("type", "name", "lane", "assignee", "candidateUsers", "candidateGroups", "dueDate", "followUpDate",
             "priority", "formKey", "condition", "script", "timer", "event")
    return (first.index(key), key) if key in first else (len(first), key)


def _find_process_file(files: Mapping[str, str], process_id: str) -> str | None:
    for name in sorted(files):
        if name.endswith(".bpmn") and f'id="{process_id}"' in files[name]:
            root = parse_xml(name, files[name])
            if any(p.get("id") == process_id for p in root.iterfind("bpmn:process", NS)):
                return name
    return None


def diff_files(old_files: Mapping[str, str], new_files: Mapping[str, str], process_id: str) -> BpmnDiff:
    """Compare two deployed versions given as their files (name -> text), for one process:
    the elements of the process, and which other files (forms, decisions) were added, removed
    or changed.

    Raises:
        InputError: the newer version has no BPMN file defining ``process_id``.
    """
    new_name = _find_process_file(new_files, process_id)
    if new_name is None:
        raise InputError(f"the newer version has no BPMN file defining process '{process_id}'")
    old_name = _find_process_file(old_files, process_id)
    if old_name is None:  # the process is new in this version
        new, layout = _elements(parse_xml(new_name, new_files[new_name]), process_id)
        diff = _compare({}, {}, new, layout)
    else:
        diff = diff_bpmn(old_files[old_name], new_files[new_name], process_id=process_id)
    for name in sorted(set(old_files) | set(new_files)):
        if name.endswith(".bpmn"):
            continue
        if name not in old_files:
            diff.files[name] = "added"
        elif name not in new_files:
            diff.files[name] = "removed"
        elif old_files[name] != new_files[name]:
            diff.files[name] = "changed"
    return diff
