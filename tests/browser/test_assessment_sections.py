"""The assessment as a task list in a real browser: section by section, Check your answers, Submit;
with the keyboard only; and at phone width. Every page checked with axe and watched for CSP and script errors."""
from __future__ import annotations

import re
from itertools import count

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser

# Demo practitioners, one a test: an authenticator code is accepted once, so nobody signs in twice in 30 seconds.
WALKER, KEYBOARD_USER, PHONE_USER = "priya.shah", "tom.okafor", "sam.reid"
COMMENTS = "Child or young person's comments on the assessment and actions"
_children = count(1)


def new_assessment(live_server, originator: str) -> tuple[int, str]:
    """A new child's CAF, started by `originator` and taken to its assessment (checklist and consent
    done), so the assessment is theirs: (task id, family name)."""
    from datetime import date

    from sqlalchemy import select

    from app.clock import now
    from app.demo import _checklist, _consent
    from app.models import Authority, Child, HumanTask, User

    runtime = live_server.runtime
    family = f"Sections{next(_children)}"
    with runtime.db.session() as session:
        authority = session.scalar(select(Authority).where(Authority.code == "WST"))
        child = Child(given_names="Alex", family_name=family, date_of_birth=date(2016, 7, 8), postcode="W9 1AA",
                      address="2 Demo Street", home_authority_id=authority.id, created_at=now())
        session.add(child)
        session.flush()
        child_id = child.id
        originator_id = session.scalar(select(User.id).where(User.username == originator))
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=originator_id).episode_id
    for name, data in (("pre_assessment_checklist", _checklist()), ("obtain_consent", _consent(now().date()))):
        with runtime.db.session() as session:
            task = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                          HumanTask.name == name, HumanTask.status == "ready"))
        runtime.engine.complete_task(episode_id, task.id, data, task.assigned_user_id)
    with runtime.db.session() as session:
        task_id = session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode_id,
                                                            HumanTask.name == "complete_assessment"))
    return task_id, family


def status_of(page, title: str):
    item = page.locator(".govuk-task-list__item").filter(has=page.get_by_role("link", name=title, exact=True))
    return item.locator(".govuk-task-list__status")


def save_and_continue(page) -> None:
    page.get_by_role("button", name="Save and continue").click()


def test_walk_the_sections_change_an_answer_and_submit(page, axe_check, live_server):
    task_id, family = new_assessment(live_server, WALKER)
    sign_in(page, axe_check, live_server, WALKER)
    page.goto(f"/tasks/{task_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Complete and submit the assessment")
    expect(page.get_by_test_id("sections-done")).to_have_text("You have completed 0 of 14 sections.")
    expect(status_of(page, "A. Administration")).to_have_text("Not started")
    axe_check(page)

    # B: filled in from the record; a mistake, shown with the error summary, what was typed kept.
    page.get_by_role("link", name="B. Identifying details of the child", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("B. Identifying details of the child")
    expect(page.get_by_label("Family name")).to_have_value(family)
    expect(page.get_by_label("Ethnicity")).to_be_visible()  # a select with its own label, not 19 radios
    axe_check(page)
    page.get_by_label("Family name").fill("")
    page.get_by_label("Religion").fill("Quaker")
    save_and_continue(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile("^Error: "))
    expect(page.get_by_label("Religion")).to_have_value("Quaker")
    axe_check(page)
    summary.get_by_role("link", name=re.compile("family name", re.I)).click()
    expect(page.get_by_label("Family name")).to_be_focused()
    page.get_by_label("Family name").fill(family)
    page.get_by_label("Ethnicity").select_option(label="Mixed: White and Asian")
    save_and_continue(page)
    expect(status_of(page, "B. Identifying details of the child")).to_have_text("Completed")

    # K: kept for later, then finished.
    page.get_by_role("link", name="K. Voice of the child and family", exact=True).click()
    page.get_by_label(COMMENTS).fill("I like drawing.")
    page.get_by_role("button", name="Save and come back later").click()
    expect(status_of(page, "K. Voice of the child and family")).to_have_text("In progress")
    page.get_by_role("link", name="K. Voice of the child and family", exact=True).click()
    save_and_continue(page)
    expect(status_of(page, "K. Voice of the child and family")).to_have_text("Completed")

    # L: consent is shown as recorded, not asked again.
    page.get_by_role("link", name="L. Consent for information storage and sharing", exact=True).click()
    expect(page.get_by_test_id("recorded-consent")).to_contain_text("Consent given")
    axe_check(page)
    page.get_by_role("link", name="Back to the sections").click()

    # Check your answers, change one, back to the check page, submit.
    page.get_by_role("link", name="Check your answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    expect(page.get_by_test_id("card-section_k_voice")).to_contain_text("I like drawing.")
    expect(page.get_by_test_id("card-section_b_child")).to_contain_text("Mixed: White and Asian")
    axe_check(page)
    page.get_by_role("link", name="Change K. Voice of the child and family").click()
    expect(page.get_by_role("link", name="Back to check your answers")).to_be_visible()
    page.get_by_label(COMMENTS).fill("I like drawing and football.")
    save_and_continue(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    expect(page.get_by_test_id("card-section_k_voice")).to_contain_text("I like drawing and football.")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_text("“Complete and submit the assessment” is complete.")).to_be_visible()
    axe_check(page)


def test_the_sections_with_the_keyboard_only(page, axe_check, live_server):
    task_id, family = new_assessment(live_server, KEYBOARD_USER)
    sign_in(page, axe_check, live_server, KEYBOARD_USER)
    page.goto(f"/tasks/{task_id}")

    def tab_to(role: str, name: str, limit: int = 80) -> None:
        target = page.get_by_role(role, name=name, exact=True)
        for _ in range(limit):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"Tab never reached the {role} {name!r}")

    tab_to("link", "K. Voice of the child and family")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("K. Voice of the child and family")
    tab_to("textbox", COMMENTS)
    page.keyboard.type("Typed with the keyboard.")
    tab_to("button", "Save and continue")
    page.keyboard.press("Enter")
    expect(status_of(page, "K. Voice of the child and family")).to_have_text("Completed")
    tab_to("link", "Check your answers")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    expect(page.get_by_test_id("card-section_k_voice")).to_contain_text("Typed with the keyboard.")
    tab_to("link", "Change K. Voice of the child and family")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Back to check your answers")).to_be_visible()
    tab_to("button", "Save and continue")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    tab_to("button", "Submit")
    page.keyboard.press("Enter")
    expect(page.get_by_text("“Complete and submit the assessment” is complete.")).to_be_visible()
    axe_check(page)


def test_at_phone_width_nothing_scrolls_sideways(page, axe_check, live_server):
    task_id, _ = new_assessment(live_server, PHONE_USER)
    sign_in(page, axe_check, live_server, PHONE_USER)
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("", "/sections/section_b_child", "/sections/section_d_parents_carers",
                 "/sections/section_h_strengths_needs.h1_development", "/check"):
        page.goto(f"/tasks/{task_id}{path}")
        expect(page.locator("h1")).to_be_visible()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 375, f"{path or 'the task list'} is {wide}px wide at 375px"
        axe_check(page)
