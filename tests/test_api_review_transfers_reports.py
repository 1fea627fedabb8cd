"""Attacker's review of /api/v1/transfers and /api/v1/reports/episodes: each test proves one defect
(or pins a behaviour found sound that an attacker would try)."""
from __future__ import annotations

import pytest

from tests.test_api_index import assert_problem, call
from tests.test_api_transfers import ASKS, IMPORT, REASON, ask, released_file, snapshot, two  # noqa: F401
from tests.test_episode_transfer import newshire  # noqa: F401

SURROGATE = "\\ud800"  # a lone surrogate as JSON writes it: valid JSON, not UTF-8, so no database holds it


def raw(fields: dict) -> str:
    """A JSON body in which string values may hold escapes json.dumps would not write."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


@pytest.mark.parametrize("field", ["reference", "given_names", "family_name", "reason"])
def test_a_lone_surrogate_in_a_request_is_400_not_500(two, runtime, field):
    body = {"reference": f'"{two["child"]["reference"]}"', "given_names": '"Casey"', "family_name": '"Child"',
            "date_of_birth": f'"{two["child"]["date_of_birth"]}"', "reason": f'"{REASON}"'}
    body[field] = f'"Moved {SURROGATE}"'
    before = snapshot(runtime)
    answer = call(two["app"], two["receiver"], raw(body), path=ASKS)
    assert field in assert_problem(answer, 400)["errors"]
    assert snapshot(runtime) == before


def test_a_lone_surrogate_in_a_decision_reason_is_400_not_500(two, runtime):
    asked = ask(two)
    before = snapshot(runtime)
    answer = call(two["app"], two["sender"], raw({"decision": '"release"', "reason": f'"Agreed {SURROGATE}"'}),
                  path=f"{ASKS}/{asked['id']}/decision")
    assert "reason" in assert_problem(answer, 400)["errors"]
    assert snapshot(runtime) == before


def test_a_lone_surrogate_in_the_lead_professionals_email_is_400_not_500(two, runtime):
    import json
    _, document = released_file(two)
    before = snapshot(runtime)
    body = '{"document": ' + json.dumps(document) + f', "lead_professional_email": "lead{SURROGATE}@new.test"' + "}"
    answer = call(two["app"], two["receiver"], body, path=IMPORT)
    assert "lead_professional_email" in assert_problem(answer, 400)["errors"]
    assert snapshot(runtime) == before


# ---------------------------------------------------------------- reports: cursors and the incremental read

def _reports(runtime, people):
    from tests.test_api_reports import SCOPES
    from tests.test_api_index import register
    from tests.web import make_app
    return {"app": make_app(runtime), "runtime": runtime, "people": people}, \
        register(runtime, people["admin"], scopes=SCOPES, name="Testshire Returns")


def test_a_cursor_holds_for_the_same_moment_written_with_another_offset(runtime, people):
    """The cursor's own comment: the query a cursor belongs to is "the same whatever the offset the
    moment was written with". A client that writes its run's start in local time (+01:00 in summer)
    and then in UTC asks for the same episodes and must not be refused."""
    from tests.test_api_reports import add_episode, get
    api, credentials = _reports(runtime, people)
    for _ in range(3):
        add_episode(runtime, people)
    first = get(api, credentials, updated_since="2000-06-01T09:00:00Z", limit=1)
    assert first.status_code == 200 and first.get_json()["next_cursor"]
    again = get(api, credentials, updated_since="2000-06-01T10:00:00+01:00", limit=1,
                cursor=first.get_json()["next_cursor"])
    assert again.status_code == 200, again.get_data(as_text=True)  # 09:00Z and 10:00+01:00 are one moment


def test_shielding_a_child_relists_its_episode_for_an_incremental_read(runtime, people):
    from datetime import timedelta
    import time_machine
    from app.clock import now
    from app.models import Child, Episode, User
    from app.services import shielding
    from tests.test_api_reports import add_episode, get, nhs
    api, credentials = _reports(runtime, people)
    episode_id = add_episode(runtime, people, number=nhs(0), updated=now() - timedelta(days=2))
    [item] = get(api, credentials).get_json()["items"]
    assert item["nhs_number"] == nhs(0)
    run_began = now()
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        with runtime.db.session() as session:
            child = session.get(Child, session.get(Episode, episode_id).child_id)
            shielding.shield(session, session.get(User, people["admin"]), child,
                             "Risk of harm from a relative who is searching for the family now")
        later = get(api, credentials, updated_since=run_began.isoformat().replace("+00:00", "Z"))
    assert [(i["id"], i["nhs_number"], i["nhs_number_withheld"]) for i in later.get_json()["items"]] == \
        [(episode_id, None, "child_shielded")]


# ---------------------------------------------------------------- the README tells the truth

def test_the_readme_says_once_what_the_api_does_and_promises_nothing_already_there():
    from pathlib import Path
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("## JSON API", 1)[1].split("\n## ", 1)[0]
    assert section.count("at `/api/v1/openapi.json`") == 1, "the opening sentence is written three ways"
    assert "come later" not in section, "transfers, reports and notices are all served now"


# ---------------------------------------------------------------- transfers: a deleted episode's file

def test_a_release_of_an_episode_deleted_since_gives_no_file(two, runtime):
    """Deleting an episode (as one created without consent is) ends every sharing of it: the authority
    it was released to must not fetch a signed file of what is left (its people, its dates, its deletion)."""
    from app.engine import repair
    from tests.test_api_index import audited
    from tests.test_api_transfers import decide, fetch
    asked = ask(two)
    assert decide(two, asked["id"]).status_code == 200
    repair.delete_now(runtime.engine, two["episode"], two["people"]["admin"],
                      "Created without the family's consent to it")
    exported = len(audited(runtime, "episode_exported"))
    answer = fetch(two, asked["id"], two["receiver"])
    problem = assert_problem(answer, 410)
    assert "no longer held" in problem["detail"] and problem["title"] == "Gone"
    assert len(audited(runtime, "episode_exported")) == exported


# ---------------------------------------------------------------- transfers: one authority hiding another's request

def test_another_authoritys_requests_cannot_push_a_genuine_one_out_of_the_list(two, runtime):
    """Asking again for what one's authority is already waiting for is refused (judged on what it typed,
    so the refusal reveals nothing): one authority cannot crowd the holder's list with one request."""
    from app.models import ApiClient, Episode
    from app.services.transfers import requests as request_rules
    from tests.conftest import other_authority
    from tests.test_api_index import register
    from tests.test_api_transfers import get
    genuine = ask(two)
    other = other_authority(runtime)
    register(runtime, other["otto"], scopes=("transfers",), name="Otherborough Flood")
    refused = 0
    for _ in range(request_rules.LIST_LIMIT):
        with runtime.db.session() as session:
            flooder = session.query(ApiClient).filter_by(name="Otherborough Flood").one()
            child = session.get(Episode, two["episode"]).child
            try:
                request_rules.request_transfer(session, flooder, two["child"]["reference"], child.given_names,
                                               child.family_name, child.date_of_birth, "Ours now")
            except request_rules.RequestProblems as problems:
                assert "waiting for an answer" in problems.errors["reference"]
                refused += 1
                session.rollback()
    assert refused == request_rules.LIST_LIMIT - 1
    listed = get(two, ASKS, two["sender"]).get_json()["to_decide"]
    assert genuine["id"] in [r["id"] for r in listed]


# ---------------------------------------------------------------- transfers: small things an attacker tries

def test_a_reference_in_another_scripts_digits_is_400_not_a_match(two, runtime):
    """"TST-٠٠٠٠٠١" reads as no eCAF reference yet matched episode 1: the holding authority would be
    shown a reference that is not the one it gave."""
    before = snapshot(runtime)
    answer = call(two["app"], two["receiver"], {**two["child"], "reason": REASON,
                                                "reference": "TST-" + "٠" * 5 + "١"}, path=ASKS)
    assert "reference" in assert_problem(answer, 400)["errors"]
    assert snapshot(runtime) == before


def test_a_conflict_and_a_gone_release_have_their_titles(two):
    from tests.test_api_transfers import decide
    asked = ask(two)
    assert decide(two, asked["id"]).status_code == 200
    assert assert_problem(decide(two, asked["id"]), 409)["title"] == "Conflict"


def test_a_client_system_does_not_import_a_shielded_childs_episode(two, runtime):
    from app.models import Child
    from tests.test_api_transfers import do_import
    from tests.transfer_release import release, signed_file
    with runtime.db.session() as session:
        session.get(Child, two["people"]["child"]).shielded = True
    asked = ask(two)
    release(runtime, asked["id"], two["people"]["admin"])
    document = signed_file(runtime, asked["id"], two["people"]["admin"])
    before = snapshot(runtime)
    assert_problem(do_import(two, document), 422)
    assert snapshot(runtime) == before
