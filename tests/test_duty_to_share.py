"""The duty to share (CWSA 2026 s.16LA): a decision to share named records without consent, its
approval by a second administrator, the recipient's read-only access until expiry, the family told,
and decisions not to share recorded, each step audited."""
from __future__ import annotations

import dataclasses
import io
from datetime import timedelta

import time_machine
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.clock import as_utc, now
from app import attachments
from app.models import Artefact, AuditEvent, Episode, EpisodeMember, OutboxMessage, ShareDecision, User
from app.jobs.sweep import housekeeping

from . import access_world
from .conftest import VETTED
from .web import browser, csrf_token, give_credentials, make_app, text_of


def _world(runtime, people, tmp_path=None):
    if tmp_path is not None:  # attachments are stored there, never in the project's own folder
        runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    world = access_world.build(runtime, people)
    with runtime.db.session() as session:
        admin = session.get(User, people["admin"])
        second = User(username="ada", email="ada@testshire.test", full_name="Ada Second", role="administrator",
                      organisation_id=admin.organisation_id, created_at=now(), **VETTED)
        session.add(second)
        session.flush()
        world["users"]["second_admin"] = second.id
    world["secrets"]["second_admin"] = give_credentials(runtime, world["users"]["second_admin"])
    world["app"] = make_app(runtime)
    return world


def _client(world, actor: str):
    client = browser(world["app"])
    client.sign_in(access_world.USERNAMES.get(actor, "ada"), world["secrets"][actor])
    return client


def _ask(client, episode_id: int, **overrides):
    expires = (now() + timedelta(days=14)).date()
    form = {"decision": "share", "recipient_kind": "person", "recipient_email": "nora@ecaf.test",
            "records": ["artefact:assessment"], "purpose": "The school nurse must know of the injuries",
            "detriment_reasoning": "The risk of harm outweighs the family's objection",
            "expires_at-day": str(expires.day), "expires_at-month": str(expires.month),
            "expires_at-year": str(expires.year), "tell_family": "yes", "family_email": "parent@family.test"}
    form.update(overrides)
    path = f"/episodes/{episode_id}/share-decisions/new"
    page = client.get(path)
    token = csrf_token(page.get_data(as_text=True)) if page.status_code == 200 else csrf_token(
        client.get("/account").get_data(as_text=True))
    pairs = [(k, v) for k, values in form.items() for v in (values if isinstance(values, list) else [values])]
    return client.client.post(path, data=MultiDict(pairs + [("csrf_token", token)]))


def _decisions(runtime, episode_id: int) -> list[ShareDecision]:
    with runtime.db.session() as session:
        return session.scalars(select(ShareDecision).where(ShareDecision.episode_id == episode_id)
                               .order_by(ShareDecision.id)).all()


def _actions(runtime, episode_id: int) -> list[str]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.episode_id == episode_id)
                                    .order_by(AuditEvent.id)))


def _approve(client, decision_id: int, decision: str = "approve", reason: str = "Necessary and proportionate"):
    return client.post(f"/share-decisions/{decision_id}", {"decision": decision, "reason": reason},
                       token_from=f"/share-decisions/{decision_id}" if decision_id else "/account")


def test_an_approved_share_opens_exactly_the_named_records_to_its_recipient_until_it_expires(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    lead, admin, nora = _client(world, "lead"), _client(world, "admin"), _client(world, "non_member")
    episode_page = text_of(lead.get(f"/episodes/{episode_id}"))
    assert "Record a decision to share information" in episode_page

    asked = _ask(lead, episode_id)
    assert asked.status_code == 302, text_of(asked)
    [row] = _decisions(runtime, episode_id)
    assert row.status == "awaiting_approval" and row.records == ["artefact:assessment"]
    assert row.state and row.process_version_id, "its approval runs as a process of its own"
    # Nothing is shared before a second person approves.
    assert nora.get(f"/shared/{row.id}").status_code == 403
    assert "share_requested" in _actions(runtime, episode_id)

    assert "Necessary" not in text_of(admin.get("/share-decisions/" + str(row.id)))
    approved = _approve(admin, row.id)
    assert approved.status_code == 302, text_of(approved)
    [row] = _decisions(runtime, episode_id)
    assert row.status == "granted" and row.decided_by_id == people["admin"]
    assert as_utc(row.next_timer_at) == as_utc(row.expires_at), "the expiry is the process's timer"

    with runtime.db.session() as session:
        member = session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == episode_id,
                                                            EpisodeMember.user_id == world["users"]["non_member"]))
        family = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "share_family_notice")).all()
        assessment = session.scalar(select(Artefact.id).where(Artefact.episode_id == episode_id,
                                                              Artefact.kind == "assessment"))
    assert member is None, "the recipient is not made a member"
    assert [m.recipient for m in family] == ["parent@family.test"], "the family is told"

    listing = text_of(nora.get("/shared"))
    assert "Information shared with you" in listing
    page = nora.get(f"/shared/{row.id}")
    assert page.status_code == 200 and "Assessment" in text_of(page) and "Action plan" not in text_of(page)
    assert nora.get(f"/shared/{row.id}/records/artefact/assessment").status_code == 200
    # Nothing else: not another record, not the episode, its people, a record's own page or any action.
    assert nora.get(f"/shared/{row.id}/records/artefact/action_plan").status_code == 404
    for path in (f"/episodes/{episode_id}", f"/episodes/{episode_id}/people",
                 f"/episodes/{episode_id}/records/{assessment}", f"/episodes/{episode_id}/export.json"):
        assert nora.get(path).status_code == 404, path
    assert nora.post(f"/episodes/{episode_id}/people", {"email": "x@y.test"},
                     token_from="/account").status_code == 404

    # The lead professional sees who read it.
    trail = text_of(lead.get(f"/episodes/{episode_id}/audit"))
    assert "Read a record shared with them without consent" in trail and "Nora Nobody" in trail, trail

    with time_machine.travel(as_utc(row.expires_at) + timedelta(minutes=1), tick=False):
        nora = _client(world, "non_member")  # signed in again: a session does not last that long
        ended = nora.get(f"/shared/{row.id}/records/artefact/assessment")
        assert ended.status_code == 403 and "ended" in text_of(ended)
        assert housekeeping(runtime), "the worker's housekeeping ends the shares whose expiry has come"
    [row] = _decisions(runtime, episode_id)
    assert row.status == "expired" and row.next_timer_at is None
    actions = _actions(runtime, episode_id)
    assert {"share_granted", "share_family_told", "shared_records_viewed", "shared_record_viewed",
            "shared_access_refused", "share_expired"} <= set(actions)


def test_bad_requests_change_nothing_and_say_what_is_wrong(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    lead = _client(world, "lead")
    cases = [({"purpose": ""}, "Enter the purpose of sharing"),
             ({"detriment_reasoning": ""}, "Explain why sharing is not more detrimental"),
             # No account and an administrator's account get the same answer: no email is confirmed.
             ({"recipient_email": "nobody@nowhere.test"}, "Enter the work email address of a practitioner who uses eCAF"),
             ({"recipient_email": "ada@testshire.test"}, "Enter the work email address of a practitioner who uses eCAF"),
             ({"recipient_email": "tom@ecaf.test"}, "already involved in this CAF"),
             ({"records": ["artefact:assessment", "attachment:999"]}, "Select only records this CAF has"),
             ({"records": []}, "Select the records to share"),
             ({"expires_at-year": str(now().year + 2)}, "at most 90 days"),
             ({"tell_family": "no"}, "Explain why telling the family would be detrimental")]
    for overrides, message in cases:
        answer = _ask(lead, episode_id, **overrides)
        assert answer.status_code == 400 and message in text_of(answer), (overrides, text_of(answer))
        assert "There is a problem" in text_of(answer)
    kept = _ask(lead, episode_id, purpose="")
    assert "The risk of harm outweighs" in kept.get_data(as_text=True), "what was typed is kept"
    assert _decisions(runtime, episode_id) == []
    # Someone who may not manage the episode gets nothing, as if it were not there.
    assert _ask(_client(world, "member"), episode_id).status_code == 404
    assert _ask(_client(world, "other_admin"), episode_id).status_code == 404
    assert _decisions(runtime, episode_id) == []


def test_the_requester_and_another_authority_cannot_approve(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    admin, other, second = _client(world, "admin"), _client(world, "other_admin"), _client(world, "second_admin")
    assert _ask(admin, episode_id).status_code == 302
    [row] = _decisions(runtime, episode_id)
    refused = _approve(admin, row.id)
    assert refused.status_code == 400 and "another administrator must approve" in text_of(refused)
    assert other.get(f"/share-decisions/{row.id}").status_code == 404
    assert _approve(other, row.id).status_code == 404
    assert _client(world, "lead").get(f"/share-decisions/{row.id}").status_code == 404
    [row] = _decisions(runtime, episode_id)
    assert row.status == "awaiting_approval"
    actions = _actions(runtime, episode_id)
    assert "share_approval_refused" in actions and "access_denied" in actions

    with time_machine.travel(as_utc(row.expires_at) + timedelta(minutes=1), tick=False):
        late = _approve(_client(world, "second_admin"), row.id)
        assert late.status_code == 400 and "The date this access was to end has passed" in text_of(late)
    assert _decisions(runtime, episode_id)[0].status == "awaiting_approval"
    assert "Decisions to share waiting for approval" in text_of(second.get("/share-decisions"))
    rejected = _approve(second, row.id, "reject", "Not needed: the family is working with us")
    assert rejected.status_code == 302
    [row] = _decisions(runtime, episode_id)
    assert row.status == "rejected" and row.decision_note.startswith("Not needed")
    assert _client(world, "non_member").get(f"/shared/{row.id}").status_code == 403
    with runtime.db.session() as session:
        told = session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.kind.like("share_family%")))
    assert told == 0, "nothing shared: the family is not told of a share"
    assert "share_rejected" in _actions(runtime, episode_id)


def test_a_decision_not_to_share_is_recorded_with_its_reason(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["withdrawn"]
    lead = _client(world, "lead")
    missing = _ask(lead, episode_id, decision="not_share")
    assert missing.status_code == 400 and "Explain why you decided not to share" in text_of(missing)
    done = _ask(lead, episode_id, decision="not_share", not_sharing_reason="The concern was resolved by the school")
    assert done.status_code == 302
    [row] = _decisions(runtime, episode_id)
    assert row.status == "not_shared" and row.consent_position == "withdrawn" and row.records == []
    assert row.state is None, "nothing to approve"
    assert "share_not_shared" in _actions(runtime, episode_id)
    assert "Decided not to share" in text_of(lead.get(f"/episodes/{episode_id}/share-decisions"))


def test_an_organisation_shares_with_its_practitioners_and_the_family_may_not_be_told(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    lead, second = _client(world, "lead"), _client(world, "second_admin")
    with runtime.db.session() as session:
        charity = session.get(User, world["users"]["contributor"]).organisation_id
    asked = _ask(lead, episode_id, recipient_kind="organisation", recipient_email="",
                 recipient_organisation=str(charity),
                 records=["artefact:assessment", "artefact:consent_statement"], tell_family="no",
                 not_telling_reason="Telling the father would put the child at risk")
    assert asked.status_code == 302, text_of(asked)
    [row] = _decisions(runtime, episode_id)
    assert _approve(second, row.id).status_code == 302
    # The charity's practitioner (a contributor here, but the share is its own kind of access).
    cora = _client(world, "contributor")
    assert cora.get(f"/shared/{row.id}/records/artefact/consent_statement").status_code == 200
    assert _client(world, "non_member").get(f"/shared/{row.id}").status_code == 404, "another organisation"
    with runtime.db.session() as session:
        kinds = set(session.scalars(select(OutboxMessage.kind).where(OutboxMessage.episode_id == episode_id)))
    assert "share_family_notice" not in kinds and "share_family_letter" not in kinds
    assert "share_family_not_told" in _actions(runtime, episode_id)


def test_without_an_address_the_family_is_told_by_a_letter_and_every_other_administrator_is_asked(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    admin = _client(world, "admin")
    assert _ask(admin, episode_id, family_email="").status_code == 302
    [row] = _decisions(runtime, episode_id)
    with runtime.db.session() as session:
        asked = set(session.scalars(select(OutboxMessage.recipient)
                                    .where(OutboxMessage.kind == "share_approval_needed")))
    assert asked == {"ada@testshire.test"}, "the one who asked is never asked to approve"
    assert _approve(_client(world, "second_admin"), row.id).status_code == 302
    with runtime.db.session() as session:
        letters = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "share_family_letter")).all()
    assert [m.recipient for m in letters] == ["adam@testshire.test"]
    assert "Please send this letter" in letters[0].body and "The risk of harm" not in letters[0].body
    timeline = text_of(_client(world, "lead").get(f"/episodes/{episode_id}"))
    assert "Information shared without consent with Nora Nobody" in timeline


def test_purging_the_episode_removes_its_decisions_and_ends_every_share(runtime, people):
    from app.engine import repair

    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    assert _ask(_client(world, "lead"), episode_id).status_code == 302
    [row] = _decisions(runtime, episode_id)
    assert _approve(_client(world, "admin"), row.id).status_code == 302
    nora = _client(world, "non_member")
    assert nora.get(f"/shared/{row.id}").status_code == 200
    repair.delete_now(runtime.engine, episode_id, people["admin"], "Created without consent")
    assert _decisions(runtime, episode_id) == []
    assert nora.get(f"/shared/{row.id}").status_code == 404
    assert "share_granted" in _actions(runtime, episode_id), "the trail keeps that it was shared"


def test_a_shared_attachment_is_downloaded_and_an_unshared_one_is_not(runtime, people, tmp_path):
    world = _world(runtime, people, tmp_path)
    episode_id = world["episodes"]["given"]
    with runtime.db.session() as session:
        episode, lead = session.get(Episode, episode_id), session.get(User, people["lead"])
        shared_file, kept_file = (attachments.store(session, runtime.config, episode=episode, user=lead,
                                                    filename=name, stream=io.BytesIO(text))
                                  for name, text in (("school-report.txt", b"Attendance 62%"),
                                                     ("gp-letter.txt", b"Not for sharing")))
        shared_id, kept_id = shared_file.id, kept_file.id
    lead_client = _client(world, "lead")
    assert "Attachment: school-report.txt" in text_of(lead_client.get(f"/episodes/{episode_id}/share-decisions/new"))
    assert _ask(lead_client, episode_id, records=[f"attachment:{shared_id}"]).status_code == 302
    [row] = _decisions(runtime, episode_id)
    assert _approve(_client(world, "admin"), row.id).status_code == 302
    nora = _client(world, "non_member")
    got = nora.get(f"/shared/{row.id}/attachments/{shared_id}")
    assert got.status_code == 200 and got.data == b"Attendance 62%"
    assert "attachment" in got.headers["Content-Disposition"]
    assert nora.get(f"/shared/{row.id}/attachments/{kept_id}").status_code == 404
    assert nora.get(f"/episodes/{episode_id}/attachments/{shared_id}").status_code == 404, "only through the share"
    actions = _actions(runtime, episode_id)
    assert "attachment_downloaded" in actions and "shared_access_refused" in actions


def test_a_shared_contribution_is_read_by_its_recipient(runtime, people):
    from app.models import Contribution

    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    with runtime.db.session() as session:
        row = Contribution(episode_id=episode_id, contributor_id=world["users"]["contributor"],
                           invited_by_id=people["lead"], sections=["section_h_strengths_needs"], status="accepted",
                           content={"section_h_strengths_needs": {"needs": "Speech and language support"}},
                           created_at=now())
        session.add(row)
        session.flush()
        key = f"contribution:{row.id}"
    lead = _client(world, "lead")
    assert "Contribution from Cora Contributor" in text_of(lead.get(f"/episodes/{episode_id}/share-decisions/new"))
    assert _ask(lead, episode_id, records=[key]).status_code == 302
    [share] = _decisions(runtime, episode_id)
    assert _approve(_client(world, "admin"), share.id).status_code == 302
    page = _client(world, "non_member").get(f"/shared/{share.id}/records/contribution/{key.split(':')[1]}")
    assert page.status_code == 200 and "Speech and language support" in text_of(page)


def test_the_recipient_reads_the_version_asked_about_not_a_later_one(runtime, people):
    world = _world(runtime, people)
    episode_id = world["episodes"]["given"]
    lead, admin, nora = _client(world, "lead"), _client(world, "admin"), _client(world, "non_member")
    assert _ask(lead, episode_id).status_code == 302
    [row] = _decisions(runtime, episode_id)
    assert _approve(admin, row.id).status_code == 302
    with runtime.db.session() as session:
        approved = session.scalar(select(Artefact).where(Artefact.episode_id == episode_id,
                                                         Artefact.kind == "assessment")
                                  .order_by(Artefact.version.desc()).limit(1))
        # The assessment is revised after the decision: nobody approved sharing the new version.
        session.add(Artefact(episode_id=episode_id, kind="assessment", version=approved.version + 1,
                             data={**approved.data, "section_k_voice": {"child_comments": "Written later"}},
                             created_by_id=approved.created_by_id, created_at=now() + timedelta(seconds=1),
                             human_task_id=approved.human_task_id))
        shown_version = approved.version
    page = nora.get(f"/shared/{row.id}/records/artefact/assessment")
    assert page.status_code == 200 and "Written later" not in text_of(page)
    assert f"(version {shown_version})" in text_of(page)
