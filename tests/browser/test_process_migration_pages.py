"""A process owner in a real browser: what changed between two versions (marked on the diagram),
the dry-run report over the demo's open episodes, and the migration; every page checked with axe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def deploy_signoff(live_server, tmp_path) -> None:
    from app.engine.library import Bundle, deploy
    from tests.process_models import signoff_model

    with live_server.runtime.db.session() as session:
        deploy(session, Bundle.from_directory(signoff_model(tmp_path)), change_note="Sign-off")


def test_the_owner_sees_the_changes_and_moves_the_episodes_that_can(page, axe_check, live_server, tmp_path):
    deploy_signoff(live_server, tmp_path)
    sign_in(page, axe_check, live_server, "owen.owner")

    page.goto("/processes/caf_episode/diff?from=1&to=2")
    diagram = page.locator("[data-bpmn-diagram]")
    expect(diagram).to_have_attribute("data-diagram-state", "ready", timeout=20_000)
    expect(page.locator(".djs-shape.ecaf-added[data-element-id='signoff']")).to_have_count(1)
    expect(page.locator(".djs-shape.ecaf-changed[data-element-id='complete_assessment']")).to_have_count(1)
    axe_check(page)

    page.get_by_role("link", name="Check which open episodes of v1 can move to v2").click()
    expect(page.get_by_test_id("plan-summary")).to_contain_text("can move")
    axe_check(page)
    expect(page.get_by_label("All that can move")).not_to_be_checked()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Choose which episodes to move")
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a change note")
    axe_check(page)

    page.get_by_label("All that can move").check()
    page.get_by_label("Change note").fill("Assessments are signed off before they are stored")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check before you move")
    expect(page.get_by_test_id("answers")).to_contain_text("Assessments are signed off before they are stored")
    expect(page.get_by_test_id("moving")).to_be_visible()
    axe_check(page)
    page.get_by_role("button", name="Move the episodes to v2").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Episodes moved from caf_episode v1 to caf_episode v2")
    expect(page.get_by_test_id("counts")).to_contain_text("migrated")
    axe_check(page)

    # What a model may say: the guide linked from the process editor.
    page.goto("/processes/expressions")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "What a process model may say: the process expression language")
    expect(page.get_by_role("table").first).to_contain_text("Script task")
    axe_check(page)
