/*
 * What changed between two process versions, on the newer version's diagram: draws each
 * [data-bpmn-diff] element with the bpmn-js navigated viewer and marks the steps listed in
 * data-added and data-changed (space-separated BPMN ids). The page lists every change as text;
 * this only adds the picture.
 *
 * Needs the global BpmnJS (bpmn-navigated-viewer.production.min.js) loaded first.
 * When finished the container carries data-diagram-state="ready" or "failed".
 */
(function () {
  "use strict";

  var MARKERS = [["added", "ecaf-added"], ["changed", "ecaf-changed"]];

  function ids(value) {
    return (value || "").split(/\s+/).filter(function (id) { return id.length > 0; });
  }

  function finish(container, state) {
    container.setAttribute("data-diagram-state", state);
    container.setAttribute("aria-busy", "false");
  }

  function fail(container, viewer, error) {
    if (viewer) {
      try { viewer.destroy(); } catch (ignored) { /* half built */ }
    }
    var message = document.createElement("p");
    message.className = "ecaf-diagram__message";
    message.textContent = "The diagram could not be shown; every change is listed above.";
    container.replaceChildren(message);
    if (window.console && error) {
      window.console.warn("Diagram not shown:", error && error.message ? error.message : error);
    }
    finish(container, "failed");
  }

  function mark(viewer, container) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var first = null;
    MARKERS.forEach(function (pair) {
      ids(container.getAttribute("data-" + pair[0])).forEach(function (id) {
        var element = registry.get(id);
        if (!element) {
          return;  // a step of another file (a called process) is listed, not drawn
        }
        canvas.addMarker(element, pair[1]);
        if (!first && element.width && element.type !== "bpmn:SubProcess") {
          first = element;
        }
      });
    });
    canvas.zoom("fit-viewport", "auto");
    if (first && typeof canvas.scrollToElement === "function") {
      canvas.zoom(0.9);
      canvas.scrollToElement(first, { top: 120, bottom: 120, left: 240, right: 240 });
    }
  }

  function draw(container) {
    var url = container.getAttribute("data-xml-url");
    var viewer = null;
    container.setAttribute("data-diagram-state", "loading");
    container.setAttribute("aria-busy", "true");
    if (!url || typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      fail(container, null, new Error("the diagram viewer is not loaded"));
      return;
    }
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/xml, text/xml" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status + " for " + url);
        }
        return response.text();
      })
      .then(function (xml) {
        container.replaceChildren();
        viewer = new window.BpmnJS({ container: container });
        return viewer.importXML(xml);
      })
      .then(function () {
        mark(viewer, container);
        finish(container, "ready");
      })
      .catch(function (error) { fail(container, viewer, error); });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-bpmn-diff]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
