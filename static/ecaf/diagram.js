/*
 * Process diagrams: draws each [data-bpmn-diagram] element with the bpmn-js navigated viewer.
 *
 * Markup:
 *   <div data-bpmn-diagram data-xml-url="/processes/caf_episode.bpmn"
 *        data-done="start open_episode" data-active="obtain_consent request_wait" data-errored=""
 *        data-current="obtain_consent" data-last=""
 *        data-failure-message="The process diagram could not be shown."></div>
 * data-current names the user tasks waiting for someone (the view opens on them, never on an event
 * that only listens); data-last names the last step a person completed (a closed episode opens there).
 * A comparison of two versions marks data-added and data-changed instead.
 *
 * Needs the global BpmnJS (bpmn-navigated-viewer.production.min.js) loaded first.
 * When finished the container carries data-diagram-state="ready" or "failed", and data-focused
 * the ids the view opened on.
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
  var STAGE_MARKED = { done: true, active: true, errored: true };  // where an episode is, not a comparison
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

  // An expanded subprocess holds steps: marked by its outline only, so the step inside stands out.
  function isStage(element) {
    return element.type === "bpmn:SubProcess" && !element.collapsed;
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
        canvas.addMarker(element, isStage(element) && STAGE_MARKED[pair[0]] ? pair[1] + "-stage" : pair[1]);
        collapsedAncestors(registry, element).forEach(function (shape) {
          canvas.addMarker(shape, pair[1]);
        });
      });
    });
    if (missing.length) {
      container.setAttribute("data-diagram-missing", missing.join(" "));
    }
  }

  var READABLE_ZOOM = 0.9;  // labels at about the size of the page's small text
  var LEAST_ZOOM = 0.7;     // below this a label can no longer be read: show less rather than smaller
  var ROOM = 80;            // diagram units kept around what is shown

  function elementsOf(registry, value) {
    return ids(value).map(function (id) { return registry.get(id); })
      .filter(function (element) { return element && element.width && element.type !== "bpmn:SubProcess"; });
  }

  // Events wait ("Service requested", a deadline): a person's step is a task.
  function isTask(element) {
    return /Task$/.test(element.type) || element.type === "bpmn:CallActivity";
  }

  // A closed episode: from the last step a person completed, follow the steps done after it to where
  // the path stopped (the refusal recorded, the CAF closed).
  function endOfDonePath(start, done) {
    var current = start;
    var seen = {};
    for (;;) {
      seen[current.id] = true;
      var next = (current.outgoing || []).filter(function (flow) {
        return flow.type === "bpmn:SequenceFlow" && flow.target && done[flow.target.id] && !seen[flow.target.id];
      }).map(function (flow) { return flow.target; })[0];
      if (!next) {
        return current;
      }
      current = next;
    }
  }

  // Centre the view on the elements at a readable zoom; if they do not all fit readably, on the last one.
  function showAround(canvas, elements) {
    var outer = canvas.viewbox().outer;
    var box = bounds(elements);
    var zoom = Math.min(READABLE_ZOOM, outer.width / (box.width + 2 * ROOM), outer.height / (box.height + 2 * ROOM));
    if (zoom < LEAST_ZOOM) {
      box = bounds(elements.slice(-1));
      zoom = READABLE_ZOOM;
    }
    var centreX = box.x + box.width / 2;
    var centreY = box.y + box.height / 2;
    canvas.viewbox({ x: centreX - outer.width / (2 * zoom), y: centreY - outer.height / (2 * zoom),
                     width: outer.width / zoom, height: outer.height / zoom });
  }

  function bounds(elements) {
    var left = Math.min.apply(null, elements.map(function (e) { return e.x; }));
    var top = Math.min.apply(null, elements.map(function (e) { return e.y; }));
    var right = Math.max.apply(null, elements.map(function (e) { return e.x + e.width; }));
    var bottom = Math.max.apply(null, elements.map(function (e) { return e.y + e.height; }));
    return { x: left, y: top, width: right - left, height: bottom - top };
  }

  // What the view opens on: the current user tasks (data-current, with the last step done, data-last),
  // else a closed episode's last step followed along the done path, else active tasks, failures, or
  // what a comparison marks.
  function focusElements(registry, container) {
    var current = elementsOf(registry, container.getAttribute("data-current"));
    var last = elementsOf(registry, container.getAttribute("data-last"))[0];
    if (current.length) {
      // With the step done before it when both fit readably: where the episode came from.
      return last && current.indexOf(last) < 0 ? [last].concat(current) : current;
    }
    if (last) {
      var done = {};
      ids(container.getAttribute("data-done")).forEach(function (id) { done[id] = true; });
      var end = endOfDonePath(last, done);
      return end === last ? [last] : [last, end];
    }
    var active = elementsOf(registry, container.getAttribute("data-active")).filter(isTask);
    if (active.length) {
      return active.slice(0, 1);
    }
    var marked = ["data-errored", "data-added", "data-changed"].map(function (name) {
      return elementsOf(registry, container.getAttribute(name));
    }).filter(function (found) { return found.length; })[0];
    return marked ? marked.slice(0, 1) : [];
  }

  // The whole procedure is too wide to read at once: open on where the episode is, readably; else all of it.
  function focusOnCurrentStep(viewer, container) {
    var canvas = viewer.get("canvas");
    var focus = focusElements(viewer.get("elementRegistry"), container);
    canvas.zoom("fit-viewport", "auto");
    if (focus.length) {
      showAround(canvas, focus);
      container.setAttribute("data-focused", focus.map(function (e) { return e.id; }).join(" "));
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
