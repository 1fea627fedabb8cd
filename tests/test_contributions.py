"""Contributions: the lead professional invites a member to write named sections of the assessment,
the member writes them as a task, and the lead professional takes them in or returns them."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app import membership
from app.clock import now
from app.models import Artefact, AuditEvent, Authority, Contribution, Episode, HumanTask, User
from app.policy import why_not_invitable as why_not
from app.services import episode_people
from app.services.contributions import invite

from . import access_world
from .conftest import VETTED, complete, ready_task
from .journeys import prepare, to_delivery, today
from .web import browser, give_credentials, make_app, text_of

CONCLUSIONS, VOICE = "section_i_conclusions", "section_k_voice"


def _switch_on(runtime, people) -> None:
    with runtime.db.session() as session:
        session.get(Authority, people["authority"]).contributors_enabled = True


def _member(runtime, people, episode_id: int, username: str, role: str, sections=None) -> int:
    """A vetted practitioner of the school, added to the episode by the originator."""
    with runtime.db.session() as session:
        originator = session.get(User, people["originator"])
        user = User(username=username, email=f"{username}@testshire.test", full_name=f"{username.capitalize()} Member",
                    job_title="Nurse", role="practitioner", organisation_id=originator.organisation_id,
                    created_at=now(), **VETTED)
        session.add(user)
        session.flush()
        membership.add(session, session.get(Episode, episode_id), user, role, by_id=originator.id, sections=sections)
        return user.id


def _user(runtime, user_id: int) -> User:
    with runtime.db.session() as session:
        found = session.get(User, user_id)
        found.organisation  # what the policy reads, loaded before the session closes
        session.expunge_all()
        return found


def _signed_in(web, username: str, secret: str):
    client = browser(web["app"])
    client.sign_in(username, secret)
    return client


def _contributions(runtime, episode_id: int) -> list[Contribution]:
    with runtime.db.session() as session:
        rows = session.scalars(select(Contribution).where(Contribution.episode_id == episode_id)
                               .order_by(Contribution.id)).all()
        session.expunge_all()
        return rows


def _task(runtime, episode_id: int, name: str) -> HumanTask | None:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                      HumanTask.status == "ready"))


def _audits(runtime, action: str, episode_id: int) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.episode_id == episode_id))


def _appoint_lead(runtime, people, episode_id: int) -> None:
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})


# ---------------------------------------------------------------- switched off

def test_switched_off_an_invitation_is_refused_with_the_reason_and_nothing_is_made(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    tess = _member(runtime, people, episode_id, "tess", "tac_member")
    olive = _signed_in(web, "olive", web["secrets"]["originator"])

    assert "contributions-link" not in olive.get(f"/episodes/{episode_id}").get_data(as_text=True)
    page = olive.get(f"/episodes/{episode_id}/contributions")
    assert page.status_code == 200 and "Contributions are switched off in Testshire" in text_of(page)
    assert 'name="member"' not in page.get_data(as_text=True), "no form to fill in for nothing"

    refused = olive.post(f"/episodes/{episode_id}/contributions",
                         {"member": str(tess), "sections": CONCLUSIONS, "note": "Please"})
    assert refused.status_code == 400 and "There is a problem" in text_of(refused)
    assert "Contributions are switched off in Testshire" in text_of(refused)
    # Straight to the service, too: the same answer, no row, no message to the process, no task.
    invitation = invite(runtime, episode_id, _user(runtime, people["originator"]),
                        {"member": str(tess), "sections": [CONCLUSIONS]})
    assert "switched off" in invitation.errors["member"]
    assert _contributions(runtime, episode_id) == []
    assert _task(runtime, episode_id, "write_contribution") is None
    assert _audits(runtime, "contribution_invited", episode_id) == 0


# ---------------------------------------------------------------- switched on, while the assessment is written

def test_a_contribution_is_written_returned_rewritten_and_taken_into_the_assessment_draft(web):
    runtime, people = web["runtime"], web["people"]
    _switch_on(runtime, people)
    episode_id = prepare(runtime, people)
    assessment_task = ready_task(runtime, episode_id, "complete_assessment")
    tess = _member(runtime, people, episode_id, "tess", "tac_member")
    olive = _signed_in(web, "olive", web["secrets"]["originator"])
    base = f"/episodes/{episode_id}/contributions"
    # The originator has started the assessment, a date still half typed: the contributor starts
    # from what is there.
    saved = olive.post(f"/tasks/{assessment_task.id}", {
        "action": "save", "section_b_child.given_names": "Casey", "section_b_child.family_name": "Child",
        "section_a_administration.date_completed.day": "17", f"{VOICE}.child_comments": "Casey likes drawing"})
    assert saved.status_code == 302

    # Before a lead professional is appointed, the originator invites.
    assert "contributions-link" in olive.get(f"/episodes/{episode_id}").get_data(as_text=True)
    page = olive.get(base)
    assert page.status_code == 200 and "Nobody has been invited" in text_of(page)
    assert "Tess Member" in text_of(page) and "I. Conclusions, solutions and actions" in text_of(page)

    # A form error keeps what was typed.
    missing = olive.post(base, {"member": str(tess), "note": "About school, please"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400 and "Select the sections of the assessment" in text_of(missing)
    assert re.search(f'id="member-{tess}"[^>]* checked>', html) and "About school, please" in html
    assert _contributions(runtime, episode_id) == []

    sent = olive.post(base, {"member": str(tess), "sections": [CONCLUSIONS, VOICE], "note": "About school, please"})
    assert sent.status_code == 302 and sent.location == base
    listed = text_of(olive.get(base))
    assert "The invitation was sent" in listed and "Being written" in listed and "Tess Member" in listed
    [row] = _contributions(runtime, episode_id)
    assert (row.contributor_id, row.invited_by_id, row.sections, row.status) == (
        tess, people["originator"], [CONCLUSIONS, VOICE], "invited")
    assert _audits(runtime, "contribution_invited", episode_id) == 1

    # The contribution is a task for Tess, with the assessment's form cut down to her sections.
    writing = ready_task(runtime, episode_id, "write_contribution")
    assert (writing.contribution_id, writing.assigned_user_id) == (row.id, tess)
    tess_client = _signed_in(web, "tess", give_credentials(runtime, tess))
    assert f"/tasks/{writing.id}" in tess_client.get(base).get_data(as_text=True), "linked from the list"
    form = tess_client.get(f"/tasks/{writing.id}")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and "Key strengths" in html and "comments on the assessment" in html
    assert "Given name(s)" not in html and "Date assessment started" not in html, "only the invited sections"
    assert "Casey likes drawing" in html, "prefilled with the sections as they stand"
    assert "About school, please" in text_of(form)

    # A field of another section is refused, and nothing moves.
    mine = {"action": "submit", f"{CONCLUSIONS}.key_strengths": "Loves art", f"{VOICE}.child_comments": "I like art"}
    tampered = tess_client.post(f"/tasks/{writing.id}", {**mine, "section_b_child.given_names": "Changed"})
    assert tampered.status_code == 400 and "fields it does not have" in text_of(tampered)
    assert _contributions(runtime, episode_id)[0].status == "invited"

    assert tess_client.post(f"/tasks/{writing.id}", mine).status_code == 302
    [row] = _contributions(runtime, episode_id)
    assert row.status == "submitted" and row.content == {CONCLUSIONS: {"key_strengths": "Loves art"},
                                                         VOICE: {"child_comments": "I like art"}}

    # The originator, still holding the baton, reviews it and sees what Tess wrote.
    review = ready_task(runtime, episode_id, "review_contribution")
    assert review.assigned_user_id == people["originator"]
    shown = text_of(olive.get(f"/tasks/{review.id}"))
    assert "What they wrote" in shown and "Loves art" in shown and "Tess Member" in shown

    returned = olive.post(f"/tasks/{review.id}", {"action": "submit", "decision": "return",
                                                   "note": "Say more about school"})
    assert returned.status_code == 302
    [row] = _contributions(runtime, episode_id)
    assert (row.status, row.note) == ("returned", "Say more about school")
    assert "Returned to the contributor" in text_of(olive.get(base))

    # Back to Tess, with what she wrote and the note.
    again = ready_task(runtime, episode_id, "write_contribution")
    assert again.assigned_user_id == tess and again.id != writing.id
    page = tess_client.get(f"/tasks/{again.id}")
    assert "Loves art" in page.get_data(as_text=True)
    assert "Returned with this note" in text_of(page) and "Say more about school" in text_of(page)
    rewritten = {**mine, f"{CONCLUSIONS}.key_strengths": "Loves art; attends art club at school"}
    assert tess_client.post(f"/tasks/{again.id}", rewritten).status_code == 302

    review = ready_task(runtime, episode_id, "review_contribution")
    assert olive.post(f"/tasks/{review.id}", {"action": "submit", "decision": "accept"}).status_code == 302
    [row] = _contributions(runtime, episode_id)
    assert row.status == "accepted" and row.decided_at is not None
    assert "In the assessment" in text_of(olive.get(base))
    assert _audits(runtime, "contributions_viewed", episode_id) >= 1, "every look at the list is audited"

    # Her sections are in the assessment the originator is writing; the rest of the draft stays.
    with runtime.db.session() as session:
        draft = session.get(HumanTask, assessment_task.id).draft["data"]
    assert draft[CONCLUSIONS] == {"key_strengths": "Loves art; attends art club at school"}
    assert draft[VOICE] == {"child_comments": "I like art"}
    assert draft["section_b_child"]["given_names"] == "Casey"
    sections = f"/tasks/{assessment_task.id}/sections"
    conclusions = olive.get(f"{sections}/{CONCLUSIONS}").get_data(as_text=True)
    voice = olive.get(f"{sections}/{VOICE}").get_data(as_text=True)
    assert "attends art club at school" in conclusions and "I like art" in voice and "Casey likes drawing" not in voice
    assert 'value="17"' in olive.get(f"{sections}/section_a_administration").get_data(as_text=True), \
        "what the originator was still typing is kept"
    assert ready_task(runtime, episode_id, "complete_assessment").id == assessment_task.id, "still being written"
    assert _audits(runtime, "contribution_accepted", episode_id) == 1


# ---------------------------------------------------------------- switched on, during delivery

def test_in_delivery_the_lead_professional_takes_a_contribution_in_as_a_new_assessment_version(runtime, people):
    _switch_on(runtime, people)
    episode_id = to_delivery(runtime, people)
    _appoint_lead(runtime, people, episode_id)
    cody = _member(runtime, people, episode_id, "cody", "contributor", sections=[CONCLUSIONS])
    leah, olive = _user(runtime, people["lead"]), _user(runtime, people["originator"])

    # Once a lead professional is appointed, the originator no longer invites.
    with pytest.raises(LookupError):
        invite(runtime, episode_id, olive, {"member": str(cody), "sections": [CONCLUSIONS]})
    # A contributor is asked only for the sections they joined for.
    outside = invite(runtime, episode_id, leah, {"member": str(cody), "sections": [CONCLUSIONS, VOICE]})
    assert "may contribute only to: I. Conclusions, solutions and actions" in outside.errors["sections"]
    assert _contributions(runtime, episode_id) == []

    assert not invite(runtime, episode_id, leah, {"member": str(cody), "sections": [CONCLUSIONS]}).errors
    writing = ready_task(runtime, episode_id, "write_contribution")
    assert writing.assigned_user_id == cody
    # Whatever reaches the process outside the invited sections is not kept.
    runtime.engine.complete_task(episode_id, writing.id, {CONCLUSIONS: {"key_needs": "Speech therapy"},
                                                          VOICE: {"child_comments": "Not mine to write"}}, cody)
    [row] = _contributions(runtime, episode_id)
    assert row.content == {CONCLUSIONS: {"key_needs": "Speech therapy"}}
    review = ready_task(runtime, episode_id, "review_contribution")
    assert review.assigned_user_id == people["lead"]
    runtime.engine.complete_task(episode_id, review.id, {"decision": "accept"}, people["lead"])

    with runtime.db.session() as session:
        versions = session.scalars(select(Artefact).where(Artefact.episode_id == episode_id,
                                                          Artefact.kind == "assessment")
                                   .order_by(Artefact.version)).all()
        assert [v.version for v in versions] == [1, 2]
        first, second = versions
        assert second.data[CONCLUSIONS] == {"key_needs": "Speech therapy"}
        assert second.data[VOICE] == first.data[VOICE], "the rest of the assessment is carried over"
        assert second.created_by_id == cody
        assert session.get(Contribution, row.id).status == "accepted"
        assert session.get(Episode, episode_id).stage == "delivery"


def test_only_the_lead_professional_may_invite(web):
    runtime, people = web["runtime"], web["people"]
    _switch_on(runtime, people)
    episode_id = to_delivery(runtime, people)
    _appoint_lead(runtime, people, episode_id)
    tess = _member(runtime, people, episode_id, "tess", "tac_member")
    base = f"/episodes/{episode_id}/contributions"
    wanted = {"member": str(tess), "sections": CONCLUSIONS}

    for username, secret in (("tess", give_credentials(runtime, tess)), ("olive", web["secrets"]["originator"]),
                             ("adam", web["secrets"]["admin"])):
        client = _signed_in(web, username, secret)
        page = client.get(base)
        assert page.status_code == 200 and 'name="member"' not in page.get_data(as_text=True)
        assert client.post(base, wanted, token_from=base).status_code == 404
    assert _contributions(runtime, episode_id) == []
    with runtime.db.session() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied")).all()
        assert len([d for d in denied if d.detail.get("path") == base]) == 3, "each refusal is audited"

    leah = _signed_in(web, "leah", web["secrets"]["lead"])
    page = leah.get(base)
    assert 'name="member"' in page.get_data(as_text=True) and "Tess Member" in text_of(page)
    assert leah.post(base, wanted).status_code == 302
    assert [r.invited_by_id for r in _contributions(runtime, episode_id)] == [people["lead"]]


def test_a_member_the_family_shut_out_is_not_offered_and_cannot_be_invited(runtime, people):
    world = access_world.build(runtime, people)  # consent excludes the police; Pete Police is on the team
    episode_id, users = world["episodes"]["given"], world["users"]
    leah = browser(make_app(runtime))
    leah.sign_in("leah", world["secrets"]["lead"])
    base = f"/episodes/{episode_id}/contributions"
    page = text_of(leah.get(base))
    assert "Tom Team" in page and "Cora Contributor" in page and "Pete Police" not in page
    assert "Contributor: H. Assessment summary: strengths and needs" in page, "a contributor's sections are shown"
    refused = leah.post(base, {"member": str(users["excluded"]), "sections": "section_h_strengths_needs"})
    assert refused.status_code == 400 and "Select a member of the episode to invite" in text_of(refused)
    assert _contributions(runtime, episode_id) == []


def test_a_practitioner_outside_the_episode_gets_404(web):
    runtime, people = web["runtime"], web["people"]
    _switch_on(runtime, people)
    episode_id = prepare(runtime, people)
    leah = _signed_in(web, "leah", web["secrets"]["lead"])  # not yet on this episode
    assert leah.get(f"/episodes/{episode_id}/contributions").status_code == 404


# ---------------------------------------------------------------- the episode ends

def test_closing_the_episode_cancels_its_open_contributions(runtime, people):
    _switch_on(runtime, people)
    episode_id = prepare(runtime, people)
    tess = _member(runtime, people, episode_id, "tess", "tac_member")
    nora = _member(runtime, people, episode_id, "nora", "tac_member")
    olive = _user(runtime, people["originator"])
    assert not invite(runtime, episode_id, olive, {"member": str(tess), "sections": [CONCLUSIONS]}).errors
    assert not invite(runtime, episode_id, olive, {"member": str(nora), "sections": [VOICE]}).errors
    writing = [t for t in _ready(runtime, episode_id) if t.contribution_id and t.assigned_user_id == tess][0]
    runtime.engine.complete_task(episode_id, writing.id, {CONCLUSIONS: {"key_needs": "Sleep"}}, tess)
    assert {r.status for r in _contributions(runtime, episode_id)} == {"invited", "submitted"}

    change = episode_people.withdraw_consent(runtime, episode_id, olive,
                                             {"withdrawn_by": "Pat Parent", "reason": "Moving", "confirm": "yes"})
    assert not change.errors
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).status == "closed"
    assert {r.status for r in _contributions(runtime, episode_id)} == {"cancelled"}
    assert not [t for t in _ready(runtime, episode_id) if t.contribution_id]
    # And no new one can be started on it.
    with runtime.db.session() as session:
        assert "while the assessment is written and during delivery" in why_not(session.get(Episode, episode_id))


def _ready(runtime, episode_id: int) -> list[HumanTask]:
    with runtime.db.session() as session:
        return session.scalars(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                       HumanTask.status == "ready")).all()
