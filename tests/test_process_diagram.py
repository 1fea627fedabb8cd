"""Process diagrams: every BPMN file carries a complete, tidy layout (DI), and static/ecaf/diagram.js draws it.

The layout tests read the XML only. The browser test serves a frozen page under the production CSP and
drives Debian's Chromium through Playwright; it skips when Chromium is missing, and fails instead under CI=true.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"
BPMN_FILES = sorted(PROCESSES.glob("*.bpmn"))
BPMN_DIST = ROOT / "node_modules" / "bpmn-js" / "dist"
ECAF_STATIC = ROOT / "static" / "ecaf"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
BPMN = "{%s}" % NS["bpmn"]

FLOW_NODE_TAGS = {
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask", "businessRuleTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
}
SUBPROCESS_TAGS = {"subProcess", "transaction", "adHocSubProcess"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    def contains(self, other: "Box", margin: float = 0) -> bool:
        return (other.x >= self.x + margin and other.right <= self.right - margin
                and other.y >= self.y + margin and other.bottom <= self.bottom - margin)

    def overlaps(self, other: "Box") -> bool:
        return (self.x < other.right and other.x < self.right
                and self.y < other.bottom and other.y < self.bottom)

    def contains_point(self, x: float, y: float) -> bool:
        return self.x <= x <= self.right and self.y <= y <= self.bottom


@dataclass
class Node:
    id: str
    kind: str
    parent: str | None          # the enclosing subprocess, if any
    attached_to: str | None     # boundary events only


class Model:
    """The semantic elements of one BPMN file and their DI."""

    def __init__(self, path: Path):
        self.path = path
        self.root = ET.parse(path).getroot()
        self.processes = self.root.findall("bpmn:process", NS)
        self.nodes: dict[str, Node] = {}
        self.flows: dict[str, tuple[str, str]] = {}
        for process in self.processes:
            self._collect(process, None)
        self.lanes = {lane.get("id"): [ref.text.strip() for ref in lane.findall("bpmn:flowNodeRef", NS)]
                      for lane in self.root.iter(BPMN + "lane")}
        self.participants = [p.get("id") for p in self.root.iter(BPMN + "participant")]
        self.shapes: dict[str, Box] = {}
        self.expanded: dict[str, bool] = {}
        self.edges: dict[str, list[tuple[float, float]]] = {}
        for shape in self.root.iter("{%s}BPMNShape" % NS["bpmndi"]):
            bounds = shape.find("dc:Bounds", NS)
            self.shapes[shape.get("bpmnElement")] = Box(*(float(bounds.get(k)) for k in ("x", "y", "width", "height")))
            self.expanded[shape.get("bpmnElement")] = shape.get("isExpanded") == "true"
        for edge in self.root.iter("{%s}BPMNEdge" % NS["bpmndi"]):
            self.edges[edge.get("bpmnElement")] = [(float(w.get("x")), float(w.get("y")))
                                                   for w in edge.findall("di:waypoint", NS)]

    def _collect(self, container: ET.Element, parent: str | None) -> None:
        for child in container:
            kind = _local(child.tag)
            if kind in FLOW_NODE_TAGS:
                self.nodes[child.get("id")] = Node(child.get("id"), kind, parent, child.get("attachedToRef"))
                if kind in SUBPROCESS_TAGS:
                    self._collect(child, child.get("id"))
            elif kind == "sequenceFlow":
                self.flows[child.get("id")] = (child.get("sourceRef"), child.get("targetRef"))


MODELS = {path.name: Model(path) for path in BPMN_FILES}


def test_there_are_processes_to_check():
    assert BPMN_FILES, f"no BPMN files in {PROCESSES}"
    for model in MODELS.values():
        assert model.processes, f"{model.path.name}: no <bpmn:process>"
        assert model.root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS) is not None, (
            f"{model.path.name}: no bpmndi:BPMNDiagram, so bpmn-js would draw an empty canvas")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_element_has_di(name):
    model = MODELS[name]
    missing_shapes = sorted(node_id for node_id in model.nodes if node_id not in model.shapes)
    missing_edges = sorted(flow_id for flow_id in model.flows if flow_id not in model.edges)
    missing_lanes = sorted(lane_id for lane_id in model.lanes if lane_id not in model.shapes)
    missing_participants = sorted(p for p in model.participants if p not in model.shapes)
    assert not missing_shapes, f"{name}: flow nodes without a BPMNShape: {missing_shapes}"
    assert not missing_edges, f"{name}: sequence flows without a BPMNEdge: {missing_edges}"
    assert not missing_lanes, f"{name}: lanes without a BPMNShape: {missing_lanes}"
    assert not missing_participants, f"{name}: participants without a BPMNShape: {missing_participants}"
    known = set(model.nodes) | set(model.flows) | set(model.lanes) | set(model.participants)
    dangling = sorted(set(model.shapes) - known) + sorted(set(model.edges) - known)
    assert not dangling, f"{name}: DI for elements that do not exist: {dangling}"
    short = sorted(flow_id for flow_id, points in model.edges.items() if len(points) < 2)
    assert not short, f"{name}: edges with fewer than two waypoints: {short}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layout_is_tidy(name):
    """Shapes sit inside their lane, pool and subprocess, do not overlap, and edges run between their ends."""
    model = MODELS[name]
    problems: list[str] = []
    lane_of = {node_id: lane_id for lane_id, refs in model.lanes.items() for node_id in refs}
    pools = [model.shapes[p] for p in model.participants if p in model.shapes]

    for node in model.nodes.values():
        box = model.shapes[node.id]
        centre = box.centre
        if pools and not any(pool.contains(box) for pool in pools):
            problems.append(f"{node.id} lies outside the pool")
        lane_id = lane_of.get(node.id)
        if lane_id and not model.shapes[lane_id].contains_point(*centre):
            problems.append(f"{node.id} is drawn outside its lane {lane_id}")
        if node.attached_to:
            host = model.shapes[node.attached_to]
            on_border = (host.x - 1 <= centre[0] <= host.right + 1 and host.y - 1 <= centre[1] <= host.bottom + 1
                         and not Box(host.x + 1, host.y + 1, host.width - 2, host.height - 2).contains_point(*centre))
            if not on_border:
                problems.append(f"boundary event {node.id} is not on the border of {node.attached_to}")
        elif node.parent and model.expanded.get(node.parent):
            if not model.shapes[node.parent].contains(box, margin=1):
                problems.append(f"{node.id} sticks out of its subprocess {node.parent}")

    siblings = [n for n in model.nodes.values() if not n.attached_to]
    for i, a in enumerate(siblings):
        for b in siblings[i + 1:]:
            if a.parent != b.parent and (a.id == b.parent or b.id == a.parent):
                continue
            if a.parent == b.parent or not (model.expanded.get(a.id) or model.expanded.get(b.id)):
                if model.shapes[a.id].overlaps(model.shapes[b.id]):
                    problems.append(f"{a.id} overlaps {b.id}")
    boundaries = [n for n in model.nodes.values() if n.attached_to]
    for i, a in enumerate(boundaries):
        for b in boundaries[i + 1:]:
            if model.shapes[a.id].overlaps(model.shapes[b.id]):
                problems.append(f"{a.id} overlaps {b.id}")

    for flow_id, (source, target) in model.flows.items():
        points = model.edges[flow_id]
        for end, node_id in (("starts", source), ("ends", target)):
            point = points[0] if end == "starts" else points[-1]
            box = model.shapes[node_id]
            grown = Box(box.x - 2, box.y - 2, box.width + 4, box.height + 4)
            if not grown.contains_point(*point):
                problems.append(f"{flow_id} {end} away from {node_id}")
        for (x1, y1), (x2, y2) in zip(points, points[1:]):
            if x1 != x2 and y1 != y2:
                problems.append(f"{flow_id} has a slanted segment")
        # An edge may touch its own ends and the subprocesses around them, but must not cross any other shape.
        allowed = {source, target}
        for node_id in (source, target):
            node = model.nodes[node_id]
            while node.parent:
                allowed.add(node.parent)
                node = model.nodes[node.parent]
            if node_id in model.nodes and model.nodes[node_id].attached_to:
                allowed.add(model.nodes[node_id].attached_to)
        for node in model.nodes.values():
            if node.id in allowed or model.expanded.get(node.id):
                continue
            box = model.shapes[node.id]
            for (x1, y1), (x2, y2) in zip(points, points[1:]):
                segment = Box(min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1))
                if Box(box.x + 1, box.y + 1, box.width - 2, box.height - 2).overlaps(
                        Box(segment.x - 0.5, segment.y - 0.5, segment.width + 1, segment.height + 1)):
                    problems.append(f"{flow_id} crosses {node.id}")
                    break

    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


# --- the viewer in a real browser -------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="{csp}">
  <title>Process diagram</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="bpmn-js/diagram-js.css">
  <link rel="stylesheet" href="bpmn-js/bpmn-js.css">
  <link rel="stylesheet" href="bpmn-js/bpmn-font/css/bpmn.css">
  <link rel="stylesheet" href="ecaf/diagram.css">
</head>
<body>
  <h1>Process diagram</h1>
  <div data-bpmn-diagram data-xml-url="{xml_url}" data-done="{done}" data-active="{active}" data-errored="{errored}"
       data-failure-message="The process diagram could not be shown."></div>
  <script src="bpmn-js/bpmn-navigated-viewer.production.min.js"></script>
  <script src="ecaf/diagram.js"></script>
</body>
</html>
"""

DONE = "start flow_start_to_open_episode open_episode prep_start pre_assessment_checklist gw_concern"
ACTIVE = "obtain_consent"
ERRORED = "record_concern"

WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def site(tmp_path):
    """A frozen copy of the viewer, our script and style, and the processes, served on 127.0.0.1."""
    if not (BPMN_DIST / "bpmn-navigated-viewer.production.min.js").exists():
        unavailable("node_modules/bpmn-js is missing (npm ci)")
    root = tmp_path / "site"
    (root / "bpmn-js").mkdir(parents=True)
    shutil.copy(BPMN_DIST / "bpmn-navigated-viewer.production.min.js", root / "bpmn-js")
    shutil.copytree(BPMN_DIST / "assets", root / "bpmn-js", dirs_exist_ok=True)
    shutil.copytree(ECAF_STATIC, root / "ecaf")
    shutil.copytree(PROCESSES, root / "processes", ignore=shutil.ignore_patterns("forms"))

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".bpmn": "application/xml", ".js": "text/javascript", ".woff2": "font/woff2"}

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _write_page(root: Path, name: str, xml_url: str) -> str:
    (root / name).write_text(PAGE.format(csp=CSP, xml_url=xml_url, done=DONE, active=ACTIVE, errored=ERRORED),
                             encoding="utf-8")
    return name


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    messages: list[tuple[str, str]] = []
    page.on("console", lambda msg: messages.append((msg.type, msg.text)))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    page.add_init_script(WATCH_CSP)
    page.goto(url)
    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state=ready], "
                           "[data-bpmn-diagram][data-diagram-state=failed]", state="attached", timeout=20_000)
    return page, messages, errors, failed


@pytest.mark.browser
def test_viewer_draws_the_episode_under_csp(site, browser, tmp_path):
    root, base = site
    name = _write_page(root, "episode.html", "processes/caf_episode.bpmn")
    model = MODELS["caf_episode.bpmn"]
    page, messages, errors, failed = _open(browser, f"{base}/{name}")
    try:
        container = page.locator("[data-bpmn-diagram]")
        assert container.get_attribute("data-diagram-state") == "ready", container.inner_text()
        assert container.get_attribute("data-diagram-warnings") == "0"
        assert container.get_attribute("data-diagram-missing") is None
        page.screenshot(path=str(tmp_path / "caf_episode.png"), full_page=True)

        assert errors == [], errors
        assert [m for m in messages if m[0] in ("error", "warning")] == [], messages
        assert page.evaluate("window.__cspViolations") == []

        for marker, ids in (("ecaf-done", DONE), ("ecaf-active", ACTIVE), ("ecaf-errored", ERRORED)):
            for element_id in ids.split():
                selector = f'.djs-element.{marker}[data-element-id="{element_id}"]'
                assert page.locator(selector).count() == 1, f"no {marker} marker on {element_id}"
        assert page.locator(".ecaf-active").count() == 1

        drawn = set(page.evaluate(
            "Array.from(document.querySelectorAll('.djs-element[data-element-id]'), e => e.dataset.elementId)"))
        expected = set(model.nodes) | set(model.flows) | set(model.lanes) | set(model.participants)
        assert expected - drawn == set(), f"not drawn: {sorted(expected - drawn)}"

        # Every file the page asked for was served, and the SVG is reachable from the keyboard.
        assert failed == [], failed
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('[data-bpmn-diagram]') !== null")
    finally:
        page.close()


@pytest.mark.browser
def test_viewer_falls_back_to_text_when_the_xml_is_missing(site, browser):
    root, base = site
    name = _write_page(root, "missing.html", "processes/no_such_process.bpmn")
    page, messages, errors, failed = _open(browser, f"{base}/{name}")
    try:
        container = page.locator("[data-bpmn-diagram]")
        assert container.get_attribute("data-diagram-state") == "failed"
        assert container.inner_text().strip() == "The process diagram could not be shown."
        assert page.locator("[data-bpmn-diagram] svg").count() == 0
        assert errors == []
        assert [url for url in failed if not url.endswith("/processes/no_such_process.bpmn")] == []
        assert page.evaluate("window.__cspViolations") == []
    finally:
        page.close()
