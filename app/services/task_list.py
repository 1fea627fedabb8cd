"""The task list: ready user tasks from the human_task projection (no workflow is loaded), and
for administrators the deadline alerts of their authority, which come first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.orm import Session, aliased, defer

from app import audit, policy
from app.clock import as_utc, now
from app.models import AdminAlert, Authority, Child, Episode, FamilyChild, HumanTask, Organisation, User
from app.models.episode import episode_reference
from app.services.query_plans import plan_for_values

FILTERS = ("mine", "role", "overdue", "soon")
SOON = timedelta(days=7)
# A closed episode lists only its six-month outcome check: its other tasks ended with it (engine/follow_up.py).
LISTED_STATUSES = ("open", "error", "suspended", "closed")
# Until the assessment is in, a child-protection case's own steps are due by its 48-hour limit.
BEFORE_ASSESSMENT = ("preparation", "assessment")
# The most urgent tasks a list shows; beyond them the practitioner narrows it with the filters (a
# list of hundreds is read by nobody, and each row shown costs its child's and authority's names).
SHOWN = 100


class TaskRows(list):
    """The rows shown, most urgent first; `more` when there are others beyond them."""

    more: bool = False


@dataclass
class TaskRow:
    task_id: int
    episode_id: int
    reference: str
    child_name: str
    stage: str
    title: str
    due_at: datetime | None
    overdue: bool
    child_protection: bool
    assigned_to_me: bool
    claimable: bool
    has_draft: bool
    status: str
    assessment_urgent: bool = False  # the due date is the child-protection assessment's: shown as a red tag
    family_id: int | None = None  # read only when the list is grouped by family


@dataclass
class TaskGroup:
    """The rows of one family (or of one child not in a family), in the list's order."""

    children: list[str]
    rows: list[TaskRow]
    family_id: int | None = None


def group_by_family(rows: TaskRows) -> list[TaskGroup]:
    """Brothers' and sisters' tasks together, the family of the most urgent task first; within a
    family the list's own order. Only the children whose tasks are listed are named."""
    groups: dict[tuple, TaskGroup] = {}
    for row in rows:
        key = ("family", row.family_id) if row.family_id is not None else ("episode", row.episode_id)
        group = groups.setdefault(key, TaskGroup([], [], row.family_id))
        group.rows.append(row)
        if row.child_name not in group.children:
            group.children.append(row.child_name)
    return list(groups.values())


def ready_tasks(session: Session, user: User, filters: set[str], *, by_family: bool = False) -> TaskRows:
    plan_for_values(session)
    moment = now()
    overdue_first = case((HumanTask.due_at < moment, 0), else_=1).label("overdue_first")
    protection_first = case((Episode.child_protection.is_(True), 0), else_=1).label("protection_first")
    no_date_last = case((HumanTask.due_at.is_(None), 1), else_=0).label("no_date_last")
    # Columns, not entities: a list of up to 500 rows would spend most of its time building objects
    # (and reading each task's submitted data) that the page never shows.
    query = (select(HumanTask.id, HumanTask.episode_id, HumanTask.stage, HumanTask.title, HumanTask.due_at,
                    HumanTask.assigned_user_id, HumanTask.draft, Episode.stage.label("episode_stage"),
                    (HumanTask.service_request_id.is_(None) & HumanTask.contribution_id.is_(None)).label("own_step"),
                    Episode.child_protection, Episode.status, Episode.authority_id, Episode.child_id,
                    overdue_first, protection_first, no_date_last)
             .join(Episode, Episode.id == HumanTask.episode_id)
             .where(HumanTask.status == "ready", Episode.status.in_(LISTED_STATUSES),
                    policy.task_filter(user, joined_episode=Episode)))
    if "mine" in filters and "role" not in filters:
        query = query.where(HumanTask.assigned_user_id == user.id)
    if "role" in filters and "mine" not in filters:
        query = query.where(HumanTask.assigned_user_id.is_(None))
    if "overdue" in filters:
        query = query.where(HumanTask.due_at < moment)
    if "soon" in filters:
        query = query.where(HumanTask.due_at >= moment, HumanTask.due_at < moment + SOON)
    tasks = query.order_by(overdue_first, protection_first, no_date_last, HumanTask.due_at,
                           HumanTask.id).limit(SHOWN + 1).subquery()
    # Names for the rows shown only, not for every task considered: joined to those chosen, in the
    # same statement (not looked up after by a list of ids).
    named = (select(tasks.c.id, tasks.c.episode_id, tasks.c.stage, tasks.c.title, tasks.c.due_at,
                    tasks.c.assigned_user_id, tasks.c.draft, tasks.c.episode_stage, tasks.c.own_step,
                    tasks.c.child_protection, tasks.c.status, tasks.c.authority_id, Child.given_names,
                    Child.family_name)
             .outerjoin(Child, Child.id == tasks.c.child_id))
    if by_family:  # the family of each row shown (one indexed look-up per row, for the rows shown only)
        named = named.add_columns(FamilyChild.family_id).outerjoin(FamilyChild,
                                                                    FamilyChild.child_id == tasks.c.child_id)
    found = session.execute(
        named.order_by(tasks.c.overdue_first, tasks.c.protection_first, tasks.c.no_date_last, tasks.c.due_at,
                  tasks.c.id)).all()
    # The authorities' codes (for references) by their few ids: joined above, the planner, expecting a
    # handful of rows, compared each row with every authority.
    codes = dict(session.execute(select(Authority.id, Authority.code).where(
        Authority.id.in_({row.authority_id for row in found}))).all()) if found else {}
    rows = TaskRows()
    rows.more = len(found) > SHOWN
    for (task_id, episode_id, task_stage, title, due_at, assignee, draft, episode_stage, own_step, protection, status,
         authority_id, given, family, *family_id) in found[:SHOWN]:
        code = codes.get(authority_id)
        stage = task_stage or episode_stage
        rows.append(TaskRow(
            task_id=task_id, episode_id=episode_id, reference=episode_reference(code, episode_id),
            child_name=f"{given} {family}" if given is not None else "(record removed)",
            stage=stage, title=title,
            due_at=due_at, overdue=due_at is not None and as_utc(due_at) < moment,
            child_protection=protection, assigned_to_me=assignee == user.id,
            claimable=assignee is None, has_draft=bool(draft), status=status,
            assessment_urgent=bool(protection and own_step and due_at is not None and stage in BEFORE_ASSESSMENT),
            family_id=family_id[0] if family_id else None))
    return rows


# ---------------------------------------------------------------- deadline alerts

MISSED = {"assessment_overdue": "Assessment not submitted within 35 days",
          "child_protection_overdue": "Child-protection assessment not submitted within 48 hours",
          "service_response_overdue": "A service has not answered a request within its response time"}
MAX_ALERTS = 200


@dataclass
class AlertRow:
    alert_id: int
    episode_id: int
    reference: str
    kind: str
    missed: str
    message: str
    raised_at: datetime
    child_protection: bool
    episode_status: str
    deletion_due_at: datetime | None
    deleted_at: datetime | None
    legal_hold: bool
    originator: dict


def _deletion_due(alert: AdminAlert, episode: Episode) -> datetime | None:
    """After the 35-day warning the episode's next timer is its deletion (its 24 hours' notice),
    until the assessment is submitted; a legal hold means it will not be deleted."""
    if alert.kind != "assessment_overdue" or not episode.is_open or episode.legal_hold:
        return None
    if episode.stage != "assessment" or episode.submitted_at is not None:
        return None
    return episode.next_timer_at


def open_alerts(session: Session, user: User) -> list[AlertRow]:
    """The unresolved alerts of an administrator's authority: child protection first, then oldest first."""
    if not policy.is_administrator_of(user, policy.authority_id_of(user)):
        return []
    originator, organisation = aliased(User), aliased(Organisation)
    query = (select(AdminAlert, Episode, originator, organisation.name)
             .join(Episode, Episode.id == AdminAlert.episode_id)
             .join(originator, originator.id == Episode.originator_id)
             .outerjoin(organisation, organisation.id == originator.organisation_id)
             .where(policy.authority_clause(user, AdminAlert.authority_id), AdminAlert.resolved_at.is_(None))
             .options(defer(Episode.state))
             .order_by(case((AdminAlert.kind == "child_protection_overdue", 0), else_=1), AdminAlert.raised_at,
                       AdminAlert.id)
             .limit(MAX_ALERTS))
    rows = []
    for alert, episode, person, organisation_name in session.execute(query).all():
        rows.append(AlertRow(
            alert_id=alert.id, episode_id=episode.id, reference=episode.reference, kind=alert.kind,
            missed=MISSED.get(alert.kind, alert.kind.replace("_", " ").capitalize()), message=alert.message,
            raised_at=alert.raised_at, child_protection=episode.child_protection, episode_status=episode.status,
            deletion_due_at=_deletion_due(alert, episode), deleted_at=episode.deleted_at,
            legal_hold=episode.legal_hold,
            originator={"name": person.full_name, "organisation": organisation_name, "phone": person.phone,
                        "email": person.email}))
    return rows


def alert_of(session: Session, user: User, alert_id: int) -> AdminAlert | None:
    """The alert if it belongs to the administrator's authority (locked, so it is resolved once)."""
    return session.scalar(select(AdminAlert).where(
        AdminAlert.id == alert_id, policy.authority_clause(user, AdminAlert.authority_id)).with_for_update())


def resolve_alert(session: Session, user: User, alert: AdminAlert, outcome: str) -> None:
    """Record what came of the administrator's call; the alert leaves the task list."""
    alert.resolution, alert.resolved_by_id, alert.resolved_at = outcome, user.id, now()
    audit.record(session, "alert_resolved", actor_id=user.id, episode_id=alert.episode_id, alert_id=alert.id,
                 kind=alert.kind)
