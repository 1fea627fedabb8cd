"""Authorization matrix cases for the duty to share: see tests/test_authorization_matrix.py.

Whoever may manage an episode (its lead professional, the originator before one is appointed, the
authority's administrator) records decisions to share and sees them; everyone else gets 404. Only an
administrator of the episode's authority opens a decision to approve it, and never the one who asked
(400, nothing changed); another authority's administrator gets 404. The recipient of an approved
share (nora, not a member of the episode) reads exactly the records it names, and only until it
expires (a share approved a month ago, with the clock moved back, has ended: 403 with a message);
anyone else is told nothing exists.
"""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.clock import now
from app.models import User
from app.services import share_decisions

MISSING = 999999


def _user(runtime, user_id: int) -> User:
    with runtime.db.session() as session:
        return session.scalar(select(User).options(joinedload(User.organisation)).where(User.id == user_id))


def _share(runtime, world: dict, asked_by: str, approve: bool, records=("artefact:assessment",)) -> int:
    episode_id = world["episodes"]["given"]
    expires = now() + timedelta(days=14)
    outcome = share_decisions.record(runtime, episode_id, _user(runtime, world["users"][asked_by]), {
        "decision": "share", "recipient_kind": "person", "recipient_email": "nora@ecaf.test",
        "records": list(records), "purpose": "Safeguarding", "detriment_reasoning": "Risk of harm",
        "expires_at": expires, "tell_family": "yes"})
    assert not outcome.errors, outcome.errors
    if approve:
        decided = share_decisions.decide(runtime, outcome.decision, _user(runtime, world["users"]["admin"]),
                                         {"decision": "approve", "reason": "Proportionate"})
        assert not decided.errors, decided.errors
    return outcome.decision


def seed(runtime, world: dict) -> None:
    with time_machine.travel(now() - timedelta(days=30), tick=False):
        ended = _share(runtime, world, "lead", approve=True)
    world["shares"] = {"live": _share(runtime, world, "lead", approve=True), "ended": ended,
                       "waiting": _share(runtime, world, "lead", approve=False),
                       "own": _share(runtime, world, "admin", approve=False)}


def cases(world: dict, ids: dict, rules) -> dict:
    Case, episode_rule, by_role, ANONYMOUS, ADMINS = (rules.Case, rules.episode_rule, rules.by_role, rules.ANONYMOUS,
                                                      rules.ADMINS)
    shares = world["shares"]
    found: dict = {"duty_to_share.episode_decisions": [], "duty_to_share.new": [], "duty_to_share.record": []}
    for state, episode_id in world["episodes"].items():
        base = f"/episodes/{episode_id}/share-decisions"
        found["duty_to_share.episode_decisions"].append(Case("GET", base, episode_rule(rules.MANAGE[state])))
        found["duty_to_share.new"].append(Case("GET", f"{base}/new", episode_rule(rules.MANAGE[state])))
        # Posted empty: the form's errors (400), nothing recorded; 404 to whoever may not manage it.
        found["duty_to_share.record"].append(Case("POST", f"{base}/new", episode_rule(rules.MANAGE[state], 400), {}))

    def recipient(ok: int = 200, others: int = 404):
        return lambda actor: 302 if actor == ANONYMOUS else ok if actor == "non_member" else others

    def admin_only(ok: int):
        return lambda actor: 302 if actor == ANONYMOUS else ok if actor == "admin" else 404

    live, ended, waiting, own = shares["live"], shares["ended"], shares["waiting"], shares["own"]
    found["duty_to_share.approvals"] = [Case("GET", "/share-decisions", by_role(ADMINS))]
    found["duty_to_share.decision"] = [Case("GET", f"/share-decisions/{waiting}", admin_only(200)),
                                       Case("GET", f"/share-decisions/{own}", admin_only(200)),
                                       Case("GET", f"/share-decisions/{MISSING}", admin_only(404))]
    found["duty_to_share.decide"] = [
        # The requester as approver (400, refused and recorded); posted empty to a waiting one (400).
        Case("POST", f"/share-decisions/{own}", admin_only(400), {"decision": "approve", "reason": "Mine"}),
        Case("POST", f"/share-decisions/{waiting}", admin_only(400), {}),
        Case("POST", f"/share-decisions/{live}", admin_only(400), {"decision": "reject", "reason": "Again"})]
    found["duty_to_share.shared_with_me"] = [Case("GET", "/shared", lambda actor: 302 if actor == ANONYMOUS else 200)]
    found["duty_to_share.share"] = [Case("GET", f"/shared/{live}", recipient()),
                                    Case("GET", f"/shared/{ended}", recipient(403)),
                                    Case("GET", f"/shared/{waiting}", recipient(403)),
                                    Case("GET", f"/shared/{MISSING}", recipient(404))]
    found["duty_to_share.shared_record"] = [
        Case("GET", f"/shared/{live}/records/artefact/assessment", recipient()),
        Case("GET", f"/shared/{live}/records/artefact/consent_statement", recipient(404)),
        Case("GET", f"/shared/{ended}/records/artefact/assessment", recipient(403))]
    found["duty_to_share.shared_attachment"] = [Case("GET", f"/shared/{live}/attachments/{MISSING}", recipient(404))]
    return found
