"""The audit trail's pages: administrators browse their authority's trail; an episode's lead
professional sees who opened it. Reading the trail is recorded in it too."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app import audit, policy
from app.clock import as_utc
from app.models import AuditEvent, Authority, Episode, Organisation, User
from app.web import runtime
from app.web.access import current_user, episode_or_404, roles, signed_in
from app.web.form_input import date_parts, parse_date, text
from app.uk_time import LONDON

bp = Blueprint("audit_trail", __name__)
PAGE_SIZE = 50
OPENED_LABELS = {"episode_viewed": "Viewed the CAF", "artefact_viewed": "Viewed a record",
                 "episode_printed": "Printed it", "episode_pdf_downloaded": "Downloaded it as a PDF",
                 "episode_exported": "Exported it", "subject_access_export": "Included it in a subject access export",
                 "shared_records_viewed": "Opened the records shared with them without consent",
                 "shared_record_viewed": "Read a record shared with them without consent",
                 "shared_access_refused": "Was refused a record shared with them (not shared, or access ended)"}
TEXT_FILTERS = ("episode", "user", "action")
DATE_FILTERS = ("date_from", "date_to")


@dataclass
class Entry:
    """One audit row as the pages show it."""

    event: AuditEvent
    person: str
    organisation: str | None
    reference: str | None

    @property
    def what(self) -> str:
        return OPENED_LABELS.get(self.event.action) or self.event.action.replace("_", " ").capitalize()

    @property
    def details(self) -> list[tuple[str, str]]:
        return [(key.replace("_", " "), _shown(value)) for key, value in sorted((self.event.detail or {}).items())
                if value not in (None, "", [], {})]


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


@dataclass
class Page:
    entries: list[Entry]
    number: int
    has_next: bool

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1

    @property
    def last(self) -> int:
        return self.first + len(self.entries) - 1


def _page_number() -> int:
    value = request.args.get("page", "")
    return min(int(value), 100_000) if value.isdigit() and int(value) > 0 else 1


# Aliases keep the filters' subqueries independent of the joins of the page's own query.
_EpisodeAuthority = aliased(Authority)
_Actor, _ActorOrganisation, _FilterEpisode = aliased(User), aliased(Organisation), aliased(Episode)


def _page_of(session: Session, where: list, number: int) -> Page:
    """Newest first (commit order), one more row than shown to know whether there is a next page."""
    query = (select(AuditEvent, User.full_name, Organisation.name, _EpisodeAuthority.code)
             .outerjoin(User, User.id == AuditEvent.actor_id)
             .outerjoin(Organisation, Organisation.id == User.organisation_id)
             .outerjoin(Episode, Episode.id == AuditEvent.episode_id)
             .outerjoin(_EpisodeAuthority, _EpisodeAuthority.id == Episode.authority_id)
             .where(*where).order_by(AuditEvent.seq.desc(), AuditEvent.id.desc())
             .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    rows = session.execute(query).all()
    entries = [Entry(event, person or _not_a_person(event), organisation,
                     f"{code or 'CAF'}-{event.episode_id:06d}" if event.episode_id is not None else None)
               for event, person, organisation, code in rows[:PAGE_SIZE]]
    return Page(entries, number, len(rows) > PAGE_SIZE)


def _not_a_person(event: AuditEvent) -> str:
    """A row no account caused: a client system's call (named as the pages name it), or eCAF's own."""
    client = (event.detail or {}).get("client")
    if event.actor_id is None:
        return f"{client} (client system)" if isinstance(client, str) else "eCAF"
    return "Unknown account"


# ---------------------------------------------------------------- an administrator's trail

def _about_authority(admin: User):
    """Rows about the administrator's authority's episodes, or done by someone in one of its
    organisations (the policy's authority clause: nothing for anyone else)."""
    about_episode = exists().where(_FilterEpisode.id == AuditEvent.episode_id,
                                   policy.authority_clause(admin, _FilterEpisode.authority_id))
    by_its_people = exists().where(_Actor.id == AuditEvent.actor_id,
                                   _ActorOrganisation.id == _Actor.organisation_id,
                                   policy.authority_clause(admin, _ActorOrganisation.authority_id))
    return or_(about_episode, by_its_people)


@dataclass
class Filters:
    """What was typed (shown back as typed), the conditions it makes, and what is wrong with it."""

    typed: dict
    where: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)

    def as_arguments(self) -> dict:
        """Query-string arguments that repeat these filters (for the pages' links)."""
        arguments = {name: self.typed[name] for name in TEXT_FILTERS if self.typed[name]}
        for name in DATE_FILTERS:
            arguments.update({f"{name}-{part}": v for part, v in self.typed[name].items() if v})
        return arguments

    def recorded(self) -> dict:
        """The filters for the audit row that records this viewing."""
        typed = {name: self.typed[name] for name in TEXT_FILTERS if self.typed[name]}
        for name in DATE_FILTERS:
            parts = self.typed[name]
            if any(parts.values()):
                typed[name] = "-".join(parts[p] for p in ("year", "month", "day"))
        return typed


def _read_filters(session: Session) -> Filters:
    args = request.args
    filters = Filters({"episode": text(args, "episode", 40), "user": text(args, "user", 254),
                       "action": text(args, "action", 60), "date_from": date_parts(args, "date_from"),
                       "date_to": date_parts(args, "date_to")})
    _filter_episode(filters)
    _filter_user(session, filters)
    _filter_dates(filters)
    _filter_action(filters)
    return filters


def _filter_episode(filters: Filters) -> None:
    typed = filters.typed["episode"]
    if not typed:
        return
    code, _, number = typed.upper().rpartition("-")
    if not number.isdigit() or len(number) > 12:
        filters.errors["episode"] = "Enter a CAF reference, like TST-000012, or its number"
        return
    filters.where.append(AuditEvent.episode_id == int(number))
    if code:  # the reference names an authority: the episode must be one of its own
        filters.where.append(exists().where(_FilterEpisode.id == AuditEvent.episode_id,
                                            _FilterEpisode.authority_id == Authority.id,
                                            func.upper(Authority.code) == code))


def _filter_user(session: Session, filters: Filters) -> None:
    typed = filters.typed["user"].lower()
    if not typed:
        return
    user_id = session.scalar(select(User.id).where(or_(func.lower(User.username) == typed,
                                                       func.lower(User.email) == typed)))
    if user_id is None:
        filters.errors["user"] = "No account has that username or email address"
        return
    filters.where.append(AuditEvent.actor_id == user_id)


def _start_of(day: date) -> datetime:
    """Midnight in the UK at the start of `day`, in UTC (the trail stores UTC)."""
    return as_utc(datetime.combine(day, time(), tzinfo=LONDON))


def _filter_dates(filters: Filters) -> None:
    start, start_error = parse_date(filters.typed["date_from"], "the date from")
    end, end_error = parse_date(filters.typed["date_to"], "the date to")
    if start_error:
        filters.errors["date_from-day"] = start_error
    if end_error:
        filters.errors["date_to-day"] = end_error
    if start and end and end < start:
        filters.errors["date_to-day"] = "The date to must be the same as or after the date from"
        return
    if start and not start_error:
        filters.where.append(AuditEvent.at >= _start_of(start))
    if end and not end_error:
        filters.where.append(AuditEvent.at < _start_of(end + timedelta(days=1)))


def _filter_action(filters: Filters) -> None:
    typed = filters.typed["action"]
    if not typed:
        return
    action = "_".join(typed.lower().split())
    if not action.replace("_", "").isalpha():
        filters.errors["action"] = "Enter an action in letters and underscores, like episode_viewed"
        return
    filters.where.append(AuditEvent.action == action)


@bp.get("/audit")
@roles("administrator")
def browse():
    admin = current_user()
    number = _page_number()
    with runtime().db.session() as session:
        filters = _read_filters(session)
        page = None
        if not filters.errors:
            where = [_about_authority(admin), *filters.where]
            page = _page_of(session, where, number)
        audit.record(session, "audit_viewed", actor_id=admin.id, filters=filters.recorded(), page=number)
        html = render_template("audit_trail/browse.html", filters=filters, errors=filters.errors, page=page,
                               arguments=filters.as_arguments(), error_title=bool(filters.errors))
    return html, 400 if filters.errors else 200


# ---------------------------------------------------------------- one episode: who opened it

def _episode_or_404(session: Session, episode_id: int) -> Episode:
    """The episode if the user may see its audit trail; otherwise 404, as if it did not exist."""
    return episode_or_404(session, episode_id, f"audit of episode {episode_id}",
                          lambda episode: policy.may(session, current_user(), "view_audit", episode))


@bp.get("/episodes/<int:episode_id>/audit")
@signed_in
def episode_audit(episode_id: int):
    user = current_user()
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        everything = policy.is_administrator_of(user, episode.authority_id)
        where = [AuditEvent.episode_id == episode.id]
        if not everything:
            where.append(AuditEvent.action.in_(audit.OPENED_ACTIONS))
        page = _page_of(session, where, _page_number())
        audit.record(session, "episode_audit_viewed", actor_id=user.id, episode_id=episode.id, page=page.number)
        return render_template("audit_trail/episode.html", episode=episode, child=episode.child, page=page,
                               everything=everything)
