"""What the episode page shows: the child, the people, deadlines, the timeline and the records.

Read from our own tables; the workflow is loaded only to mark the diagram.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import membership
from app.clock import as_utc, now
from app.engine import forms as form_tools
from app.engine.library import forms_of
from app.models import Artefact, AuditEvent, Episode, HumanTask, User
from app.services.reports import CLOSURE_REASONS

ASSESSMENT_DAYS = 35
PROTECTION_HOURS = 48
BEFORE_ASSESSMENT = ("preparation", "assessment")

ARTEFACT_TITLES = {
    "assessment": "Assessment",
    "consent_statement": "Consent statement",
    "consent_refusal": "Consent refused",
    "consent_withdrawal": "Consent withdrawn",
    "tac_meeting": "Team Around the Child meeting",
    "action_plan": "Action plan",
    "review": "Review",
    "final_summary": "Closure summary",
    "outcome_sustained": "Six-month outcome check",
}
PRINTABLE = ("assessment", "consent_statement", "action_plan", "review", "final_summary")

EVENTS = {
    "episode_started": "CAF started",
    "task_completed": "Completed: {task}",
    "draft_saved": "Draft saved: {task}",
    "assessment_submitted": "Assessment submitted (version {version})",
    "consent_recorded": "Consent recorded",
    "consent_refused": "Consent refused",
    "consent_withdrawn": "Consent withdrawn",
    "child_protection_concern_recorded": "Child-protection concern recorded",
    "lead_professional_appointed": "Lead professional appointed",
    "index_notified": "National index told that a CAF exists",
    "deadline_missed": "Deadline passed: {deadline}",
    "episode_closed": "CAF closed",
    "episode_deleted": "CAF deleted",
    "deletion_refused": "Deletion refused: {why}",
    "step_retried": "Failed step retried",
    "artefact_stored": "Record stored: {kind}",
    "message_received": "Message received",
    "episode_printed": "Printed",
    "episode_pdf_downloaded": "PDF downloaded",
    "share_requested": "Decision to share information without consent recorded, for {recipient}",
    "share_granted": "Information shared without consent with {recipient}",
    "share_rejected": "Decision to share information rejected",
    "share_expired": "Shared access ended for {recipient}",
    "share_not_shared": "Decided not to share information with {recipient}",
    "share_family_told": "Family told of the sharing (by {by})",
    "share_family_not_told": "Family not told of the sharing",
}
QUIET = {"episode_viewed", "task_opened", "shared_records_viewed", "shared_record_viewed"}  # recorded for the audit trail, too many for the timeline


@dataclass
class Person:
    name: str
    role_in_episode: str
    job: str | None = None
    organisation: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class Deadline:
    what: str
    due: datetime
    overdue: bool


@dataclass
class TimelineEntry:
    at: datetime
    text: str
    who: str | None


@dataclass
class ArtefactView:
    id: int
    kind: str
    title: str
    version: int
    created_at: datetime
    created_by: str | None
    rows: list = field(default_factory=list)
    latest: bool = True


MEMBER_TITLES = {"tac_member": "Team Around the Child", "contributor": "Contributor", "service_contact": "Service",
                 "lead_professional": "Lead professional", "originator": "Started the CAF"}


def people(session: Session, episode: Episode) -> list[Person]:
    found: dict[str, Person] = {}

    def add(person: Person) -> None:
        key = (person.email or person.name or "").lower()
        if key and key not in found:
            found[key] = person

    if episode.lead_professional:
        add(_person(episode.lead_professional, "Lead professional"))
    add(_person(episode.originator, "Started the CAF"))
    for member in membership.current(session, episode):
        add(_person(member.user, MEMBER_TITLES.get(member.role, member.role)))
    for contact in session.scalars(select(Artefact).where(Artefact.episode_id == episode.id,
                                                          Artefact.kind == "contact").order_by(Artefact.id)):
        data = contact.data
        add(Person(name=data.get("name") or "", role_in_episode="Team Around the Child",
                   job=data.get("role"), organisation=data.get("organisation"), phone=data.get("phone"),
                   email=data.get("email")))
    return list(found.values())


def _person(user: User, role: str) -> Person:
    return Person(name=user.full_name, role_in_episode=role, job=user.job_title,
                  organisation=user.organisation.name if user.organisation else None,
                  phone=user.phone, email=user.email)


def deadlines(session: Session, episode: Episode, tasks: list[HumanTask] | None = None) -> list[Deadline]:
    moment = now()
    tasks = ready_tasks(session, episode) if tasks is None else tasks
    result = []
    if episode.is_open and episode.submitted_at is None and episode.stage in BEFORE_ASSESSMENT:
        limit = as_utc(episode.started_at) + timedelta(days=ASSESSMENT_DAYS)
        result.append(Deadline("Complete the assessment (35 days from the start)", limit, limit < moment))
        urgent = protection_due(session, episode, tasks)
        if urgent is not None:
            result.append(Deadline("Child-protection concern: complete the assessment within 48 hours",
                                   urgent, urgent < moment))
    listed = {d.due for d in result}
    for task in tasks:  # a step due by one of the limits above is not listed twice
        if task.due_at and as_utc(task.due_at) not in listed:
            result.append(Deadline(task.title, as_utc(task.due_at), as_utc(task.due_at) < moment))
    return sorted(result, key=lambda d: d.due)


def protection_due(session: Session, episode: Episode, tasks: list[HumanTask]) -> datetime | None:
    """When a child-protection case's assessment is due, until it is submitted: the date its own steps are
    due by (the 48-hour timer's), else 48 hours from when the concern was recorded."""
    if not (episode.child_protection and episode.is_open and episode.submitted_at is None
            and episode.stage in BEFORE_ASSESSMENT):
        return None
    own = [as_utc(t.due_at) for t in tasks if t.due_at and t.service_request_id is None and t.contribution_id is None]
    if own:
        return min(own)
    recorded = session.scalar(select(AuditEvent.at).where(AuditEvent.episode_id == episode.id,
                                                          AuditEvent.action == "child_protection_concern_recorded")
                              .order_by(AuditEvent.at).limit(1))
    return as_utc(recorded or episode.started_at) + timedelta(hours=PROTECTION_HOURS)


# ---------------------------------------------------------------- where the episode is

STAGES = (("preparation", "Preparation"), ("assessment", "Assessment"), ("delivery", "Delivery"),
          ("closure", "Closure"))
STAGE_STATES = {"done": "Done", "current": "You are here", "to_come": "To come", "ended": "CAF closed here",
                "not_reached": "Not reached"}


@dataclass
class Stage:
    name: str
    title: str
    state: str  # a key of STAGE_STATES

    @property
    def status(self) -> str:
        return STAGE_STATES[self.state]


def stages(episode: Episode, positions: dict[str, list[str]]) -> list[Stage]:
    """The four stages, each done, current or to come; a closed CAF's stages after the one it ended in
    were not reached. The stage subprocesses' BPMN ids are the stage names."""
    names = [name for name, _ in STAGES]
    if episode.is_open:
        at = names.index(episode.stage) if episode.stage in names else 0
        states = ["done"] * at + ["current"] + ["to_come"] * (len(names) - at - 1)
    else:
        reached = {bpmn_id for ids in positions.values() for bpmn_id in ids}
        last = max((i for i, name in enumerate(names) if name in reached), default=0)
        ended = "done" if last == len(names) - 1 else "ended"
        states = ["done"] * last + [ended] + ["not_reached"] * (len(names) - last - 1)
    return [Stage(name, title, state) for (name, title), state in zip(STAGES, states)]


def own_steps(tasks: list[HumanTask]) -> list[HumanTask]:
    """The ready tasks of the episode's own process (a service request's or contribution's run in theirs)."""
    return [t for t in tasks if t.service_request_id is None and t.contribution_id is None]


def last_step(session: Session, episode: Episode) -> HumanTask | None:
    """The last step of the episode's own process that a person completed."""
    return session.scalar(select(HumanTask).where(
        HumanTask.episode_id == episode.id, HumanTask.status == "completed", HumanTask.service_request_id.is_(None),
        HumanTask.contribution_id.is_(None)).order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))


OUTCOMES = {
    "single_service": "No CAF needed: support from the practitioner's own service",
    "no_further_action": "No CAF needed: no further action",
    "existing_caf": "A CAF is already open for this child elsewhere",
    "moved_to_another_authority": "Moved to another local authority",
    "deleted": "Deleted",
}


KEPT_UNTIL_AGE = 25  # early help records: usually until the child's 25th birthday (CAF.md 8.5)


def kept_until(episode: Episode) -> date | None:
    """Until when an early help record is usually kept: the child's 25th birthday."""
    born = episode.child.date_of_birth if episode.child else None
    if born is None:
        return None
    try:
        return born.replace(year=born.year + KEPT_UNTIL_AGE)
    except ValueError:  # born on 29 February
        return date(born.year + KEPT_UNTIL_AGE, 3, 1)


def outcome_text(episode: Episode) -> str | None:
    """Why a closed CAF ended, in words ("Consent refused")."""
    if not episode.outcome:
        return None
    return OUTCOMES.get(episode.outcome) or CLOSURE_REASONS.get(episode.outcome) \
        or episode.outcome.replace("_", " ").capitalize()


def ready_tasks(session: Session, episode: Episode) -> list[HumanTask]:
    return session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id,
                                                   HumanTask.status == "ready").order_by(HumanTask.id)).all()


def timeline(session: Session, episode: Episode) -> list[TimelineEntry]:
    events = session.scalars(select(AuditEvent).where(AuditEvent.episode_id == episode.id)
                             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(300)).all()
    titles = {t.name: t.title for t in session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id))}
    names = {u.id: u.full_name for u in session.scalars(
        select(User).where(User.id.in_({e.actor_id for e in events if e.actor_id})))}
    entries = []
    for event in events:
        if event.action in QUIET:
            continue
        detail = dict(event.detail or {})
        if "task" in detail:
            detail["task"] = titles.get(detail["task"], detail["task"])
        if "kind" in detail:
            detail["kind"] = ARTEFACT_TITLES.get(detail["kind"], detail["kind"]).lower()
        template = EVENTS.get(event.action, event.action.replace("_", " ").capitalize())
        try:
            text = template.format(**detail)
        except (KeyError, IndexError):
            text = template.split(":")[0]
        entries.append(TimelineEntry(event.at, text, names.get(event.actor_id) if event.actor_id else "eCAF"))
    return entries


def form_pair(episode: Episode, task: HumanTask | None) -> tuple[dict | None, dict | None]:
    """The JSON Schema and UI schema a task's form was built from (in the episode's process version)."""
    if task is None or not task.form:
        return None, None
    forms = forms_of(episode.process_version)
    try:
        schema = form_tools.load_form(forms, task.form)
    except KeyError:
        return None, None
    ui = form_tools.load_form(forms, task.ui_form) if task.ui_form and task.ui_form in forms else None
    return schema, ui


def artefacts(session: Session, episode: Episode, summarise) -> list[ArtefactView]:
    """Every record but contacts, newest first, each with readable rows built by `summarise`."""
    rows = session.scalars(select(Artefact).where(Artefact.episode_id == episode.id, Artefact.kind != "contact")
                           .order_by(Artefact.created_at.desc(), Artefact.id.desc())).all()
    latest: dict[str, int] = {}
    for row in rows:
        latest[row.kind] = max(latest.get(row.kind, 0), row.version)
    return [artefact_view(session, episode, row, summarise, latest.get(row.kind) == row.version) for row in rows]


def artefact_view(session: Session, episode: Episode, row: Artefact, summarise, latest: bool = True) -> ArtefactView:
    task = session.get(HumanTask, row.human_task_id) if row.human_task_id else None
    schema, ui = form_pair(episode, task)
    data = {k: v for k, v in row.data.items() if k != "signature"}
    summary_rows = summarise(schema, ui, data) if schema else []
    return ArtefactView(id=row.id, kind=row.kind, title=ARTEFACT_TITLES.get(row.kind, row.kind.replace("_", " ")),
                        version=row.version, created_at=row.created_at,
                        created_by=row.created_by.full_name if row.created_by else None,
                        rows=summary_rows, latest=latest)
