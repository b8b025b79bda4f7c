"""The second half of the renderer's fixtures: every event and gateway kind, and a collaboration.
Run ``make_render_diagrams.py``, which calls these."""

from __future__ import annotations

from make_render_diagrams import COND, TIMER, Doc

DEFS = {
    "message": '<bpmn:messageEventDefinition id="{}" messageRef="Message_1" />',
    "signal": '<bpmn:signalEventDefinition id="{}" signalRef="Signal_1" />',
    "error": '<bpmn:errorEventDefinition id="{}" errorRef="Error_1" />',
    "escalation": '<bpmn:escalationEventDefinition id="{}" escalationRef="Escalation_1" />',
    "timer": TIMER, "conditional": COND,
    "link": '<bpmn:linkEventDefinition id="{}" name="to_gateways" />',
    "terminate": '<bpmn:terminateEventDefinition id="{}" />',
    "compensate": '<bpmn:compensateEventDefinition id="{}" />',
}
ROOTS = ('  <bpmn:message id="Message_1" name="reply" />\n  <bpmn:signal id="Signal_1" name="alarm" />\n'
         '  <bpmn:error id="Error_1" name="failed" errorCode="E1" />\n'
         '  <bpmn:escalation id="Escalation_1" name="late" escalationCode="LATE" />\n')


def _d(kind: str | None, n: int) -> str:
    return DEFS[kind].format(f"Def_{kind}_{n}") if kind else ""


def events() -> None:
    d = Doc("render_events")
    p = "render_events"
    d.procs[p] = []
    d.roots.append(ROOTS)
    y = 100
    # Row 1: throwing intermediate events, ending in a link throw.
    chain = [("startEvent", None, "Start"), ("intermediateThrowEvent", None, "None throw"),
             ("intermediateThrowEvent", "message", "Message throw"),
             ("intermediateThrowEvent", "escalation", "Escalation throw"),
             ("intermediateThrowEvent", "signal", "Signal throw"),
             ("intermediateThrowEvent", "compensate", "Compensation throw"),
             ("intermediateThrowEvent", "link", "Link throw")]
    for i, (tag, kind, name) in enumerate(chain):
        d.node(p, tag, f"Ev1_{i}", name, 140 + i * 120, y, "event", body=_d(kind, 10 + i))
        if i:
            d.flow(p, f"Flow_e1_{i}", f"Ev1_{i - 1}", f"Ev1_{i}")
    # Row 2: catching intermediate events after a link catch.
    y = 220
    chain = [("intermediateCatchEvent", "link", "Link catch"), ("intermediateCatchEvent", "timer", "等待三天"),
             ("intermediateCatchEvent", "message", "收到回覆"), ("intermediateCatchEvent", "signal", "Signal catch"),
             ("intermediateCatchEvent", "conditional", "Condition met")]
    for i, (tag, kind, name) in enumerate(chain):
        d.node(p, tag, f"Ev2_{i}", name, 140 + i * 120, y, "event", body=_d(kind, 20 + i))
        if i:
            d.flow(p, f"Flow_e2_{i}", f"Ev2_{i - 1}", f"Ev2_{i}")
    # Gateways: event-based, then exclusive with a default, inclusive, parallel, complex.
    d.node(p, "eventBasedGateway", "Gw_event", "Which first?", 760, y, "gateway")
    d.flow(p, "Flow_e2_gw", "Ev2_4", "Gw_event")
    d.node(p, "intermediateCatchEvent", "Ev_gw_timer", "1 day", 860, y, "event", body=_d("timer", 30))
    d.node(p, "intermediateCatchEvent", "Ev_gw_msg", "Reply", 860, y + 100, "event", body=_d("message", 31))
    d.flow(p, "Flow_gw_timer", "Gw_event", "Ev_gw_timer")
    d.flow(p, "Flow_gw_msg", "Gw_event", "Ev_gw_msg", points=[(760, y + 25), (760, y + 100), (842, y + 100)])
    d.node(p, "exclusiveGateway", "Gw_xor", "金額?", 960, y, "gateway", attrs=' default="Flow_xor_default"',
           di_extra=' isMarkerVisible="true"')
    d.flow(p, "Flow_gw_xor", "Ev_gw_timer", "Gw_xor")
    d.flow(p, "Flow_gw_xor2", "Ev_gw_msg", "Gw_xor", points=[(878, y + 100), (960, y + 100), (960, y + 25)])
    d.node(p, "inclusiveGateway", "Gw_or", None, 1080, y, "gateway")
    d.node(p, "parallelGateway", "Gw_and", None, 1080, y + 120, "gateway")
    d.flow(p, "Flow_xor_big", "Gw_xor", "Gw_or", name="大於一萬",
           body='<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">amount &gt; 10000</bpmn:conditionExpression>')
    d.flow(p, "Flow_xor_default", "Gw_xor", "Gw_and",
           points=[(985, y), (1020, y), (1020, y + 120), (1055, y + 120)])
    d.node(p, "complexGateway", "Gw_complex", "Complex", 1200, y, "gateway")
    d.flow(p, "Flow_or_complex", "Gw_or", "Gw_complex")
    d.flow(p, "Flow_and_complex", "Gw_and", "Gw_complex", points=[(1105, y + 120), (1200, y + 120), (1200, y + 25)])
    # A task with a conditional flow (mini-diamond) and a default flow (slash) leaving it.
    d.node(p, "userTask", "Task_decide", "Decide", 1320, y, attrs=' default="Flow_task_default"')
    d.flow(p, "Flow_complex_task", "Gw_complex", "Task_decide")
    d.node(p, "endEvent", "End_cond", "Approved", 1460, y, "event")
    d.node(p, "endEvent", "End_default", "Filed", 1460, y + 120, "event")
    d.flow(p, "Flow_task_cond", "Task_decide", "End_cond", name="ok",
           body='<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">approved == True</bpmn:conditionExpression>')
    d.flow(p, "Flow_task_default", "Task_decide", "End_default",
           points=[(1320, y + 40), (1320, y + 120), (1442, y + 120)])
    # Row 3: start events of each kind, each to an end event of another kind.
    y = 460
    starts = ["timer", "message", "signal", "conditional"]
    ends = ["message", "error", "escalation", "signal", "terminate", "compensate"]
    for i, kind in enumerate(starts):
        d.node(p, "startEvent", f"Start_{kind}", f"{kind.capitalize()} start", 140 + i * 120, y, "event",
               body=_d(kind, 40 + i))
    for i, kind in enumerate(ends):
        d.node(p, "endEvent", f"End_{kind}", f"{kind.capitalize()} end", 140 + i * 120, y + 110, "event",
               body=_d(kind, 50 + i))
    for i, kind in enumerate(starts):
        d.flow(p, f"Flow_se_{i}", f"Start_{kind}", f"End_{ends[i]}")
    # Row 4: one long task carrying every boundary event kind, some non-interrupting.
    y = 720
    d.node(p, "userTask", "Task_host", "處理投訴 (host of boundary events)", 500, y, w=560, h=90)
    bounds = [("timer", True), ("message", False), ("error", True), ("escalation", False), ("signal", True),
              ("conditional", False), ("compensate", True)]
    for i, (kind, interrupting) in enumerate(bounds):
        attrs = ' attachedToRef="Task_host"' + ("" if interrupting else ' cancelActivity="false"')
        cx = 260 + i * 80
        d.node(p, "boundaryEvent", f"Boundary_{kind}", f"{kind}", cx, y + 45, "event", attrs=attrs,
               body=_d(kind, 60 + i))
        if kind != "compensate":
            d.node(p, "endEvent", f"End_b_{kind}", None, cx, y + 150, "event")
            d.flow(p, f"Flow_b_{kind}", f"Boundary_{kind}", f"End_b_{kind}",
                   points=[(cx, y + 63), (cx, y + 132)])
    d.write(p)


def collaboration() -> None:
    d = Doc("render_collaboration")
    d.procs["citizen"] = []
    d.procs["hotline"] = []
    d.roots.append('  <bpmn:collaboration id="Collaboration_render">'
                   '<bpmn:participant id="Part_citizen" name="市民 Citizen" processRef="citizen" />'
                   '<bpmn:participant id="Part_hotline" name="24小時效能投訴熱線" processRef="hotline" />'
                   '<bpmn:participant id="Part_media" name="Media (black box)" />'
                   '@@MESSAGEFLOWS@@</bpmn:collaboration>\n')
    d.roots.append('  <bpmn:message id="Message_1" name="complaint_received" />\n')
    d.shape("Part_citizen", 100, 40, 1000, 150, ' isHorizontal="true"')
    d.node("citizen", "startEvent", "C_start", "Problem noticed", 180, 115, "event")
    d.node("citizen", "sendTask", "C_send", '<script>alert("x")</script> & "quotes"', 300, 115)
    d.node("citizen", "receiveTask", "C_receive", "收到處理結果", 700, 115)
    d.node("citizen", "endEvent", "C_end", None, 860, 115, "event")
    d.flow("citizen", "Flow_c1", "C_start", "C_send")
    d.flow("citizen", "Flow_c2", "C_send", "C_receive")
    d.flow("citizen", "Flow_c3", "C_receive", "C_end")
    d.shape("Part_hotline", 100, 240, 1000, 300, ' isHorizontal="true"')
    d.shape("Lane_intake", 130, 240, 970, 150, ' isHorizontal="true"')
    d.shape("Lane_handling", 130, 390, 970, 150, ' isHorizontal="true"')
    d.procs["hotline"].append('<bpmn:laneSet id="LaneSet_hotline"><bpmn:lane id="Lane_intake" name="效能辦受理">'
                              '<bpmn:flowNodeRef>H_start</bpmn:flowNodeRef><bpmn:flowNodeRef>H_register</bpmn:flowNodeRef>'
                              '</bpmn:lane><bpmn:lane id="Lane_handling" name="Handling department with a long name">'
                              '<bpmn:flowNodeRef>H_handle</bpmn:flowNodeRef><bpmn:flowNodeRef>H_answer</bpmn:flowNodeRef>'
                              '<bpmn:flowNodeRef>H_end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>')
    d.node("hotline", "startEvent", "H_start", "收到投訴", 320, 315, "event",
           body='<bpmn:messageEventDefinition id="Med_h" messageRef="Message_1" />')
    d.node("hotline", "userTask", "H_register", "Verify the complainant's contact details and the description "
           "of the problem before routing it", 440, 315)
    d.node("hotline", "userTask", "H_handle", "對照崗位職責逐條核實投訴人反映的問題並形成書面意見報效能辦審核後反饋", 580, 465)
    d.node("hotline", "sendTask", "H_answer", "Answer", 720, 465)
    d.node("hotline", "endEvent", "H_end", None, 860, 465, "event")
    d.flow("hotline", "Flow_h1", "H_start", "H_register")
    d.flow("hotline", "Flow_h2", "H_register", "H_handle")
    d.flow("hotline", "Flow_h3", "H_handle", "H_answer")
    d.flow("hotline", "Flow_h4", "H_answer", "H_end")
    d.shape("Part_media", 100, 590, 1000, 60, ' isHorizontal="true"')
    flows: list[str] = []
    d.roots, saved = flows, d.roots
    d.flow("", "MsgFlow_complaint", "C_send", "H_start", name="投訴", tag="messageFlow",
           points=[(320, 155), (320, 297)])
    d.flow("", "MsgFlow_answer", "H_answer", "C_receive", name="answer", tag="messageFlow",
           points=[(720, 425), (720, 155)])
    d.flow("", "MsgFlow_media", "Part_media", "H_register", name="報導", tag="messageFlow",
           points=[(440, 590), (440, 560), (400, 560), (400, 355)])
    d.roots = saved
    d.roots[0] = d.roots[0].replace("@@MESSAGEFLOWS@@", "".join(flows))
    d.write("Collaboration_render")


def vertical() -> None:
    """A pool drawn top to bottom with two lanes, and a collapsed sub-process whose content is
    on a plane of its own (as Camunda Modeler 5 writes it)."""
    d = Doc("render_vertical")
    p = "vertical"
    d.procs[p] = []
    d.roots.append('  <bpmn:collaboration id="Collaboration_vertical"><bpmn:participant id="Part_vertical" '
                   'name="縱向泳池 Vertical pool" processRef="vertical" /></bpmn:collaboration>\n')
    d.shape("Part_vertical", 100, 40, 440, 560, ' isHorizontal="false"')
    d.shape("Lane_left", 100, 70, 220, 530, ' isHorizontal="false"')
    d.shape("Lane_right", 320, 70, 220, 530, ' isHorizontal="false"')
    d.procs[p].append('<bpmn:laneSet id="LaneSet_vertical"><bpmn:lane id="Lane_left" name="申請人">'
                      '<bpmn:flowNodeRef>V_start</bpmn:flowNodeRef><bpmn:flowNodeRef>V_apply</bpmn:flowNodeRef>'
                      '</bpmn:lane><bpmn:lane id="Lane_right" name="Reviewer">'
                      '<bpmn:flowNodeRef>V_drill</bpmn:flowNodeRef><bpmn:flowNodeRef>V_end</bpmn:flowNodeRef>'
                      '</bpmn:lane></bpmn:laneSet>')
    d.node(p, "startEvent", "V_start", "Start", 210, 130, "event", label_below=False)
    d.node(p, "userTask", "V_apply", "提出申請", 210, 250)
    d.node(p, "subProcess", "V_drill", "Review (collapsed, drill down)", 430, 380,
           body='<bpmn:startEvent id="V_inner_start" /><bpmn:task id="V_inner_task" name="Check" />'
                '<bpmn:sequenceFlow id="V_inner_flow" sourceRef="V_inner_start" targetRef="V_inner_task" />',
           di_extra=' isExpanded="false"')
    d.node(p, "endEvent", "V_end", "Done", 430, 520, "event", label_below=False)
    d.flow(p, "V_f1", "V_start", "V_apply", points=[(210, 148), (210, 210)])
    d.flow(p, "V_f2", "V_apply", "V_drill", name="submitted", points=[(210, 290), (210, 380), (380, 380)])
    d.flow(p, "V_f3", "V_drill", "V_end", points=[(430, 420), (430, 502)])
    extra = ('  <bpmndi:BPMNDiagram id="BPMNDiagram_drill"><bpmndi:BPMNPlane id="BPMNPlane_drill" '
             'bpmnElement="V_drill"><bpmndi:BPMNShape id="V_inner_start_di" bpmnElement="V_inner_start">'
             '<dc:Bounds x="180" y="100" width="36" height="36" /></bpmndi:BPMNShape>'
             '<bpmndi:BPMNShape id="V_inner_task_di" bpmnElement="V_inner_task"><dc:Bounds x="270" y="78" '
             'width="100" height="80" /></bpmndi:BPMNShape><bpmndi:BPMNEdge id="V_inner_flow_di" '
             'bpmnElement="V_inner_flow"><di:waypoint x="216" y="118" /><di:waypoint x="270" y="118" />'
             '</bpmndi:BPMNEdge></bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n')
    d.write("Collaboration_vertical", extra=extra)
