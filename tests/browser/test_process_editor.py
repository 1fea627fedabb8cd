"""Process owners in a real browser: from the library to a draft, a task renamed in the bpmn-js
modeler, saved and validated, a form previewed live, the draft submitted for review, approved by a
second process owner at another desk after reading what changed on the diagram, and deployed as the
new current version; every page checked with axe."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import PageProblems
from .test_access_pages import sign_in

pytestmark = pytest.mark.browser
NEW_NAME = "Complete the assessment with the family"
NOTE = "Say that the assessment is done with the family"


def wait_for_modeler(page) -> None:
    modeler = page.locator("[data-bpmn-modeler]")
    expect(modeler).to_have_attribute("data-modeler-state", re.compile("ready|failed"), timeout=20_000)
    assert modeler.get_attribute("data-modeler-state") == "ready", modeler.inner_text()


def rename_on_the_canvas(page, element_id: str, name: str) -> None:
    """Double-click the task to edit its label in place, as a person would, and press Enter."""
    page.locator(f'[data-bpmn-modeler] [data-element-id="{element_id}"]').first.dblclick()
    editor = page.locator(".djs-direct-editing-parent")
    expect(editor).to_be_visible()
    page.keyboard.press("Control+A")
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    expect(editor).to_be_hidden()


def draft_xml(live_server, draft_id: int) -> str:
    from app.models import ProcessDraft

    with live_server.runtime.db.session() as session:
        return session.get(ProcessDraft, draft_id).bpmn_files["caf_episode.bpmn"]


@pytest.fixture
def second_desk(browser, live_server):
    """Another person's browser, watched for the same problems as `page`."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    problems = PageProblems()
    other = context.new_page()
    other.on("console", problems.on_console)
    other.on("pageerror", lambda exc: problems.exceptions.append(str(exc)))
    other.on("response", problems.on_response)
    try:
        yield other
    finally:
        context.close()
    assert not problems.report(), problems.report()


def test_a_process_owner_changes_the_process_and_a_second_one_approves_it_before_it_deploys(
        page, second_desk, axe_check, live_server):
    sign_in(page, axe_check, live_server, "owen.owner")
    page.get_by_role("link", name="Processes", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Processes")
    expect(page.get_by_test_id("version-1").get_by_test_id("current")).to_be_visible()
    axe_check(page)

    page.get_by_role("link", name="Version 1", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 1")
    expect(page.locator("[data-bpmn-diagram]")).to_have_attribute("data-diagram-state", "ready", timeout=20_000)
    axe_check(page)

    page.get_by_role("button", name="Edit as a new draft").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit")
    draft_id = int(re.search(r"/drafts/(\d+)", page.url).group(1))
    wait_for_modeler(page)
    axe_check(page)

    rename_on_the_canvas(page, "complete_assessment", NEW_NAME)
    expect(page.locator("[data-bpmn-modeler]")).to_have_attribute("data-dirty", "true")
    page.get_by_role("button", name="Save the diagram").click()
    expect(page.locator("[data-modeler-status]")).to_contain_text("Saved at")
    expect(page.get_by_test_id("validation")).to_contain_text("No problems found: this draft can be submitted for review.")
    assert f'name="{NEW_NAME}"' in draft_xml(live_server, draft_id)
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("[data-modeler-status]")).to_contain_text("Checked at")
    expect(page.get_by_test_id("validation")).to_contain_text("No problems found")
    axe_check(page)

    # A form's live preview, drawn by the renderer practitioners' forms use; nothing is saved.
    page.get_by_role("link", name="Edit lead_professional.schema.json").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit the form lead_professional.schema.json")
    axe_check(page)
    schema = page.get_by_label("JSON Schema")
    schema.fill(schema.input_value().replace('"title": "', '"title": "Renamed: ', 1))
    expect(page.get_by_test_id("form-preview")).to_contain_text("Renamed: ")
    schema.fill("{ not json")
    expect(page.get_by_test_id("form-preview")).to_contain_text("The preview shows once the JSON is valid")
    page.get_by_role("button", name="Preview").click()  # the same without JavaScript: the page keeps what was typed
    expect(page.get_by_role("alert")).to_contain_text("line 1, column 3")
    expect(page.get_by_label("JSON Schema")).to_have_value("{ not json")
    axe_check(page)
    page.get_by_role("link", name=f"Back to draft {draft_id}").click()
    wait_for_modeler(page)

    # Submitting needs a change note; with one, the draft waits for a second process owner.
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a change note")
    axe_check(page)
    wait_for_modeler(page)
    page.get_by_label("Change note").fill(NOTE)
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_test_id("review-status").first).to_have_text("Waiting for review")
    expect(page.get_by_test_id("self-review")).to_contain_text("You submitted this draft")
    expect(page.get_by_role("button", name="Deploy as a new version")).to_have_count(0)
    wait_for_modeler(page)
    axe_check(page)

    # A second process owner, at their own desk, finds it in the library, reads what changed and approves it.
    reviewer = second_desk
    sign_in(reviewer, axe_check, live_server, "pat.owner")
    reviewer.get_by_role("link", name="Processes", exact=True).click()
    waiting = reviewer.get_by_test_id(f"waiting-{draft_id}")
    expect(waiting).to_contain_text(NOTE)
    axe_check(reviewer)
    waiting.get_by_role("link", name=re.compile("^Review")).click()
    expect(reviewer.get_by_role("heading", level=1)).to_contain_text(f"Review draft {draft_id}")
    expect(reviewer.get_by_test_id("summary")).to_have_text("0 added, 1 changed, 0 removed.")
    expect(reviewer.get_by_test_id("changed")).to_contain_text(NEW_NAME)
    diagram = reviewer.locator("[data-bpmn-diagram]")
    expect(diagram).to_have_attribute("data-diagram-state", "ready", timeout=20_000)
    expect(reviewer.locator(".djs-shape.ecaf-changed[data-element-id='complete_assessment']")).to_have_count(1)
    axe_check(reviewer)
    reviewer.get_by_label("Comment (optional)").fill("Reads better for families")
    reviewer.get_by_role("button", name="Approve for deployment").click()
    expect(reviewer.get_by_text(f"You approved draft {draft_id}")).to_be_visible()
    expect(reviewer.get_by_test_id("waiting")).to_contain_text("No draft is waiting for review")
    axe_check(reviewer)

    # Back at the first desk: the approved draft deploys as version 2, the current one.
    page.reload()
    wait_for_modeler(page)
    expect(page.get_by_test_id("review-status").first).to_have_text("Approved")
    axe_check(page)
    page.get_by_role("button", name="Deploy as a new version").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 2")
    expect(page.get_by_text("Version 2 is deployed")).to_be_visible()
    expect(page.get_by_test_id("change-note")).to_have_text(NOTE)
    expect(page.locator("[data-bpmn-diagram]")).to_have_attribute("data-diagram-state", "ready", timeout=20_000)
    axe_check(page)

    page.get_by_role("link", name="Back to the processes").click()
    expect(page.get_by_test_id("version-2").get_by_test_id("current")).to_be_visible()
    expect(page.get_by_test_id("version-2")).to_contain_text(NOTE)
    expect(page.get_by_test_id("version-1").get_by_test_id("current")).to_have_count(0)
