"""People and consent on an episode: who works on it, add and remove members, withdraw consent."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import audit, consent, membership, policy
from app.audit_lists import episodes_shown
from app.contributions import sections_of
from app.models import Episode
from app.services import episode_people as service
from app.web import runtime
from app.web.access import current_user, deny, episode_or_404, signed_in

bp = Blueprint("episode_people", __name__, url_prefix="/episodes")


def _episode_for(session, episode_id: int, action: str) -> tuple[Episode, frozenset[str]]:
    """The episode and what the user may do to it, if that includes `action`; otherwise 404, as if it
    did not exist."""
    episode = episode_or_404(session, episode_id, f"{action} episode {episode_id}")
    allowed = policy.permissions(session, current_user(), episode)
    if action not in allowed:
        deny(session, f"{action} episode {episode_id}")
    return episode, allowed


def _page(session, episode: Episode, allowed: frozenset[str], *, added=None, removal=None, status=200):
    return render_template(
        "episode_people/people.html", episode=episode, child=episode.child,
        members=membership.current(session, episode), former=membership.history(session, episode),
        statement=consent.current(session, episode),
        may_manage=episode.is_open and "manage_members" in allowed,
        may_withdraw=episode.is_open and episode.consent_state == "given" and "withdraw_consent" in allowed,
        roles=service.ADDABLE_ROLES, sections=sections_of(episode),
        added=added or service.Change({}), removal=removal or service.Change({})), status


@bp.get("/<int:episode_id>/people")
@signed_in
def people(episode_id: int):
    with runtime().db.session() as session:
        episode, allowed = _episode_for(session, episode_id, "view")
        audit.record(session, "episode_people_viewed", actor_id=current_user().id, episode_id=episode.id)
        return _page(session, episode, allowed)


@bp.post("/<int:episode_id>/people")
@signed_in
def add(episode_id: int):
    with runtime().db.session() as session:
        episode, allowed = _episode_for(session, episode_id, "manage_members")
        form = {**request.form, "sections": request.form.getlist("sections")}
        change = service.add_member(session, episode, current_user(), form)
        if not change.done:
            return _page(session, episode, allowed, added=change, status=400)
    flash("The person was added to the episode and can now open it.", "success")
    return redirect(url_for("episode_people.people", episode_id=episode_id))


@bp.post("/<int:episode_id>/people/<int:member_id>/remove")
@signed_in
def remove(episode_id: int, member_id: int):
    with runtime().db.session() as session:
        episode, allowed = _episode_for(session, episode_id, "manage_members")
        change = service.remove_member(session, episode, current_user(), member_id, request.form.get("reason", ""))
        if not change.done:
            change.typed["member_id"] = member_id
            return _page(session, episode, allowed, removal=change, status=400)
    flash("The person was removed from the episode and can no longer open it.", "success")
    return redirect(url_for("episode_people.people", episode_id=episode_id))


@bp.route("/<int:episode_id>/consent/withdraw", methods=["GET", "POST"])
@signed_in
def withdraw(episode_id: int):
    with runtime().db.session() as session:
        episode, _ = _episode_for(session, episode_id, "withdraw_consent")
        if episode.consent_state != "given" or not episode.is_open:
            flash("There is no current consent to withdraw on this episode.", "info")
            return redirect(url_for("episode_people.people", episode_id=episode_id))
        if request.method == "GET":
            episodes_shown(session, current_user().id, "withdraw_consent", [episode.id])
            return render_template("episode_people/withdraw.html", episode=episode, child=episode.child,
                                   change=service.Change({}))
    try:
        change = service.withdraw_consent(runtime(), episode_id, current_user(), request.form)
    except LookupError:
        with runtime().db.session() as session:
            deny(session, f"withdraw_consent episode {episode_id}")
    if not change.done:
        with runtime().db.session() as session:
            episode = session.get(Episode, episode_id)
            return render_template("episode_people/withdraw.html", episode=episode, child=episode.child,
                                   change=change), 400
    flash("Consent is withdrawn. Sharing stopped at once: only the lead professional and the eCAF administrators "
          "can open this episode now.", "success")
    with runtime().db.session() as session:
        still_visible = policy.visible_episode(session, current_user(), episode_id) is not None
    return redirect(url_for("episodes.show", episode_id=episode_id) if still_visible else url_for("tasks.home"))
