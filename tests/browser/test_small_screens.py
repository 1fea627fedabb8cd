"""On a phone (375 px wide) nothing scrolls sideways: tables become cards and references stay whole.
With ECAF_SHOTS set to a folder, each page is also saved there as a screenshot, wide and narrow."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _look(page, name: str) -> None:
    """Nothing wider than the screen; a screenshot when asked for."""
    assert page.evaluate(SIDEWAYS) <= 0, f"{name} scrolls sideways at {page.viewport_size['width']} px"
    folder = os.environ.get("ECAF_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}-{page.viewport_size['width']}.png", full_page=True)


def _both_widths(page, axe_check, name: str) -> None:
    if os.environ.get("ECAF_SHOTS"):
        page.set_viewport_size(DESKTOP)
        _look(page, name)
    page.set_viewport_size(PHONE)
    _look(page, name)
    axe_check(page)


def _one_line(page, locator) -> None:
    """A reference is one line high, however narrow the screen."""
    box = locator.bounding_box()
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 25")
    assert box and box["height"] < line * 1.6, f"{locator} wraps: {box}"


def _card_labels(page, table) -> list[str]:
    """What the first card of a table shows above each value: the cell's `::before` content, or "none".
    A label is a block of its own, so it stands above the value rather than beside it."""
    cells = table.locator("tbody tr").first.locator("td")
    return cells.evaluate_all("""cells => cells.map(cell => {
        const label = getComputedStyle(cell, '::before');
        return label.content === 'none' || label.display === 'block' ? label.content : 'beside: ' + label.content;
    })""")


def test_the_practitioners_task_list_and_episode_fit_a_phone(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "priya.shah")
    tasks = page.get_by_test_id("task-list")
    expect(tasks).to_be_visible()
    _both_widths(page, axe_check, "task-list")
    # Each card names its values as the header row does on a wide screen; the action has no label.
    assert _card_labels(page, tasks) == ['"Child"', '"Episode"', '"Task"', '"Due"', "none"]
    expect(tasks.locator("thead")).to_have_css("width", "1px")
    page.set_viewport_size(DESKTOP)
    assert set(_card_labels(page, tasks)) == {"none"}, "a wide screen shows the header row instead"
    page.get_by_role("link", name="Maya Nowak").first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    _both_widths(page, axe_check, "episode")
    assert _card_labels(page, page.get_by_test_id("people")) == ['"Name"', '"Role"', '"Contact"']
    page.get_by_test_id("service-requests-link").click()
    requests = page.get_by_test_id("service-requests")
    expect(requests).to_contain_text("Day Care")
    _both_widths(page, axe_check, "episode-requests")
    assert _card_labels(page, requests) == ['"Service"', '"Asked by"', '"Status"', '"Answer due"']


def test_a_service_teams_requests_fit_a_phone(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "dan.daycare")
    page.get_by_role("link", name="Requests", exact=True).click()
    inbox = page.get_by_test_id("team-inbox")
    expect(inbox).to_contain_text("Maya")
    _both_widths(page, axe_check, "team-inbox")
    assert _card_labels(page, inbox) == ['"Child"', '"Service"', '"Status"', '"Answer due"']


def test_the_administrators_lists_and_operations_fit_a_phone(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "ada.admin")
    page.goto("/admin/episodes?show=open")
    expect(page.get_by_test_id("episodes")).to_be_visible()
    _both_widths(page, axe_check, "admin-episodes")
    first = page.get_by_test_id("episodes").get_by_role("link", name=re.compile(r"^WST-")).first
    _one_line(page, first)
    page.goto("/status")
    _both_widths(page, axe_check, "service-status")
    assert _card_labels(page, page.locator("table.govuk-table")) == [
        '"Episode"', '"Stage"', '"Status"', '"Tasks waiting"', '"Next deadline"']

    page.goto("/admin/episodes?show=errored")
    page.get_by_role("link", name=re.compile(r"^WST-")).first.click()
    expect(page.locator("[data-bpmn-diagram]")).to_have_attribute("data-diagram-state", re.compile("ready"),
                                                                     timeout=20_000)
    _both_widths(page, axe_check, "operations-summary")
    _one_line(page, page.locator("h1 .ecaf-reference"))
    for part in ("tasks", "timers", "data", "history"):
        page.get_by_role("navigation", name="Parts of the operations page").get_by_role(
            "link", name=part.capitalize(), exact=True).click()
        _both_widths(page, axe_check, f"operations-{part}")
    page.goto(page.url.rsplit("/", 1)[0] + "/repair/terminate")
    _both_widths(page, axe_check, "operations-close")
