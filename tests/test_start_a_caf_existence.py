"""Start a CAF learns whether someone else holds a child's CAF only through the national index.

A practitioner probing *Start a CAF* with a child's name and date of birth is told whom to contact
only when *Is there a CAF?* would tell them (and the look-up is audited as an index search with the
reason "starting a CAF"); otherwise, whatever the reason (no index entry yet, a shielded child),
the same words name nobody. A second open CAF is refused either way.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.models import AuditEvent, Child, Episode, User
from app.services import shielding
from app.services.children import MAY_EXIST
from tests.journeys import start, to_delivery
from tests.web import browser, text_of

FIND = {"family_name": "Child", "date_of_birth-day": "1", "date_of_birth-month": "5", "date_of_birth-year": "2015"}
HOLDER = ("Olive Origin", "olive@testshire.test", "0100 000 111")


def _record_form(people) -> dict:
    return {"count": "1", "child-0-given_names": "Casey", "child-0-family_name": "Child",
            "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "5", "child-0-date_of_birth-year": "2015",
            "child-0-nhs_number_missing": "not_known", "address": "1 Test Road", "postcode": "TE1 1ST",
            "authority": str(people["authority"]), "action": "start"}


def _stranger(web):
    """Leah: vetted, of the same authority, not a member of Casey's CAF."""
    client = browser(web["app"])
    client.sign_in("leah", web["secrets"]["lead"])
    return client


def _rows(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _episodes(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(Episode))


def _probe(web):
    """Find the child, then try to record them anyway: both pages' text."""
    stranger = _stranger(web)
    found = stranger.post("/children/find", FIND)
    assert found.status_code == 200
    again = stranger.post("/children/new", _record_form(web["people"]), token_from="/children/find")
    assert again.status_code == 400, "the duplicate refusal stays"
    return text_of(found), text_of(again)


def test_an_open_caf_without_an_index_entry_names_nobody(web):
    runtime = web["runtime"]
    episode_id = start(runtime, web["people"])  # no consent, no assessment: nothing in the index
    found, refused = _probe(web)
    for page in (found, refused):
        assert MAY_EXIST in page
        assert not any(detail in page for detail in HOLDER), "the holder is not named"
    assert "Record the child and start a CAF" not in found
    assert _episodes(runtime) == 1
    # Both steps asked the index, as any search would, and it showed nothing.
    looked_up = _rows(runtime, "index_searched")
    assert [r.detail["reason"] for r in looked_up] == ["starting a CAF", "starting a CAF"]
    assert all(r.detail["results"] == 0 and r.detail["episodes"] == [] for r in looked_up)
    assert episode_id not in _rows(runtime, "child_search")[0].detail["episodes"]


def test_an_open_caf_in_the_index_shows_what_the_index_shows_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)  # assessment submitted: "a CAF exists; contact Olive"
    found, refused = _probe(web)
    assert "A CAF is already open for a child with these details" in found and "Olive Origin" in found
    assert "Record the child and start a CAF" not in found
    assert "1 Test Road" not in found, "only that it exists and whom to contact"
    assert "contact Olive Origin" in refused and MAY_EXIST not in refused
    looked_up = _rows(runtime, "index_searched")
    assert len(looked_up) == 2
    for row in looked_up:
        assert row.actor_id == people["lead"] and row.detail["reason"] == "starting a CAF"
        assert row.detail["episodes"] == [episode_id] and row.detail["results"] == 1
        assert row.detail["page"] == "start_a_caf"
    assert _episodes(runtime) == 1


def test_a_shielded_child_gets_the_same_words_as_a_caf_the_index_does_not_show(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    with runtime.db.session() as session:
        shielding.shield(session, session.get(User, people["admin"]), session.get(Child, people["child"]),
                         "At risk of being found by a parent")
    found, refused = _probe(web)
    for page in (found, refused):
        assert MAY_EXIST in page
        assert not any(detail in page for detail in HOLDER)
    assert all(r.detail["results"] == 0 for r in _rows(runtime, "index_searched"))
    assert _episodes(runtime) == 1


def test_withdrawn_consent_stops_the_index_and_start_a_caf_alike(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    with runtime.db.session() as session:
        session.get(Episode, episode_id).consent_state = "withdrawn"
    found, refused = _probe(web)
    assert MAY_EXIST in found and MAY_EXIST in refused and "Olive Origin" not in found + refused


def test_the_practitioner_who_holds_the_caf_is_sent_to_it(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    olive = browser(web["app"])
    olive.sign_in("olive", web["secrets"]["originator"])
    found = olive.post("/children/find", FIND)
    assert "Casey Child" in text_of(found) and MAY_EXIST not in text_of(found)
    refused = olive.post("/children/new", _record_form(people), token_from="/children/find")
    assert refused.status_code == 400 and "open it instead of starting another" in text_of(refused)
    # The find page showed Casey's name and date of birth: its audit row names the episode.
    assert _rows(runtime, "child_search")[-1].detail["episodes"] == [episode_id]
