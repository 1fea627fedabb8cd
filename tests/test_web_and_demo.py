"""The demo data (with an episode on each administrator's list), its sign-in, and the service status
page, on each database."""
from __future__ import annotations

import pyotp
from sqlalchemy import select

from app import create_app
from app.accounts import totp
from app.demo import DEMO_PASSWORD, NEW_USER, load_demo
from app.models import Episode, User
from app.services import admin_episodes as lists
from tests.web import browser, text_of


def test_demo_episodes_are_at_every_stage_and_the_status_page_shows_them(runtime):
    assert load_demo(runtime.db, runtime.engine) is True
    assert load_demo(runtime.db, runtime.engine) is False
    with runtime.db.session() as session:
        stages = sorted(e.stage for e in session.scalars(select(Episode)))
        admin = session.scalar(select(User).where(User.username == "ada.admin"))
        secret = totp.unseal(runtime.config, admin.totp_secret)
        new_user = session.scalar(select(User).where(User.username == NEW_USER))
        assert new_user.totp_secret is None, "one demo account sets up its authenticator at first sign-in"
    assert {"assessment", "closed", "delivery", "preparation"} <= set(stages)
    with runtime.db.session() as session:
        reader = session.scalar(select(User).where(User.username == "ada.admin"))
        counts = lists.dashboard(session, reader, stuck_after_days=runtime.config.stuck_after_days).counts
    assert {name: counts[name] for name in ("errored", "overdue", "stuck", "at_risk")} == \
        {"errored": 1, "overdue": 1, "stuck": 2, "at_risk": 1}, "each administrator's list has an episode in it"

    client = browser(create_app(runtime.config))
    assert client.get("/status").status_code == 302, "administrators only, after signing in"
    client.sign_in("ada.admin", secret, password=DEMO_PASSWORD)
    page = client.get("/status")
    assert page.status_code == 200
    text = text_of(page)
    assert "WST-000001" in text and "needs met" in text
    assert "Begum" not in text, "the status page shows no child's details"
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert pyotp.TOTP(secret).now() == totp.current_code(runtime.config, admin)
