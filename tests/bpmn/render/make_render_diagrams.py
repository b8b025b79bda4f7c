"""Write the diagrams that exercise the SVG renderer: every kind of task, marker, event,
gateway, data and artifact, and a collaboration of several pools with message flows.

They are drawing fixtures (schema-valid BPMN 2.0 with DI), not processes to run. Run this
file again after changing it: ``python tests/bpmn/render/make_render_diagrams.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

HERE = Path(__file__).resolve().parent
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_{key}" '
        'targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler" exporterVersion="5.20.0">\n')
SIZES = {"event": (36, 36), "gateway": (50, 50), "task": (100, 80), "data": (36, 50), "store": (50, 50)}


class Doc:
    """One file being written: semantic XML per process and the DI of one plane."""

    def __init__(self, key: str):
        self.key = key
        self.roots: list[str] = []
        self.procs: dict[str, list[str]] = {}
        self.di: list[str] = []
        self.boxes: dict[str, tuple[float, float, float, float]] = {}
        self.flows: dict[str, list[str]] = {}

    def shape(self, el_id: str, x: float, y: float, w: float, h: float, extra: str = "",
              label: tuple[float, float, float, float] | None = None) -> None:
        self.boxes[el_id] = (x, y, w, h)
        lab = (f'<bpmndi:BPMNLabel><dc:Bounds x="{label[0]:g}" y="{label[1]:g}" width="{label[2]:g}" '
               f'height="{label[3]:g}" /></bpmndi:BPMNLabel>') if label else ""
        self.di.append(f'<bpmndi:BPMNShape id="{el_id}_di" bpmnElement="{el_id}"{extra}>'
                       f'<dc:Bounds x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" />{lab}</bpmndi:BPMNShape>')

    def node(self, proc: str, tag: str, el_id: str, name: str | None, cx: float, cy: float,
             size: str = "task", attrs: str = "", body: str = "", w: float | None = None,
             h: float | None = None, di_extra: str = "", label_below: bool = True) -> None:
        """A flow node centred on (cx, cy); incoming/outgoing are filled in by flow()."""
        bw, bh = SIZES[size]
        bw, bh = w or bw, h or bh
        x, y = cx - bw / 2, cy - bh / 2
        name_attr = f" name={quoteattr(name)}" if name is not None else ""
        self.procs[proc].append(f'<bpmn:{tag} id="{el_id}"{name_attr}{attrs}>@@{el_id}@@{body}</bpmn:{tag}>')
        label = (cx - 45, y + bh + 5, 90, 27) if name and label_below and size in ("event", "gateway") else None
        self.shape(el_id, x, y, bw, bh, di_extra, label)

    def flow(self, proc: str, fid: str, src: str, dst: str, name: str | None = None, body: str = "",
             points: list[tuple[float, float]] | None = None, tag: str = "sequenceFlow") -> None:
        name_attr = f" name={quoteattr(name)}" if name else ""
        target = self.procs[proc] if proc else self.roots
        target.append(f'<bpmn:{tag} id="{fid}"{name_attr} sourceRef="{src}" targetRef="{dst}">{body}</bpmn:{tag}>')
        if tag == "sequenceFlow":
            self.flows.setdefault(src, []).append(f"<bpmn:outgoing>{fid}</bpmn:outgoing>")
            self.flows.setdefault(dst, []).insert(0, f"<bpmn:incoming>{fid}</bpmn:incoming>")
        if points is None:
            sx, sy, sw, sh = self.boxes[src]
            tx, ty, tw, th = self.boxes[dst]
            a, b = (sx + sw, sy + sh / 2), (tx, ty + th / 2)
            if abs(a[1] - b[1]) < 1:
                points = [a, b]
            elif b[0] > a[0] + 20:
                mx = (a[0] + b[0]) / 2
                points = [a, (mx, a[1]), (mx, b[1]), b]
            else:  # below: leave from the bottom, enter from the top
                a, b = (sx + sw / 2, sy + sh), (tx + tw / 2, ty)
                points = [a, (a[0], (a[1] + b[1]) / 2), (b[0], (a[1] + b[1]) / 2), b]
        label = ""
        if name:
            a, b = points[len(points) // 2 - 1], points[len(points) // 2]
            mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
            label = f'<bpmndi:BPMNLabel><dc:Bounds x="{mx + 6:g}" y="{my - 18:g}" width="60" height="14" /></bpmndi:BPMNLabel>'
        wps = "".join(f'<di:waypoint x="{x:g}" y="{y:g}" />' for x, y in points)
        self.di.append(f'<bpmndi:BPMNEdge id="{fid}_di" bpmnElement="{fid}">{wps}{label}</bpmndi:BPMNEdge>')

    def write(self, plane_of: str, collaboration: str = "", extra: str = "") -> None:
        out = [HEAD.format(key=self.key), collaboration, *self.roots]
        for pid, parts in self.procs.items():
            body = "\n    ".join(parts)
            for el_id, refs in self.flows.items():
                body = body.replace(f"@@{el_id}@@", "".join(refs))
            body = re.sub(r"@@[^@]+@@", "", body)
            out.append(f'  <bpmn:process id="{pid}" name="{pid}" isExecutable="false">\n    {body}\n  </bpmn:process>\n')
        out.append(f'  <bpmndi:BPMNDiagram id="BPMNDiagram_{self.key}"><bpmndi:BPMNPlane id="BPMNPlane_{self.key}" '
                   f'bpmnElement="{plane_of}">\n    ' + "\n    ".join(self.di) +
                   "\n  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n" + extra + "</bpmn:definitions>\n")
        (HERE / f"{self.key}.bpmn").write_text("".join(out), encoding="utf-8")


TIMER = '<bpmn:timerEventDefinition id="{}"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P3D</bpmn:timeDuration></bpmn:timerEventDefinition>'
COND = '<bpmn:conditionalEventDefinition id="{}"><bpmn:condition xsi:type="bpmn:tFormalExpression">ready == True</bpmn:condition></bpmn:conditionalEventDefinition>'


def tasks() -> None:
    d = Doc("render_tasks")
    p = "render_tasks"
    d.procs[p] = []
    d.roots.append('  <bpmn:collaboration id="Collaboration_render_tasks"><bpmn:participant id="Participant_tasks" '
                   'name="Every task kind 各類任務" processRef="render_tasks" /></bpmn:collaboration>\n')
    d.roots.append('  <bpmn:category id="Category_1"><bpmn:categoryValue id="CategoryValue_1" value="資料 Data" /></bpmn:category>\n')
    lanes = ('<bpmn:laneSet id="LaneSet_tasks"><bpmn:lane id="Lane_review" name="審核組">{a}</bpmn:lane>'
             '<bpmn:lane id="Lane_operations" name="Operations">{b}</bpmn:lane></bpmn:laneSet>')
    d.shape("Participant_tasks", 100, 40, 1790, 640, ' isHorizontal="true"')
    d.shape("Lane_review", 130, 40, 1760, 200, ' isHorizontal="true"')
    d.shape("Lane_operations", 130, 240, 1760, 440, ' isHorizontal="true"')
    row1 = [("startEvent", "Start_tasks", "開始", "event", ""), ("task", "Task_plain", "A plain task", "task", ""),
            ("userTask", "Task_user", "填寫申請表", "task", ' camunda:assignee="alice"'),
            ("manualTask", "Task_manual", "Sign the paper form by hand", "task", ""),
            ("scriptTask", "Task_script", "計算分數", "task", ' scriptFormat="python"'),
            ("serviceTask", "Task_service", "Call the registry", "task", ' camunda:type="external" camunda:topic="registry"'),
            ("sendTask", "Task_send", "發送通知", "task", ""), ("receiveTask", "Task_receive", "Wait for the reply", "task", ""),
            ("businessRuleTask", "Task_rule", "判定問題類別", "task", ' camunda:decisionRef="routing"'),
            ("callActivity", "Call_child", "Call the rectification process", "task", ' calledElement="rectification"'),
            ("endEvent", "End_tasks", "結束", "event", "")]
    x = 200
    for i, (tag, el_id, name, size, attrs) in enumerate(row1):
        body = '<bpmn:script>score = 1</bpmn:script>' if tag == "scriptTask" else ""
        d.node(p, tag, el_id, name, x, 130, size, attrs, body)
        if i:
            d.flow(p, f"Flow_r1_{i}", row1[i - 1][1], el_id)
        x += 150 if size == "task" or row1[min(i + 1, len(row1) - 1)][3] == "task" else 100
    mi_par = '<bpmn:multiInstanceLoopCharacteristics camunda:collection="items" camunda:elementVariable="item" />'
    mi_seq = '<bpmn:multiInstanceLoopCharacteristics isSequential="true" camunda:collection="items" camunda:elementVariable="item" />'
    loop = '<bpmn:standardLoopCharacteristics />'
    d.node(p, "subProcess", "Sub_collapsed", "每個部門自查(折疊)", 220, 310, body=mi_par + '<bpmn:startEvent id="Sub_collapsed_start" />')
    d.node(p, "userTask", "Task_mi_sequential", "Sequential review of each finding", 370, 310, body=mi_seq)
    d.node(p, "task", "Task_loop", "重複直到完成", 520, 310, body=loop)
    d.node(p, "adHocSubProcess", "AdHoc_collect", "Collect evidence", 670, 310, body='<bpmn:task id="AdHoc_inner" />')
    d.node(p, "serviceTask", "Task_compensate", "撤銷登記", 820, 430, attrs=' isForCompensation="true"')
    d.flow(p, "Flow_r2_1", "Sub_collapsed", "Task_mi_sequential")
    d.flow(p, "Flow_r2_2", "Task_mi_sequential", "Task_loop")
    d.flow(p, "Flow_r2_3", "Task_loop", "AdHoc_collect")
    # Expanded sub-process with children, then a transaction with a cancel end.
    d.procs[p].append("@@EXPANDED@@")
    d.shape("Sub_expanded", 980, 260, 400, 160, ' isExpanded="true"')
    inner: list[str] = []
    d.procs["_inner"] = inner
    d.node("_inner", "startEvent", "Sub_start", None, 1020, 340, "event")
    d.node("_inner", "userTask", "Sub_task", "內部任務", 1130, 340)
    d.node("_inner", "endEvent", "Sub_end", None, 1250, 340, "event")
    d.flow("_inner", "Flow_sub_1", "Sub_start", "Sub_task")
    d.flow("_inner", "Flow_sub_2", "Sub_task", "Sub_end")
    d.flow(p, "Flow_r2_4", "AdHoc_collect", "Sub_expanded")
    d.procs[p].append("@@TRANSACTION@@")
    d.shape("Trans_pay", 1450, 260, 400, 160, ' isExpanded="true"')
    trans: list[str] = []
    d.procs["_trans"] = trans
    d.node("_trans", "startEvent", "Trans_start", None, 1490, 340, "event")
    d.node("_trans", "task", "Trans_task", "Book the payment", 1600, 340)
    d.node("_trans", "endEvent", "Trans_cancel", "取消", 1740, 340, "event", body='<bpmn:cancelEventDefinition id="Ced_1" />')
    d.flow("_trans", "Flow_tr_1", "Trans_start", "Trans_task")
    d.flow("_trans", "Flow_tr_2", "Trans_task", "Trans_cancel")
    d.flow(p, "Flow_r2_5", "Sub_expanded", "Trans_pay")
    # Compensation boundary on the plain row-2 task, associated with its handler.
    d.node(p, "boundaryEvent", "Boundary_compensate", None, 690, 350, "event", attrs=' attachedToRef="AdHoc_collect"',
           body='<bpmn:compensateEventDefinition id="Comp_1" />')
    # Event sub-process with a non-interrupting timer start.
    d.procs[p].append("@@EVENTSUB@@")
    d.shape("EventSub_remind", 980, 480, 400, 150, ' isExpanded="true"')
    ev: list[str] = []
    d.procs["_ev"] = ev
    d.node("_ev", "startEvent", "EventSub_start", "每三天", 1030, 550, "event", attrs=' isInterrupting="false"',
           body=TIMER.format("Ted_es"))
    d.node("_ev", "sendTask", "EventSub_task", "提醒承辦人", 1150, 550)
    d.node("_ev", "endEvent", "EventSub_end", None, 1280, 550, "event")
    d.flow("_ev", "Flow_es_1", "EventSub_start", "EventSub_task")
    d.flow("_ev", "Flow_es_2", "EventSub_task", "EventSub_end")
    # Data: an object (a collection) written by a task, a store read by another.
    d.procs[p].append('<bpmn:dataObject id="DataObject_reports" isCollection="true" />')
    d.procs[p].append('<bpmn:dataObjectReference id="DataRef_reports" name="整改報告" dataObjectRef="DataObject_reports" />')
    d.shape("DataRef_reports", 262, 455, 36, 50, "", (240, 510, 80, 14))
    d.procs[p].append('<bpmn:dataStoreReference id="DataStore_registry" name="Case registry" />')
    d.shape("DataStore_registry", 445, 465, 50, 50, "", (430, 520, 80, 14))
    d.procs[p].append('<bpmn:dataObjectReference id="DataRef_state" name="Form" dataObjectRef="DataObject_reports">'
                      '<bpmn:dataState id="State_1" name="approved" /></bpmn:dataObjectReference>')
    d.shape("DataRef_state", 582, 455, 36, 50, "", (560, 510, 80, 27))
    d.di.append('<bpmndi:BPMNEdge id="DataOut_1_di" bpmnElement="DataOut_1"><di:waypoint x="220" y="350" />'
                '<di:waypoint x="270" y="455" /></bpmndi:BPMNEdge>')
    d.di.append('<bpmndi:BPMNEdge id="DataIn_1_di" bpmnElement="DataIn_1"><di:waypoint x="470" y="465" />'
                '<di:waypoint x="385" y="350" /></bpmndi:BPMNEdge>')
    # Artifacts: an annotation with its association, and a group.
    d.shape("Annotation_1", 720, 560, 180, 60)
    d.di.append('<bpmndi:BPMNEdge id="Assoc_1_di" bpmnElement="Assoc_1"><di:waypoint x="720" y="590" />'
                '<di:waypoint x="670" y="350" /></bpmndi:BPMNEdge>')
    d.di.append('<bpmndi:BPMNEdge id="Assoc_comp_di" bpmnElement="Assoc_comp"><di:waypoint x="690" y="368" />'
                '<di:waypoint x="690" y="430" /><di:waypoint x="770" y="430" /></bpmndi:BPMNEdge>')
    d.shape("Group_data", 200, 440, 450, 130)
    body = "\n    ".join(d.procs.pop(p))
    for key, store in (("_inner", inner), ("_trans", trans), ("_ev", ev)):
        d.procs.pop(key)
        for el_id, refs in d.flows.items():
            store[:] = [s.replace(f"@@{el_id}@@", "".join(refs)) for s in store]
    body = body.replace("@@EXPANDED@@", '<bpmn:subProcess id="Sub_expanded" name="展開的子流程">@@Sub_expanded@@'
                        + "".join(inner) + "</bpmn:subProcess>")
    body = body.replace("@@TRANSACTION@@", '<bpmn:transaction id="Trans_pay" name="Payment transaction">@@Trans_pay@@'
                        + "".join(trans) + "</bpmn:transaction>")
    body = body.replace("@@EVENTSUB@@", '<bpmn:subProcess id="EventSub_remind" name="定期提醒(事件子流程)" triggeredByEvent="true">'
                        + "".join(ev) + "</bpmn:subProcess>")
    # Data associations live inside their activities, after incoming/outgoing.
    body = body.replace('@@Sub_collapsed@@', '@@Sub_collapsed@@<bpmn:dataOutputAssociation id="DataOut_1">'
                        '<bpmn:targetRef>DataRef_reports</bpmn:targetRef></bpmn:dataOutputAssociation>')
    body = body.replace('@@Task_mi_sequential@@', '@@Task_mi_sequential@@<bpmn:property id="Property_1" name="__targetRef_placeholder" />'
                        '<bpmn:dataInputAssociation id="DataIn_1"><bpmn:sourceRef>DataStore_registry</bpmn:sourceRef>'
                        '<bpmn:targetRef>Property_1</bpmn:targetRef></bpmn:dataInputAssociation>')
    artifacts = ('<bpmn:textAnnotation id="Annotation_1"><bpmn:text>Evidence is collected in any order '
                 '(證據可任意次序收集)</bpmn:text></bpmn:textAnnotation>'
                 '<bpmn:association id="Assoc_1" sourceRef="Annotation_1" targetRef="AdHoc_collect" />'
                 '<bpmn:association id="Assoc_comp" associationDirection="One" sourceRef="Boundary_compensate" targetRef="Task_compensate" />'
                 '<bpmn:group id="Group_data" categoryValueRef="CategoryValue_1" />')
    lane_a = "".join(f"<bpmn:flowNodeRef>{r[1]}</bpmn:flowNodeRef>" for r in row1)
    lane_b = "".join(f"<bpmn:flowNodeRef>{i}</bpmn:flowNodeRef>" for i in (
        "Sub_collapsed", "Task_mi_sequential", "Task_loop", "AdHoc_collect", "Task_compensate", "Sub_expanded",
        "Trans_pay", "Boundary_compensate", "EventSub_remind"))
    d.procs[p] = [lanes.format(a=lane_a, b=lane_b), body, artifacts]
    d.write("Collaboration_render_tasks")


if __name__ == "__main__":
    tasks()
    from make_render_events import collaboration, events, vertical
    events()
    collaboration()
    vertical()
