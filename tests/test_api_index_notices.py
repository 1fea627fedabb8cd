"""Index notices received from other systems (PUT/GET/DELETE /api/v1/index/notices/{reference}): a client
with index:notify tells the index it holds an assessment; *Is there a CAF?* then finds it, by the index's
own matching rules, with its source. Each client sees and changes only its own notices."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.models import API_SCOPES, ApiClient, Child, ReceivedNotice, User
from app.services import api_clients, national_index
from tests.conftest import other_authority
from tests.test_api_index import REASON, assert_problem, audited, call, register
from tests.web import make_app

NOTICES = "/api/v1/index/notices"
NOTICE = {"assessment": "Early Help Assessment", "status": "open", "nhs_number": "943 476 5919",
          "family_name": "Noticed", "given_names": "Nia", "date_of_birth": "2016-03-04", "postcode": "ot1 2ab",
          "contact": {"name": "Erin Early", "role": "Early help worker", "organisation": "Otherborough Early Help",
                      "phone": "01632 960 001", "email": "erin@other.test"}}
BOTH = ("index:notify", "index:read")


@pytest.fixture
def api(runtime, people):
    elsewhere = other_authority(runtime)
    sender = register(runtime, elsewhere["otto"], scopes=BOTH, name="Mosaic")
    return {"app": make_app(runtime), "runtime": runtime, "people": people, "elsewhere": elsewhere, "sender": sender}


def send(api, reference="EHA-1001", body=NOTICE, credentials=None, method="PUT"):
    return call(api["app"], credentials or api["sender"], body if method == "PUT" else "",
                path=f"{NOTICES}/{reference}", method=method)


def search(api, credentials=None, **keys):
    """The index asked by a Testshire client, with `keys` only."""
    credentials = credentials or api.setdefault("searcher", register(api["runtime"], api["people"]["admin"],
                                                                     name="Liquidlogic"))
    answer = call(api["app"], credentials, {**keys, "reason": REASON})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["results"]


def stored(runtime) -> list[ReceivedNotice]:
    with runtime.db.session() as session:
        return list(session.scalars(select(ReceivedNotice).order_by(ReceivedNotice.id)))


# ---------------------------------------------------------------- sending, reading, replacing, withdrawing

def test_a_notice_is_created_then_read_then_replaced_idempotently(api):
    runtime = api["runtime"]
    created = send(api)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["reference"] == "EHA-1001" and body["nhs_number"] == "9434765919" and body["postcode"] == "OT1 2AB"
    assert body["contact"]["email"] == "erin@other.test" and "Set-Cookie" not in created.headers
    assert send(api, method="GET").get_json() == body
    again = send(api)
    assert again.status_code == 200 and again.get_json()["updated_at"] == body["updated_at"]
    with time_machine.travel(now() + timedelta(hours=2)):
        closed = send(api, body={**NOTICE, "status": "closed"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    assert closed.get_json()["updated_at"] > body["updated_at"] and closed.get_json()["received_at"] == body["received_at"]
    assert len(stored(runtime)) == 1
    received, *replaced = audited(runtime, "index_notice_received") + audited(runtime, "index_notice_replaced")
    assert received.detail["client"] == "Mosaic" and received.detail["reference"] == "EHA-1001"
    assert [r.detail["changed"] for r in replaced] == [[], ["status"]]


def test_withdrawing_hides_the_notice_and_sending_it_again_brings_it_back(api):
    runtime = api["runtime"]
    send(api)
    assert len(search(api, family_name="Noticed", date_of_birth="2016-03-04")) == 1
    assert send(api, method="DELETE").status_code == 204
    assert search(api, family_name="Noticed", date_of_birth="2016-03-04") == []
    assert_problem(send(api, method="GET"), 404)
    assert send(api, method="DELETE").status_code == 204  # a retry is harmless
    assert [e.detail["already_withdrawn"] for e in audited(runtime, "index_notice_withdrawn")] == [False, True]
    assert send(api).status_code == 201
    assert len(search(api, family_name="Noticed", date_of_birth="2016-03-04")) == 1
    assert len(stored(runtime)) == 1


# ---------------------------------------------------------------- found by the search, with its source

@pytest.mark.parametrize("keys, match, near_because", [
    ({"nhs_number": "9434765919", "family_name": "Someone"}, "exact", []),
    ({"nhs_number": "943-476-5919", "postcode": "ZZ9 9ZZ"}, "exact", []),
    ({"family_name": "Noticed", "date_of_birth": "2016-03-04"}, "exact", []),
    ({"family_name": "Noticed", "postcode": "OT1 2AB"}, "exact", []),
    ({"date_of_birth": "2016-03-04", "postcode": "OT12AB"}, "exact", []),
    ({"family_name": "Notised", "date_of_birth": "2016-03-04"}, "near", ["family name spelled differently"]),
    ({"date_of_birth": "2016-04-03", "postcode": "OT1 9ZZ"}, "near", ["day and month swapped",
                                                                       "same postcode district"]),
    ({"nhs_number": "4010232137", "family_name": "Noticed", "date_of_birth": "2016-03-04"}, "near",
     ["NHS number differs"]),
])
def test_each_key_combination_finds_the_notice_with_its_source(api, keys, match, near_because):
    send(api)
    [result] = search(api, **keys)
    assert result["match"] == match and result["near_because"] == near_because
    assert result["source"] == {"kind": "received_notice", "assessment": "Early Help Assessment", "system": "Mosaic",
                                "authority": "Otherborough",
                                "description": "Early Help Assessment reported by Mosaic for Otherborough"}
    assert result["home_authority"] == "Otherborough" and result["status"] == "open"
    assert result["contact"] == {k: v for k, v in NOTICE["contact"].items()}
    by_number = match == "exact" and "nhs_number" in keys
    assert result["matched_on_nhs_number"] is by_number
    assert result["family_name"] == (None if by_number else "Noticed")


def test_a_caf_and_a_notice_are_both_found_each_with_its_source(api):
    from tests.journeys import to_delivery
    to_delivery(api["runtime"], api["people"])
    send(api, body={**NOTICE, "family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST",
                    "nhs_number": None})
    results = search(api, family_name="Child", date_of_birth="2015-05-01", postcode="TE1 1ST")
    by_kind = {r["source"]["kind"]: r for r in results}  # equally good: the latest updated first
    assert set(by_kind) == {"ecaf", "received_notice"} and len(results) == 2
    assert by_kind["ecaf"]["source"]["description"] == "An eCAF CAF" and by_kind["ecaf"]["home_authority"] == "Testshire"
    [searched] = audited(api["runtime"], "index_searched")
    assert searched.detail["results"] == 2 and len(searched.detail["notices"]) == 1


def test_start_a_caf_asks_about_ecaf_cafs_only(api):
    send(api)
    with api["runtime"].db.session() as session:
        admin = session.get(User, api["people"]["admin"])
        asked = {"given_names": None, "family_name": "Noticed", "date_of_birth": date(2016, 3, 4),
                 "postcode": None, "reason": REASON}
        assert national_index.search(session, admin, open_only=True, **asked) == []
        [found] = national_index.search(session, admin, **asked)
        assert found.source.kind == "received_notice" and found.episode_id is None


def test_a_revoked_clients_notices_are_no_longer_found(api):
    runtime = api["runtime"]
    send(api)
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Mosaic"))
        api_clients.revoke(session, session.get(User, api["elsewhere"]["otto"]), row.id, "Contract ended")
    assert search(api, family_name="Noticed", date_of_birth="2016-03-04") == []
    assert_problem(send(api), 401)


def test_a_notice_holding_a_shielded_childs_nhs_number_is_shielded_with_the_child(api):
    runtime, people = api["runtime"], api["people"]
    send(api)
    with runtime.db.session() as session:
        child = session.get(Child, people["child"])
        child.nhs_number, child.shielded = "9434765919", True
    assert search(api, family_name="Noticed", date_of_birth="2016-03-04") == []
    with runtime.db.session() as session:
        asked = {"given_names": None, "family_name": "Noticed", "date_of_birth": date(2016, 3, 4), "postcode": None,
                 "reason": REASON}
        [seen] = national_index.search(session, session.get(User, people["admin"]), **asked)
        assert seen.shielded and seen.source.kind == "received_notice"
        assert national_index.search(session, session.get(User, people["lead"]), **asked) == []
    with runtime.db.session() as session:
        session.get(Child, people["child"]).shielded = False
    assert len(search(api, family_name="Noticed", date_of_birth="2016-03-04")) == 1


# ---------------------------------------------------------------- refusals

def test_another_clients_reference_is_not_found_and_the_refusal_audited(api):
    runtime = api["runtime"]
    send(api)
    rival = register(runtime, api["people"]["admin"], scopes=("index:notify",), name="SystmOne")
    for method in ("GET", "DELETE"):
        assert_problem(send(api, credentials=rival, method=method), 404)
    refusals = audited(runtime, "index_notice_refused")
    assert [r.detail["asked"] for r in refusals] == ["read", "withdraw"]
    assert all(r.detail["client"] == "SystmOne" and r.detail["another_clients"] for r in refusals)
    assert send(api, credentials=rival, body={**NOTICE, "family_name": "Rival"}).status_code == 201
    assert send(api, method="GET").get_json()["family_name"] == "Noticed"  # Mosaic's is untouched
    assert sorted(n.family_name for n in stored(runtime)) == ["Noticed", "Rival"]
    assert_problem(send(api, reference="NEVER-SENT", method="GET"), 404)


@pytest.mark.parametrize("scope", API_SCOPES)
def test_only_index_notify_may_send_read_or_withdraw(api, scope):
    runtime = api["runtime"]
    credentials = register(runtime, api["people"]["admin"], scopes=(scope,), name="Scoped")
    answers = [send(api, credentials=credentials, method=method) for method in ("PUT", "GET", "DELETE")]
    if scope == "index:notify":
        assert [a.status_code for a in answers] == [201, 200, 204]
    else:
        for answer in answers:
            assert "index:notify" in assert_problem(answer, 403)["detail"]
        assert stored(runtime) == []


def test_unknown_expired_and_revoked_clients_get_401_and_nothing_changes(api):
    runtime = api["runtime"]
    expiring = register(runtime, api["people"]["admin"], scopes=("index:notify",), days=1, name="Old")
    revoked = register(runtime, api["people"]["admin"], scopes=("index:notify",), name="Gone")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Gone"))
        api_clients.revoke(session, session.get(User, api["people"]["admin"]), row.id, "Contract ended")
    answers = [send(api, credentials=c) for c in ("nonsense", "unknown.secret", revoked)]
    with time_machine.travel(now() + timedelta(days=3)):
        answers.append(send(api, credentials=expiring))
    for answer in answers:
        assert_problem(answer, 401)
    assert stored(runtime) == []
    assert call(api["app"], None, NOTICE, path=f"{NOTICES}/EHA-1", method="PUT").status_code == 401


BAD_FIELDS = [
    ({"family_name": "Nul\u0000led"}, "family_name"),
    ({"family_name": "   "}, "family_name"),
    ({"given_names": "Bell\u0007"}, "given_names"),
    ({"assessment": "\ud800"}, "assessment"),
    ({"contact": {**NOTICE["contact"], "name": "Erin\u0000"}}, "contact.name"),
    ({"contact": {**NOTICE["contact"], "phone": None, "email": None}}, "contact.phone"),
    ({"contact": {**NOTICE["contact"], "email": "not an address"}}, "contact.email"),
    ({"contact": {**NOTICE["contact"], "phone": "call me"}}, "contact.phone"),
    ({"contact": {**NOTICE["contact"], "fax": "01632"}}, "contact.fax"),
    ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
    ({"date_of_birth": "0001-01-01"}, "date_of_birth"),
    ({"date_of_birth": "not a date"}, "date_of_birth"),
    ({"postcode": "nowhere"}, "postcode"),
    ({"nhs_number": "943 476 5918"}, "nhs_number"),
    ({"nhs_number": 10 ** 40}, "nhs_number"),
    ({"status": "pending"}, "status"),
    ({"address": "1 Test Road"}, "address"),
    ({"family_name": "x" * 201}, "family_name"),
]


@pytest.mark.parametrize("change, field", BAD_FIELDS)
def test_bad_fields_are_400_naming_the_field_and_nothing_is_stored(api, change, field):
    answer = send(api, body={**NOTICE, **change})
    assert field in assert_problem(answer, 400)["errors"]
    assert stored(api["runtime"]) == []
    assert audited(api["runtime"], "index_notice_received") == []
    [refused] = audited(api["runtime"], "index_notice_refused")
    assert refused.detail["client"] == "Mosaic" and field in refused.detail["fields"] and refused.detail["why"] == "invalid"
    assert refused.detail["reference"] == "EHA-1001" and refused.detail["asked"] == "send"


@pytest.mark.parametrize("reference", [".hidden", "a b", "x" * 65, "%00", "é", "-lead"])
def test_a_reference_that_is_not_short_and_safe_is_400(api, reference):
    for method in ("PUT", "GET", "DELETE"):
        assert "reference" in assert_problem(send(api, reference=reference, method=method), 400)["errors"]
    assert stored(api["runtime"]) == []
    refusals = audited(api["runtime"], "index_notice_refused")
    assert [r.detail["asked"] for r in refusals] == ["send", "read", "withdraw"]
    assert all(r.detail["reference"] is None and r.detail["fields"] == ["reference"] for r in refusals)


def test_odd_but_valid_text_is_kept_as_sent(api):
    name = "O'Brién-Smith 山田 🙂"
    answer = send(api, reference="mosaic:EHA_1.2", body={**NOTICE, "family_name": name, "postcode": None,
                                                        "nhs_number": None})
    assert answer.status_code == 201 and answer.get_json()["family_name"] == name
    assert search(api, family_name=name, date_of_birth="2016-03-04")[0]["family_name"] == name


def test_wrong_media_type_bad_json_and_huge_bodies_are_problems(api):
    path = f"{NOTICES}/EHA-1"
    assert_problem(call(api["app"], api["sender"], "a=b", path=path, method="PUT",
                        content_type="application/x-www-form-urlencoded"), 415)
    assert audited(api["runtime"], "index_notice_refused")[0].detail["status"] == 415
    assert_problem(call(api["app"], api["sender"], "{nope", path=path, method="PUT"), 400)
    assert_problem(call(api["app"], api["sender"], {**NOTICE, "given_names": "x" * 20000}, path=path, method="PUT"), 413)
    assert_problem(call(api["app"], api["sender"], NOTICE, path=f"{NOTICES}/a/b", method="PUT"), 404)
    assert stored(api["runtime"]) == []


def test_the_openapi_document_describes_every_answer(api):
    document = json.loads(api["app"].test_client().get("/api/v1/openapi.json").get_data(as_text=True))
    operations = document["paths"][f"{NOTICES}/{{reference}}"]
    assert set(operations) == {"put", "get", "delete"}
    assert {"200", "201", "400", "401", "403", "404", "413", "415"} <= set(operations["put"]["responses"])
    assert {"200", "400", "401", "403", "404"} <= set(operations["get"]["responses"])
    assert {"204", "400", "401", "403", "404"} <= set(operations["delete"]["responses"])
    assert all(op["security"] == [{"client": []}, {"oauth": ["index:notify"]}] for op in operations.values())
    [parameter] = operations["get"]["parameters"]
    assert parameter["name"] == "reference" and parameter["in"] == "path"
    source = document["components"]["schemas"]
    assert any("source" in schema.get("properties", {}) for schema in source.values())
    with api["runtime"].db.session() as session:
        assert session.scalar(select(func.count()).select_from(ReceivedNotice)) == 0


def test_unprintable_text_in_a_search_is_400_not_a_failure(api):
    send(api)
    for odd in ("\ud800", "No\u0000"):
        answer = call(api["app"], register(api["runtime"], api["people"]["admin"], name="Odd"),
                      {"family_name": odd, "date_of_birth": "2016-03-04", "reason": REASON})
        assert "family_name" in assert_problem(answer, 400)["errors"]


def test_the_same_notice_sent_twice_at_once_is_created_once(api):
    """A retry racing the first call: the second waits for the first's row and replaces it."""
    import threading
    from app.api.notices import NoticeBody, _checked
    from app.services import received_notices
    runtime = api["runtime"]
    fields = _checked("EHA-9", NoticeBody.model_validate(NOTICE))
    with runtime.db.session() as session:
        client_id = session.scalar(select(ApiClient.id).where(ApiClient.name == "Mosaic"))
    answers = []

    def second():
        with runtime.db.session() as other:
            answers.append(received_notices.put(other, other.get(ApiClient, client_id), "EHA-9", fields)[1])
    with runtime.db.session() as first:
        answers.append(received_notices.put(first, first.get(ApiClient, client_id), "EHA-9", fields)[1])
        racing = threading.Thread(target=second)
        racing.start()
        racing.join(0.5)  # on PostgreSQL it waits for this transaction; on SQLite for the write lock
    racing.join(10)
    assert sorted(answers) == [False, True] and len(stored(runtime)) == 1
