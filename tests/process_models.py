"""Edited copies of the shipped process model, for tests of versions, diffs and migration.

Each edit replaces text that must be there (it fails loudly if the shipped model no longer has
it), so the tests depend only on the parts of the model they change."""
from __future__ import annotations

from pathlib import Path

from .conftest import processes_copy

SIGNOFF_FORM = """{"type": "object", "title": "Sign off the assessment",
 "properties": {"signed_off": {"type": "boolean", "title": "The assessment is complete and accurate"}},
 "required": ["signed_off"]}"""

SIGNOFF_TASK = """<bpmn:userTask id="signoff" name="Sign off the assessment">
        <bpmn:extensionElements>
          <spiffworkflow:properties>
            <spiffworkflow:property name="formJsonSchemaFilename" value="signoff.schema.json"/>
          </spiffworkflow:properties>
        </bpmn:extensionElements>
        <bpmn:incoming>flow_complete_assessment_to_signoff</bpmn:incoming>
        <bpmn:outgoing>flow_signoff_to_submit_assessment</bpmn:outgoing>
      </bpmn:userTask>
      """

SIGNOFF_DIAGRAM = """<bpmndi:BPMNShape id="signoff_di" bpmnElement="signoff"><dc:Bounds x="2560" y="130" width="100" height="80"/></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="flow_complete_assessment_to_signoff_di" bpmnElement="flow_complete_assessment_to_signoff">
        <di:waypoint x="2320" y="170"/>
        <di:waypoint x="2560" y="170"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="flow_signoff_to_submit_assessment_di" bpmnElement="flow_signoff_to_submit_assessment">
        <di:waypoint x="2660" y="170"/>
        <di:waypoint x="2720" y="170"/>
        <di:waypoint x="2720" y="560"/>
      </bpmndi:BPMNEdge>
      """


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, f"the model no longer contains {old!r}"
    return text.replace(old, new, 1)


def edit(directory: Path, *replacements: tuple[str, str], filename: str = "caf_episode.bpmn") -> Path:
    path = directory / filename
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        text = replace_once(text, old, new)
    path.write_text(text, encoding="utf-8")
    return directory


def signoff_model(tmp_path: Path) -> Path:
    """The shipped model with a 28-day limit instead of 35 days, and a sign-off task between
    completing the assessment and storing it (with its form and its diagram shapes)."""
    directory = processes_copy(tmp_path)
    flow = 'sourceRef="complete_assessment" targetRef="submit_assessment"/>'
    edit(directory,
         ('caf_time_limit = "P35D"', 'caf_time_limit = "P28D"'),
         ('<bpmn:flowNodeRef>complete_assessment</bpmn:flowNodeRef>',
          '<bpmn:flowNodeRef>complete_assessment</bpmn:flowNodeRef>\n        <bpmn:flowNodeRef>signoff</bpmn:flowNodeRef>'),
         ('<bpmn:outgoing>flow_complete_assessment_to_submit_assessment</bpmn:outgoing>',
          '<bpmn:outgoing>flow_complete_assessment_to_signoff</bpmn:outgoing>'),
         ('<bpmn:incoming>flow_complete_assessment_to_submit_assessment</bpmn:incoming>',
          '<bpmn:incoming>flow_signoff_to_submit_assessment</bpmn:incoming>'),
         ('<bpmn:serviceTask id="submit_assessment"', SIGNOFF_TASK + '<bpmn:serviceTask id="submit_assessment"'),
         (f'<bpmn:sequenceFlow id="flow_complete_assessment_to_submit_assessment" {flow}',
          '<bpmn:sequenceFlow id="flow_complete_assessment_to_signoff" sourceRef="complete_assessment" '
          'targetRef="signoff"/>\n      <bpmn:sequenceFlow id="flow_signoff_to_submit_assessment" '
          'sourceRef="signoff" targetRef="submit_assessment"/>'),
         ('<bpmndi:BPMNEdge id="flow_complete_assessment_to_submit_assessment_di"',
          SIGNOFF_DIAGRAM + '<bpmndi:BPMNEdge id="flow_complete_assessment_to_submit_assessment_di"'))
    # The old edge's DI now points at a flow that no longer exists: drop it.
    path = directory / "caf_episode.bpmn"
    text = path.read_text(encoding="utf-8")
    start = text.index('<bpmndi:BPMNEdge id="flow_complete_assessment_to_submit_assessment_di"')
    end = text.index("</bpmndi:BPMNEdge>", start) + len("</bpmndi:BPMNEdge>")
    path.write_text(text[:start] + text[end:].lstrip(), encoding="utf-8")
    (directory / "forms" / "signoff.schema.json").write_text(SIGNOFF_FORM, encoding="utf-8")
    return directory
