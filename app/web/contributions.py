"""Contributions to an episode's assessment: the list, and the lead professional's invitation form."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit, membership, policy
from app.contributions import STATUS_LABELS, sections_of
from app.models import Episode, HumanTask
from app.services import contributions as service
from app.web import runtime
from app.web.access import current_user, episode_or_404, signed_in

bp = Blueprint("contributions", __name__, url_prefix="/episodes")


def _my_tasks(session, episode: Episode) -> dict[int, HumanTask]:
    """The user's ready contribution tasks on this episode, by contribution: linked from the list."""
    tasks = session.scalars(select(HumanTask).where(
        HumanTask.episode_id == episode.id, HumanTask.status == "ready", HumanTask.contribution_id.is_not(None),
        HumanTask.assigned_user_id == current_user().id)).all()
    return {t.contribution_id: t for t in tasks}


def _page(session, episode: Episode, invitation: service.Invitation | None = None, status: int = 200):
    user = current_user()
    may_invite = policy.may_invite(session, user, episode)
    return render_template(
        "contributions/index.html", episode=episode, child=episode.child,
        contributions=service.for_episode(session, episode), labels=STATUS_LABELS,
        sections=sections_of(episode), my_tasks=_my_tasks(session, episode),
        may_invite=may_invite, refusal=policy.why_not_invitable(episode) if may_invite else None,
        candidates=policy.invitable_members(session, episode, user) if may_invite else [],
        parts={m.user_id: m for m in membership.current(session, episode)},
        invitation=invitation or service.Invitation({}), error_title=bool(invitation and invitation.errors)), status


@bp.get("/<int:episode_id>/contributions")
@signed_in
def index(episode_id: int):
    with runtime().db.session() as session:
        episode = episode_or_404(session, episode_id, f"contributions of episode {episode_id}",
                                 lambda found: policy.may(session, current_user(), "view", found))
        audit.record(session, "contributions_viewed", actor_id=current_user().id, episode_id=episode.id)
        return _page(session, episode)


@bp.post("/<int:episode_id>/contributions")
@signed_in
def invite(episode_id: int):
    with runtime().db.session() as session:
        # Only the lead professional (the originator before one is appointed) invites; to anyone
        # else the form is not there, as if the episode were not.
        episode_or_404(session, episode_id, f"invite a contribution to episode {episode_id}",
                       lambda found: policy.may_invite(session, current_user(), found))
    form = {**request.form, "sections": request.form.getlist("sections")}
    invitation = service.invite(runtime(), episode_id, current_user(), form)
    if invitation.errors:
        with runtime().db.session() as session:
            return _page(session, session.get(Episode, episode_id), invitation, status=400)
    flash("The invitation was sent. The contribution is now a task for them; "
          "you will be asked to take it in when they have written it.", "success")
    return redirect(url_for("contributions.index", episode_id=episode_id))
