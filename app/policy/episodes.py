"""Episodes, their tasks and children: who may see and do what. See the package's docstring."""
from __future__ import annotations

from datetime import date
from functools import lru_cache

from sqlalchemy import and_, bindparam, exists, false, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from app.engine.lanes import ROLE_OF_LANE
from app.models import Child, ConsentExclusion, Episode, EpisodeMember, HumanTask, User

from .accounts import is_usable, unusable_because

# Aliases keep the subqueries independent of whatever the outer query already joins.
_Member = aliased(EpisodeMember)
_Excluded = aliased(ConsentExclusion)
_TaskEpisode = aliased(Episode)
_Part = aliased(EpisodeMember)

# What a signed-in user may do to an episode they can see, by their part in it.
EPISODE_ACTIONS = ("view", "print", "export", "manage_members", "withdraw_consent", "view_audit",
                   "transfer", "repair")


def authority_id_of(user: User | None) -> int | None:
    return user.organisation.authority_id if user is not None and user.organisation else None


def is_administrator_of(user: User | None, authority_id: int | None) -> bool:
    return (is_usable(user) and user.role == "administrator" and authority_id is not None
            and authority_id_of(user) == authority_id)


def _memberships(user_id):
    return select(_Member.episode_id).where(_Member.user_id == user_id, _Member.removed_at.is_(None))


def _excluded(episode, organisation_id, organisation_kind):
    return exists().where(_Excluded.episode_id == episode.id,
                          or_(_Excluded.organisation_id == organisation_id,
                              _Excluded.organisation_kind == organisation_kind))


def _is_excluded(user: User, episode):
    organisation = user.organisation
    if organisation is None:
        return false()
    return _excluded(episode, organisation.id, organisation.kind)


def _shape(user: User | None) -> str:
    """Which form of the rule applies to `user`: the rule's values are theirs, its form is one of these."""
    if not is_usable(user):
        return "none"
    if user.role == "administrator":
        return "administrator"
    if user.role != "practitioner":
        return "none"
    return "practitioner" if user.organisation is not None else "practitioner_without_organisation"


def _rule(shape: str, episode, user_id, authority_id, organisation_id, organisation_kind):
    """The episodes a user may open, for one shape, with the user's values given as values or as
    bind parameters (so a statement built once can serve every user of that shape)."""
    if shape == "administrator":
        return and_(episode.authority_id == authority_id, episode.status != "deleted")
    if shape == "none":
        return false()
    by_consent = or_(
        and_(episode.consent_state.in_(("none", "refused")), episode.originator_id == user_id),
        episode.consent_state == "given",
        and_(episode.consent_state == "withdrawn", episode.lead_professional_id == user_id),
    )
    excluded = _excluded(episode, organisation_id, organisation_kind) if shape == "practitioner" else false()
    # Start from the user's memberships (indexed by user), so the database never scans every episode:
    # the originator and the lead professional are members too.
    return and_(episode.id.in_(_memberships(user_id)), episode.status != "deleted", by_consent, ~excluded)


def _values(user: User | None) -> dict:
    organisation = user.organisation if user is not None else None
    return {"policy_user_id": user.id if user is not None else None, "policy_authority_id": authority_id_of(user),
            "policy_organisation_id": organisation.id if organisation else None,
            "policy_organisation_kind": organisation.kind if organisation else None}


def episode_filter(user: User | None, episode=Episode):
    """A WHERE clause for the episodes `user` may open (`episode`: the entity or an alias of it)."""
    values = _values(user)
    return _rule(_shape(user), episode, values["policy_user_id"], values["policy_authority_id"],
                 values["policy_organisation_id"], values["policy_organisation_kind"])


@lru_cache(maxsize=64)
def _visible_statement(shape: str, options: tuple):
    """`SELECT episode ... WHERE id = :episode_id AND <the rule>`, built once per shape and page: asked
    on every page and step, building it again each time cost more than running it."""
    return select(Episode).where(
        Episode.id == bindparam("episode_id"),
        _rule(shape, Episode, *(bindparam(name) for name in ("policy_user_id", "policy_authority_id",
                                                              "policy_organisation_id",
                                                              "policy_organisation_kind")))).options(*options)


def join_refusal(session: Session, user: User | None, episode: Episode) -> str | None:
    """Why `user` may not be added to the episode, or None: "not_a_practitioner", "not_usable"
    (vetting or training not current) or "excluded" (the family's consent keeps their organisation out)."""
    if user is None or not user.active or user.role != "practitioner":
        return "not_a_practitioner"
    if not is_usable(user):
        return "not_usable"
    if session.scalar(select(_is_excluded(user, episode))):
        return "excluded"
    return None


def lead_refusal(session: Session, user: User, episode: Episode, today: date) -> str | None:
    """Why `user` may not be appointed the episode's lead professional (None: they may): only a
    practitioner whose account may be used today (enabled, not locked, vetted and trained), whose
    organisation the family's consent does not exclude."""
    problem = unusable_because(user, today)
    if problem:
        return problem
    if user.role != "practitioner":
        return "only a practitioner can lead a CAF"
    if session.scalar(select(_is_excluded(user, episode))):
        return f"the family's consent excludes {user.organisation.name}"
    return None


def may_hear_why_not_lead(session: Session, named: User, episode: Episode) -> bool:
    """May whoever appoints the lead be told why `named` cannot lead? Only of the episode's own people:
    of any other account, even whether it exists is not theirs to learn."""
    return member_role(session, named, episode) is not None


def visible_episode(session: Session, user: User | None, episode_id: int, *, options=()) -> Episode | None:
    """The episode if `user` may open it, else None (the caller answers 404 either way). `options`
    load what the page needs with it (e.g. joinedload of the child) in the same statement."""
    shape = _shape(user)
    if shape == "none":
        return None
    return session.scalar(_visible_statement(shape, tuple(options)), {"episode_id": episode_id, **_values(user)})


def child_filter(user: User | None):
    """Children `user` may find with their details: those with an episode the user may open."""
    return exists().where(Episode.child_id == Child.id, episode_filter(user))


def member_role(session: Session, user: User, episode: Episode) -> str | None:
    """The user's current part in the episode (originator, lead_professional, tac_member, contributor)."""
    if episode.lead_professional_id == user.id:
        return "lead_professional"
    return session.scalar(select(EpisodeMember.role).where(
        EpisodeMember.episode_id == episode.id, EpisodeMember.user_id == user.id,
        EpisodeMember.removed_at.is_(None)).order_by(EpisodeMember.id.desc()).limit(1))


def permissions(session: Session, user: User | None, episode: Episode) -> frozenset[str]:
    """Every action `user` may take on `episode` (empty when they may not open it), from one query:
    whether they may open it, and their current part in it. Anything not granted here is refused."""
    if not is_usable(user):
        return frozenset()
    part = (select(_Part.role).where(_Part.episode_id == Episode.id, _Part.user_id == user.id,
                                     _Part.removed_at.is_(None)).order_by(_Part.id.desc()).limit(1)
            .scalar_subquery())
    row = session.execute(select(Episode.lead_professional_id, part).where(
        Episode.id == episode.id, episode_filter(user))).first()
    if row is None:
        return frozenset()
    if user.role == "administrator":
        return frozenset(EPISODE_ACTIONS)
    lead_id, role = row
    if lead_id == user.id:
        role = "lead_professional"
    granted = {"view", "print"}
    if role == "lead_professional" or (role == "originator" and lead_id is None):
        granted |= {"manage_members", "withdraw_consent", "view_audit", "export"}
    return frozenset(granted)  # transfer and repair belong to administrators


def may(session: Session, user: User | None, action: str, episode: Episode) -> bool:
    """May `user` do `action` to `episode`? A page asking about several actions calls `permissions`."""
    if action not in EPISODE_ACTIONS:
        raise ValueError(f"unknown episode action {action!r}")
    return action in permissions(session, user, episode)


def claimable_roles(user: User) -> set[str]:
    return {lane for lane, role in ROLE_OF_LANE.items() if role == user.role}


def task_filter(user: User | None, joined_episode=None):
    """Ready tasks `user` may see in their task list: assigned to them, or open to their role,
    and in both cases only on an episode they may open. A query that already joins each task's
    episode passes it as `joined_episode`, and the rule is asked of that row instead of looking the
    episode up again for every task."""
    if not is_usable(user):
        return false()
    visible = episode_filter(user, joined_episode) if joined_episode is not None else \
        exists().where(_TaskEpisode.id == HumanTask.episode_id, episode_filter(user, _TaskEpisode))
    mine = HumanTask.assigned_user_id == user.id
    roles = claimable_roles(user)
    if not roles:  # most users: a plain condition the (status, assignee) index answers
        return and_(mine, visible)
    return and_(or_(mine, HumanTask.assigned_user_id.is_(None) & HumanTask.lane.in_(roles)), visible)


def may_work_on(user: User, task: HumanTask) -> bool:
    """Is the task `user`'s, whatever its status? Assignment follows membership: the engine assigns
    person lanes to the originator and the lead professional, and role lanes are claimed;
    contributors complete nothing here."""
    return is_usable(user) and task.assigned_user_id == user.id


def may_complete(user: User, task: HumanTask) -> bool:
    return may_work_on(user, task) and task.status == "ready"


def may_complete_now(session: Session, user_id: int, task: HumanTask) -> bool:
    """Asked inside the step that completes the task (or saves its draft), with the account and the
    episode as they are in that transaction: access lost after the form was opened counts. The task's
    status is not asked here but by the step, after this: the task's own user learns that it was
    completed meanwhile (in another tab), anyone else learns nothing about it."""
    user = session.get(User, user_id, options=[joinedload(User.organisation)])
    return may_work_on(user, task) and visible_episode(session, user, task.episode_id) is not None


def may_claim(user: User, task: HumanTask, episode: Episode) -> bool:
    return (is_usable(user) and task.status == "ready" and task.assigned_user_id is None
            and task.lane in claimable_roles(user) and episode.authority_id == authority_id_of(user))


def may_release(user: User, task: HumanTask) -> bool:
    return is_usable(user) and task.status == "ready" and task.assigned_user_id == user.id and task.lane in ROLE_OF_LANE


def may_search_index(user: User | None) -> bool:
    """Any vetted practitioner or administrator may ask whether a CAF exists (never its content)."""
    return is_usable(user) and user.role in ("practitioner", "administrator")
