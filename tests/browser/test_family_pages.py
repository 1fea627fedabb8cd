"""The family page, its adult form and the task list grouped by family: GOV.UK pages that pass axe,
work at desktop width and at 375 px without sideways scrolling, and a sibling's CAF offered the family."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_access_pages import episode_of, sign_in
from .test_small_screens import DESKTOP, PHONE, SIDEWAYS

pytestmark = pytest.mark.browser


def _family(live_server) -> int:
    """Maya Nowak and Leo Carter (Priya's CAFs) in one family, with Maya's mother."""
    from app.clock import now
    from app.models import AdultRelationship, Episode, Family, FamilyAdult, FamilyChild

    episodes = [episode_of(live_server, name) for name in ("Nowak", "Carter")]
    with live_server.runtime.db.session() as session:
        children = [session.get(Episode, episode_id).child_id for episode_id in episodes]
        family = Family(family_name="Nowak", address="4 Demo Street", postcode="W2 5RS", created_at=now())
        session.add(family)
        session.flush()
        session.add_all([FamilyChild(family_id=family.id, child_id=child_id, added_at=now()) for child_id in children])
        mother = FamilyAdult(family_id=family.id, name="Anna Nowak", phone="07700 900123", created_at=now())
        session.add(mother)
        session.flush()
        session.add(AdultRelationship(adult_id=mother.id, child_id=children[0], relationship_to_child="Mother",
                                      parental_responsibility=True))
        return family.id


def _fits(page, axe_check) -> None:
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        assert page.evaluate(SIDEWAYS) <= 0, f"{page.url} scrolls sideways at {size['width']} px"
        axe_check(page)


def test_the_family_pages_and_the_grouped_task_list_fit_every_screen(page, axe_check, live_server):
    family = _family(live_server)
    sign_in(page, axe_check, live_server, "priya.shah")
    page.goto(f"/families/{family}")
    expect(page.get_by_role("heading", level=1)).to_have_text("The Nowak family")
    expect(page.get_by_test_id("family-child")).to_have_count(2)
    expect(page.get_by_test_id("family-adult")).to_contain_text("Mother, has parental responsibility")
    _fits(page, axe_check)

    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="Add a parent or carer").click()
    page.get_by_role("button", name="Add to the family").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter the adult's full name")
    _fits(page, axe_check)
    page.get_by_label("Full name").fill("Tom Carter")
    page.get_by_label("Relationship to Leo Carter").fill("Father")
    page.get_by_label("Has parental responsibility for Leo Carter").check()
    page.get_by_role("button", name="Add to the family").click()
    expect(page.get_by_test_id("family-adult")).to_have_count(2)
    page.get_by_role("link", name="Change Tom Carter").click()
    expect(page.get_by_label("Relationship to Leo Carter")).to_have_value("Father")
    _fits(page, axe_check)
    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="Back to the family").click()

    page.get_by_role("button", name="Start a CAF for another child in this family").click()
    expect(page.get_by_test_id("family-prefill")).to_be_visible()
    expect(page.get_by_label("Postcode")).to_have_value("W2 5RS")
    _fits(page, axe_check)


    # The task list grouped by family (one sign-in per test module: each code works once).
    page.goto("/")
    page.get_by_label("Group by family").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_test_id("task-group").first).to_be_visible()
    expect(page.get_by_test_id("task-group").filter(has_text="Family of ")).to_have_count(1)
    expect(page.get_by_label("Group by family")).to_be_checked()
    _fits(page, axe_check)
