"""/api/v1/transfers: two authorities move an episode by their client systems alone (ask, release,
fetch the signed file, import), and every refusal is a problem response, audited, changing nothing."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.clock import now
from app.models import ApiClient, Episode, TransferRequest, User
from app.services import api_clients
from tests.journeys import prepare
from tests.test_api_index import assert_problem, audited, call, register
from tests import test_episode_transfer
from tests.test_episode_transfer import snapshot as every_row
from tests.web import make_app

ASKS = "/api/v1/transfers/requests"
IMPORT = "/api/v1/transfers/import"
REASON = "The family moved to Newshire on 1 December"
newshire = test_episode_transfer.newshire  # the receiving authority, as a fixture here


@pytest.fixture
def two(runtime, people, request):
    """Testshire holds a consented episode; each authority has a client system with `transfers`."""
    receiving = request.getfixturevalue("newshire")
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        child = {"reference": episode.reference, "given_names": episode.child.given_names,
                 "family_name": episode.child.family_name, "date_of_birth": episode.child.date_of_birth.isoformat()}
    return {"app": make_app(runtime), "runtime": runtime, "people": people, "newshire": receiving,
            "episode": episode_id, "child": child,
            "sender": register(runtime, people["admin"], scopes=("transfers",), name="Testshire Mosaic"),
            "receiver": register(runtime, receiving["admin"], scopes=("transfers",), name="Newshire Liquidlogic")}


def snapshot(runtime) -> dict:
    """Every row but the audit trail's and the clients' (each call notes when a client was last used)."""
    rows = every_row(runtime)
    rows.pop("api_client")
    return rows


def ask(two, credentials=None, **changes) -> dict:
    answer = call(two["app"], credentials or two["receiver"], {**two["child"], "reason": REASON, **changes},
                  path=ASKS)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def decide(two, request_id: int, decision: str = "release", credentials=None, reason="Confirmed with the family"):
    return call(two["app"], credentials or two["sender"], {"decision": decision, "reason": reason},
                path=f"{ASKS}/{request_id}/decision")


def fetch(two, request_id: int, credentials=None):
    return call(two["app"], credentials or two["receiver"], None, path=f"{ASKS}/{request_id}/export", method="GET")


def released_file(two) -> tuple[int, dict]:
    asked = ask(two)
    assert decide(two, asked["id"]).status_code == 200
    answer = fetch(two, asked["id"])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return asked["id"], answer.get_json()


def do_import(two, document, credentials=None, email=None):
    return call(two["app"], credentials or two["receiver"],
                {"document": document, "lead_professional_email": email or two["newshire"]["lead_email"]},
                path=IMPORT)


def get(two, path: str, credentials):
    return call(two["app"], credentials, None, path=path, method="GET")


# ---------------------------------------------------------------- the whole journey, by clients only

def test_two_client_systems_move_an_episode_between_authorities(two):
    runtime, receiving = two["runtime"], two["newshire"]
    asked = ask(two, reference=two["child"]["reference"].lower())
    assert asked["status"] == "requested" and asked["side"] == "asking"
    assert asked["reference"] == two["child"]["reference"] and asked["given_names"] == "Casey"
    # Exactly what the web form shows: what was typed, nothing of the episode or who holds it.
    assert asked["episode_reference"] is None and asked["holding_authority"] is None and asked["asked_by"] is None
    nothing = ask(two, reference="TST-999999")
    assert {k: v for k, v in nothing.items() if k not in ("id", "reference", "requested_at")} == \
        {k: v for k, v in asked.items() if k not in ("id", "reference", "requested_at")}, "a miss looks like a match"
    [requested] = audited(runtime, "transfer_requested")[:1]
    assert requested.actor_id is None and requested.detail["client"] == "Newshire Liquidlogic"
    assert requested.episode_id is None

    listed = get(two, ASKS, two["sender"]).get_json()
    [waiting] = listed["to_decide"]
    assert waiting["side"] == "deciding" and waiting["asked_by"] == "Newshire Liquidlogic (client system)"
    assert waiting["episode_reference"] == two["child"]["reference"] and listed["made"] == []
    made = get(two, ASKS, two["receiver"]).get_json()
    assert [r["id"] for r in made["made"]] == [nothing["id"], asked["id"]] and made["to_decide"] == []

    released = decide(two, asked["id"])
    assert released.status_code == 200, released.get_data(as_text=True)
    assert released.get_json()["status"] == "released" and released.get_json()["decided_by"] == \
        "Testshire Mosaic (client system)"
    seen = get(two, f"{ASKS}/{asked['id']}", two["receiver"]).get_json()
    assert seen["status"] == "released" and seen["holding_authority"] == "Testshire" and seen["decided_by"] is None
    assert seen["episode_reference"] is None and seen["decision_reason"] == "Confirmed with the family"
    with runtime.db.session() as session:
        row = session.get(TransferRequest, asked["id"])
        assert row.requested_by_id is None and row.requested_by_client.name == "Newshire Liquidlogic"
        assert row.decided_by_id is None and row.decided_by_client.name == "Testshire Mosaic"

    for credentials in (two["sender"], two["receiver"]):
        answer = fetch(two, asked["id"], credentials)
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    document = answer.get_json()
    assert document["exported_by"] == {"email": None, "name": "Newshire Liquidlogic (client system)",
                                       "role": "client system"}
    assert document["transfer"]["released_by"] is None and document["transfer"]["released_to"]["code"] == "NEW"
    exported = audited(runtime, "episode_exported")
    assert [e.detail["client"] for e in exported] == ["Testshire Mosaic", "Newshire Liquidlogic"]
    assert all(e.episode_id == two["episode"] and e.detail["purpose"] == "transfer" for e in exported)

    imported = do_import(two, document)
    assert imported.status_code == 201, imported.get_data(as_text=True)
    answer = imported.get_json()
    assert answer["transferred_from"] == two["child"]["reference"] and answer["reference"].startswith("NEW-")
    with runtime.db.session() as session:
        moved = session.scalar(select(Episode).where(Episode.transferred_from == two["child"]["reference"]))
        assert moved.reference == answer["reference"] and moved.authority_id == receiving["authority"]
        assert moved.lead_professional_id == receiving["lead"] and moved.status == "open"
        assert session.get(Episode, two["episode"]).status == "closed"
        used = session.get(TransferRequest, asked["id"])
        assert used.status == "used" and used.new_episode_id == moved.id and used.used_by_id is None
    [row] = audited(runtime, "episode_imported")
    assert row.actor_id is None and row.detail["client"] == "Newshire Liquidlogic"
    assert audited(runtime, "episode_transferred_out")[0].detail["client"] == "Newshire Liquidlogic"

    again = assert_problem(do_import(two, document), 422)
    assert "already" in again["detail"]
    gone = assert_problem(fetch(two, asked["id"]), 409)
    assert "used" in gone["detail"]


def test_the_web_page_names_a_client_system_as_asker_and_decider(two, web):
    asked = ask(two)
    decide(two, asked["id"], "decline", reason="The child still lives here")
    from tests.test_episode_transfer import _signed_in
    adam = _signed_in(web, "adam", web["secrets"]["admin"])
    page = adam.get(f"/transfers/requests/{asked['id']}").get_data(as_text=True)
    assert "Newshire Liquidlogic (client system)" in page and "Testshire Mosaic (client system)" in page
    trail = adam.get(f"/episodes/{two['episode']}/audit").get_data(as_text=True)
    assert "Testshire Mosaic (client system)" in trail, "the audit trail names the client, not eCAF"


# ---------------------------------------------------------------- who may not

def test_another_authoritys_client_sees_nothing_and_decides_nothing(two, runtime):
    from tests.conftest import other_authority
    elsewhere = other_authority(runtime)
    stranger = register(runtime, elsewhere["otto"], scopes=("transfers",), name="Stranger")
    asked = ask(two)
    before = snapshot(runtime)
    for path in (f"{ASKS}/{asked['id']}", f"{ASKS}/{asked['id']}/export"):
        assert_problem(get(two, path, stranger), 404)
    assert_problem(decide(two, asked["id"], credentials=stranger), 404)
    # The asking side may not decide its own request either, nor can it be fetched before release.
    assert_problem(decide(two, asked["id"], credentials=two["receiver"]), 404)
    assert "no transfer file" in assert_problem(fetch(two, asked["id"]), 409)["detail"]
    assert get(two, ASKS, stranger).get_json() == {"to_decide": [], "made": []}
    assert snapshot(runtime) == before
    denied = audited(runtime, "access_denied")
    assert len(denied) == 4 and {d.detail["client"] for d in denied} == {"Stranger", "Newshire Liquidlogic"}


def test_without_the_scope_or_live_credentials_nothing_happens(two, runtime):
    people = two["people"]
    index_only = register(runtime, people["admin"], scopes=("index:read",), name="Index only")
    asked = ask(two)
    revoked = register(runtime, people["admin"], scopes=("transfers",), name="Gone")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Gone"))
        api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
    short = register(runtime, people["admin"], scopes=("transfers",), days=1, name="Short")
    before = snapshot(runtime)
    assert_problem(decide(two, asked["id"], credentials=index_only), 403)
    assert_problem(call(two["app"], index_only, {**two["child"], "reason": REASON}, path=ASKS), 403)
    assert_problem(decide(two, asked["id"], credentials=revoked), 401)
    assert_problem(call(two["app"], None, {}, path=IMPORT), 401)
    with time_machine.travel(now() + timedelta(days=3)):
        assert_problem(decide(two, asked["id"], credentials=short), 401)
        assert_problem(fetch(two, asked["id"], short), 401)
    assert snapshot(runtime) == before


@pytest.mark.parametrize("path", [f"{ASKS}/0", f"{ASKS}/999999", f"{ASKS}/99999999999999999999",
                                  f"{ASKS}/-1/export", f"{ASKS}/abc", f"{ASKS}/2147483648/export"])
def test_forged_ids_are_404(two, path):
    assert_problem(get(two, path, two["sender"]), 404)


# ---------------------------------------------------------------- refusals as the pages give them

def test_a_release_after_someone_declined_is_409_and_bad_input_is_400(two, runtime):
    asked = ask(two)
    missing = assert_problem(decide(two, asked["id"], reason="  "), 400)
    assert missing["errors"] == {"reason": "Enter the reason for your decision"}
    odd = assert_problem(decide(two, asked["id"], "maybe"), 400)
    assert "decision" in odd["errors"]
    assert decide(two, asked["id"], "decline", reason="The child still lives here").status_code == 200
    before = snapshot(runtime)
    late = assert_problem(decide(two, asked["id"]), 409)
    assert late["detail"] == "Someone else has decided this request already"
    assert snapshot(runtime) == before
    assert get(two, f"{ASKS}/{asked['id']}", two["receiver"]).get_json()["decision_reason"] == \
        "The child still lives here"


def test_a_reference_naming_no_row_is_kept_as_typed(two):
    # Twelve digits name no episode id (beyond PostgreSQL's integer): recorded, and nothing matched.
    asked = ask(two, reference="TST-999999999999")
    assert asked["status"] == "requested" and asked["reference"] == "TST-999999999999"
    assert get(two, ASKS, two["sender"]).get_json()["to_decide"] == []
    odd = call(two["app"], two["sender"], {"decision": "release", "reason": "Moved\x00"},
               path=f"{ASKS}/{asked['id']}/decision")
    assert assert_problem(odd, 400)["errors"] == {"reason": "Remove the control characters"}


def test_one_release_at_a_time_is_422(two):
    first = ask(two)
    assert decide(two, first["id"]).status_code == 200
    second = ask(two)  # once the first is answered, the authority may ask again
    refused = assert_problem(decide(two, second["id"]), 422)
    assert "already released to Newshire" in refused["errors"]["decision"]


@pytest.mark.parametrize("changes, field", [
    ({"reference": "not a reference"}, "reference"), ({"given_names": " "}, "given_names"),
    ({"reason": ""}, "reason"), ({"date_of_birth": "9999-12-31"}, "date_of_birth"),
    ({"date_of_birth": "0001-01-01"}, "date_of_birth"), ({"family_name": "Child\x00"}, "family_name"),
    ({"reason": "x" * 2001}, "reason"), ({"date_of_birth": "yesterday"}, "date_of_birth"),
    ({"extra": 1}, "extra"), ({"given_names": 12}, "given_names"), ({"reason": "Moved\x00"}, "reason"),
])
def test_bad_requests_are_400_naming_the_field_and_record_nothing(two, runtime, changes, field):
    before = snapshot(runtime)
    answer = call(two["app"], two["receiver"], {**two["child"], "reason": REASON, **changes}, path=ASKS)
    assert field in assert_problem(answer, 400)["errors"]
    assert snapshot(runtime) == before


def test_an_expired_release_is_410(two, runtime):
    asked = ask(two)
    decide(two, asked["id"])
    with time_machine.travel(now() + timedelta(days=15)):
        assert "expired" in assert_problem(fetch(two, asked["id"]), 410)["detail"]
        assert get(two, f"{ASKS}/{asked['id']}", two["receiver"]).get_json()["status"] == "expired"


def test_a_file_fetched_before_expiry_is_refused_after_it(two, runtime):
    _, document = released_file(two)
    before = snapshot(runtime)
    with time_machine.travel(now() + timedelta(days=15)):
        refused = assert_problem(do_import(two, document), 422)
    assert "expired" in refused["detail"] and snapshot(runtime) == before


def test_a_tampered_document_is_refused_with_its_reasons(two, runtime):
    _, document = released_file(two)
    before = snapshot(runtime)
    changed = json.loads(json.dumps(document))
    changed["child"]["family_name"] = "Someone Else"
    refused = assert_problem(do_import(two, changed), 422)
    assert "signature does not match" in refused["detail"] and refused["errors"] == {"document": refused["detail"]}
    broken = {**document, "episode": "not an episode"}
    schema = assert_problem(do_import(two, broken), 422)
    assert schema["problems"] and any(p.startswith("episode") for p in schema["problems"])
    assert assert_problem(do_import(two, {**document, "episode": {"reference": "\x00"}}), 400)["errors"] == \
        {"document": "Remove the control characters"}
    nobody = assert_problem(do_import(two, document, email="nobody@newshire.test"), 422)
    assert nobody["errors"] == {"lead_professional_email": nobody["detail"]}
    assert snapshot(runtime) == before
    refusals = audited(runtime, "episode_import_refused")
    assert len(refusals) == 3 and all(r.detail["client"] == "Newshire Liquidlogic" for r in refusals)


def test_an_import_by_a_client_of_the_wrong_authority_is_refused(two, runtime):
    from tests.conftest import other_authority
    elsewhere = other_authority(runtime)
    stranger = register(runtime, elsewhere["otto"], scopes=("transfers",), name="Stranger")
    _, document = released_file(two)
    before = snapshot(runtime)
    for credentials in (stranger, two["sender"]):
        refused = assert_problem(do_import(two, document, credentials), 422)
        assert "only that authority can import it" in refused["detail"]
    assert snapshot(runtime) == before


def test_no_transfer_key_is_503(two, runtime, monkeypatch):
    asked = ask(two)
    decide(two, asked["id"])
    monkeypatch.setattr(runtime.config, "testing", False)
    assert "transfer key" in assert_problem(fetch(two, asked["id"]), 503)["detail"]
    assert audited(runtime, "episode_exported") == []


def test_the_import_alone_takes_a_large_body(two):
    large = {"document": {"format": "x" * (1024 * 1024)}, "lead_professional_email": "a@b.test"}
    assert assert_problem(call(two["app"], two["receiver"], large, path=IMPORT), 422)["detail"].startswith(
        "The file is not an eCAF episode export")
    too_large = {**two["child"], "reason": "x" * (32 * 1024)}
    assert_problem(call(two["app"], two["receiver"], too_large, path=ASKS), 413)
    assert_problem(call(two["app"], two["receiver"], {"document": {"x": "y" * (21 * 1024 * 1024)}},
                        path=IMPORT), 413)


def test_the_openapi_document_describes_every_transfer_call(two):
    document = two["app"].test_client().get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    one = f"{ASKS}/{{request_id}}"
    assert {"post", "get"} <= set(paths[ASKS]) and "get" in paths[one]
    assert set(paths[f"{one}/decision"]["post"]["responses"]) >= {"200", "400", "401", "403", "404", "409", "422"}
    assert set(paths[f"{one}/export"]["get"]["responses"]) >= {"200", "404", "409", "410", "503"}
    assert set(paths[IMPORT]["post"]["responses"]) >= {"201", "400", "401", "403", "413", "415", "422"}


def test_odd_documents_are_problems_never_500(two, runtime):
    before = snapshot(runtime)
    for depth, status in ((5000, 400), (900, 400), (101, 400)):
        deep = ('{"document": {"format": "ecaf-episode-export", "x": ' + "[" * depth + "]" * depth +
                '}, "lead_professional_email": "a@b.test"}')
        assert_problem(call(two["app"], two["receiver"], deep, path=IMPORT), status)
    huge = {"format": "ecaf-episode-export", "schema_version": 10**100, "episode": {"id": 10**40}}
    assert "schema version" in assert_problem(do_import(two, huge), 422)["detail"]
    assert assert_problem(do_import(two, [1, 2]), 400)["errors"] == {"document": "Input should be a valid dictionary"}
    surrogate = '{"document": {"format": "ecaf-episode-export", "x": ["\\ud800"]}, "lead_professional_email": "a@b.test"}'
    assert assert_problem(call(two["app"], two["receiver"], surrogate, path=IMPORT), 400)["errors"] == \
        {"document": "Remove the control characters"}
    assert snapshot(runtime) == before


def test_a_real_export_is_far_shallower_than_the_limit(two):
    from app.api.transfers import MAX_DEPTH
    _, document = released_file(two)

    def depth(value) -> int:
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        return 1 + max((depth(v) for v in children), default=0)
    assert depth(document) < MAX_DEPTH // 3


def test_a_shielded_childs_episode_is_left_to_people(two, runtime):
    from app.models import Child
    from tests.transfer_release import release
    with runtime.db.session() as session:
        session.get(Child, two["people"]["child"]).shielded = True
    asked = ask(two)
    assert get(two, ASKS, two["sender"]).get_json()["to_decide"] == []
    assert_problem(get(two, f"{ASKS}/{asked['id']}", two["sender"]), 404)
    assert_problem(decide(two, asked["id"]), 404)
    release(runtime, asked["id"], two["people"]["admin"])
    for credentials in (two["sender"], two["receiver"]):
        assert_problem(fetch(two, asked["id"], credentials), 404)
    assert get(two, f"{ASKS}/{asked['id']}", two["receiver"]).get_json()["status"] == "released"
