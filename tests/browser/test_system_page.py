"""The administrators' System page in a real browser, with a failing channel, a message given up and
a late deadline: reached from the dashboard, checked with axe and watched for CSP and script errors."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.clock import now
from app.models import Episode, OutboxMessage

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def _trouble(live_server) -> None:
    with live_server.runtime.db.session() as session:
        session.add(OutboxMessage(channel="email", kind="browser_test", recipient="someone@example.test", subject="s",
                                  body="b", idempotency_key="browser-test:waiting", status="pending", attempts=3,
                                  next_attempt_at=now() + timedelta(seconds=20), created_at=now() - timedelta(minutes=14),
                                  last_error="the mail server could not be used: ConnectionRefusedError: [Errno 111] "
                                             "Connection refused"))
        session.add(OutboxMessage(channel="email", kind="browser_test", recipient="someone@example.test", subject="s",
                                  body="b", idempotency_key="browser-test:failed", status="failed", attempts=6,
                                  next_attempt_at=now() - timedelta(hours=2), created_at=now() - timedelta(hours=3),
                                  last_error="refused: the mail server refused the recipient: 550 no such user"))
        episode = session.scalar(select(Episode).where(Episode.status == "open", Episode.next_timer_at.is_not(None))
                                 .order_by(Episode.id).limit(1))
        episode.next_timer_at = now() - timedelta(minutes=25)


def test_the_administrator_reads_the_system_page(page, axe_check, live_server):
    _trouble(live_server)
    sign_in(page, axe_check, live_server, "ada.admin")
    page.get_by_role("link", name="Episodes", exact=True).click()
    page.get_by_role("link", name="System: messages, workers and late deadlines").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("System")
    expect(page.get_by_test_id("channel-email")).to_contain_text(
        "The last attempt failed: the mail server could not be used: connection refused.")
    expect(page.get_by_test_id("workers-summary")).to_contain_text("Background jobs run inside the web app")
    expect(page.get_by_test_id("timers-summary")).to_contain_text("the oldest fell due 25 minutes ago")
    expect(page.get_by_test_id("attention")).to_be_visible()
    axe_check(page)
