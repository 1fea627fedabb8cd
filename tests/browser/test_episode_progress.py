"""Where a CAF is, in a real browser: the red deadline tag of a child-protection case, the diagram opening
on the current task (not on a listener), the safeguarding banner taking focus after a concern, and the
refusal of consent leading to its outcome page and a closed episode shown at its last step. Every page
is checked with axe and watched for CSP and script errors."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.clock import now
from app.models import Authority, Child, HumanTask, User

from .test_access_pages import sign_in
from .test_practitioner_journey import wait_for_diagram

pytestmark = pytest.mark.browser


def _new_episode(live_server, given: str, username: str, *, concern: bool) -> int:
    """A CAF started by `username` for a new child, with the checklist done (with a concern) when asked."""
    runtime = live_server.runtime
    with runtime.db.session() as session:
        authority = session.scalar(select(Authority).limit(1))
        originator = session.scalar(select(User).where(User.username == username))
        child = Child(given_names=given, family_name="Progress", postcode="W9 1AA", address="2 Demo Street",
                      home_authority_id=authority.id, created_at=now())
        session.add(child)
        session.flush()
        child_id, originator_id = child.id, originator.id
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=originator_id).episode_id
    if concern:
        with runtime.db.session() as session:
            task_id = session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode_id,
                                                                HumanTask.name == "pre_assessment_checklist"))
        runtime.engine.complete_task(episode_id, task_id, {"decision": "full_caf", "child_protection_concern": True},
                                     originator_id)
    return episode_id


def assert_in_view(page, element_id: str) -> None:
    """The diagram shape is drawn wholly inside the diagram's box."""
    box = page.locator("[data-bpmn-diagram]").bounding_box()
    shape = page.locator(f'[data-bpmn-diagram] [data-element-id="{element_id}"]').first.bounding_box()
    assert shape is not None, f"{element_id} is not drawn"
    assert box["x"] <= shape["x"] and shape["x"] + shape["width"] <= box["x"] + box["width"], (box, shape)
    assert box["y"] <= shape["y"] and shape["y"] + shape["height"] <= box["y"] + box["height"], (box, shape)


def test_an_urgent_case_is_tagged_and_its_diagram_opens_on_the_current_task(page, axe_check, live_server):
    episode_id = _new_episode(live_server, "Urgent", "priya.shah", concern=True)
    sign_in(page, axe_check, live_server, "priya.shah")
    row = page.get_by_role("row").filter(has_text="Urgent Progress")
    expect(row.get_by_test_id("assessment-due")).to_have_text(re.compile(r"^Assessment due in 4[78] hours$"))
    expect(row.get_by_test_id("due")).to_contain_text(re.compile(r"\w+day \d+ \w+ at (\d|midday|midnight)"))
    axe_check(page)

    row.get_by_role("link", name="Urgent Progress", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/episodes/{episode_id}$"))
    expect(page.get_by_test_id("assessment-due")).to_be_visible()
    expect(page.locator('[aria-current="step"]')).to_contain_text("Preparation")
    wait_for_diagram(page)
    diagram = page.locator("[data-bpmn-diagram]")
    # The "Service requested" and "Contribution invited" listeners are active too; the view opens on the task.
    assert "request_wait" in diagram.get_attribute("data-active").split()
    # The view opens on the task, with the step done before it.
    expect(diagram).to_have_attribute("data-focused", "pre_assessment_checklist obtain_consent")
    assert_in_view(page, "obtain_consent")
    axe_check(page)


def test_a_concern_focuses_the_safeguarding_banner_and_a_refusal_reads_as_an_outcome(page, axe_check, live_server):
    episode_id = _new_episode(live_server, "Refused", "tom.okafor", concern=False)
    sign_in(page, axe_check, live_server, "tom.okafor")  # another account: each code signs in once
    page.goto(f"/episodes/{episode_id}")
    page.get_by_role("link", name="Complete the pre-assessment checklist", exact=True).click()
    page.get_by_label("Start a full common assessment (CAF)").check()
    page.get_by_label("I have a child protection concern").check()
    page.get_by_role("button", name="Submit", exact=True).click()

    # The safeguarding number is what takes focus, not the green success banner.
    expect(page.get_by_role("heading", level=1)).to_have_text("Obtain consent")
    expect(page.get_by_test_id("banner-important")).to_be_focused()
    expect(page.get_by_test_id("banner-important")).to_contain_text("call the safeguarding team")
    axe_check(page)

    page.get_by_role("group", name="Consent decision").get_by_label("Consent refused").check()
    page.get_by_label("Reason for refusal").fill("The family would rather manage on their own.")
    page.get_by_role("button", name="Submit", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/episodes/{episode_id}/outcome$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Consent was refused, so this CAF is closed")
    expect(page.get_by_text("is complete")).to_have_count(0)
    expect(page.get_by_role("heading", name="Nothing was shared")).to_be_visible()
    expect(page.get_by_test_id("kept")).to_contain_text("The family would rather manage on their own")
    expect(page.get_by_test_id("safeguarding")).to_contain_text("call the safeguarding team now")
    axe_check(page)

    # The closed episode: no actions that need an open one, and the diagram opens on its last step.
    page.get_by_test_id("record-link").click()
    expect(page.get_by_test_id("closed")).to_contain_text("This CAF is closed: consent refused")
    expect(page.get_by_text("add or remove people")).to_have_count(0)
    wait_for_diagram(page)
    diagram = page.locator("[data-bpmn-diagram]")
    expect(diagram).to_have_attribute("data-focused", "obtain_consent prep_end_refused")
    assert_in_view(page, "prep_end_refused")
    axe_check(page)
