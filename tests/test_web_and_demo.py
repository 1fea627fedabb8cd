"""The demo data and the service status page, on each database."""
from __future__ import annotations

from sqlalchemy import select

from app import create_app
from app.demo import load_demo
from app.models import Episode


def test_demo_episodes_are_at_every_stage_and_the_page_shows_them(runtime):
    assert load_demo(runtime.db, runtime.engine) is True
    assert load_demo(runtime.db, runtime.engine) is False
    with runtime.db.session() as session:
        stages = sorted(e.stage for e in session.scalars(select(Episode)))
    assert stages == ["assessment", "closed", "delivery", "preparation"]

    app = create_app(runtime.config)
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "WST-000001" in html and "needs met" in html
    assert "Begum" not in html, "the status page shows no child's details"
    assert client.get("/healthz").get_json() == {"status": "ok"}
