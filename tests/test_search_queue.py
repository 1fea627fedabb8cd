"""The administrator's queue of search requests: candidates for each child, linking a CAF or none,
answering once, and the requester seeing the contact (never the CAF)."""
from __future__ import annotations

import re
from datetime import date, timedelta

import time_machine
from sqlalchemy import select

from app.clock import now
from app.models import AuditEvent, Child, Episode, OutboxMessage, SearchRequest, User
from app.services import search_queue, search_requests
from tests.conftest import complete, other_authority
from tests.journeys import prepare, to_delivery
from tests.web import browser, give_credentials, text_of

ASSESSMENT_TEXT = "I want to go to school more."  # from tests.journeys.assessment()
CASEY = {"given_names": "Casey", "family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST"}
NOBODY = {"given_names": "Nemo", "family_name": "Nowhere", "date_of_birth": "2014-02-03", "postcode": "ZZ9 9ZZ"}


def signed_in(web, who: str = "admin", username: str = "adam"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def send_request(runtime, people, *children: dict, reason: str = "New pupil, details unclear") -> int:
    with runtime.db.session() as session:
        sent = search_requests.submit(session, session.get(User, people["originator"]), reason, list(children))
        return sent.id


def stored(runtime, request_id: int) -> SearchRequest:
    with runtime.db.session() as session:
        found = session.get(SearchRequest, request_id)
        found.children  # load while the session is open
        return found


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def another_authority(runtime) -> dict:
    """Otherborough, with an administrator, a practitioner and a child whose CAF it holds."""
    ids = other_authority(runtime, "wanda")
    ids["admin"], ids["worker"] = ids["otto"], ids["wanda"]
    with runtime.db.session() as session:
        twin = Child(given_names="Casey", family_name="Child", date_of_birth=date(2015, 5, 1), postcode="TE1 1ST",
                     home_authority_id=ids["authority"], created_at=now())
        session.add(twin)
        session.flush()
        ids["child"] = twin.id
    ids["episode"] = runtime.engine.start_episode(child_id=ids["child"], originator_id=ids["worker"]).episode_id
    ids["secret"] = give_credentials(runtime, ids["admin"])
    return ids


def children_of(runtime, request_id: int) -> list[int]:
    return [c.id for c in stored(runtime, request_id).children]


# ---------------------------------------------------------------- the queue

def test_the_queue_lists_waiting_requests_oldest_first_then_answered_ones(web):
    runtime, people = web["runtime"], web["people"]
    moment = now()
    ids = []
    for days_ago, name in ((1, "Newer"), (3, "Oldest"), (2, "Middle")):
        with time_machine.travel(moment - timedelta(days=days_ago), tick=False):
            ids.append(send_request(runtime, people, {**NOBODY, "given_names": name}))
    with runtime.db.session() as session:
        done = session.get(SearchRequest, ids[2])
        search_queue.answer(session, session.get(User, people["admin"]), done,
                            {c.id: "none" for c in done.children}, {}, "Nothing found")
    page = text_of(signed_in(web).get("/admin/search-requests"))
    waiting, answered = page.split("Answered recently")
    assert waiting.index("Oldest Nowhere") < waiting.index("Newer Nowhere")
    assert "Middle Nowhere" not in waiting and "Middle Nowhere" in answered
    assert "2 waiting for an answer" in waiting


# ---------------------------------------------------------------- searching

def test_candidates_match_two_keys_closely_and_stay_in_the_authority(runtime, people):
    episode_id = to_delivery(runtime, people)
    elsewhere = another_authority(runtime)
    search = lambda **keys: search_queue.candidates(  # noqa: E731
        session, session.get(User, people["admin"]),
        search_queue.Keys(**{"given_names": "", "family_name": "", "date_of_birth": None, "postcode": None, **keys}))
    with runtime.db.session() as session:
        exact = search(given_names="Casey", family_name="Child", date_of_birth=date(2015, 5, 1), postcode="TE1 1ST")
        assert [c.episode.id for c in exact] == [episode_id], "the other authority's CAF is not listed"
        assert exact[0].exact == ["family name", "given names", "date of birth", "postcode"]
        near = search(given_names="Kasey", family_name="Childe", date_of_birth=date(2015, 1, 5), postcode="TE1 9ZZ")
        assert [c.episode.id for c in near] == [episode_id]
        assert near[0].exact == [] and set(near[0].close) == {"family name", "given names", "date of birth",
                                                              "postcode"}
        assert search(given_names="Casey", family_name="Smith", date_of_birth=date(2010, 1, 1)) == [], \
            "one key is not enough"
        assert [c.episode.id for c in search(given_names="Casey", family_name="child")] == [episode_id]
    assert elsewhere["episode"]


def test_deleted_episodes_are_not_candidates(runtime, people):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "deleted"
        found = search_queue.candidates(session, session.get(User, people["admin"]),
                                        search_queue.Keys("Casey", "Child", date(2015, 5, 1), "TE1 1ST"))
    assert found == []


# ---------------------------------------------------------------- answering

def test_the_administrator_links_a_caf_or_none_and_the_requester_sees_the_contact(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": now().date().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    request_id = send_request(runtime, people, {**CASEY, "given_names": "Kasey"}, NOBODY)
    casey, nemo = children_of(runtime, request_id)
    admin = signed_in(web)
    path = f"/admin/search-requests/{request_id}"

    page = admin.get(path)
    assert page.status_code == 200
    shown = text_of(page)
    assert f"TST-{episode_id:06d}: Casey Child" in shown and "Same family name, date of birth, postcode" in shown
    assert "Close given names" in shown and "Contact: Leah Lead, Test Primary" in shown
    assert "No CAF of your authority matches these details" in shown
    assert ASSESSMENT_TEXT not in shown
    [searched] = audited(runtime, "search_request_searched")
    assert searched.detail["candidates"] == {str(casey): 1, str(nemo): 0}

    empty = admin.post(path, {"note-%d" % nemo: "Checked the old records too"})
    assert empty.status_code == 400
    html = empty.get_data(as_text=True)
    assert "<title>Error: " in html
    for field in (f"match-{casey}", f"match-{nemo}", "answer"):
        assert f'href="#{field}"' in html and f'id="{field}"' in html
    assert "Checked the old records too" in html, "what was typed is kept"
    assert stored(runtime, request_id).status == "submitted"

    sent = admin.post(path, {f"match-{casey}": str(episode_id), f"match-{nemo}": "none",
                             f"note-{casey}": "Recorded as Casey, not Kasey", "answer": "One CAF found, see below."})
    assert sent.status_code == 302 and sent.location.endswith("/admin/search-requests")
    answered = stored(runtime, request_id)
    assert (answered.status, answered.answered_by_id, answered.answer) == ("answered", people["admin"],
                                                                           "One CAF found, see below.")
    assert answered.answered_at is not None
    first, second = answered.children
    assert (first.matched_episode_id, first.matched_child_id, first.match_note) == (
        episode_id, people["child"], "Recorded as Casey, not Kasey")
    assert (second.matched_episode_id, second.matched_child_id) == (None, None)
    [event] = audited(runtime, "search_request_answered")
    assert event.detail["matches"] == [{"request_child_id": casey, "episode_id": episode_id},
                                       {"request_child_id": nemo, "episode_id": None}]
    with runtime.db.session() as session:
        [email] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "search_request_answered")).all()
    assert email.recipient == people["originator_email"] and f"SR-{request_id:06d}" in email.subject
    assert "Casey" not in email.body and "Nemo" not in email.body, "the email names no child"

    requester = signed_in(web, "originator", "olive")
    view = text_of(requester.get(f"/search-requests/{request_id}"))
    assert "CAF found: contact Leah Lead, Test Primary" in view
    for detail in ("0100 000 111", "leah@testshire.test", "Testshire", "Recorded as Casey, not Kasey",
                   "One CAF found, see below."):
        assert detail in view
    assert "No CAF found for this child" in view
    assert ASSESSMENT_TEXT not in view and f"TST-{episode_id:06d}" not in view, "no content, no reference"


def test_before_a_lead_professional_the_contact_is_the_originator(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    request_id = send_request(runtime, people, CASEY)
    [casey] = children_of(runtime, request_id)
    admin = signed_in(web)
    admin.post(f"/admin/search-requests/{request_id}", {f"match-{casey}": str(episode_id), "answer": "Found"})
    view = text_of(signed_in(web, "originator", "olive").get(f"/search-requests/{request_id}"))
    assert "CAF found: contact Olive Origin, Test Primary" in view


def test_searching_with_other_details_adds_candidates_that_can_be_linked(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    request_id = send_request(runtime, people, {"given_names": "K", "family_name": "Chyld", "date_of_birth": None,
                                                "postcode": None})
    [child] = children_of(runtime, request_id)
    admin = signed_in(web)
    path = f"/admin/search-requests/{request_id}"
    assert f"TST-{episode_id:06d}" not in text_of(admin.get(path))
    query = f"?for_child={child}&other_family_name=Child&other_date_of_birth-day=1&other_date_of_birth-month=5" \
            "&other_date_of_birth-year=2015"
    found = admin.get(path + query)
    assert f"TST-{episode_id:06d}: Casey Child" in text_of(found)
    assert f'action="{path}{query}"'.replace("&", "&amp;") in found.get_data(as_text=True), \
        "answering keeps the search"
    bad = admin.get(path + f"?for_child={child}&other_family_name=Child&other_postcode=nonsense")
    assert bad.status_code == 400 and 'href="#other-postcode"' in bad.get_data(as_text=True)
    assert 'value="nonsense"' in bad.get_data(as_text=True)
    sent = admin.client.post(path + query, data={f"match-{child}": str(episode_id), "answer": "Found it",
                                                 "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                                         found.get_data(as_text=True)).group(1)})
    assert sent.status_code == 302
    assert stored(runtime, request_id).children[0].matched_episode_id == episode_id


def test_an_answered_request_cannot_be_answered_again(web):
    runtime, people = web["runtime"], web["people"]
    request_id = send_request(runtime, people, NOBODY)
    [child] = children_of(runtime, request_id)
    admin = signed_in(web)
    path = f"/admin/search-requests/{request_id}"
    assert admin.post(path, {f"match-{child}": "none", "answer": "Nothing found"}).status_code == 302
    page = admin.get(path)
    assert "Send the answer" not in text_of(page) and "Nothing found" in text_of(page)
    again = admin.client.post(path, data={f"match-{child}": "none", "answer": "Changed my mind",
                                          "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                                  page.get_data(as_text=True)).group(1)})
    assert again.status_code == 302 and "answered already" in text_of(admin.get(path))
    assert stored(runtime, request_id).answer == "Nothing found"
    with runtime.db.session() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 1
    with runtime.db.session() as session:
        with __import__("pytest").raises(search_queue.AlreadyAnswered):
            done = session.get(SearchRequest, request_id)
            search_queue.answer(session, session.get(User, people["admin"]), done, {child: "none"}, {}, "Again")


def test_a_caf_of_another_authority_cannot_be_linked(web):
    runtime, people = web["runtime"], web["people"]
    elsewhere = another_authority(runtime)
    request_id = send_request(runtime, people, CASEY)
    [child] = children_of(runtime, request_id)
    refused = signed_in(web).post(f"/admin/search-requests/{request_id}",
                                  {f"match-{child}": str(elsewhere["episode"]), "answer": "Found"})
    assert refused.status_code == 400 and "Select the CAF you found for Casey Child" in text_of(refused)
    assert stored(runtime, request_id).status == "submitted"


def test_another_authoritys_request_answers_404_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    elsewhere = another_authority(runtime)
    request_id = send_request(runtime, people, NOBODY)
    [child] = children_of(runtime, request_id)
    other = browser(web["app"])
    other.sign_in("otto", elsewhere["secret"])
    assert f"SR-{request_id:06d}" not in text_of(other.get("/admin/search-requests"))
    path = f"/admin/search-requests/{request_id}"
    assert other.get(path).status_code == 404
    assert other.post(path, {f"match-{child}": "none", "answer": "Not mine"},
                      token_from="/admin/search-requests").status_code == 404
    asked = [e.detail["asked_for"] for e in audited(runtime, "access_denied")]
    assert asked.count(f"search request {request_id}") == 2
    assert stored(runtime, request_id).status == "submitted"
    practitioner = signed_in(web, "originator", "olive")
    assert practitioner.get("/admin/search-requests").status_code == 403
    assert practitioner.get(path).status_code == 403


def test_the_requester_is_told_when_the_caf_found_stops_being_shared_or_is_deleted(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    request_id = send_request(runtime, people, CASEY)
    [child] = children_of(runtime, request_id)
    with runtime.db.session() as session:
        found = session.get(SearchRequest, request_id)
        search_queue.answer(session, session.get(User, people["admin"]), found, {child: str(episode_id)}, {}, "Found")
        session.get(Episode, episode_id).consent_state = "withdrawn"
    requester = signed_in(web, "originator", "olive")
    withdrawn = text_of(requester.get(f"/search-requests/{request_id}"))
    assert "withdrawn consent to share it" in withdrawn and "olive@testshire.test" not in withdrawn
    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "deleted"
    assert "has since been deleted" in text_of(requester.get(f"/search-requests/{request_id}"))
