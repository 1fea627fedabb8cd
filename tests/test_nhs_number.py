"""The child's NHS number (Children Act 2004 s.16LC): checked, recorded on Start a CAF or the Act's
reason for its absence given, one record per number (the database refuses a second), shown 3-3-4 to
those with access and to nobody else."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import nhs_number
from app.clock import now
from app.forms import child_identity
from app.models import AuditEvent, Child, Episode, User
from app.services import children as service
from tests.journeys import start, to_delivery
from tests.conftest import other_authority
from tests.web import browser, give_credentials, text_of

NUMBER = "9434765919"  # real-looking NHS numbers with valid check digits
OTHER = "9434765870"


def signed_in(web, who="originator", username="olive"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def record_form(web, **fields) -> dict:
    form = {"count": "1", "child-0-given_names": "Sky", "child-0-family_name": "New",
            "child-0-date_of_birth-day": "3", "child-0-date_of_birth-month": "4", "child-0-date_of_birth-year": "2018",
            "address": "2 New Street", "postcode": "W9 2AB", "authority": str(web["people"]["authority"]),
            "action": "start"}
    return {**form, **fields}


def count(runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def give_number(runtime, child_id: int, number: str = NUMBER) -> None:
    with runtime.db.session() as session:
        session.get(Child, child_id).nhs_number = number


# ---------------------------------------------------------------- the check digit

@pytest.mark.parametrize("typed", ["9434765919", "9434765870", "4010232137", "943 476 5919", "943-476-5919",
                                   " 943 476-5919 "])
def test_real_numbers_pass_the_modulus_11_check(typed):
    assert nhs_number.problem(typed) is None and nhs_number.valid(typed)


@pytest.mark.parametrize("typed, message", [
    ("9434765918", "Enter a real NHS number: check it has been typed correctly"),  # wrong check digit
    ("9434765911", "Enter a real NHS number: check it has been typed correctly"),
    ("1234567890", "Enter a real NHS number: check it has been typed correctly"),  # calls for 10: never issued
    ("943476591", "NHS number must be 10 digits, like 943 476 5919"),
    ("94347659190", "NHS number must be 10 digits, like 943 476 5919"),
    ("943476591O", "NHS number must only include numbers 0 to 9, spaces and dashes"),
    ("٩٤٣٤٧٦٥٩١٩", "NHS number must only include numbers 0 to 9, spaces and dashes"),  # Arabic-Indic digits
    ("", "Enter the NHS number"),
])
def test_wrong_numbers_are_refused_with_a_clear_message(typed, message):
    assert nhs_number.problem(typed) == message and not nhs_number.valid(typed)


def test_the_check_digit_and_the_3_3_4_form():
    assert nhs_number.check_digit("943476591") == 9 and nhs_number.check_digit("943476587") == 0
    assert nhs_number.check_digit("123456789") is None, "a remainder calling for 10 is never issued"
    assert nhs_number.formatted(NUMBER) == "943 476 5919"
    assert nhs_number.digits("943-476 5919") == NUMBER


def test_the_form_asks_for_the_number_or_the_reason_never_both_nor_neither():
    read = lambda values: child_identity.read(values, "child-0-", choice_required=True)  # noqa: E731
    assert read({"nhs_number": "943 476 5919"}) == (child_identity.NhsIdentity(NUMBER, None), {})
    assert read({"nhs_number_missing": "detrimental"}) == (child_identity.NhsIdentity(None, "detrimental"), {})
    assert read({})[1] == {"child-0-nhs-number": "Enter the NHS number of the child, or choose why it is not "
                                                 "included"}
    assert read({"nhs_number": NUMBER, "nhs_number_missing": "not_known"})[1] == {
        "child-0-nhs-number": "Enter the NHS number of the child, or choose why it is not included, not both"}
    assert read({"nhs_number_missing": "forgot"})[1] == {
        "child-0-nhs-number-missing": "Choose why the NHS number of the child is not included"}
    assert child_identity.read({})[1] == {}, "a search takes the number only when it is known"


# ---------------------------------------------------------------- recording on Start a CAF

def test_start_a_caf_records_the_number_and_shows_it_3_3_4(web):
    runtime = web["runtime"]
    client = signed_in(web)
    found = client.post("/children/find", {"nhs_number": "943-476-5919", "given_names": "Sky", "family_name": "New",
                                           "date_of_birth-day": "3", "date_of_birth-month": "4",
                                           "date_of_birth-year": "2018"})
    assert "No CAF was found" in text_of(found)
    assert 'name="child-0-nhs_number" value="943-476-5919"' in found.get_data(as_text=True), "carried on"
    started = client.post("/children/new", record_form(web, **{"child-0-nhs_number": "943-476-5919"}),
                          token_from="/children/find")
    assert started.status_code == 302
    with runtime.db.session() as session:
        child = session.scalars(select(Child).where(Child.family_name == "New")).one()
        assert (child.nhs_number, child.nhs_number_missing) == (NUMBER, None)
    page = text_of(client.get(started.location))
    assert "NHS number 943 476 5919" in page


def test_a_missing_number_records_which_exception_applies(web):
    runtime = web["runtime"]
    client = signed_in(web)
    started = client.post("/children/new", record_form(web, **{"child-0-nhs_number_missing": "detrimental"}),
                          token_from="/children/find")
    assert started.status_code == 302
    with runtime.db.session() as session:
        child = session.scalars(select(Child).where(Child.family_name == "New")).one()
        assert (child.nhs_number, child.nhs_number_missing) == (None, "detrimental")
        recorded = session.scalars(select(AuditEvent).where(AuditEvent.action == "child_recorded")).one()
        assert recorded.detail["nhs_number_missing"] == "detrimental"
    page = text_of(client.get(started.location))
    assert "Not included: including it would be detrimental to the child" in page


@pytest.mark.parametrize("fields, field, message", [
    ({"child-0-nhs_number": "943 476 5918"}, "child-0-nhs-number", "Enter a real NHS number"),
    ({"child-0-nhs_number": "94347659"}, "child-0-nhs-number", "must be 10 digits"),
    ({"child-0-nhs_number": "943 476 591X"}, "child-0-nhs-number", "must only include numbers"),
    ({"child-0-nhs_number": "943 476 5919", "child-0-nhs_number_missing": "not_known"}, "child-0-nhs-number",
     "or choose why it is not included, not both"),
    ({}, "child-0-nhs-number", "Enter the NHS number of the child, or choose why it is not included"),
    ({"child-0-nhs_number_missing": "<forged>"}, "child-0-nhs-number-missing", "Choose why the NHS number"),
])
def test_bad_input_is_refused_keeping_what_was_typed_and_recording_nothing(web, fields, field, message):
    runtime = web["runtime"]
    before = count(runtime, Child)
    page = signed_in(web).post("/children/new", record_form(web, **fields), token_from="/children/find")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and message in text_of(page)
    assert f'href="#{field}"' in html and f'id="{field}-error"' in html, "error summary links to the field"
    assert 'value="Sky"' in html, "what was typed is kept"
    if fields.get("child-0-nhs_number"):
        assert f'value="{fields["child-0-nhs_number"]}"' in html, "what was typed is kept"
    assert count(runtime, Child) == before and count(runtime, Episode) == 0


def test_two_siblings_cannot_share_a_number(web):
    runtime = web["runtime"]
    form = record_form(web, count="2", **{"child-0-nhs_number": NUMBER, "child-1-given_names": "Bo",
                                          "child-1-family_name": "New", "child-1-date_of_birth-day": "3",
                                          "child-1-date_of_birth-month": "4", "child-1-date_of_birth-year": "2018",
                                          "child-1-nhs_number": "943 476 5919"})
    page = signed_in(web).post("/children/new", form, token_from="/children/find")
    assert page.status_code == 400 and "The NHS number of child 2 is the same as another child's" in text_of(page)
    assert count(runtime, Child) == 1, "only the fixture's child"


# ---------------------------------------------------------------- one record per number

def test_a_number_already_held_finds_that_child_for_someone_with_access(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)  # Olive's CAF for Casey
    give_number(runtime, people["child"])
    with runtime.db.session() as session:
        reference = session.get(Episode, episode_id).reference
    client = signed_in(web)
    found = text_of(client.post("/children/find", {"nhs_number": NUMBER, "family_name": "New",
                                                   "postcode": "W9 2AB"}))
    assert "Casey Child" in found and "Same NHS number" in found, "the number outranks the details typed"
    assert "Record the child and start a CAF" not in found
    assert "A child listed above already holds this NHS number" in found
    refused = client.post("/children/new", record_form(web, **{"child-0-nhs_number": NUMBER}),
                          token_from="/children/find")
    assert refused.status_code == 400
    assert (f"Casey Child is already recorded with NHS number 943 476 5919 ({reference}): open their CAF"
            in text_of(refused))
    assert count(runtime, Child) == 1 and count(runtime, Episode) == 1


def _closed_caf_with_number(runtime, people) -> tuple[int, str]:
    episode_id = start(runtime, people)  # Olive's CAF for Casey Child, born 1 May 2015
    give_number(runtime, people["child"])
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        episode.status, episode.closed_at = "closed", now()
        return episode_id, episode.reference


CASEY = {"child-0-nhs_number": NUMBER, "child-0-given_names": "Casey", "child-0-family_name": "Child",
         "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "5", "child-0-date_of_birth-year": "2015"}


def test_a_child_whose_caf_is_closed_starts_a_new_one_on_their_own_record(web):
    runtime, people = web["runtime"], web["people"]
    closed, reference = _closed_caf_with_number(runtime, people)
    client = signed_in(web)
    found = client.post("/children/find", {"nhs_number": NUMBER, "family_name": "Child", "postcode": "W9 2AB"})
    assert "Casey Child" in text_of(found) and "Record the child and start a CAF" in text_of(found)
    assert "has no open CAF" in text_of(found)
    started = client.post("/children/new", record_form(web, **CASEY, address="9 Moved Road"),
                          token_from="/children/find")
    assert started.status_code == 302
    with runtime.db.session() as session:
        episodes = session.scalars(select(Episode).where(Episode.child_id == people["child"])
                                   .order_by(Episode.id)).all()
        assert [e.status for e in episodes] == ["closed", "open"], "one child, one record, both CAFs"
        child = session.get(Child, people["child"])
        assert (child.nhs_number, child.address) == (NUMBER, "1 Test Road"), "the record is not rewritten"
        (returned,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "child_returned")).all()
        assert returned.detail["child_id"] == people["child"] and returned.actor_id == people["originator"]
        assert returned.detail["typed"]["address"] == "9 Moved Road", "what was typed is kept with it"
    assert count(runtime, Child) == 1


@pytest.mark.parametrize("who", [("originator", "olive"), ("lead", "leah")])
def test_a_closed_caf_number_with_another_name_or_birthday_records_nothing(web, who):
    runtime, people = web["runtime"], web["people"]
    closed, reference = _closed_caf_with_number(runtime, people)
    client = signed_in(web, *who)
    refused = client.post("/children/new", record_form(web, **{**CASEY, "child-0-family_name": "Other"}),
                          token_from="/children/find")
    assert refused.status_code == 400
    if who[1] == "olive":  # she may open the closed CAF: it is named
        assert (f"Casey Child is already recorded with NHS number 943 476 5919 ({reference}, closed): check the "
                "family name and date of birth" in text_of(refused))
    else:  # a stranger learns nothing of the child
        assert "cannot be used for a new record: check it, or contact the eCAF administrator" in text_of(refused)
        assert "Casey Child is" not in text_of(refused) and reference not in text_of(refused)
    assert count(runtime, Child) == 1 and count(runtime, Episode) == 1


def test_a_child_known_to_another_authority_is_not_taken_over_by_their_number(web):
    runtime, people = web["runtime"], web["people"]
    _closed_caf_with_number(runtime, people)  # Testshire's closed CAF
    other = other_authority(runtime, "pia")
    pia = browser(web["app"])
    pia.sign_in("pia", give_credentials(runtime, other["pia"]))
    form = {**record_form(web, **CASEY), "authority": str(other["authority"]), "address": "99 Elsewhere"}
    refused = pia.post("/children/new", form, token_from="/children/find")
    assert refused.status_code == 400 and "contact the eCAF administrator" in text_of(refused)
    assert "Casey Child is" not in text_of(refused), "Otherborough learns nothing of Testshire's child"
    with runtime.db.session() as session:
        child = session.get(Child, people["child"])
        assert (child.address, child.home_authority_id) == ("1 Test Road", people["authority"])
        (tried,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "nhs_number_refused")).all()
        assert (tried.actor_id, tried.detail["nhs_number"]) == (other["pia"], NUMBER), "the attempt is kept"
    assert count(runtime, Episode) == 1


def test_a_shielded_childs_closed_caf_is_not_restarted_from_a_number(web):
    runtime, people = web["runtime"], web["people"]
    _closed_caf_with_number(runtime, people)
    with runtime.db.session() as session:
        session.get(Child, people["child"]).shielded = True
    refused = signed_in(web).post("/children/new", record_form(web, **CASEY), token_from="/children/find")
    assert refused.status_code == 400 and count(runtime, Episode) == 1


def test_a_number_already_held_names_nobody_to_someone_without_access(web):
    runtime, people = web["runtime"], web["people"]
    start(runtime, people)  # no index entry yet
    give_number(runtime, people["child"])
    stranger = signed_in(web, "lead", "leah")  # not a member of Casey's CAF
    found = stranger.post("/children/find", {"nhs_number": NUMBER, "family_name": "New", "postcode": "W9 2AB"})
    shown = found.get_data(as_text=True).split('id="results"')[1]
    assert service.MAY_EXIST in text_of(found) and "Casey" not in shown and "TE1" not in shown
    refused = text_of(stranger.post("/children/new", record_form(web, **{"child-0-nhs_number": NUMBER}),
                                    token_from="/children/find"))
    assert "NHS number 943 476 5919 cannot be used for a new record: check it, or contact the eCAF administrator" \
        in refused
    assert "Casey" not in refused and "1 Test Road" not in refused
    assert count(runtime, Child) == 1


def test_a_number_held_by_an_indexed_caf_names_its_contact_only(web):
    runtime, people = web["runtime"], web["people"]
    give_number(runtime, people["child"])
    to_delivery(runtime, people)  # in the index, with Olive as the contact
    stranger = signed_in(web, "lead", "leah")
    refused = text_of(stranger.post("/children/new", record_form(web, **{"child-0-nhs_number": NUMBER}),
                                    token_from="/children/find"))
    assert "A CAF is already open for the child with NHS number 943 476 5919: contact Olive Origin" in refused
    assert "Casey" not in refused
    with runtime.db.session() as session:
        asked = session.scalars(select(AuditEvent).where(AuditEvent.action == "index_searched")).all()
    assert asked and asked[-1].detail["criteria"]["nhs_number"] == NUMBER, "the look-up is audited"


def test_the_database_refuses_a_second_record_with_the_same_number(runtime, people):
    give_number(runtime, people["child"])
    with pytest.raises(IntegrityError):
        with runtime.db.session() as session:
            session.add(Child(given_names="Twin", family_name="Child", date_of_birth=date(2015, 5, 1),
                              nhs_number=NUMBER, home_authority_id=people["authority"], created_at=now()))
    with pytest.raises(IntegrityError):
        with runtime.db.session() as session:  # a number and a reason together
            session.get(Child, people["child"]).nhs_number_missing = "not_known"
    assert count(runtime, Child) == 1


def test_recording_that_loses_the_race_is_refused_whole(runtime, people):
    """Two practitioners check at the same moment and both find the number free: the second insert is
    refused by the database, and nothing of that recording (not even a sibling) is kept."""
    give_number(runtime, people["child"])  # what the other practitioner committed after our check
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
    siblings = [service.NewChild("Ada", "Race", date(2017, 2, 1), "W2 5RS", "3 Pair Road", OTHER),
                service.NewChild("Bo", "Race", date(2017, 2, 1), "W2 5RS", "3 Pair Road", NUMBER)]
    with pytest.raises(service.NhsNumberTaken):
        service.start_for(runtime, olive, siblings, people["authority"])
    assert count(runtime, Child) == 1 and count(runtime, Episode) == 0


def test_two_practitioners_recording_the_same_number_at_once_make_one_record(runtime, people):
    """start_for itself does not look for the number first: only the database stands between the two."""
    with runtime.db.session() as session:
        users = [session.get(User, people["originator"]), session.get(User, people["lead"])]
    together = threading.Barrier(2)

    def record(user):
        together.wait()
        try:
            return service.start_for(runtime, user, [service.NewChild("Ada", "Race", date(2017, 2, 1), "W2 5RS",
                                                                      "3 Pair Road", NUMBER)], people["authority"])
        except service.NhsNumberTaken:
            return "refused"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(record, users))
    assert sorted(map(str, outcomes)).count("refused") == 1, outcomes
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Child).where(Child.nhs_number == NUMBER)) == 1
    assert count(runtime, Episode) == 1


def test_the_page_says_so_when_the_race_is_lost(web, monkeypatch):
    runtime, people = web["runtime"], web["people"]
    give_number(runtime, people["child"])
    monkeypatch.setattr(service, "holder_of", lambda session, number: None)  # the check saw it free
    page = signed_in(web).post("/children/new", record_form(web, **{"child-0-nhs_number": NUMBER}),
                               token_from="/children/find")
    assert page.status_code == 400
    assert "A child with this NHS number was recorded a moment ago by someone else: search again" in text_of(page)
    assert count(runtime, Child) == 1 and count(runtime, Episode) == 0


def test_the_number_is_shown_only_to_those_with_access(web):
    runtime, people = web["runtime"], web["people"]
    give_number(runtime, people["child"])
    episode_id = start(runtime, people)
    olive = signed_in(web)
    assert "943 476 5919" in text_of(olive.get(f"/episodes/{episode_id}"))
    assert "NHS number 943 476 5919" in text_of(olive.get(f"/episodes/{episode_id}/print"))
    stranger = signed_in(web, "lead", "leah")
    for path in (f"/episodes/{episode_id}", f"/episodes/{episode_id}/print"):
        page = stranger.get(path)
        assert page.status_code in (403, 404)
        assert "943 476 5919" not in page.get_data(as_text=True) and NUMBER not in page.get_data(as_text=True)
