/*
 * The process owners' editors: the diagram editor of a draft and the live preview of a form.
 *
 * Diagram editor ([data-bpmn-modeler], needs the global BpmnJS of bpmn-modeler.production.min.js):
 *   loads data-xml-url into the modeler; "Save the diagram" posts {file, xml, revision} as JSON to
 *   data-save-url and shows the validation result the server answers with in #validation.
 *   "Validate" saves unsaved changes first, then shows the result without leaving the page; "Submit
 *   for review" saves unsaved changes before it submits (a save after approval withdraws it). The container carries data-modeler-state
 *   (loading, ready, failed) and data-dirty ("true" while changes are unsaved).
 *
 * Form preview ([data-form-editor]): as the JSON Schema or UI schema is typed, posts both to
 *   data-preview-url and puts the fragment it answers into [data-form-preview]. The "Preview" button
 *   does the same without JavaScript, by reloading the page.
 */
(function () {
  "use strict";

  var PREVIEW_DELAY_MS = 500;

  function csrfToken() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  function json(response) {
    var type = response.headers.get("Content-Type") || "";
    if (type.indexOf("application/json") === -1) {
      // A sign-in page or an error page: the session ended or the request was refused.
      throw new Error("Nothing was saved: you may have been signed out. Sign in again in another tab, " +
                      "then save again (your changes are still here).");
    }
    return response.json();
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // The same markup as the template's validation_result macro.
  function showProblems(problems) {
    var region = document.getElementById("validation");
    if (!region) { return; }
    var box;
    if (problems.length) {
      box = element("div", "ecaf-validation__problems");
      var count = problems.length;
      box.appendChild(element("h3", "govuk-heading-s", count + " problem" + (count === 1 ? " stops" : "s stop") +
                                                      " this draft being deployed"));
      var list = element("ul", "govuk-list govuk-list--bullet");
      problems.forEach(function (problem) { list.appendChild(element("li", null, problem)); });
      box.appendChild(list);
    } else {
      box = element("div", "ecaf-validation__ok");
      var line = element("p", "govuk-body govuk-!-margin-bottom-0");
      line.appendChild(element("strong", null, "No problems found: this draft can be submitted for review."));
      box.appendChild(line);
    }
    region.replaceChildren(box);
  }

  function setRevision(container, revision) {
    container.setAttribute("data-revision", String(revision));
    Array.prototype.forEach.call(document.querySelectorAll('input[name="revision"]'), function (input) {
      input.value = String(revision);
    });
  }

  function time() {
    var now = new Date();
    return ("0" + now.getHours()).slice(-2) + ":" + ("0" + now.getMinutes()).slice(-2);
  }

  function startModeler(container) {
    var canvas = container.querySelector("[data-modeler-canvas]");
    var saveButton = container.querySelector("[data-modeler-save]");
    var status = container.querySelector("[data-modeler-status]");
    var validateForm = container.querySelector("[data-modeler-validate]");
    var deployForm = document.querySelector("[data-modeler-deploy]");
    var modeler = null;
    var dirty = false;
    var saving = null;

    function say(text, isError) {
      status.textContent = text;
      status.className = "govuk-body govuk-!-margin-bottom-0" + (isError ? " ecaf-status--error" : "");
    }

    function setDirty(value) {
      dirty = value;
      container.setAttribute("data-dirty", value ? "true" : "false");
    }

    function fail(error) {
      container.setAttribute("data-modeler-state", "failed");
      var message = element("p", "govuk-body", "The diagram editor could not be opened (" +
                            (error && error.message ? error.message : error) + "). Download the file, change " +
                            "it in another editor and upload it below.");
      canvas.replaceChildren(message);
    }

    // One save at a time; resolves true when the draft holds what the modeler shows.
    function save() {
      if (saving) { return saving; }
      say("Saving…");
      saving = modeler.saveXML({ format: true })
        .then(function (result) {
          return window.fetch(container.getAttribute("data-save-url"), {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
            body: JSON.stringify({ file: container.getAttribute("data-file"), xml: result.xml,
                                   revision: container.getAttribute("data-revision") })
          });
        })
        .then(json)
        .then(function (answer) {
          if (!answer.saved) {
            say("Not saved: " + answer.problems.join(" "), true);
            return false;
          }
          setRevision(container, answer.revision);
          setDirty(false);
          showProblems(answer.problems || []);
          say("Saved at " + time() + "." + (answer.withdrawn ? " The draft changed, so it is back to editing: " +
                                            "reload the page to submit it for review again." : ""));
          return true;
        })
        .catch(function (error) {
          say(error.message, true);
          return false;
        })
        .then(function (saved) {
          saving = null;
          return saved;
        });
      return saving;
    }

    function validate() {
      say("Checking…");
      var body = new URLSearchParams({ csrf_token: csrfToken() });
      return window.fetch(container.getAttribute("data-validate-url"), {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
      })
        .then(json)
        .then(function (answer) {
          showProblems(answer.problems || []);
          say("Checked at " + time() + ".");
        })
        .catch(function (error) { say(error.message, true); });
    }

    container.setAttribute("data-modeler-state", "loading");
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      fail(new Error("the editor did not load"));
      return;
    }
    window.fetch(container.getAttribute("data-xml-url"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) {
        canvas.replaceChildren();
        modeler = new window.BpmnJS({ container: canvas });
        return modeler.importXML(xml);
      })
      .then(function (result) {
        var warnings = (result && result.warnings) || [];
        container.setAttribute("data-modeler-warnings", String(warnings.length));
        modeler.get("canvas").zoom("fit-viewport", "auto");
        modeler.on("commandStack.changed", function () {
          setDirty(true);
          say("You have unsaved changes.");
        });
        saveButton.hidden = false;
        saveButton.addEventListener("click", save);
        validateForm.addEventListener("submit", function (event) {
          event.preventDefault();
          if (dirty) { save(); } else { validate(); }
        });
        if (deployForm) {
          deployForm.addEventListener("submit", function (event) {
            if (!dirty) { return; }
            event.preventDefault();
            save().then(function (saved) { if (saved) { deployForm.submit(); } });
          });
        }
        window.addEventListener("beforeunload", function (event) {
          if (dirty) {
            event.preventDefault();
            event.returnValue = "";
          }
        });
        setDirty(false);
        container.setAttribute("data-modeler-state", "ready");
      })
      .catch(fail);
  }

  function startPreview(form) {
    var target = document.querySelector("[data-form-preview]");
    var timer = null;
    var latest = 0;
    if (!target || typeof window.fetch !== "function") { return; }

    function refresh() {
      var asked = ++latest;
      var body = new URLSearchParams();
      ["schema", "ui"].forEach(function (name) {
        var field = form.elements.namedItem(name);
        body.append(name, field ? field.value : "");
      });
      body.append("csrf_token", csrfToken());
      window.fetch(form.getAttribute("data-preview-url"), {
        method: "POST", credentials: "same-origin", body: body, headers: { "X-CSRFToken": csrfToken() }
      })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          if (asked === latest) {  // an older answer arriving late must not replace a newer one
            target.innerHTML = html;
            target.setAttribute("data-preview-state", "ready");
          }
        })
        .catch(function () { target.setAttribute("data-preview-state", "failed"); });
    }

    form.addEventListener("input", function () {
      target.setAttribute("data-preview-state", "waiting");
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, PREVIEW_DELAY_MS);
    });
  }

  function startAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-bpmn-modeler]"), startModeler);
    Array.prototype.forEach.call(document.querySelectorAll("[data-form-editor]"), startPreview);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startAll);
  } else {
    startAll();
  }
})();
