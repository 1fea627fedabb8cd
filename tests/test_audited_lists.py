"""Every page that shows children's names or dates of birth writes one audit row per view, naming
(by id, never by name) the episodes it showed."""
from __future__ import annotations

import io
from datetime import date
from unittest.mock import ANY

from sqlalchemy import select

from app import attachments
from app.clock import now
from app.models import AuditEvent, Child, Episode, SearchRequest, User
from app.services import search_requests
from tests.conftest import other_authority
from tests.journeys import start, to_delivery
from tests.test_admin_episodes import _errored
from tests.web import browser, give_credentials, text_of

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _client(web, username, who):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _rows(runtime, action="episodes_listed", page=None) -> list[AuditEvent]:
    with runtime.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
    return [r for r in rows if page is None or (r.detail or {}).get("page") == page]


def _one_view(runtime, page, fetch, action="episodes_listed") -> AuditEvent:
    """Open the page twice: one row per view, each naming the episodes shown, and never a name."""
    before = len(_rows(runtime, action, page))
    fetch()
    fetch()
    rows = _rows(runtime, action, page)
    assert len(rows) == before + 2, f"{page}: one row per view"
    row = rows[-1]
    if action != "index_searched":  # a search keeps what was searched for; a list keeps ids only
        assert "Casey" not in str(row.detail) and "Child" not in str(row.detail), "ids only, never names"
    return row


def _second_child(runtime, people) -> int:
    with runtime.db.session() as session:
        child = Child(given_names="Sam", family_name="Second", date_of_birth=date(2014, 2, 2), postcode="TE3 3RD",
                      home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        return child.id


def test_the_task_list_names_the_episodes_of_the_tasks_shown(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    olive = _client(web, "olive", "originator")
    row = _one_view(runtime, "task_list", lambda: olive.get("/"))
    assert row.detail["episodes"] == [episode_id] and row.actor_id == people["originator"]
    leah = _client(web, "leah", "lead")
    before = len(_rows(runtime))
    assert leah.get("/").status_code == 200
    assert len(_rows(runtime)) == before, "a list showing no child writes nothing"


def test_the_attachments_list_names_its_episode(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        attachments.store(session, runtime.config, episode=episode, user=session.get(User, people["originator"]),
                          filename="school-report.pdf", stream=io.BytesIO(PDF))
    olive = _client(web, "olive", "originator")
    row = _one_view(runtime, "attachments", lambda: olive.get(f"/episodes/{episode_id}/attachments"))
    assert row.detail["episodes"] == [episode_id] and row.episode_id == episode_id


def test_the_administrators_lists_and_bulk_preview_name_the_episodes_listed(web):
    runtime, people = web["runtime"], web["people"]
    errored = _errored(runtime, people)
    other = runtime.engine.start_episode(child_id=_second_child(runtime, people),
                                         originator_id=people["originator"]).episode_id
    admin = _client(web, "adam", "admin")
    row = _one_view(runtime, "admin_episodes", lambda: admin.get("/admin/episodes?show=open"))
    assert row.detail["episodes"] == sorted([errored, other]) and row.detail["show"] == "open"
    row = _one_view(runtime, "admin_episodes", lambda: admin.get("/admin/episodes?show=errored"))
    assert row.detail["episodes"] == [errored]
    row = _one_view(runtime, "admin_bulk", lambda: admin.get("/admin/episodes/bulk?show=errored&action=retry"))
    assert row.detail["episodes"] == [errored]
    before = len(_rows(runtime))
    assert admin.get("/admin/").status_code == 200
    assert len(_rows(runtime)) == before, "the dashboard shows counts, no child"


def _search_request(runtime, people) -> int:
    with runtime.db.session() as session:
        sent = search_requests.submit(session, session.get(User, people["originator"]),
                                      "New pupil, records not yet arrived", [
                                          {"given_names": "Casey", "family_name": "Child",
                                           "date_of_birth": "2015-05-01", "postcode": "TE1 1ST"}])
        return sent.id


def test_the_search_request_queue_and_requests_name_what_they_show(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    request_id = _search_request(runtime, people)
    admin = _client(web, "adam", "admin")
    row = _one_view(runtime, "search_queue", lambda: admin.get("/admin/search-requests"))
    assert row.detail["search_requests"] == [request_id] and row.detail["episodes"] == []
    # The request's page lists the candidate CAFs, with the children's names and dates of birth.
    row = _one_view(runtime, "search_request", lambda: admin.get(f"/admin/search-requests/{request_id}"),
                    action="search_request_searched")
    assert row.detail["episodes"] == [episode_id]
    with runtime.db.session() as session:
        session.get(SearchRequest, request_id).children[0].matched_episode_id = episode_id
    olive = _client(web, "olive", "originator")
    row = _one_view(runtime, "my_search_requests", lambda: olive.get("/search-requests/"))
    assert row.detail == {"page": "my_search_requests", "episodes": [episode_id], "search_requests": [request_id],
                          "request_ref": ANY}
    row = _one_view(runtime, "my_search_request", lambda: olive.get(f"/search-requests/{request_id}"))
    assert row.detail["episodes"] == [episode_id]


def test_index_search_results_and_the_shielding_page_name_the_episodes_shown(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    leah = _client(web, "leah", "lead")
    search = {"family_name": "Child", "date_of_birth-day": "1", "date_of_birth-month": "5",
              "date_of_birth-year": "2015", "reason": "Starting a CAF for a new pupil"}
    row = _one_view(runtime, "index_search", lambda: leah.post("/index", search, token_from="/index"),
                    action="index_searched")
    assert row.detail["episodes"] == [episode_id] and row.detail["results"] == 1
    admin = _client(web, "adam", "admin")
    row = _one_view(runtime, "shielding", lambda: admin.get(f"/children/{people['child']}/shielding"))
    assert row.detail["episodes"] == [episode_id] and row.detail["child_id"] == people["child"]


def test_the_consent_withdrawal_form_names_its_episode(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    olive = _client(web, "olive", "originator")
    row = _one_view(runtime, "withdraw_consent", lambda: olive.get(f"/episodes/{episode_id}/consent/withdraw"))
    assert row.detail["episodes"] == [episode_id] and row.episode_id == episode_id


# ---------------------------------------------------------------- the status page

def test_the_status_page_shows_one_authoritys_episodes_and_figures_only(web):
    runtime, people = web["runtime"], web["people"]
    mine = to_delivery(runtime, people)
    other = other_authority(runtime, "pia")
    with runtime.db.session() as session:
        child = Child(given_names="Remy", family_name="Remote", date_of_birth=date(2016, 6, 6), postcode="OT1 1ER",
                      home_authority_id=other["authority"], created_at=now())
        session.add(child)
        session.flush()
        child_id = child.id
    theirs = [runtime.engine.start_episode(child_id=child_id, originator_id=other["pia"]).episode_id]
    with runtime.db.session() as session:
        mine_ref = session.get(Episode, mine).reference
        their_refs = [session.get(Episode, e).reference for e in theirs]
    adam = _client(web, "adam", "admin")
    page = text_of(adam.get("/status"))
    assert mine_ref in page and not any(ref in page for ref in their_refs)
    assert "preparation 0" in page and "delivery 1" in page, "only Testshire's episodes are counted"
    otto = browser(web["app"])
    otto.sign_in("otto", give_credentials(runtime, other["otto"]))
    page = text_of(otto.get("/status"))
    assert mine_ref not in page and all(ref in page for ref in their_refs)
    assert "preparation 1" in page and "delivery 0" in page
