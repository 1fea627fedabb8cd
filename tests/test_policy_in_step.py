"""One policy, asked once per page and inside the step it guards (issue 15, item 1)."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event, func, select

from app import policy
from app.engine.errors import NotPermitted
from app.engine.runner import Engine
from app.models import AuditEvent, Episode, EpisodeMember, HumanTask, User
from app.services import task_forms

from . import access_world
from .conftest import VETTED
from .journeys import start
from .web import browser


def _task(runtime, episode_id: int, name: str) -> HumanTask:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name))


def _audited(runtime, action: str) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _state(runtime, episode_id: int) -> tuple:
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        return episode.stage, episode.updated_at, episode.state


# ---------------------------------------------------------------- the check inside the step

def test_a_completion_by_someone_who_lost_access_after_opening_the_form_is_refused_in_the_step(web, monkeypatch):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    olive = browser(web["app"])
    olive.sign_in("olive", web["secrets"]["originator"])
    assert olive.get(f"/tasks/{task.id}").status_code == 200  # the form opens
    before = _state(runtime, episode_id)

    real = Engine.complete_task

    def vetting_lapses_meanwhile(engine, *args, **kwargs):
        # The route's own checks have passed; the account stops being usable before the step runs.
        with runtime.db.session() as session:
            session.get(User, people["originator"]).vetting_expires_on = date(2020, 1, 1)
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(Engine, "complete_task", vetting_lapses_meanwhile)
    denied = _audited(runtime, "access_denied")
    answer = olive.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf"})

    assert answer.status_code == 404
    assert _task(runtime, episode_id, "pre_assessment_checklist").status == "ready"
    assert _state(runtime, episode_id) == before
    assert _audited(runtime, "task_completed") == 0
    assert _audited(runtime, "access_denied") == denied + 1


def test_a_member_removed_after_opening_the_form_cannot_complete_it(runtime, people):
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
        assert task_forms.open_task(session, olive, task.id) is not None  # the form opens
        session.expunge(olive)
    with runtime.db.session() as session:  # meanwhile she leaves the episode
        row = session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == episode_id,
                                                         EpisodeMember.user_id == olive.id))
        row.removed_at = row.added_at
    before = _state(runtime, episode_id)

    with pytest.raises(NotPermitted):
        task_forms.complete(runtime.engine, olive, episode_id, task.id, {"decision": "full_caf"})
    with pytest.raises(NotPermitted):
        task_forms.save_draft(runtime.engine, olive, episode_id, task.id, {"data": {}, "raw": {}})

    assert _task(runtime, episode_id, "pre_assessment_checklist").status == "ready"
    assert _task(runtime, episode_id, "pre_assessment_checklist").draft is None
    assert _state(runtime, episode_id) == before


# ---------------------------------------------------------------- an account that may be used

def test_one_definition_of_a_usable_account(runtime, people):
    with runtime.db.session() as session:
        user = session.get(User, people["originator"])
        today, user.password_hash = date(2026, 1, 1), "a hash"
        assert policy.is_usable(user, today) and policy.may_present_secrets(user)
        user.locked_at = user.created_at
        assert not policy.is_usable(user, today) and not policy.may_present_secrets(user)
        user.locked_at, user.active = None, False
        assert not policy.is_usable(user, today) and not policy.may_present_secrets(user)
        user.active, user.vetting_expires_on = True, date(2025, 12, 31)
        # Vetting is asked after a secret is proven, so it does not stop the password being tried.
        assert not policy.is_usable(user, today) and policy.may_present_secrets(user)
        assert "expired" in policy.unusable_because(user, today)
        session.flush()
        usable = set(session.scalars(select(User.id).where(policy.usable_clause(today))))
        assert user.id not in usable and people["lead"] in usable


# ---------------------------------------------------------------- permissions, once per page

ALL = frozenset(policy.EPISODE_ACTIONS)
READ = frozenset({"view", "print"})
LEADS = READ | {"manage_members", "withdraw_consent", "view_audit", "export"}
NOTHING = frozenset()
# What each actor may do to the episode whose consent is not yet given, given, and withdrawn.
EXPECTED = {
    "originator": {"none": LEADS, "given": READ, "withdrawn": NOTHING},  # leads until a lead is appointed
    "lead": {"none": NOTHING, "given": LEADS, "withdrawn": LEADS},
    "member": {"none": NOTHING, "given": READ, "withdrawn": NOTHING},
    "contributor": {"none": NOTHING, "given": READ, "withdrawn": NOTHING},
    "excluded": {"none": NOTHING, "given": NOTHING, "withdrawn": NOTHING},
    "non_member": {"none": NOTHING, "given": NOTHING, "withdrawn": NOTHING},
    "admin": {"none": ALL, "given": ALL, "withdrawn": ALL},
    "other_admin": {"none": NOTHING, "given": NOTHING, "withdrawn": NOTHING},
    "owner": {"none": NOTHING, "given": NOTHING, "withdrawn": NOTHING},
    "service_team": {"none": NOTHING, "given": NOTHING, "withdrawn": NOTHING},
}


def test_permissions_answer_every_action_for_every_part_and_consent_state_in_one_query(runtime, people):
    world = access_world.build(runtime, people)
    statements = []
    event.listen(runtime.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with runtime.db.session() as session:
        for actor in access_world.ACTORS:
            user = session.get(User, world["users"][actor])
            _ = user.organisation  # loaded up front, as the sign-in gate loads it
            for state, episode_id in world["episodes"].items():
                episode = session.get(Episode, episode_id)
                statements.clear()
                allowed = policy.permissions(session, user, episode)
                assert len(statements) <= 1, (actor, state, statements)
                assert allowed == EXPECTED[actor][state], (actor, state)
                assert allowed == {a for a in policy.EPISODE_ACTIONS if policy.may(session, user, a, episode)}
                assert (policy.visible_episode(session, user, episode_id) is not None) == ("view" in allowed)
        nobody = User(username="x", email="x@ecaf.test", full_name="X", role="practitioner", active=True, **VETTED)
        assert policy.permissions(session, None, episode) == NOTHING
        nobody.active = False
        assert policy.permissions(session, nobody, episode) == NOTHING
