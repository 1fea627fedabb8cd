"""Consent gates sharing (CAF.md 3.12 and decision 4).

A consent statement is kept twice: as the episode's artefact (the record the family signed) and as
a `consent` row with its exclusions, which the policy reads on every query. The episode's
`consent_state` says which rule applies: none, given, refused or withdrawn.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.models import Consent, ConsentExclusion, Episode, Organisation


def _as_date(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _organisations_named(session: Session, names: list[str]) -> tuple[list[int], list[str]]:
    """Organisation ids for the names that match an organisation exactly, and the names that do not."""
    found, unknown = [], []
    for name in names:
        organisation_id = session.scalar(select(Organisation.id).where(
            func.lower(Organisation.name) == name.strip().lower()))
        (found.append(organisation_id) if organisation_id else unknown.append(name))
    return found, unknown


def record_statement(session: Session, episode: Episode, data: dict, *, recorded_by_id: int | None,
                     artefact_id: int | None = None) -> Consent:
    """A new statement replaces the one before: its exclusions are the ones that apply."""
    excluded_kinds = list(data.get("excluded_services") or [])
    excluded_ids, unknown = _organisations_named(session, list(data.get("excluded_recipients") or []))
    consent = Consent(
        episode_id=episode.id, artefact_id=artefact_id, subject=data.get("subject"),
        given_by_name=data.get("given_by_name"), relationship_to_child=data.get("relationship"),
        has_parental_responsibility=bool(data.get("has_parental_responsibility")),
        competence_assessed=bool(data.get("competence_assessed")),
        to_storage=bool(data.get("consent_to_storage")), to_sharing=bool(data.get("consent_to_sharing")),
        permitted={"kinds": list(data.get("permitted_services") or []),
                   "names": list(data.get("permitted_recipients") or [])},
        excluded={"kinds": excluded_kinds, "names": list(data.get("excluded_recipients") or []),
                  "unmatched_names": unknown},
        method=data.get("method"), given_on=_as_date(data.get("given_on")),
        recorded_by_id=recorded_by_id, recorded_at=now())
    session.add(consent)
    session.flush()
    for old in session.scalars(select(ConsentExclusion).where(ConsentExclusion.episode_id == episode.id,
                                                              ConsentExclusion.consent_id != consent.id)):
        session.delete(old)
    for kind in excluded_kinds:
        session.add(ConsentExclusion(consent_id=consent.id, episode_id=episode.id, organisation_kind=kind))
    for organisation_id in excluded_ids:
        session.add(ConsentExclusion(consent_id=consent.id, episode_id=episode.id, organisation_id=organisation_id))
    episode.consent_state = "given" if consent.to_sharing or consent.to_storage else "refused"
    audit.record(session, "consent_statement_recorded", actor_id=recorded_by_id, episode_id=episode.id,
                 consent_id=consent.id, excluded_kinds=excluded_kinds, excluded_organisations=excluded_ids)
    _cancel_what_consent_no_longer_allows(session, episode, recorded_by_id)
    return consent


def record_refusal(session: Session, episode: Episode) -> None:
    episode.consent_state = "refused"


def current(session: Session, episode: Episode) -> Consent | None:
    return session.scalar(select(Consent).where(Consent.episode_id == episode.id)
                          .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1))


def withdraw(session: Session, episode: Episode, *, withdrawn_by_name: str, reason: str | None,
             recorded_by_id: int | None) -> Consent | None:
    """Stop sharing at once: from this commit only the lead professional and administrators see it."""
    statement = current(session, episode)
    if statement is not None and statement.withdrawn_at is None:
        statement.withdrawn_at, statement.withdrawn_by_name = now(), withdrawn_by_name
        statement.withdrawal_reason, statement.withdrawal_recorded_by_id = reason, recorded_by_id
    already = episode.consent_state == "withdrawn"
    episode.consent_state = "withdrawn"
    if not already:
        audit.record(session, "consent_withdrawn", actor_id=recorded_by_id, episode_id=episode.id,
                     by=withdrawn_by_name, reason=reason)
    _cancel_what_consent_no_longer_allows(session, episode, recorded_by_id)
    return statement


def _cancel_what_consent_no_longer_allows(session: Session, episode: Episode, actor_id: int | None) -> None:
    # Imported here: the services import this module.
    from app.services import consent_effects

    consent_effects.apply(session, episode, actor_id=actor_id)
