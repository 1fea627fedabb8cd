"""Episode export, transfer to another local authority (asked for, released, signed), and subject access."""
from __future__ import annotations

import dataclasses
import io
import json
from datetime import date, timedelta

import pytest
import time_machine
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select

from app import policy
from app.clock import now
from app.engine.transfer import Renumbering
from app.models import (Artefact, AuditEvent, Authority, Base, Child, Episode, EpisodeMember, HumanTask, IndexEntry,
                        Organisation, OutboxMessage, SearchRequest, SearchRequestChild, User)
from app.services import episode_transfer as transfer
from app.services.episode_transfer import TransferRefused
from tests.conftest import VETTED, complete, ready_task
from tests.journeys import CHECKLIST, CONSENT, assessment, plan, prepare, start, to_review, today
from tests.transfer_release import released_file, signed_file
from tests.web import browser, give_credentials, text_of

CONSENT_WITH_EXCLUSIONS = {**CONSENT, "excluded_services": ["police"], "excluded_recipients": ["Town Police"]}


# ---------------------------------------------------------------- the world

@pytest.fixture
def newshire(runtime, people):
    """The authority the child moves to, with its own administrator and practitioner, and a police
    organisation the family can name in its consent."""
    with runtime.db.session() as session:
        session.add(Organisation(name="Town Police", kind="police", authority_id=people["authority"]))
        authority = Authority(code="NEW", name="Newshire", admin_email="admin@newshire.test",
                              safeguarding_phone="0200 000 999")
        session.add(authority)
        session.flush()
        hub = Organisation(name="Newshire Family Hub", kind="council_service", authority_id=authority.id)
        session.add(hub)
        session.flush()

        def user(username, name, role="practitioner"):
            account = User(username=username, email=f"{username}@newshire.test", full_name=name,
                           job_title="Family worker", role=role, organisation_id=hub.id, phone="0200 000 111",
                           created_at=now(), **VETTED)
            session.add(account)
            session.flush()
            return account.id

        return {"authority": authority.id, "admin": user("nadia", "Nadia Admin", "administrator"),
                "lead": user("noah", "Noah Newlead"), "lead_email": "noah@newshire.test"}


def _another_child(runtime, people, given: str = "Robin", family: str = "Other") -> int:
    with runtime.db.session() as session:
        child = Child(given_names=given, family_name=family, date_of_birth=date(2014, 2, 3),
                      home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        return child.id


def _delivery_episode(runtime, people) -> int:
    """An episode in delivery: consent with exclusions, an assessment, a meeting, a lead professional,
    a plan, and a review waiting with a draft saved."""
    episode_id = prepare_with(runtime, people, CONSENT_WITH_EXCLUSIONS)
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    plan(runtime, episode_id)
    review = ready_task(runtime, episode_id, "review")
    runtime.engine.save_draft(episode_id, review.id, {"what_has_changed": "Attends every day now"}, people["lead"])
    return episode_id


def prepare_with(runtime, people, consent: dict) -> int:
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", {**CHECKLIST, "child_protection_concern": False})
    complete(runtime, episode_id, "obtain_consent", consent)
    return episode_id


def export(runtime, episode_id: int, user_id: int) -> dict:
    with runtime.db.session() as session:
        return transfer.export_episode(session, session.get(Episode, episode_id), session.get(User, user_id))


def as_file(document: dict) -> bytes:
    return json.dumps(document, indent=2).encode("utf-8")


def resealed(runtime, document: dict) -> dict:
    """A document edited on purpose, with a fresh checksum and signed again with the deployment's key
    (as only the deployment could), so that only the edit is judged."""
    document = {k: v for k, v in document.items() if k != "signature"}
    document["checksum"] = {"algorithm": "sha256", "value": transfer.checksum(document)}
    return {**document, "signature": transfer.sign(document, runtime.config)}


def schema_errors(document: dict) -> list[str]:
    schema = json.loads(transfer.SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def audited(runtime, action: str, **where) -> list[AuditEvent]:
    with runtime.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
    return [r for r in rows if all((r.detail or {}).get(k) == v for k, v in where.items())]


def snapshot(runtime) -> dict:
    """Every row of every table but the audit trail: a refused import must leave them all as they were."""
    with runtime.db.engine.connect() as conn:
        return {table.name: conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                for table in Base.metadata.sorted_tables if table.name != "audit_event"}


def workflow_tasks(state: dict) -> dict:
    """task id -> (state, spec, data) over the workflow and its subprocesses."""
    found = {}
    for holder in [state, *state.get("subprocesses", {}).values()]:
        for task_id, task in holder["tasks"].items():
            found[task_id] = (task["state"], task["task_spec"], task["data"])
    return found


def without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


# ---------------------------------------------------------------- the round trip

def test_round_trip_between_two_authorities_loses_nothing(runtime, people, newshire):
    old_id = _delivery_episode(runtime, people)
    before = released_file(runtime, old_id, newshire["admin"], people["admin"])
    assert schema_errors(before) == [], "the export follows its published schema"
    assert schema_errors(json.loads(as_file(before))) == []
    assert before["format"] == "ecaf-episode-export" and before["schema_version"] == 1
    assert before["transfer"]["released_to"]["code"] == "NEW" and before["signature"]["algorithm"] == "hmac-sha256"
    exported = audited(runtime, "episode_exported", purpose="transfer")[-1]
    assert exported.episode_id == old_id and exported.detail["release_id"] == before["transfer"]["release_id"]

    runtime.config = dataclasses.replace(runtime.config, index_endpoint_url="https://index.test/notices")
    new = transfer.import_episode(runtime, as_file(before), newshire["admin"], "NOAH@newshire.test")
    assert new.reference.startswith("NEW-") and new.transferred_from == before["episode"]["reference"]

    after = export(runtime, new.id, newshire["admin"])
    assert schema_errors(after) == []
    old_part, new_part = before["episode"], after["episode"]
    for same in ("status", "stage", "outcome", "consent_state", "child_protection", "legal_hold", "sibling_group",
                 "originator", "started_at", "submitted_at", "next_timer_at", "closed_at"):
        assert new_part[same] == old_part[same], same
    assert new_part["lead_professional"] == newshire["lead_email"]
    assert after["process"] == before["process"]
    assert without(after["child"], "home_authority") == without(before["child"], "home_authority")
    assert after["child"]["home_authority"]["code"] == "NEW"

    # Records, consent and tasks: everything but the new row ids (and who is now asked to do what).
    artefact_ids = {a["id"]: b["id"] for a, b in zip(before["artefacts"], after["artefacts"])}
    task_ids = {a["id"]: b["id"] for a, b in zip(before["tasks"], after["tasks"])}
    assert [without(a, "id", "task") for a in after["artefacts"]] == \
           [without(a, "id", "task") for a in before["artefacts"]]
    assert [a["task"] for a in after["artefacts"]] == [task_ids.get(a["task"]) for a in before["artefacts"]]
    assert [without(c, "id", "artefact_id") for c in after["consents"]] == \
           [without(c, "id", "artefact_id") for c in before["consents"]]
    assert [c["artefact_id"] for c in after["consents"]] == [artefact_ids[c["artefact_id"]] for c in before["consents"]]
    assert {x["organisation_kind"] or x["organisation"]["name"] for x in after["consents"][-1]["exclusions"]} == \
           {"police", "Town Police"}, "the family's exclusions still apply"
    assert [without(t, "id", "assigned_to") for t in after["tasks"]] == \
           [without(t, "id", "assigned_to") for t in before["tasks"]]
    review = next(t for t in after["tasks"] if t["status"] == "ready")
    assert review["name"] == "review" and review["assigned_to"] == newshire["lead_email"]
    assert review["draft"] == {"what_has_changed": "Attends every day now"}

    # The workflow is the same workflow, at the same point, with our row ids renumbered.
    renumbering = Renumbering(episode=(old_id, new.id), tasks=task_ids, artefacts=artefact_ids)
    old_tasks, new_tasks = workflow_tasks(before["workflow"]["state"]), workflow_tasks(after["workflow"]["state"])
    assert new_tasks.keys() == old_tasks.keys()
    for task_id, (state, spec, data) in old_tasks.items():
        assert new_tasks[task_id] == (state, spec, renumbering.apply(data)), spec

    # The old episode is closed with the reason; the child, the index and the people have moved.
    with runtime.db.session() as session:
        old = session.get(Episode, old_id)
        assert (old.status, old.outcome, old.next_timer_at) == ("closed", "moved_to_another_authority", None)
        assert old.closed_at is not None
        assert session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.episode_id == old_id, HumanTask.status == "ready")) == 0
        assert session.get(Child, people["child"]).home_authority_id == newshire["authority"]
        entry = session.scalar(select(IndexEntry).where(IndexEntry.child_id == people["child"]))
        assert (entry.episode_id, entry.authority_id, entry.status) == (new.id, newshire["authority"], "open")
        assert entry.contact["email"] == newshire["lead_email"]
        moved = session.get(Episode, new.id)
        assert moved.originator_id == people["originator"], "the originator is history, kept"
        sent = {m.kind: m for m in session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == new.id))}
        assert sent["lead_professional_appointed"].recipient == newshire["lead_email"]
        notice = sent["index_notice"].payload
        assert (notice["event"], notice["contact"]["email"]) == ("episode_transferred", newshire["lead_email"])
        members = session.scalars(select(EpisodeMember).where(EpisodeMember.episode_id == new.id)).all()
        assert [(m.user_id, m.role) for m in members] == [(newshire["lead"], "lead_professional")]
    closed = audited(runtime, "episode_transferred_out", reason="moved to another local authority")
    assert [row.episode_id for row in closed] == [old_id]
    assert audited(runtime, "episode_imported", transferred_from=before["episode"]["reference"])[0].episode_id == new.id

    # The moved episode carries on with its process: the review is done by the new lead professional.
    review_row = ready_task(runtime, new.id, "review")
    result = runtime.engine.complete_task(new.id, review_row.id, {
        "review_date": today().isoformat(), "outcome": "continue",
        "next_review_date": (today() + timedelta(days=30)).isoformat()}, newshire["lead"])
    assert result.status == "open" and result.stage == "delivery"
    assert ready_task(runtime, new.id, "action_plan").assigned_user_id == newshire["lead"]
    with runtime.db.session() as session:
        reviews = session.scalars(select(Artefact).where(Artefact.episode_id == new.id,
                                                         Artefact.kind == "review")).all()
        assert [r.version for r in reviews] == [1] and reviews[0].created_by_id == newshire["lead"]


def test_an_episode_still_being_assessed_keeps_its_deadline_and_goes_to_the_new_lead(runtime, people, newshire):
    old_id = prepare(runtime, people)
    document = released_file(runtime, old_id, newshire["admin"], people["admin"])
    new = transfer.import_episode(runtime, as_file(document), newshire["admin"], newshire["lead_email"])
    with runtime.db.session() as session:
        old, moved = session.get(Episode, old_id), session.get(Episode, new.id)
        assert moved.stage == "assessment" and moved.consent_state == "given"
        assert moved.next_timer_at.isoformat() == document["episode"]["next_timer_at"], \
            "the 35-day deadline runs from the original start"
        assert old.next_timer_at is None
    task = ready_task(runtime, new.id, "complete_assessment")
    assert task.assigned_user_id == newshire["lead"], "a practitioner's task goes to the new lead professional"
    with time_machine.travel(moved.next_timer_at + timedelta(seconds=1), tick=False):
        assert runtime.engine.wake(new.id) is not None, "the 35-day warning fires on the moved episode"
    task = ready_task(runtime, new.id, "complete_assessment")
    assert task.assigned_user_id == newshire["lead"], "and the task stays with the new lead after the step"
    runtime.engine.complete_task(new.id, task.id, assessment(), newshire["lead"])
    with runtime.db.session() as session:
        signed = session.scalar(select(Artefact).where(Artefact.episode_id == new.id, Artefact.kind == "assessment"))
        assert signed.data["signature"]["assessor"] == "Noah Newlead"
        assert session.scalar(select(IndexEntry.episode_id).where(IndexEntry.child_id == people["child"])) == new.id


# ---------------------------------------------------------------- refusals

def _refused(runtime, raw, importer_id, email, expected: str) -> TransferRefused:
    """Import and expect a refusal that says `expected`, is audited, and changes nothing else."""
    before, refusals = snapshot(runtime), len(audited(runtime, "episode_import_refused"))
    with pytest.raises(TransferRefused) as caught:
        transfer.import_episode(runtime, raw, importer_id, email)
    assert expected in caught.value.message, caught.value.message
    assert snapshot(runtime) == before, "a refused import changes nothing"
    rows = audited(runtime, "episode_import_refused")
    assert len(rows) == refusals + 1 and rows[-1].detail["reason"] == caught.value.message
    assert rows[-1].actor_id == importer_id
    return caught.value


def test_bad_files_are_refused_clearly(runtime, people, newshire):
    old_id = prepare(runtime, people)
    good = released_file(runtime, old_id, newshire["admin"], people["admin"])
    admin, lead = newshire["admin"], newshire["lead_email"]

    _refused(runtime, b'{"format": "ecaf-episode-export", ', admin, lead, "not valid JSON (line 1")
    _refused(runtime, b"\xff\xfe\x00garbage", admin, lead, "not UTF-8 text")
    _refused(runtime, b"[1, 2]", admin, lead, "not an eCAF episode export")
    _refused(runtime, as_file({**good, "schema_version": 2}), admin, lead,
             "uses export schema version 2; this eCAF reads schema version 1 only")
    broken = {**good, "episode": without(good["episode"], "reference"),
              "tasks": [{**good["tasks"][0], "status": "lost"}]}
    refusal = _refused(runtime, as_file(broken), admin, lead, "does not match the export schema (2 problems)")
    assert any("reference" in p for p in refusal.problems)
    assert any(p.startswith("tasks/0/status") for p in refusal.problems)
    edited = {**good, "child": {**good["child"], "family_name": "Someone Else"}}
    _refused(runtime, as_file(edited), admin, lead, "signature does not match")
    bad_checksum = {**good, "checksum": {"algorithm": "sha256", "value": "0" * 64}}
    signed_anyway = {**bad_checksum, "signature": transfer.sign(bad_checksum, runtime.config)}
    _refused(runtime, as_file(signed_anyway), admin, lead, "changed since it was exported")
    unknown_process = resealed(runtime, {**good, "process": {**good["process"], "content_hash": "0" * 64}})
    _refused(runtime, as_file(unknown_process), admin, lead, "is not deployed here")
    other_episode = resealed(runtime, {**good, "episode": {**good["episode"], "id": 999999}})
    _refused(runtime, as_file(other_episode), admin, lead, "names no release of this episode")


def test_who_imports_and_into_which_authority_is_checked(runtime, people, newshire):
    old_id = prepare(runtime, people)
    raw = as_file(released_file(runtime, old_id, newshire["admin"], people["admin"]))
    _refused(runtime, raw, newshire["lead"], newshire["lead_email"], "Only an administrator of the receiving")
    _refused(runtime, raw, people["admin"], people["lead_email"],
             "The episode was released to Newshire, not to Testshire")
    _refused(runtime, raw, newshire["admin"], "nobody@newshire.test", "no active, vetted practitioner")
    _refused(runtime, raw, newshire["admin"], people["lead_email"], "no active, vetted practitioner")
    _refused(runtime, raw, newshire["admin"], "nadia@newshire.test", "no active, vetted practitioner")


def test_without_consent_to_share_or_to_an_excluded_lead_nothing_moves(runtime, people, newshire):
    episode_id = prepare(runtime, people)
    raw = as_file(released_file(runtime, episode_id, newshire["admin"], people["admin"]))
    with runtime.db.session() as session:  # consent withdrawn after the release
        session.get(Episode, episode_id).consent_state = "withdrawn"
    _refused(runtime, raw, newshire["admin"], newshire["lead_email"],
             "The family has not agreed to share episode TST-")

    episode_id = runtime.engine.start_episode(child_id=_another_child(runtime, people),
                                              originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", {**CHECKLIST, "child_protection_concern": False})
    complete(runtime, episode_id, "obtain_consent", {**CONSENT, "excluded_services": ["council_service"]})
    raw = as_file(released_file(runtime, episode_id, newshire["admin"], people["admin"]))
    refusal = _refused(runtime, raw, newshire["admin"], newshire["lead_email"],
                       "The family excluded council services from seeing this CAF, so Noah Newlead cannot")
    assert refusal.field == "lead_professional_email"


def test_a_child_with_another_open_episode_is_refused(runtime, people, newshire):
    old_id = prepare(runtime, people)
    raw = as_file(released_file(runtime, old_id, newshire["admin"], people["admin"]))
    # The child was recorded again in the new area, and a CAF started there.
    with runtime.db.session() as session:
        again = Child(given_names="CASEY", family_name="child", date_of_birth=date(2015, 5, 1),
                      home_authority_id=newshire["authority"], created_at=now())
        session.add(again)
        session.flush()
        again_id = again.id
    started = runtime.engine.start_episode(child_id=again_id, originator_id=newshire["lead"]).episode_id
    with runtime.db.session() as session:
        reference = session.get(Episode, started).reference
    _refused(runtime, raw, newshire["admin"], newshire["lead_email"],
             f"Casey Child already has an open episode ({reference}, Newshire)")


def test_a_closed_changed_or_already_moved_episode_is_not_imported(runtime, people, newshire):
    old_id = prepare(runtime, people)
    admin, lead = newshire["admin"], newshire["lead_email"]
    stale_file = released_file(runtime, old_id, newshire["admin"], people["admin"])
    stale, request_id = as_file(stale_file), stale_file["transfer"]["request_id"]
    task = ready_task(runtime, old_id, "complete_assessment")
    runtime.engine.save_draft(old_id, task.id, {"section_k_voice": {"child_comments": "Typed later"}},
                              people["originator"])
    _refused(runtime, stale, admin, lead, "(changed: tasks)")
    complete(runtime, old_id, "complete_assessment", assessment())
    _refused(runtime, stale, admin, lead, "has changed since this file was exported")

    fresh = as_file(signed_file(runtime, request_id, people["admin"]))
    with runtime.db.session() as session:
        session.get(Episode, old_id).status = "closed"
    _refused(runtime, fresh, admin, lead, "is closed: only an open episode can move")
    with runtime.db.session() as session:
        session.get(Episode, old_id).status = "open"

    fresh = as_file(signed_file(runtime, request_id, people["admin"]))
    transfer.import_episode(runtime, fresh, admin, lead)
    _refused(runtime, fresh, admin, lead, "This release has already been used")


# ---------------------------------------------------------------- subject access

def test_subject_access_holds_everything_about_the_child_for_its_administrators(runtime, people, newshire):
    old_id = to_review(runtime, people)
    new = transfer.import_episode(runtime, as_file(released_file(runtime, old_id, newshire["admin"], people["admin"])),
                                  newshire["admin"], newshire["lead_email"])
    with runtime.db.session() as session:
        request = SearchRequest(requester_id=people["originator"], authority_id=people["authority"],
                                reason="New pupil", status="answered", answer="Found", created_at=now())
        request.children.append(SearchRequestChild(given_names="Casey", family_name="Child",
                                                   matched_child_id=people["child"]))
        session.add(request)
        outsider_authority = Authority(code="FAR", name="Farshire")
        session.add(outsider_authority)
        session.flush()
        far = Organisation(name="Far Hub", kind="council_service", authority_id=outsider_authority.id)
        session.add(far)
        session.flush()
        outsider = User(username="far", email="far@farshire.test", full_name="Far Admin", role="administrator",
                        organisation_id=far.id, created_at=now(), **VETTED)
        session.add(outsider)
        session.flush()
        outsider_id = outsider.id

    with runtime.db.session() as session:
        child = session.get(Child, people["child"])
        assert policy.may_see_child(session, session.get(User, newshire["admin"]), child), "the new home"
        assert policy.may_see_child(session, session.get(User, people["admin"]), child), "holds an episode"
        assert not policy.may_see_child(session, session.get(User, outsider_id), child)
        assert not policy.may_see_child(session, session.get(User, people["lead"]), child), "administrators only"
        held = transfer.subject_access(session, child, session.get(User, newshire["admin"]))
    assert held["child"]["given_names"] == "Casey"
    assert [(e["id"], e["status"]) for e in held["episodes"]] == [(old_id, "closed"), (new.id, "open")]
    moved = held["episodes"][1]
    assert {a["kind"] for a in moved["artefacts"]} >= {"assessment", "consent_statement", "action_plan"}
    assert moved["consents"] and moved["members"] and any(t["submitted_data"] for t in moved["tasks"])
    assert [e["episode_id"] for e in held["index_entries"]] == [new.id]
    assert held["search_requests"][0]["reason"] == "New pupil"
    actions = {row["action"] for row in held["audit"]}
    assert {"episode_started", "episode_transferred_out", "episode_imported"} <= actions
    exported = audited(runtime, "subject_access_export", child_id=people["child"])
    assert {row.episode_id for row in exported} == {old_id, new.id}


# ---------------------------------------------------------------- the web

def _signed_in(web, username: str, secret: str):
    client = browser(web["app"])
    client.sign_in(username, secret)
    return client


def test_export_downloads_for_those_allowed_and_is_404_for_others(web, newshire):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    admin = _signed_in(web, "adam", web["secrets"]["admin"])
    response = admin.get(f"/episodes/{episode_id}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response.headers["Cache-Control"]
    assert schema_errors(json.loads(response.data)) == []
    originator = _signed_in(web, "olive", web["secrets"]["originator"])
    assert originator.get(f"/episodes/{episode_id}/export.json").status_code == 200, "no lead professional yet"
    denials = len(audited(runtime, "access_denied"))
    outsider = _signed_in(web, "leah", web["secrets"]["lead"])
    assert outsider.get(f"/episodes/{episode_id}/export.json").status_code == 404
    assert outsider.get("/episodes/424242/export.json").status_code == 404
    other_admin = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))
    assert other_admin.get(f"/episodes/{episode_id}/export.json").status_code == 404
    assert len(audited(runtime, "access_denied")) == denials + 3
    assert len(audited(runtime, "episode_exported")) == 2


def test_import_page_moves_the_episode_and_explains_refusals(web, newshire):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    document = released_file(runtime, episode_id, newshire["admin"], people["admin"])
    practitioner = _signed_in(web, "olive", web["secrets"]["originator"])
    assert practitioner.get("/transfers/import").status_code == 403

    admin = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))
    page = admin.get("/transfers/import")
    assert page.status_code == 200 and 'type="file"' in page.get_data(as_text=True)
    missing = admin.post("/transfers/import", {"lead_professional_email": ""})
    assert missing.status_code == 400 and "Choose the episode export file" in text_of(missing)
    assert "Enter the email address of the lead professional" in text_of(missing)

    # Bigger than the app's usual 2 MB, and not JSON: refused for what it is, not for its size.
    junk = admin.post("/transfers/import", {"document": (io.BytesIO(b"x" * (3 * 1024 * 1024)), "junk.json"),
                                            "lead_professional_email": "noah@newshire.test"})
    html = junk.get_data(as_text=True)
    assert junk.status_code == 400 and "govuk-error-summary" in html and "not valid JSON" in text_of(junk)
    assert 'value="noah@newshire.test"' in html, "what was typed is kept"

    wrong = admin.post("/transfers/import", {"document": (io.BytesIO(as_file({**document, "schema_version": 7})),
                                                          "old.json"), "lead_professional_email": "noah@newshire.test"})
    assert wrong.status_code == 400 and "schema version 7" in text_of(wrong)
    nobody = admin.post("/transfers/import", {"document": (io.BytesIO(as_file(document)), "caf.json"),
                                              "lead_professional_email": "nobody@newshire.test"})
    assert nobody.status_code == 400 and 'href="#lead-professional-email"' in nobody.get_data(as_text=True)

    moved = admin.post("/transfers/import", {"document": (io.BytesIO(as_file(document)), "caf.json"),
                                             "lead_professional_email": "noah@newshire.test"})
    assert moved.status_code == 302 and moved.location.startswith("/episodes/")
    new_id = int(moved.location.rsplit("/", 1)[1])
    with runtime.db.session() as session:
        assert session.get(Episode, new_id).transferred_from == document["episode"]["reference"]
    shown = admin.get(moved.location)
    assert shown.status_code == 200 and "has moved to your authority" in text_of(shown)
    assert len(audited(runtime, "episode_import_refused")) == 3


def test_subject_access_download_is_for_the_childs_administrators(web, newshire):
    runtime, people = web["runtime"], web["people"]
    prepare(runtime, people)
    admin = _signed_in(web, "adam", web["secrets"]["admin"])
    response = admin.get(f"/children/{people['child']}/subject-access.json")
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment;")
    assert json.loads(response.data)["child"]["family_name"] == "Child"
    assert "no-store" in response.headers["Cache-Control"]
    denials = len(audited(runtime, "access_denied"))
    other_admin = _signed_in(web, "nadia", give_credentials(runtime, newshire["admin"]))
    assert other_admin.get(f"/children/{people['child']}/subject-access.json").status_code == 404
    assert other_admin.get("/children/424242/subject-access.json").status_code == 404
    assert len(audited(runtime, "access_denied")) == denials + 2
    practitioner = _signed_in(web, "olive", web["secrets"]["originator"])
    assert practitioner.get(f"/children/{people['child']}/subject-access.json").status_code == 403
