"""The national index: the entry and notice on submission, searching it (exact and near matches,
existence and contact only, a reason, audited), and shielding children from practitioners."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import func, select

from app.clock import now
from app.jobs import tasks
from app.jobs.runtime import set_runtime
from app.models import AuditEvent, Authority, Child, Episode, IndexEntry, Organisation, OutboxMessage, User
from app.services import national_index, shielding
from tests.conftest import VETTED, complete, local_http_server
from tests.journeys import CHECKLIST, CONSENT, assessment, to_delivery
from tests.web import browser, csrf_token, text_of

REASON = "Starting a CAF for a new pupil"
BORN = date(2015, 5, 1)  # Casey Child, of the `people` fixture, lives at TE1 1ST
ASSESSMENT_TEXT = "I want to go to school more."  # from tests.journeys.assessment()
CHECKLIST_TEXT = "Often unwell"


# ---------------------------------------------------------------- helpers

def find(runtime, user_id: int, *, family_name=None, date_of_birth=None, postcode=None, given_names=None,
         reason=REASON) -> list[national_index.IndexResult]:
    with runtime.db.session() as session:
        return national_index.search(session, session.get(User, user_id), given_names=given_names,
                                     family_name=family_name, date_of_birth=date_of_birth, postcode=postcode,
                                     reason=reason)


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def index_entry(runtime, episode_id: int, **changes) -> IndexEntry:
    with runtime.db.session() as session:
        entry = session.scalar(select(IndexEntry).where(IndexEntry.episode_id == episode_id))
        for name, value in changes.items():
            setattr(entry, name, value)
        return entry


def set_shield(runtime, people, shielded: bool) -> None:
    with runtime.db.session() as session:
        change = shielding.shield if shielded else shielding.unshield
        change(session, session.get(User, people["admin"]), session.get(Child, people["child"]),
               "At risk of being found by a parent")


def submitted(runtime, people, child_id: int) -> int:
    """An episode for another child, taken to a submitted assessment."""
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", {**CHECKLIST, "child_protection_concern": False})
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    complete(runtime, episode_id, "complete_assessment", assessment())
    return episode_id


def signed_in(web, who="lead", username="leah"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def search_form(**fields) -> dict:
    form = {"family_name": "Child", "date_of_birth-day": "1", "date_of_birth-month": "5",
            "date_of_birth-year": "2015", "postcode": "TE1 1ST", "reason": REASON}
    return {**form, **fields}


def results_part(response) -> str:
    """The page from the results heading on: what the index told the searcher."""
    html = response.get_data(as_text=True)
    return html[html.index('id="results"'):]


def other_authority(runtime) -> dict:
    """A second authority with its own administrator and child."""
    with runtime.db.session() as session:
        authority = Authority(code="OTH", name="Othershire")
        session.add(authority)
        session.flush()
        office = Organisation(name="Othershire Council", kind="council_service", authority_id=authority.id)
        session.add(office)
        session.flush()
        admin = User(username="otto", email="otto@othershire.test", full_name="Otto Other", role="administrator",
                     organisation_id=office.id, created_at=now(), **VETTED)
        child = Child(given_names="Remy", family_name="Far", date_of_birth=date(2014, 2, 3), postcode="OT1 1AA",
                      address="9 Far Lane", home_authority_id=authority.id, created_at=now())
        session.add_all([admin, child])
        session.flush()
        return {"admin": admin.id, "child": child.id}


# ---------------------------------------------------------------- the entry and the notice

class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def index_endpoint():
    with local_http_server(_Receiver) as server:
        yield server


def test_submitting_writes_the_index_entry_and_the_notice_reaches_the_endpoint(runtime, people, index_endpoint):
    url = f"http://127.0.0.1:{index_endpoint.server_address[1]}/notices"
    runtime.config = replace(runtime.config, index_endpoint_url=url)
    runtime.engine.config = runtime.config
    episode_id = to_delivery(runtime, people)

    entry = index_entry(runtime, episode_id)
    assert (entry.family_name, entry.date_of_birth, entry.postcode, entry.status) == ("Child", BORN, "TE1 1ST", "open")
    assert entry.authority_id == people["authority"] and entry.contact["name"] == "Olive Origin"
    with runtime.db.session() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.channel == "index"))
    assert (message.recipient, message.status) == (url, "pending")

    set_runtime(runtime)
    try:
        assert tasks.deliver_message(message.id) == "sent"  # the job rq (or the in-process runner) runs
        assert tasks.deliver_message(message.id) == "sent", "a repeat sends nothing"
    finally:
        set_runtime(None)
    assert len(index_endpoint.received) == 1
    posted = index_endpoint.received[0]
    assert posted["path"] == "/notices" and posted["headers"]["Content-Type"] == "application/json"
    assert posted["headers"]["Idempotency-Key"] == message.idempotency_key
    notice = json.loads(posted["body"])
    assert notice["child"]["family_name"] == "Child" and notice["child"]["date_of_birth"] == "2015-05-01"
    assert notice["contact"]["name"] == "Olive Origin" and notice["contact"]["email"] == people["originator_email"]
    assert notice["home_authority"] == "Testshire"
    raw = posted["body"].decode()
    assert ASSESSMENT_TEXT not in raw and CHECKLIST_TEXT not in raw and "1 Test Road" not in raw


# ---------------------------------------------------------------- matching

def test_exact_matches_ignore_case_and_spacing(runtime, people):
    to_delivery(runtime, people)
    [hit] = find(runtime, people["lead"], family_name="  cHILD ", date_of_birth=BORN, postcode="te11st")
    assert hit.match == "exact" and hit.near_because == ()
    assert (hit.family_name, hit.date_of_birth, hit.postcode_district) == ("Child", BORN, "TE1")
    assert (hit.home_authority, hit.status) == ("Testshire", "open")
    assert hit.last_updated.date() == now().date()
    assert hit.contact == {"name": "Olive Origin", "role": "Teacher", "organisation": "Test Primary",
                           "phone": "0100 000 111", "email": "olive@testshire.test"}
    assert hit.shielded is False and hit.shielding_child_id is None, "a practitioner manages no shield"
    [two_keys] = find(runtime, people["lead"], family_name="Child", date_of_birth=BORN)
    assert two_keys.match == "exact", "every key searched on matches"


def test_near_matches_follow_each_rule(runtime, people):
    episode_id = to_delivery(runtime, people)
    lead = people["lead"]

    def near(**keys) -> tuple[str, ...] | None:
        hits = find(runtime, lead, **keys)
        assert len(hits) <= 1
        if not hits:
            return None
        assert hits[0].match == "near", keys
        return hits[0].near_because

    full = {"family_name": "Child", "date_of_birth": BORN, "postcode": "TE1 1ST"}
    assert near(**{**full, "family_name": "Chlid"}) == ("family name spelled differently",)
    assert near(**{**full, "date_of_birth": date(2015, 1, 5)}) == ("day and month swapped",)
    assert near(**{**full, "postcode": "TE1 9ZZ"}) == ("same postcode district",)
    # Two of three keys close is enough: a child who has moved, or whose name is recorded differently.
    assert near(**{**full, "postcode": "ZZ9 9ZZ"}) == ("postcode differs",)
    assert near(**{**full, "family_name": "Jones"}) == ("family name differs",)
    assert near(**{**full, "date_of_birth": date(2012, 8, 9)}) == ("date of birth differs",)
    assert near(family_name="Chlid", date_of_birth=date(2015, 1, 5)) is not None
    # One key alone is not a match, however exact.
    assert near(family_name="Child", date_of_birth=date(2012, 8, 9), postcode="ZZ9 9ZZ") is None
    assert near(family_name="Jones", date_of_birth=BORN, postcode="ZZ9 9ZZ") is None
    assert near(family_name="Jones", date_of_birth=date(2015, 1, 5), postcode="AB1 2CD") is None
    assert near(family_name="Chalk", date_of_birth=BORN) is None, "a different name is not a misspelling"

    index_entry(runtime, episode_id, family_name="D'Árcy-Child")
    assert near(**{**full, "family_name": "darcy child"}) == ("family name spelled differently",)
    assert near(family_name="Darcy Child", postcode="TE1 1ST") == ("family name spelled differently",)


def test_exact_matches_come_before_near_ones(runtime, people):
    to_delivery(runtime, people)
    with runtime.db.session() as session:
        cousin = Child(given_names="Cody", family_name="Chlid", date_of_birth=BORN, postcode="TE1 2AB",
                       address="2 Test Road", home_authority_id=people["authority"], created_at=now())
        session.add(cousin)
        session.flush()
        cousin_id = cousin.id
    submitted(runtime, people, cousin_id)
    hits = find(runtime, people["lead"], family_name="Child", date_of_birth=BORN, postcode="TE1 1ST")
    assert [(h.match, h.family_name) for h in hits] == [("exact", "Child"), ("near", "Chlid")]
    assert hits[1].near_because == ("family name spelled differently", "same postcode district")


# ---------------------------------------------------------------- what a search shows and records

def test_results_show_existence_and_contact_but_no_content(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    with runtime.db.session() as session:
        reference = session.get(Episode, episode_id).reference
    client = signed_in(web)  # Leah is no member of the episode
    page = client.post("/index", search_form(given_names="Casey"))
    assert page.status_code == 200
    text = text_of(page)
    assert "A CAF exists" in text and "Exact match" in text
    assert "Olive Origin" in text and "olive@testshire.test" in text and "0100 000 111" in text
    assert "Testshire" in text and "TE1" in text and "holds none of the CAF itself" in text
    html = page.get_data(as_text=True)
    for secret in (ASSESSMENT_TEXT, CHECKLIST_TEXT, "1 Test Road", reference, f"/episodes/{episode_id}"):
        assert secret not in html, secret
    shown = results_part(page)
    assert "/episodes/" not in shown and "TE1 1ST" not in shown and "Casey" not in shown


def test_every_search_is_audited_with_its_reason_criteria_and_count(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    client = signed_in(web)
    client.post("/index", search_form(postcode="te1 9zz"))
    [row] = audited(runtime, "index_searched")
    assert row.actor_id == people["lead"]
    assert row.detail["reason"] == REASON and row.detail["results"] == 1 and row.detail["exact"] == 0
    assert row.detail["criteria"] == {"family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 9ZZ"}
    client.post("/index", search_form(family_name="Nobody", postcode="ZZ1 1ZZ"))
    assert [r.detail["results"] for r in audited(runtime, "index_searched")] == [1, 0]


def test_a_reason_and_two_keys_are_required(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    client = signed_in(web)
    page = client.post("/index", search_form(reason="", given_names="Casey"))
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "govuk-error-summary" in html and 'href="#reason"' in html
    assert "Enter why you are searching the index" in text_of(page) and "Error:" in text_of(page)
    for typed in ('value="Casey"', 'value="Child"', 'value="TE1 1ST"', 'value="2015"'):
        assert typed in html, typed
    assert 'id="results"' not in html, "nothing was searched"
    short = client.post("/index", search_form(reason="checking"))
    assert short.status_code == 400 and "at least 3 words" in text_of(short)
    assert ">checking</textarea>" in short.get_data(as_text=True)
    one_key = client.post("/index", search_form(**{"date_of_birth-day": "", "date_of_birth-month": "",
                                                   "date_of_birth-year": "", "postcode": ""}))
    assert one_key.status_code == 400 and "Enter at least two of" in text_of(one_key)
    assert 'href="#family-name"' in one_key.get_data(as_text=True)
    assert audited(runtime, "index_searched") == []

    with pytest.raises(national_index.SearchInvalid) as refused:
        find(runtime, people["lead"], family_name="Child", date_of_birth=BORN, reason="  ")
    assert set(refused.value.problems) == {"reason"}
    with pytest.raises(national_index.SearchInvalid) as refused:
        find(runtime, people["lead"], family_name="Child")
    assert set(refused.value.problems) == {"keys"}
    assert audited(runtime, "index_searched") == []


def test_the_search_is_posted_and_the_page_explains_the_index(web):
    client = signed_in(web)
    page = client.get("/index?family_name=Child&reason=test")
    assert page.status_code == 200 and 'method="post"' in page.get_data(as_text=True)
    assert "holds none of the CAF itself" in text_of(page) and 'value="Child"' not in page.get_data(as_text=True)
    assert audited(web["runtime"], "index_searched") == []


# ---------------------------------------------------------------- who may search

def test_an_unvetted_user_cannot_search(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    client = signed_in(web)
    token = csrf_token(client.get("/index").get_data(as_text=True))
    with runtime.db.session() as session:
        session.get(User, people["lead"]).vetting_expires_on = now().date() - timedelta(days=1)
    with pytest.raises(national_index.IndexSearchRefused):
        find(runtime, people["lead"], family_name="Child", date_of_birth=BORN)
    page = client.client.post("/index", data={**search_form(), "csrf_token": token})
    assert page.status_code == 302 and "/sign-in" in page.location
    assert audited(runtime, "index_searched") == []


def test_roles_without_the_need_are_refused(web):
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        session.get(User, people["lead"]).role = "process_owner"
    client = signed_in(web)
    assert client.get("/index").status_code == 403
    assert client.post("/index", search_form(), token_from="/support").status_code == 403
    assert [r.detail["asked_for"] for r in audited(runtime, "access_denied")] == ["national index search"] * 2
    with pytest.raises(national_index.IndexSearchRefused):
        find(runtime, people["lead"], family_name="Child", date_of_birth=BORN)
    assert audited(runtime, "index_searched") == []


# ---------------------------------------------------------------- shielding

def test_a_shielded_child_is_hidden_from_practitioners_and_shown_to_administrators(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    set_shield(runtime, people, True)
    assert find(runtime, people["lead"], family_name="Child", date_of_birth=BORN, postcode="TE1 1ST") == []
    assert find(runtime, people["originator"], family_name="Child", date_of_birth=BORN) == [], \
        "even its own practitioner finds nothing through the index"
    practitioner = signed_in(web)
    page = text_of(practitioner.post("/index", search_form()))
    assert "No CAF found" in page and "Olive Origin" not in page

    [hit] = find(runtime, people["admin"], family_name="Child", date_of_birth=BORN, postcode="TE1 1ST")
    assert hit.shielded and hit.shielding_child_id == people["child"]
    admin = signed_in(web, "admin", "adam")
    shown = admin.post("/index", search_form())
    assert "Shielded" in text_of(shown) and "Olive Origin" in text_of(shown)
    assert f"/children/{people['child']}/shielding" in shown.get_data(as_text=True)
    assert [r.detail["shielded_shown"] for r in audited(runtime, "index_searched")] == [0, 0, 0, 1, 1]

    set_shield(runtime, people, False)
    assert len(find(runtime, people["lead"], family_name="Child", date_of_birth=BORN)) == 1


def test_shielding_needs_an_administrator_of_the_home_authority_and_a_reason(runtime, people):
    other = other_authority(runtime)
    with runtime.db.session() as session:
        child = session.get(Child, people["child"])
        for user_id in (people["lead"], other["admin"]):
            with pytest.raises(shielding.ShieldingRefused):
                shielding.shield(session, session.get(User, user_id), child, "At risk of being found")
        with pytest.raises(shielding.ReasonMissing):
            shielding.shield(session, session.get(User, people["admin"]), child, "risk")
        assert child.shielded is False
        admin = session.get(User, people["admin"])
        assert shielding.shield(session, admin, child, "At risk of being found") is True
        assert shielding.shield(session, admin, child, "At risk of being found") is False, "already shielded"
    [row] = audited(runtime, "child_shielded")
    assert (row.actor_id, row.detail) == (people["admin"], {"child_id": people["child"],
                                                            "reason": "At risk of being found"})


def test_the_shielding_page(web):
    runtime, people = web["runtime"], web["people"]
    other = other_authority(runtime)
    path = f"/children/{people['child']}/shielding"
    admin = signed_in(web, "admin", "adam")
    page = admin.get(path)
    assert page.status_code == 200 and "Not shielded" in text_of(page) and "Casey Child" in text_of(page)

    missing = admin.post(path, {"action": "shield", "reason": ""})
    assert missing.status_code == 400 and "Enter why you are shielding this child" in text_of(missing)
    assert 'href="#reason"' in missing.get_data(as_text=True)
    short = admin.post(path, {"action": "shield", "reason": "risk"})
    assert short.status_code == 400 and ">risk</textarea>" in short.get_data(as_text=True)
    assert audited(runtime, "child_shielded") == []

    done = admin.post(path, {"action": "shield", "reason": "Parent must not find the child"})
    assert done.status_code == 302
    assert "Shielded" in text_of(admin.get(path)) and "Remove the shield" in text_of(admin.get(path))
    lifted = admin.post(path, {"action": "unshield", "reason": "Court order has ended now"})
    assert lifted.status_code == 302
    assert [r.detail["reason"] for r in audited(runtime, "child_shielded")] == ["Parent must not find the child"]
    assert [r.detail["reason"] for r in audited(runtime, "child_unshielded")] == ["Court order has ended now"]
    with runtime.db.session() as session:
        assert session.get(Child, people["child"]).shielded is False

    for elsewhere in (other["child"], 999999):
        assert admin.get(f"/children/{elsewhere}/shielding").status_code == 404
    assert admin.post(f"/children/{other['child']}/shielding", {"action": "shield", "reason": "Trying it on now"},
                      token_from=path).status_code == 404
    denied = [r.detail["asked_for"] for r in audited(runtime, "access_denied")]
    assert denied == [f"shielding of child {other['child']}", "shielding of child 999999",
                      f"shielding of child {other['child']}"]
    with runtime.db.session() as session:
        assert session.get(Child, other["child"]).shielded is False
    assert signed_in(web).get(path).status_code == 403, "administrators only"


def test_find_a_child_hides_shielded_hits_from_practitioners(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    stranger = signed_in(web)
    form = {"family_name": "Child", "date_of_birth-day": "1", "date_of_birth-month": "5", "date_of_birth-year": "2015"}
    before = text_of(stranger.post("/children/find", form))
    assert "A CAF is already open" in before and "Olive Origin" in before
    set_shield(runtime, people, True)
    after = text_of(stranger.post("/children/find", form))
    assert "A CAF is already open" not in after and "Olive Origin" not in after
    own = text_of(signed_in(web, "originator", "olive").post("/children/find", form))
    assert "Casey Child" in own, "the practitioner working with the child still finds the record"
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(IndexEntry)) == 1


def _index_events(runtime, episode_id):
    with runtime.db.session() as session:
        return [m.payload["event"] for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.episode_id == episode_id, OutboxMessage.channel == "index")
            .order_by(OutboxMessage.id))]


def test_the_entry_follows_the_episode_and_each_change_is_sent_on(runtime, people):
    from app.models import User as Person
    from app.services import episode_people

    runtime.config = replace(runtime.config, index_endpoint_url="http://127.0.0.1:9/notices")
    runtime.engine.config = runtime.config
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": now().date().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    assert index_entry(runtime, episode_id).contact["name"] == "Leah Lead"
    with runtime.db.session() as session:
        lead = session.get(Person, people["lead"])
    episode_people.withdraw_consent(runtime, episode_id, lead, {"withdrawn_by": "Pat Parent", "confirm": "yes"})
    assert index_entry(runtime, episode_id).status == "closed"
    assert _index_events(runtime, episode_id) == ["assessment_submitted", "lead_professional_changed",
                                                  "consent_withdrawn"]


def test_no_notice_leaves_eCAF_about_a_shielded_child(runtime, people):
    runtime.config = replace(runtime.config, index_endpoint_url="http://127.0.0.1:9/notices")
    runtime.engine.config = runtime.config
    with runtime.db.session() as session:
        session.get(Child, people["child"]).shielded = True
    episode_id = to_delivery(runtime, people)
    assert index_entry(runtime, episode_id).status == "open", "eCAF's own index still knows, for administrators"
    assert _index_events(runtime, episode_id) == []
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "index_notice_withheld", AuditEvent.episode_id == episode_id)) == 1
