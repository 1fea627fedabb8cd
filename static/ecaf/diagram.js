/*
 * Process diagrams: draws each [data-bpmn-diagram] element with the bpmn-js navigated viewer.
 *
 * Markup:
 *   <div data-bpmn-diagram data-xml-url="/processes/caf_episode.bpmn"
 *        data-done="start open_episode" data-active="obtain_consent" data-errored=""
 *        data-failure-message="The process diagram could not be shown."></div>
 * A comparison of two versions marks data-added and data-changed instead.
 *
 * Needs the global BpmnJS (bpmn-navigated-viewer.production.min.js) loaded first.
 * When finished the container carries data-diagram-state="ready" or "failed".
 */
(function () {
  "use strict";

  var MARKERS = [
    ["done", "ecaf-done"],
    ["active", "ecaf-active"],
    ["errored", "ecaf-errored"],
    ["added", "ecaf-added"],
    ["changed", "ecaf-changed"]
  ];
  var DEFAULT_FAILURE = "The process diagram could not be shown.";

  function ids(value) {
    return (value || "").split(/\s+/).filter(function (id) { return id.length > 0; });
  }

  function setState(container, state) {
    container.setAttribute("data-diagram-state", state);
    container.setAttribute("aria-busy", "false");
    container.dispatchEvent(new CustomEvent("ecaf:diagram-" + state, { bubbles: true }));
  }

  function fail(container, viewer, error) {
    if (viewer) {
      try { viewer.destroy(); } catch (ignored) { /* the viewer may be half built */ }
    }
    var message = document.createElement("p");
    message.className = "ecaf-diagram__message";
    message.textContent = container.getAttribute("data-failure-message") || DEFAULT_FAILURE;
    container.replaceChildren(message);
    if (window.console && error) {
      window.console.warn("Process diagram not shown:", error && error.message ? error.message : error);
    }
    setState(container, "failed");
  }

  // A collapsed subprocess hides its content on another plane: mark it as well, so the state shows on the main view.
  function collapsedAncestors(registry, element) {
    var found = [];
    var bo = element.businessObject && element.businessObject.$parent;
    while (bo) {
      var shape = registry.get(bo.id);
      if (shape && shape.collapsed) {
        found.push(shape);
      }
      bo = bo.$parent;
    }
    return found;
  }

  function applyMarkers(viewer, container) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var missing = [];
    MARKERS.forEach(function (pair) {
      ids(container.getAttribute("data-" + pair[0])).forEach(function (id) {
        var element = registry.get(id);
        if (!element) {
          missing.push(id);
          return;
        }
        canvas.addMarker(element, pair[1]);
        collapsedAncestors(registry, element).forEach(function (shape) {
          canvas.addMarker(shape, pair[1]);
        });
      });
    });
    if (missing.length) {
      container.setAttribute("data-diagram-missing", missing.join(" "));
    }
  }

  // The whole procedure is too wide to read at once: show the current step readably, else all of it.
  function focusOnCurrentStep(viewer, container) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var wanted = ids(container.getAttribute("data-active") || container.getAttribute("data-added")
                     || container.getAttribute("data-changed"));
    var current = wanted.map(function (id) { return registry.get(id); })
      .filter(function (element) { return element && element.type !== "bpmn:SubProcess" && element.width; })[0];
    canvas.zoom("fit-viewport", "auto");
    if (current && typeof canvas.scrollToElement === "function") {
      canvas.zoom(0.9);
      canvas.scrollToElement(current, { top: 120, bottom: 120, left: 240, right: 240 });
    }
  }

  function draw(container) {
    var url = container.getAttribute("data-xml-url");
    var viewer = null;
    container.setAttribute("data-diagram-state", "loading");
    container.setAttribute("aria-busy", "true");
    if (!url || typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      fail(container, null, new Error(url ? "the diagram viewer is not loaded" : "no data-xml-url"));
      return Promise.resolve();
    }
    return window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/xml, text/xml" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status + " for " + url);
        }
        return response.text();
      })
      .then(function (xml) {
        container.replaceChildren();  // the text shown without JavaScript
        viewer = new window.BpmnJS({ container: container });
        return viewer.importXML(xml);
      })
      .then(function (result) {
        var warnings = (result && result.warnings) || [];
        container.setAttribute("data-diagram-warnings", String(warnings.length));
        warnings.forEach(function (warning) {
          window.console.warn("Process diagram import warning:", warning && warning.message ? warning.message : warning);
        });
        applyMarkers(viewer, container);
        focusOnCurrentStep(viewer, container);
        setState(container, "ready");
      })
      .catch(function (error) {
        fail(container, viewer, error);
      });
  }

  function drawAll() {
    var containers = document.querySelectorAll("[data-bpmn-diagram]");
    Array.prototype.forEach.call(containers, function (container) {
      if (!container.hasAttribute("data-diagram-state")) {
        draw(container);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
