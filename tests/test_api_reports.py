"""GET /api/v1/reports/episodes: the authority's episodes as data for returns, by page, with the NHS
number only where lawful, never another authority's or a deleted episode, every page audited."""
from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from app import nhs_number as numbers
from app.clock import now
from app.models import API_SCOPES, ApiClient, Artefact, Child, Episode, OutcomeRecord, ProcessVersion, User
from app.services import api_clients
from tests.conftest import other_authority
from tests.test_api_index import assert_problem, audited, call, register
from tests.test_outcomes import close_with, plan_with
from tests.web import make_app

PATH = "/api/v1/reports/episodes"
SCOPES = ("reports:read",)


@pytest.fixture
def api(runtime, people):
    return {"app": make_app(runtime), "runtime": runtime, "people": people}


def nhs(n: int) -> str:
    """The n-th valid NHS number of a run of test children (some first nines call for no check digit)."""
    found = 0
    for stem in range(400000000, 400100000):
        check = numbers.check_digit(str(stem))
        if check is not None:
            if found == n:
                return f"{stem}{check}"
            found += 1
    raise AssertionError("ran out of numbers")


def add_episode(runtime, people, *, authority_id=None, consent="given", number: str | None = None,
                missing: str | None = None, shielded=False, born=date(2015, 5, 1), status="open",
                started: datetime | None = None, updated: datetime | None = None, **columns) -> int:
    """An episode row of its own child (no workflow: the returns read only rows)."""
    authority_id = authority_id or people["authority"]
    with runtime.db.session() as session:
        child = Child(given_names="Sam", family_name="Row", date_of_birth=born, home_authority_id=authority_id,
                      nhs_number=number, nhs_number_missing=missing, shielded=shielded, created_at=now())
        session.add(child)
        session.flush()
        started = started or now()
        episode = Episode(authority_id=authority_id, child_id=child.id, originator_id=people["originator"],
                          process_version_id=session.scalar(select(ProcessVersion.id).limit(1)), status=status,
                          consent_state=consent, started_at=started, updated_at=updated or started, **columns)
        session.add(episode)
        session.flush()
        return episode.id


def get(api, credentials, **query):
    return api["app"].test_client().get(PATH, query_string=query,
                                        headers={"Authorization": f"Bearer {credentials}"} if credentials else {})


def read_all(api, credentials, **query) -> list[dict]:
    """Every page, following next_cursor."""
    items, cursor = [], None
    while True:
        answer = get(api, credentials, **query, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        items += body["items"]
        if (cursor := body["next_cursor"]) is None:
            return items


# ---------------------------------------------------------------- what an episode says

def test_a_closed_episode_shows_its_dates_closure_reason_outcomes_and_lawful_nhs_number(api):
    runtime, people = api["runtime"], api["people"]
    with runtime.db.session() as session:
        session.get(Child, people["child"]).nhs_number = "9434765919"
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    with runtime.db.session() as session:  # the six-month check, as its form records it
        session.add(OutcomeRecord(episode_id=episode_id, authority_id=people["authority"], outcome="education",
                                  stage="six_months", progress="sustained", recorded_at=now()))
    credentials = register(runtime, people["admin"], scopes=SCOPES)
    answer = get(api, credentials)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    body = answer.get_json()
    assert body["next_cursor"] is None
    [item] = body["items"]
    today = now().date().isoformat()
    assert item["id"] == episode_id and item["reference"] == f"TST-{episode_id:06d}"
    assert (item["opened_on"], item["assessment_submitted_on"], item["closed_on"]) == (today, today, today)
    assert (item["stage"], item["status"]) == ("closed", "closed")
    assert item["closure_reason"] == {"code": "needs_met", "label": "Needs met"}
    assert item["nhs_number"] == "9434765919" and item["nhs_number_withheld"] is None
    assert item["child_age_band"] == "10_to_15" and "date_of_birth" not in item
    education, housing = item["outcomes"]
    assert (education["code"], education["progress"], education["progress_stage"], education["six_month_check"]) \
        == ("education", "met", "closure", "sustained")
    assert education["label"] == "Getting a good education" and education["progress_recorded_on"] == today
    assert (housing["code"], housing["progress"], housing["six_month_check"]) == ("housing", "not_met", None)
    [listed] = audited(runtime, "episodes_listed")
    assert listed.actor_id is None and listed.detail["client"] == "Mosaic"
    assert listed.detail["episodes"] == [episode_id] and listed.detail["page"] == "api_episode_returns"
    assert listed.detail["authority_id"] == people["authority"]


def test_an_open_episode_has_no_closure_and_its_plan_outcomes_are_chosen(api):
    runtime, people = api["runtime"], api["people"]
    episode_id = plan_with(runtime, people)
    [item] = get(api, register(runtime, people["admin"], scopes=SCOPES)).get_json()["items"]
    assert item["id"] == episode_id and item["status"] == "open" and item["stage"] == "delivery"
    assert item["closure_reason"] is None and item["closed_on"] is None
    assert [(o["code"], o["progress"], o["progress_stage"]) for o in item["outcomes"]] == [
        ("education", "chosen", None), ("housing", "chosen", None)]
    assert item["nhs_number"] is None and item["nhs_number_withheld"] == "not_recorded"


def test_an_episode_moved_in_shows_the_outcomes_its_plan_brought(api):
    runtime, people = api["runtime"], api["people"]
    moved = add_episode(runtime, people, transferred_from="OTH-000042", stage="delivery")
    with runtime.db.session() as session:
        for version, chosen in ((1, ["crime"]), (2, ["housing", "education"])):
            session.add(Artefact(episode_id=moved, kind="action_plan", version=version, created_at=now(),
                                 data={"headline_outcomes": chosen + ["not_an_outcome"]}))
    [item] = get(api, register(runtime, people["admin"], scopes=SCOPES)).get_json()["items"]
    assert [(o["code"], o["progress"]) for o in item["outcomes"]] == [("education", "chosen"), ("housing", "chosen")]


@pytest.mark.parametrize("consent, shielded, number, missing, shown, withheld", [
    ("given", False, "9434765919", None, "9434765919", None),
    ("none", False, "9434765919", None, None, "consent_not_given"),
    ("refused", False, "9434765919", None, None, "consent_refused"),
    ("withdrawn", False, "9434765919", None, None, "consent_withdrawn"),
    ("given", True, "9434765919", None, None, "child_shielded"),
    ("given", False, None, "detrimental", None, "withheld_detrimental"),
    ("given", False, None, "not_known", None, "not_known"),
    ("given", False, None, None, None, "not_recorded"),
])
def test_the_nhs_number_is_sent_only_where_lawful(api, consent, shielded, number, missing, shown, withheld):
    runtime, people = api["runtime"], api["people"]
    add_episode(runtime, people, consent=consent, shielded=shielded, number=number, missing=missing)
    [item] = get(api, register(runtime, people["admin"], scopes=SCOPES)).get_json()["items"]
    assert (item["nhs_number"], item["nhs_number_withheld"]) == (shown, withheld)
    assert shown is not None or "9434765919" not in json.dumps(item)


@pytest.mark.parametrize("born, band", [(date(2026, 1, 1), "under_1"), (date(2022, 6, 2), "1_to_4"),
                                        (date(2018, 1, 1), "5_to_9"), (date(2011, 1, 1), "10_to_15"),
                                        (date(2009, 6, 1), "16_and_over"), (None, "unknown")])
def test_the_child_is_counted_by_age_band_when_opened(api, born, band):
    runtime, people = api["runtime"], api["people"]
    add_episode(runtime, people, born=born, started=datetime(2026, 6, 1, 12, tzinfo=timezone.utc))
    [item] = get(api, register(runtime, people["admin"], scopes=SCOPES)).get_json()["items"]
    assert item["child_age_band"] == band


def test_only_the_clients_own_authority_is_listed_and_never_a_deleted_episode(api):
    runtime, people = api["runtime"], api["people"]
    elsewhere = other_authority(runtime)
    ours = add_episode(runtime, people)
    add_episode(runtime, people, status="deleted", deleted_at=now())
    theirs = add_episode(runtime, people, authority_id=elsewhere["authority"])
    assert [i["id"] for i in read_all(api, register(runtime, people["admin"], scopes=SCOPES))] == [ours]
    other = register(runtime, elsewhere["otto"], scopes=SCOPES, name="Liquidlogic")
    assert [i["id"] for i in read_all(api, other)] == [theirs]
    # A forged cursor cannot reach the other authority's rows either: the filter is the authority's.
    listed = audited(runtime, "episodes_listed")
    assert [(e.detail["client"], e.detail["episodes"]) for e in listed] == [("Mosaic", [ours]),
                                                                           ("Liquidlogic", [theirs])]


# ---------------------------------------------------------------- pages

def test_pages_list_every_episode_once_even_when_episodes_are_added_between_pages(api):
    runtime, people = api["runtime"], api["people"]
    credentials = register(runtime, people["admin"], scopes=SCOPES)
    made = [add_episode(runtime, people) for _ in range(7)]
    first = get(api, credentials, limit=3).get_json()
    assert [i["id"] for i in first["items"]] == made[:3] and first["next_cursor"]
    made += [add_episode(runtime, people) for _ in range(2)]  # added while the client pages
    seen, cursor = list(first["items"]), first["next_cursor"]
    while cursor:
        body = get(api, credentials, limit=3, cursor=cursor).get_json()
        seen += body["items"]
        cursor = body["next_cursor"]
    ids = [item["id"] for item in seen]
    assert ids == made and len(set(ids)) == len(ids)
    pages = audited(runtime, "episodes_listed")
    assert [e.detail["episodes"] for e in pages] == [made[0:3], made[3:6], made[6:9]]
    # The page size may change between pages; the filters may not (see the cursor tests).
    assert [i["id"] for i in read_all(api, credentials, limit=500)] == made


def test_filters_choose_by_day_opened_and_last_change(api):
    runtime, people = api["runtime"], api["people"]
    credentials = register(runtime, people["admin"], scopes=SCOPES)
    at = lambda *day: datetime(*day, 12, tzinfo=timezone.utc)  # noqa: E731
    march = add_episode(runtime, people, started=at(2026, 3, 1), updated=at(2026, 3, 2))
    april = add_episode(runtime, people, started=at(2026, 4, 1), updated=at(2026, 9, 1))
    # 23:30 UTC on 31 May is 00:30 on 1 June in the UK (BST): opened in June.
    june = add_episode(runtime, people, started=datetime(2026, 5, 31, 23, 30, tzinfo=timezone.utc),
                       updated=at(2026, 6, 2))
    ids = lambda **query: [i["id"] for i in read_all(api, credentials, **query)]  # noqa: E731
    assert ids(opened_from="2026-03-01", opened_to="2026-04-01") == [march, april]
    assert ids(opened_from="2026-06-01") == [june]
    assert ids(opened_to="2026-05-31") == [march, april]
    assert ids(updated_since="2026-06-01T00:00:00Z") == [april, june]
    assert ids(updated_since="2026-08-31T23:00:00-01:00") == [april]
    assert ids(opened_from="0001-01-01", opened_to="9999-12-31") == [march, april, june]
    assert ids(updated_since="0001-01-01T00:00:00+05:00") == [march, april, june]
    assert ids(updated_since="9999-12-31T23:59:59-05:00") == []
    assert get(api, credentials, opened_from="2027-01-01").get_json() == {"items": [], "next_cursor": None}


def test_statements_per_page_do_not_grow_with_the_page(api):
    runtime, people = api["runtime"], api["people"]
    credentials = register(runtime, people["admin"], scopes=SCOPES)

    def statements_for(count: int) -> int:
        made = [add_episode(runtime, people, number=nhs(len(made_so_far) + n), closed_at=now(), status="closed",
                            outcome="needs_met") for n in range(count)]
        made_so_far.extend(made)
        with runtime.db.session() as session:
            for episode_id in made:
                for stage, progress in (("action_plan", "chosen"), ("review", "some_progress"), ("closure", "met"),
                                        ("six_months", "sustained")):
                    session.add(OutcomeRecord(episode_id=episode_id, authority_id=people["authority"],
                                              outcome="education", stage=stage, progress=progress, recorded_at=now()))
        seen = []
        listen = lambda *args: seen.append(args[2])  # noqa: E731
        engine = api["app"].extensions["ecaf"].db.engine  # the app's own engine, as a request uses it
        event.listen(engine, "before_cursor_execute", listen)
        try:
            answer = get(api, credentials, limit=500, opened_from=now().date().isoformat(),
                         updated_since=start.isoformat())
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert len(answer.get_json()["items"]) == count
        return len(seen)

    made_so_far: list[int] = []
    start = now()
    five = statements_for(5)
    with runtime.db.session() as session:  # the next run reads only the next fifty
        for episode in session.scalars(select(Episode)):
            episode.updated_at = start - timedelta(days=1)
    fifty = statements_for(50)
    assert five == fifty and five >= 3, (five, fifty)


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("query, field", [
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": "9" * 40}, "limit"), ({"opened_from": "yesterday"}, "opened_from"),
    ({"opened_from": "2026-02-30"}, "opened_from"), ({"opened_to": "\u0000"}, "opened_to"),
    ({"updated_since": "2026-13-01T00:00:00Z"}, "updated_since"), ({"updated_since": "9" * 40}, "updated_since"),
    ({"updated_since": "0.5"}, "updated_since"), ({"updated_since": "2026-01-01"}, "updated_since"),
    ({"updated_since": "2026-01-01T00:00:00"}, "updated_since"), ({"opened_from": "2026-01-01T00:00"}, "opened_from"),
    ({"opened_from": "2026-05-01", "opened_to": "2026-04-30"}, "opened_to"), ({"format": "csv"}, "format"),
    ({"cursor": "x" * 401}, "cursor"), ({"opened_from": "١٢٣٤-٠١-٠١"}, "opened_from"),
])
def test_bad_parameters_are_400_naming_the_field_and_nothing_is_listed(api, query, field):
    runtime, people = api["runtime"], api["people"]
    add_episode(runtime, people)
    body = assert_problem(get(api, register(runtime, people["admin"], scopes=SCOPES), **query), 400)
    assert field in body["errors"], body
    assert audited(runtime, "episodes_listed") == []


def test_a_forged_tampered_or_borrowed_cursor_is_400(api):
    runtime, people = api["runtime"], api["people"]
    for _ in range(3):
        add_episode(runtime, people)
    credentials = register(runtime, people["admin"], scopes=SCOPES)
    other = register(runtime, people["admin"], scopes=SCOPES, name="Capita")
    cursor = get(api, credentials, limit=1).get_json()["next_cursor"]
    payload, _, signature = cursor.partition(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps({"after": 0, "client": credentials.partition(".")[0],
                                                          "query": {}}).encode()).decode().rstrip("=")
    # A character inside the signature (the last one also carries padding bits base64 ignores).
    at = len(cursor) - 5
    flipped = cursor[:at] + ("A" if cursor[at] != "A" else "B") + cursor[at + 1:]
    bad = [flipped, forged_payload + "." + signature, "nonsense", "", "\u0000", "é" * 20, cursor + cursor,
           payload, "." * 50]
    before = len(audited(runtime, "episodes_listed"))
    for forged in bad:
        body = assert_problem(get(api, credentials, limit=1, cursor=forged), 400)
        assert "cursor" in body["errors"], (forged, body)
    # The same cursor with other filters, or in another client's hands, is not a position either.
    assert "cursor" in assert_problem(get(api, credentials, limit=1, cursor=cursor, opened_from="2020-01-01"),
                                      400)["errors"]
    assert "cursor" in assert_problem(get(api, other, limit=1, cursor=cursor), 400)["errors"]
    assert len(audited(runtime, "episodes_listed")) == before
    assert get(api, credentials, limit=1, cursor=cursor).status_code == 200


@pytest.mark.parametrize("scope", API_SCOPES)
def test_only_the_reports_read_scope_may_list(api, scope):
    runtime, people = api["runtime"], api["people"]
    add_episode(runtime, people)
    answer = get(api, register(runtime, people["admin"], scopes=(scope,)))
    if scope == "reports:read":
        assert answer.status_code == 200
    else:
        assert "reports:read" in assert_problem(answer, 403)["detail"]
        [called] = audited(runtime, "api_called")
        assert called.detail["allowed"] is False and called.detail["client"] == "Mosaic"
        assert audited(runtime, "episodes_listed") == []


def test_missing_wrong_and_revoked_credentials_are_401_and_list_nothing(api):
    runtime, people = api["runtime"], api["people"]
    add_episode(runtime, people)
    revoked = register(runtime, people["admin"], scopes=SCOPES, name="Gone")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Gone"))
        api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
    for credentials in (None, "nonsense", f"{revoked.partition('.')[0]}.wrong", revoked):
        assert_problem(get(api, credentials), 401)
    assert_problem(call(api["app"], revoked, {}, path=PATH, method="POST"), 405)
    assert audited(runtime, "episodes_listed") == []


def test_the_openapi_document_describes_the_page_and_the_nhs_number_rule(api):
    document = json.loads(api["app"].test_client().get("/api/v1/openapi.json").get_data(as_text=True))
    operation = document["paths"][PATH]["get"]
    assert operation["security"] == [{"client": []}, {"oauth": ["reports:read"]}]
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"updated_since", "opened_from", "opened_to", "limit",
                                                            "cursor"}
    text = json.dumps(document)
    assert "consent_withdrawn" in text and "child_shielded" in text and "withheld_detrimental" in text
