"""Released transfers: the receiving administrator asks, the sending side releases or declines, the
signed transfer file names the release, and the import checks both before anything moves."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app import policy
from app.clock import now
from app.config import Config, TransferKeyMissing
from app.models import Episode, TransferRequest, User
from app.services import episode_transfer as transfer
from app.services.transfers import requests as requests_service
from tests.conftest import other_authority
from tests.journeys import CONSENT, prepare
from tests.test_episode_transfer import (_another_child, _delivery_episode, _refused, _signed_in,  # noqa: F401
                                         as_file, audited, newshire, prepare_with, snapshot)
from tests.transfer_release import ask, release, released_file, signed_file
from tests.web import give_credentials, text_of


def _form(reference: str, given: str = "Casey", family: str = "Child", born=(1, 5, 2015),
          reason: str = "The family moved to Newshire on 1 December") -> dict:
    day, month, year = born
    return {"reference": reference, "given_names": given, "family_name": family, "date_of_birth-day": str(day),
            "date_of_birth-month": str(month), "date_of_birth-year": str(year), "reason": reason}


def _reference(runtime, episode_id: int) -> str:
    with runtime.db.session() as session:
        return session.get(Episode, episode_id).reference


# ---------------------------------------------------------------- the whole journey, in the pages

def test_asked_released_signed_and_imported_through_the_pages(web, newshire):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    reference = _reference(runtime, episode_id)
    nadia = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))

    empty = nadia.post("/transfers/requests/new", {})
    assert empty.status_code == 400 and "Enter the episode's reference" in text_of(empty)
    asked = nadia.post("/transfers/requests/new", _form(reference.lower()))
    assert asked.status_code == 302
    request_id = int(asked.location.rsplit("/", 1)[1])
    page = nadia.get(asked.location)
    shown = text_of(page)
    assert page.status_code == 200 and "Waiting for the other authority" in shown
    # Before release the asker sees what they typed, and nothing of the CAF or who holds it.
    for secret in ("Testshire", "1 Test Street", "TE1 1ST", "Leah", "Olive", "Download the transfer file"):
        assert secret not in shown, secret
    assert audited(runtime, "transfer_requested")[-1].episode_id is None, "the asker's row names no episode"
    assert audited(runtime, "transfer_request_received")[-1].episode_id == episode_id

    adam = _signed_in(web, "adam", web["secrets"]["admin"])
    listed = adam.get("/transfers/requests/")
    assert listed.status_code == 200 and reference in text_of(listed) and "Newshire" in text_of(listed)
    assert audited(runtime, "episodes_listed", page="transfer_requests_to_decide")[-1].detail["episodes"] == \
        [episode_id]
    assert adam.get(f"/transfers/requests/{request_id}/transfer.json").status_code == 404, "not released yet"
    missing = adam.post(f"/transfers/requests/{request_id}", {"decision": "release"})
    assert missing.status_code == 400 and "Enter the reason for your decision" in text_of(missing)
    released = adam.post(f"/transfers/requests/{request_id}",
                         {"decision": "release", "decision_reason": "Confirmed the move with the family"})
    assert released.status_code == 302
    again = adam.post(f"/transfers/requests/{request_id}", {"decision": "decline", "decision_reason": "Changed mind"})
    assert again.status_code == 400 and "already" in text_of(again)
    row = audited(runtime, "transfer_released")[-1]
    assert row.episode_id == episode_id and row.detail["reason"] == "Confirmed the move with the family"

    download = adam.get(f"/transfers/requests/{request_id}/transfer.json")
    assert download.status_code == 200 and "no-store" in download.headers["Cache-Control"]
    document = json.loads(download.data)
    assert document["transfer"]["released_to"]["code"] == "NEW" and document["signature"]["value"]
    assert nadia.get(f"/transfers/requests/{request_id}/transfer.json").status_code == 404, \
        "the receiving side imports the file it is sent; it does not download the CAF"
    assert "Released until" in text_of(nadia.get(f"/transfers/requests/{request_id}"))

    moved = nadia.post("/transfers/import", {"document": (io.BytesIO(download.data), "caf.json"),
                                             "lead_professional_email": newshire["lead_email"]})
    assert moved.status_code == 302
    with runtime.db.session() as session:
        used = session.get(TransferRequest, request_id)
        assert used.status == "used" and used.used_by_id == newshire["admin"] and used.new_episode_id
        assert session.get(Episode, episode_id).outcome == "moved_to_another_authority"
    assert audited(runtime, "episode_imported")[-1].detail["release_id"] == document["transfer"]["release_id"]


def test_a_request_matching_nothing_looks_the_same_to_the_asker_and_reaches_nobody(web, newshire):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    reference = _reference(runtime, episode_id)
    nadia = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))
    matched = nadia.get(nadia.post("/transfers/requests/new", _form(reference)).location)
    wrong_birthday = nadia.post("/transfers/requests/new", _form(reference, born=(2, 5, 2015)))
    assert wrong_birthday.status_code == 302
    unmatched = nadia.get(wrong_birthday.location)
    assert text_of(matched).replace("1 May 2015", "") == text_of(unmatched).replace("2 May 2015", "") \
        .replace(f"/transfers/requests/{int(wrong_birthday.location.rsplit('/', 1)[1])}", ""), \
        "the asker cannot tell a matching request from one that matched nothing"
    with runtime.db.session() as session:
        rows = session.scalars(select(TransferRequest).order_by(TransferRequest.id)).all()
        assert [r.episode_id for r in rows] == [episode_id, None]
        assert [r.id for r in requests_service.incoming(session, session.get(User, people["admin"]))] == [rows[0].id]
    own = _signed_in(web, "adam", web["secrets"]["admin"]).post("/transfers/requests/new", _form(reference))
    assert own.status_code == 400 and "already belongs to your authority" in text_of(own)


def test_a_declined_request_gives_no_file(runtime, people, newshire):
    episode_id = prepare(runtime, people)
    request_id = ask(runtime, episode_id, newshire["admin"])
    with runtime.db.session() as session:
        request = session.get(TransferRequest, request_id)
        with pytest.raises(requests_service.RequestProblems) as caught:
            requests_service.decide(session, session.get(User, people["admin"]), request, "decline", "")
        assert "decision_reason" in caught.value.errors
    with runtime.db.session() as session:
        request = session.get(TransferRequest, request_id)
        requests_service.decide(session, session.get(User, people["admin"]), request, "decline",
                                "The family still lives here")
    with runtime.db.session() as session:
        request = session.get(TransferRequest, request_id)
        assert (request.status, request.release_id, request.expires_at) == ("declined", None, None)
        assert not request.live(now())
    assert audited(runtime, "transfer_declined")[-1].detail["reason"] == "The family still lives here"


def test_only_the_sending_administrator_or_the_lead_professional_may_release(web, newshire):
    runtime, people = web["runtime"], web["people"]
    episode_id = _delivery_episode(runtime, people)
    request_id = ask(runtime, episode_id, newshire["admin"])
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        allowed = {name: policy.may_decide_transfer(session, session.get(User, user_id), episode) for name, user_id in
                   [("admin", people["admin"]), ("lead", people["lead"]), ("originator", people["originator"]),
                    ("asker", newshire["admin"]), ("other lead", newshire["lead"])]}
    assert allowed == {"admin": True, "lead": True, "originator": False, "asker": False, "other lead": False}

    path = f"/transfers/requests/{request_id}"
    decision = {"decision": "release", "decision_reason": "Moved"}
    denials = len(audited(runtime, "access_denied"))
    olive = _signed_in(web, "olive", web["secrets"]["originator"])
    assert olive.get(path).status_code == 404, "the originator, no longer the lead, is not asked"
    assert olive.post(path, decision, token_from="/account").status_code == 404
    nadia = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))
    assert nadia.post(path, decision, token_from=path).status_code == 404, "the asker cannot release to itself"
    assert len(audited(runtime, "access_denied")) >= denials + 2
    with runtime.db.session() as session:
        assert session.get(TransferRequest, request_id).status == "requested"
    leah = _signed_in(web, "leah", web["secrets"]["lead"])
    assert leah.post(path, decision).status_code == 302, "the lead professional releases"
    with runtime.db.session() as session:
        assert session.get(TransferRequest, request_id).decided_by_id == people["lead"]


def test_an_episode_without_consent_cannot_be_released(runtime, people, newshire):
    episode_id = runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).episode_id
    request_id = ask(runtime, episode_id, newshire["admin"])
    with runtime.db.session() as session:
        with pytest.raises(requests_service.RequestProblems) as caught:
            requests_service.decide(session, session.get(User, people["admin"]),
                                    session.get(TransferRequest, request_id), "release", "Moved")
    assert "has not agreed to share" in caught.value.errors["decision"]


# ---------------------------------------------------------------- what the import refuses

def test_files_without_a_live_release_to_this_authority_are_refused(runtime, people, newshire):
    episode_id = prepare(runtime, people)
    admin, lead = newshire["admin"], newshire["lead_email"]
    with runtime.db.session() as session:
        plain = transfer.export_episode(session, session.get(Episode, episode_id), session.get(User, people["admin"]))
    _refused(runtime, as_file(plain), admin, lead, "is a plain export (for the family or for the record)")

    # Asked but never released: even a file carrying a well-formed release and a valid signature is refused.
    request_id = ask(runtime, episode_id, admin)
    good = released_file(runtime, prepare_other(runtime, people), admin, people["admin"])
    unreleased = {**plain, "transfer": {**good["transfer"], "request_id": request_id, "release_id": "ab" * 16}}
    unreleased["checksum"] = {"algorithm": "sha256", "value": transfer.checksum(unreleased)}
    unreleased["signature"] = transfer.sign(unreleased, runtime.config)
    _refused(runtime, as_file(unreleased), admin, lead, "names no release of this episode")

    release(runtime, request_id, people["admin"])
    document = signed_file(runtime, request_id, people["admin"])
    # Edited after signing: pointed at a third authority, or its expiry pushed back.
    for edit in ({"released_to": {"id": 999, "code": "FAR", "name": "Farshire"}},
                 {"expires_at": (now() + timedelta(days=365)).isoformat()}):
        edited = {**document, "transfer": {**document["transfer"], **edit}}
        edited["checksum"] = {"algorithm": "sha256", "value": transfer.checksum(edited)}
        _refused(runtime, as_file(edited), admin, lead, "signature does not match")
    # Signed with another deployment's key.
    elsewhere = Config(testing=True, transfer_key="another deployment's key, 32 bytes or more")
    foreign = {**document, "signature": transfer.sign(document, elsewhere)}
    _refused(runtime, as_file(foreign), admin, lead, "signature does not match")

    # A third authority's administrator holding the file.
    far = other_authority(runtime, "fay")
    _refused(runtime, as_file(document), far["otto"], "fay@other.test",
             "The episode was released to Newshire, not to Otherborough")

    # Expired.
    with runtime.db.session() as session:
        expires = session.get(TransferRequest, request_id).expires_at
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        _refused(runtime, as_file(document), admin, lead, "The release expired on")

    # Used once, then replayed.
    transfer.import_episode(runtime, as_file(document), admin, lead)
    _refused(runtime, as_file(document), admin, lead, "This release has already been used")
    rows = audited(runtime, "episode_import_refused")
    assert rows[-1].detail["release_id"] == document["transfer"]["release_id"]


def prepare_other(runtime, people) -> int:
    """A second open, consented episode, for another child of the same authority."""
    child = _another_child(runtime, people)
    return prepare_with(runtime, {**people, "child": child}, CONSENT)


def test_one_release_at_a_time_and_the_key_rule(runtime, people, newshire):
    episode_id = prepare(runtime, people)
    first = ask(runtime, episode_id, newshire["admin"])
    release(runtime, first, people["admin"])
    second = ask(runtime, episode_id, newshire["admin"])  # once the first is answered, it may ask again
    with runtime.db.session() as session:
        with pytest.raises(requests_service.RequestProblems) as caught:
            requests_service.decide(session, session.get(User, people["admin"]),
                                    session.get(TransferRequest, second), "release", "Again")
    assert "already released to Newshire" in caught.value.errors["decision"]
    before = snapshot(runtime)
    deployed = Config(database_url="postgresql://db.example/ecaf")
    with pytest.raises(TransferKeyMissing):
        deployed.transfer_signing_key()
    with pytest.raises(TransferKeyMissing):
        Config(database_url="postgresql://db.example/ecaf",
               transfer_key="ecaf-development-transfer-key-not-for-deployment").transfer_signing_key()
    assert Config(database_url="postgresql://db.example/ecaf", transfer_key="k" * 40).transfer_signing_key() == \
        b"k" * 40
    assert snapshot(runtime) == before
