"""Checks on a BPMN document before SpiffWorkflow parses it: the XML, the BPMN schema, elements
eCAF does not run, extensions from other tools, and the shape of each flow (dead ends,
unreachable steps, flows that point nowhere). Each problem names the element's id and name."""
from __future__ import annotations

import copy
import re
import threading
from collections import defaultdict, deque

from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREFIXES = {BPMN_NS: "bpmn", SPIFF_NS: "spiffworkflow", XSI_NS: "xsi",
            "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi", "http://www.omg.org/spec/DD/20100524/DC": "dc",
            "http://www.omg.org/spec/DD/20100524/DI": "di"}
MAX_SCHEMA_PROBLEMS = 20

# Elements SpiffWorkflow could parse or BPMN allows, but that eCAF does not run: why, and what to use.
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported: use an exclusive, inclusive or parallel gateway",
    "transaction": "transactions are not supported: use an embedded subprocess",
    "adHocSubProcess": "ad-hoc subprocesses are not supported: use an embedded subprocess",
    "businessRuleTask": "business rule (DMN) tasks are not supported: use a script task",
    "compensateEventDefinition": "compensation events are not supported",
    "cancelEventDefinition": "cancel events (which end transactions) are not supported",
    "choreography": "choreographies are not supported",
    "conversation": "conversations are not supported",
}
FLOW_NODES = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask",
    "subProcess", "transaction", "adHocSubProcess", "callActivity",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
}
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}

_schema_lock = threading.Lock()  # lxml keeps a schema's error log on the schema object


def _local(element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _is_bpmn(element, *names: str) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace == BPMN_NS and \
        (not names or _local(element) in names)


def label(element) -> str:
    """How a problem names an element: its id, then its name when it has one."""
    ident, name = element.get("id"), (element.get("name") or "").strip()
    if not ident:
        return f"bpmn:{_local(element)}"
    return f"'{ident}'" + (f" ({name})" if name else "")


def _prefixed(text: str) -> str:
    for namespace, prefix in PREFIXES.items():
        text = text.replace("{" + namespace + "}", prefix + ":")
    return re.sub(r"\{[^}]+\}", "", text)


def parse(filename: str, data: bytes) -> tuple[etree._Element | None, list[str]]:
    """The document's root, or None and why it does not parse. Entities and network access are off."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser), []
    except etree.XMLSyntaxError as exc:
        message = re.sub(r",? line \d+, column \d+$", "", exc.msg or "")
        return None, [f"{filename} line {exc.lineno}: the XML does not parse: {message}"]


def schema_problems(filename: str, root) -> list[str]:
    """BPMN 2.0 and Spiff XSD validation, in words: where, which element, what is wrong."""
    document = copy.deepcopy(root)  # the validator's preprocessing edits the tree
    with _schema_lock:
        VALIDATOR.preprocess(document)
        if VALIDATOR.validator.validate(document):
            return []
        errors = [(e.line, e.message, e.path) for e in VALIDATOR.validator.error_log]
    problems = []
    for line, message, path in errors[:MAX_SCHEMA_PROBLEMS]:
        problems.append(f"{filename} line {line}: {_where(document, path)}{_schema_message(message)}")
    if len(errors) > MAX_SCHEMA_PROBLEMS:
        problems.append(f"{filename}: and {len(errors) - MAX_SCHEMA_PROBLEMS} more schema problems")
    return problems


def _where(document, path: str | None) -> str:
    """The nearest element with an id around the one the schema refused."""
    if not path:
        return ""
    try:
        found = document.xpath(path, namespaces={k: v for k, v in document.nsmap.items() if k})
    except etree.XPathError:
        return ""
    element = found[0] if found else None
    while element is not None and not element.get("id"):
        element = element.getparent()
    return f"in {label(element)}: " if element is not None else ""


def _schema_message(message: str) -> str:
    message = re.sub(r"\s*Expected is( one of)? \(.*?\)\.?", "", message)
    element = re.match(r"Element '([^']+)': This element is not expected\.", message)
    if element:
        return f"{_prefixed(element.group(1))} is not allowed here (BPMN schema)"
    attribute = re.match(r"Element '([^']+)', attribute '([^']+)': (.*)", message)
    if attribute:
        text = _prefixed(attribute.group(3)).rstrip(". ")
        return f"{text[:1].lower()}{text[1:]} (on {_prefixed(attribute.group(1))}, BPMN schema)"
    return _prefixed(message).rstrip(". ") + " (BPMN schema)"


def unsupported_problems(root) -> list[str]:
    problems = []
    for element in root.iter():
        if not _is_bpmn(element):
            continue
        reason = UNSUPPORTED.get(_local(element))
        if reason:
            problems.append(f"{label(_flow_node_of(element))}: {reason}")
        elif element.get("isForCompensation") == "true":
            problems.append(f"{label(element)}: compensation handlers are not supported")
    return problems


def _flow_node_of(element):
    """The step (or process) an event definition or other detail belongs to."""
    current = element
    while current is not None and not (_is_bpmn(current) and current.get("id")
                                       and _local(current) in FLOW_NODES | CONTAINERS):
        current = current.getparent()
    return current if current is not None else element


def _nearest_with_id(element):
    current = element
    while current is not None and not (_is_bpmn(current) and current.get("id")):
        current = current.getparent()
    return current if current is not None else element


def foreign_extension_problems(root) -> list[str]:
    """Attributes and extension elements from other tools (Camunda, Zeebe, Flowable...) would be
    silently ignored: a model that relies on them would not do what its author expects."""
    found: dict = defaultdict(set)
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        for element in process.iter():
            if not isinstance(element.tag, str):
                continue
            namespace = etree.QName(element).namespace
            if namespace not in (BPMN_NS, SPIFF_NS):
                found[_nearest_with_id(element)].add(_prefixed_name(element.nsmap, element.tag))
                continue
            for attribute in element.attrib:
                attr_ns = etree.QName(attribute).namespace
                if attr_ns not in (None, BPMN_NS, SPIFF_NS, XSI_NS):
                    found[_nearest_with_id(element)].add(_prefixed_name(element.nsmap, attribute))
    return [f"{label(element)}: uses {', '.join(sorted(names))} from another modelling tool, which eCAF does not read "
            "(use the spiffworkflow extensions)" for element, names in found.items()]


def _prefixed_name(nsmap: dict, tag: str) -> str:
    qname = etree.QName(tag)
    prefix = next((p for p, ns in nsmap.items() if ns == qname.namespace and p), None)
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def flow_problems(root) -> list[str]:
    """Every step can be reached from a start event, and every step but an end event leads on."""
    problems = []
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        problems += _container_problems(process)
    return problems


def _container_problems(container) -> list[str]:
    nodes = {child.get("id"): child for child in container
             if _is_bpmn(child) and _local(child) in FLOW_NODES and child.get("id")}
    outgoing: dict[str, list[str]] = defaultdict(list)
    problems = []
    for flow in container:
        if not _is_bpmn(flow, "sequenceFlow"):
            continue
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        for end, ref in (("comes from", source), ("leads to", target)):
            if ref not in nodes:
                problems.append(f"{label(flow)}: the sequence flow {end} '{ref}', which is not a step of "
                                f"{label(container)}")
        if source in nodes:  # a flow to nowhere is reported once, not again as a dead end
            outgoing[source].append(target)
    _follow_links(nodes, outgoing)
    attached: dict[str, list[str]] = defaultdict(list)
    for ident, node in nodes.items():
        if _local(node) == "boundaryEvent":
            attached[node.get("attachedToRef")].append(ident)
    event_subprocesses = [i for i, n in nodes.items()
                          if _local(n) == "subProcess" and n.get("triggeredByEvent") == "true"]
    starts = [i for i, n in nodes.items() if _local(n) == "startEvent"]
    if not starts and nodes:
        problems.append(f"{label(container)}: has no start event")
    reached = _reachable(starts + event_subprocesses, outgoing, attached)
    for ident, node in nodes.items():
        kind = _local(node)
        if ident not in reached:
            problems.append(f"{label(node)}: cannot be reached: no path leads to it from the start event")
            continue
        if kind != "endEvent" and ident not in event_subprocesses and not outgoing.get(ident):
            problems.append(f"{label(node)}: a dead end: nothing follows it (connect it to the next step "
                            "or to an end event)")
        if kind in CONTAINERS:
            problems += _container_problems(node)
    return problems


def _follow_links(nodes: dict, outgoing: dict) -> None:
    """A throwing link event continues at the catching link event of the same name."""
    def link_name(node):
        link = node.find(f"{{{BPMN_NS}}}linkEventDefinition")
        return link.get("name") if link is not None else None
    catchers = defaultdict(list)
    for ident, node in nodes.items():
        if _local(node) == "intermediateCatchEvent" and link_name(node):
            catchers[link_name(node)].append(ident)
    for ident, node in nodes.items():
        if _local(node) == "intermediateThrowEvent" and link_name(node):
            outgoing[ident] += catchers.get(link_name(node), [])


def _reachable(roots: list[str], outgoing: dict, attached: dict) -> set[str]:
    reached, queue = set(roots), deque(roots)
    while queue:
        current = queue.popleft()
        for following in outgoing.get(current, []) + attached.get(current, []):
            if following not in reached:
                reached.add(following)
                queue.append(following)
    return reached


def check_document(filename: str, data: bytes) -> tuple[etree._Element | None, list[str]]:
    """One BPMN file: its parsed root and everything wrong with it that can be told without
    building its specs."""
    root, problems = parse(filename, data)
    if root is None:
        return None, problems
    if root.getroottree().docinfo.doctype:
        return root, [f"{filename}: a DOCTYPE is not allowed in a BPMN file"]  # entities have no place in a model
    if not _is_bpmn(root, "definitions"):
        return root, [f"{filename}: this is not a BPMN 2.0 document (its root element is {_prefixed(root.tag)})"]
    problems = schema_problems(filename, root)
    if problems:
        return root, problems  # the checks below assume a well-formed model
    return root, unsupported_problems(root) + foreign_extension_problems(root) + flow_problems(root)
