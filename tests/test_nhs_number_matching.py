"""Matching by the NHS number: in Start a CAF, the national index and the search requests queue a
child holding the number searched for comes first, exactly, whatever the other details; a child
holding another number is another child. The number travels with the index entry, the export and
subject access, and an index result never shows it."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.clock import now
from app.models import AuditEvent, Child, Episode, IndexEntry, SearchRequest, SearchRequestChild, User
from app.services import children, episode_transfer, national_index, search_queue, search_requests
from tests.conftest import complete
from tests.journeys import CHECKLIST, CONSENT, assessment, start, to_delivery
from tests.web import browser, text_of

NUMBER, OTHER = "9434765919", "9434765870"
BORN = date(2015, 5, 1)  # Casey Child of the `people` fixture, TE1 1ST
REASON = "Starting a CAF for a new pupil"


def add_child(runtime, people, given: str, family: str, born: date, postcode: str, number: str | None) -> int:
    with runtime.db.session() as session:
        child = Child(given_names=given, family_name=family, date_of_birth=born, postcode=postcode, address="1 Road",
                      nhs_number=number, home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        return child.id


def give_number(runtime, child_id: int, number: str = NUMBER) -> None:
    with runtime.db.session() as session:
        session.get(Child, child_id).nhs_number = number


def submitted(runtime, people, child_id: int) -> int:
    """A CAF for the child with its assessment submitted: in the index."""
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", {**CHECKLIST, "child_protection_concern": False})
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    complete(runtime, episode_id, "complete_assessment", assessment())
    return episode_id


def signed_in(web, who="lead", username="leah"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# ---------------------------------------------------------------- Start a CAF

def test_start_a_caf_lists_the_child_holding_the_number_first_and_not_one_holding_another(runtime, people):
    casey = people["child"]  # no number recorded
    renamed = add_child(runtime, people, "Sam", "Other", date(2016, 6, 6), "ZZ1 1ZZ", NUMBER)
    twin = add_child(runtime, people, "Casey", "Child", BORN, "TE1 1ST", OTHER)
    for child_id in (casey, renamed, twin):
        runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"])
    asked = children.Criteria("Casey", "Child", BORN, "TE1 1ST")
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
        by_details = children.search(session, olive, asked)
        by_number = children.search(session, olive, children.Criteria("Casey", "Child", BORN, "TE1 1ST", NUMBER))
        found = [(m.child.id, m.by_nhs_number) for m in by_number.visible]
    assert {m.child.id for m in by_details.visible} == {casey, twin}, "without a number: the details decide"
    assert found == [(renamed, True), (casey, False)], "the number outranks; another number is another child"
    searched = audited(runtime, "child_search")
    assert [row.detail["by_nhs_number"] for row in searched] == [False, True]
    assert audited(runtime, "index_searched")[-1].detail["criteria"]["nhs_number"] == NUMBER


def test_an_open_caf_of_another_number_does_not_stop_a_new_child(runtime, people):
    start(runtime, people)  # Casey Child, born 1 May 2015, holding OTHER
    give_number(runtime, people["child"], OTHER)
    same_details = children.NewChild("Casey", "Child", BORN, "TE1 1ST", "1 Road", NUMBER)
    no_number = children.NewChild("Casey", "Child", BORN, "TE1 1ST", "1 Road", None, "not_known")
    with runtime.db.session() as session:
        assert children.already_open(session, same_details) is None, "another number: another child"
        assert children.already_open(session, no_number) is not None, "no number: the details decide, as before"


# ---------------------------------------------------------------- the national index

def find(runtime, user_id: int, **keys) -> list[national_index.IndexResult]:
    asked = {"given_names": None, "family_name": None, "date_of_birth": None, "postcode": None, **keys}
    with runtime.db.session() as session:
        return national_index.search(session, session.get(User, user_id), reason=REASON, **asked)


def test_the_index_entry_carries_the_number_and_a_match_on_it_is_exact_and_first(runtime, people):
    give_number(runtime, people["child"])
    casey_episode = to_delivery(runtime, people)
    lookalike = add_child(runtime, people, "Cassie", "Child", BORN, "TE1 1ST", OTHER)
    lookalike_episode = submitted(runtime, people, lookalike)  # another number: the process finds no existing CAF
    with runtime.db.session() as session:
        assert session.scalar(select(IndexEntry.nhs_number).where(IndexEntry.episode_id == casey_episode)) == NUMBER
    hits = find(runtime, people["lead"], family_name="Child", date_of_birth=BORN, postcode="TE1 1ST",
                nhs_number=NUMBER)
    assert [(h.episode_id, h.match, h.by_nhs_number) for h in hits] == [
        (casey_episode, "exact", True), (lookalike_episode, "near", False)]
    assert hits[1].near_because == ("NHS number differs",)
    # A new name and another birthday: the number still finds the child, exactly.
    [renamed] = find(runtime, people["lead"], family_name="Newname", date_of_birth=date(2001, 1, 1),
                     nhs_number=NUMBER)
    assert (renamed.episode_id, renamed.match, renamed.near_because) == (casey_episode, "exact", ())
    assert (renamed.family_name, renamed.date_of_birth, renamed.postcode_district) == ("", None, None), \
        "found by the number, the child's other details are not the searcher's to learn"
    assert (hits[1].family_name, hits[1].date_of_birth) == ("Child", BORN), "a near match shows them, as ever"
    # Without a number the details decide, as before.
    assert {h.match for h in find(runtime, people["lead"], family_name="Child", date_of_birth=BORN)} == {"exact"}
    criteria = [row.detail["criteria"] for row in audited(runtime, "index_searched")]
    assert criteria[0]["nhs_number"] == NUMBER and "nhs_number" not in criteria[-1]


def test_the_number_counts_as_one_of_the_two_keys_a_search_needs(runtime, people):
    give_number(runtime, people["child"])
    to_delivery(runtime, people)
    keys = national_index.normalised_keys(None, None, None, NUMBER)
    assert national_index.problems(keys, REASON) == {
        "keys": "Enter at least two of: NHS number, family name, date of birth, postcode"}


def test_an_index_result_never_shows_the_number(web):
    runtime, people = web["runtime"], web["people"]
    give_number(runtime, people["child"])
    to_delivery(runtime, people)
    client = signed_in(web)  # Leah: no member of Casey's CAF
    page = client.post("/index", {"nhs_number": "943 476 5919", "family_name": "Child", "reason": REASON})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    shown = html[html.index('id="results"'):]
    assert "A CAF exists" in shown and "The NHS number you entered" in shown and "Olive Origin" in shown
    assert NUMBER not in shown and "943 476 5919" not in shown and "Casey" not in shown
    assert "TE1" not in shown and "2015" not in shown, "nor the child's birthday or district"
    bad = client.post("/index", {"nhs_number": "943 476 5918", "family_name": "Child", "reason": REASON})
    assert bad.status_code == 400 and "Enter a real NHS number" in text_of(bad)
    assert 'value="943 476 5918"' in bad.get_data(as_text=True), "what was typed is kept"
    assert len(audited(runtime, "index_searched")) == 1, "a refused search looks nothing up"


# ---------------------------------------------------------------- search requests

def test_a_search_request_keeps_the_number_and_refuses_a_wrong_one(web):
    runtime = web["runtime"]
    client = signed_in(web, "originator", "olive")
    child = {"reason": "New pupil", "given_names": "Sky", "family_name": "New", "postcode": "W9 2AB"}
    bad = client.post("/search-requests/new", {**child, "nhs_number": "943476591", "action": "add"})
    assert bad.status_code == 400 and "The NHS number of the child must be 10 digits" in text_of(bad)
    assert 'value="943476591"' in bad.get_data(as_text=True)
    added = client.post("/search-requests/new", {**child, "nhs_number": "943 476 5919", "action": "add"})
    assert added.status_code == 200 and "NHS number 943 476 5919" in text_of(added)
    sent = client.post("/search-requests/new", {"reason": "New pupil", "action": "send"})
    assert sent.status_code == 302
    with runtime.db.session() as session:
        assert session.scalars(select(SearchRequestChild.nhs_number)).all() == [NUMBER]


def test_the_administrators_candidates_put_the_number_first(runtime, people):
    casey_episode = start(runtime, people)  # no number: matched on the details
    renamed = add_child(runtime, people, "Sam", "Other", date(2016, 6, 6), "ZZ1 1ZZ", NUMBER)
    renamed_episode = runtime.engine.start_episode(child_id=renamed, originator_id=people["originator"]).episode_id
    twin = add_child(runtime, people, "Casey", "Child", BORN, "TE1 1ST", OTHER)
    twin_episode = runtime.engine.start_episode(child_id=twin, originator_id=people["originator"]).episode_id
    with runtime.db.session() as session:
        request = search_requests.submit(session, session.get(User, people["originator"]), "New pupil", [
            {"given_names": "Casey", "family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST",
             "nhs_number": NUMBER}])
        request_id = request.id
    with runtime.db.session() as session:
        admin = session.get(User, people["admin"])
        [answer] = search_queue.search_for_request(session, admin, session.get(SearchRequest, request_id))
        found = [(c.episode.id, c.exact, c.differs) for c in answer.candidates]
    assert found[0] == (renamed_episode, ["NHS number"], ["family name", "given names", "date of birth", "postcode"])
    assert found[1][0] == casey_episode and found[1][2] == []
    assert found[2] == (twin_episode, ["family name", "given names", "date of birth", "postcode"], ["NHS number"]), \
        "another number ranks after every record holding none"


# ---------------------------------------------------------------- export and subject access

def test_the_export_and_subject_access_carry_the_number(runtime, people):
    give_number(runtime, people["child"])
    episode_id = to_delivery(runtime, people)
    with runtime.db.session() as session:
        request = SearchRequest(requester_id=people["originator"], authority_id=people["authority"],
                                reason="New pupil", status="answered", answer="Found", created_at=now())
        request.children.append(SearchRequestChild(given_names="Casey", family_name="Child", nhs_number=NUMBER,
                                                   matched_child_id=people["child"]))
        session.add(request)
    with runtime.db.session() as session:
        admin = session.get(User, people["admin"])
        exported = episode_transfer.export_episode(session, session.get(Episode, episode_id), admin)
        held = episode_transfer.subject_access(session, session.get(Child, people["child"]), admin)
    assert (exported["child"]["nhs_number"], exported["child"]["nhs_number_missing"]) == (NUMBER, None)
    assert exported["index_entry"]["nhs_number"] == NUMBER
    assert episode_transfer.schema_problems(exported) == [], "the export follows its published schema"
    assert held["child"]["nhs_number"] == NUMBER and held["index_entries"][0]["nhs_number"] == NUMBER
    assert held["search_requests"][0]["as_asked"]["nhs_number"] == NUMBER


def test_the_export_says_why_a_number_is_missing(runtime, people):
    with runtime.db.session() as session:
        session.get(Child, people["child"]).nhs_number_missing = "not_known"
    episode_id = start(runtime, people)
    with runtime.db.session() as session:
        exported = episode_transfer.export_episode(session, session.get(Episode, episode_id),
                                                   session.get(User, people["admin"]))
    assert (exported["child"]["nhs_number"], exported["child"]["nhs_number_missing"]) == (None, "not_known")
    assert episode_transfer.schema_problems(exported) == []
