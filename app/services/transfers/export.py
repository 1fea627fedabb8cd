"""Writing an episode as one JSON document (docs/episode-export.md): the plain export for the family
or the record, and the signed export for a released transfer."""
from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.config import Config
from app.models import (ApiClient, Artefact, Child, Consent, ConsentExclusion, Episode, EpisodeMember, HumanTask, IndexEntry,
                        ProcessVersion, TransferRequest, User)

from .common import FORMAT, SCHEMA_VERSION, acted_by, authority_part, checksum, email_of, iso
from .document import sign


def _exporter(actor: User | ApiClient) -> dict:
    if isinstance(actor, ApiClient):
        return {"email": None, "name": f"{actor.name} (client system)", "role": "client system"}
    return {"email": actor.email, "name": actor.full_name, "role": actor.role}


def _document(session: Session, episode: Episode, user: User | ApiClient) -> dict:
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "exported_at": now().isoformat(),
        "exported_by": _exporter(user),
        **content(session, episode),
    }


def export_episode(session: Session, episode: Episode, user: User) -> dict:
    """Everything eCAF holds about one episode, as one document, for the family or the record: it
    carries no release and no signature, so no import accepts it. The caller checks the policy."""
    document = _document(session, episode, user)
    document["checksum"] = {"algorithm": "sha256", "value": checksum(document)}
    audit.record(session, "episode_exported", actor_id=user.id, episode_id=episode.id,
                 reference=episode.reference, checksum=document["checksum"]["value"], purpose="record")
    return document


def export_for_transfer(session: Session, release: TransferRequest, user: User | ApiClient, config: Config) -> dict:
    """The episode a live release names, with the release, signed with the deployment's transfer key.
    The caller checks the policy and that the release is live."""
    episode = release.episode
    document = _document(session, episode, user)
    document["transfer"] = {
        "release_id": release.release_id, "request_id": release.id,
        "released_to": authority_part(release.to_authority),
        "released_by": email_of(release.decided_by), "released_at": iso(release.decided_at),
        "expires_at": iso(release.expires_at),
    }
    document["checksum"] = {"algorithm": "sha256", "value": checksum(document)}
    document["signature"] = sign(document, config)
    audit.record(session, "episode_exported", **acted_by(user), episode_id=episode.id,
                 reference=episode.reference, checksum=document["checksum"]["value"], purpose="transfer",
                 release_id=release.release_id, released_to=release.to_authority.code)
    return document


def content(session: Session, episode: Episode) -> dict:
    """What the document says about the episode, as opposed to about the export."""
    return {
        "source_authority": authority_part(episode.authority),
        "episode": episode_part(episode),
        "child": child_part(episode.child),
        "process": process_part(episode.process_version),
        "workflow": {"serializer_version": episode.serializer_version,
                     "state": json.loads(episode.state) if episode.state else None},
        "members": members_part(session, episode),
        "consents": consents_part(session, episode),
        "artefacts": artefacts_part(session, episode),
        "tasks": tasks_part(session, episode),
        "index_entry": index_entry_part(session.scalar(select(IndexEntry).where(IndexEntry.episode_id == episode.id))),
    }


def episode_part(episode: Episode) -> dict:
    return {
        "id": episode.id, "reference": episode.reference, "status": episode.status, "stage": episode.stage,
        "outcome": episode.outcome, "consent_state": episode.consent_state,
        "child_protection": episode.child_protection, "legal_hold": episode.legal_hold,
        "sibling_group": episode.sibling_group, "transferred_from": episode.transferred_from,
        "lock_version": episode.lock_version, "originator": email_of(episode.originator),
        "lead_professional": email_of(episode.lead_professional),
        "started_at": iso(episode.started_at), "updated_at": iso(episode.updated_at),
        "submitted_at": iso(episode.submitted_at), "closed_at": iso(episode.closed_at),
        "deleted_at": iso(episode.deleted_at), "next_timer_at": iso(episode.next_timer_at),
        "last_error": episode.last_error, "error_task": episode.error_task,
    }


def child_part(child: Child | None) -> dict | None:
    if child is None:
        return None
    return {
        "id": child.id, "given_names": child.given_names, "family_name": child.family_name,
        "date_of_birth": iso(child.date_of_birth), "address": child.address, "postcode": child.postcode,
        "nhs_number": child.nhs_number, "nhs_number_missing": child.nhs_number_missing, "shielded": child.shielded, "created_at": iso(child.created_at),
        "home_authority": authority_part(child.home_authority),
    }


def process_part(version: ProcessVersion) -> dict:
    return {"process_id": version.process_id, "version": version.version, "label": version.label,
            "name": version.name, "content_hash": version.content_hash}


def members_part(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(EpisodeMember).where(EpisodeMember.episode_id == episode.id)
                           .order_by(EpisodeMember.added_at, EpisodeMember.id))
    return [{"email": m.user.email, "name": m.user.full_name, "role": m.role, "sections": m.sections,
             "added_at": iso(m.added_at), "added_by": email_of(m.added_by), "removed_at": iso(m.removed_at),
             "removed_by": email_of(m.removed_by), "removal_reason": m.removal_reason} for m in rows]


def consents_part(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(Consent).where(Consent.episode_id == episode.id).order_by(Consent.id)).all()
    return [_consent(session, c) for c in rows]


def _consent(session: Session, consent: Consent) -> dict:
    exclusions = session.scalars(select(ConsentExclusion).where(ConsentExclusion.consent_id == consent.id)
                                 .order_by(ConsentExclusion.id))
    withdrawal_recorder = session.get(User, consent.withdrawal_recorded_by_id) \
        if consent.withdrawal_recorded_by_id else None
    return {
        "id": consent.id, "artefact_id": consent.artefact_id, "subject": consent.subject,
        "given_by_name": consent.given_by_name, "relationship_to_child": consent.relationship_to_child,
        "has_parental_responsibility": consent.has_parental_responsibility,
        "competence_assessed": consent.competence_assessed, "to_storage": consent.to_storage,
        "to_sharing": consent.to_sharing, "permitted": consent.permitted, "excluded": consent.excluded,
        "method": consent.method, "given_on": iso(consent.given_on), "recorded_by": email_of(consent.recorded_by),
        "recorded_at": iso(consent.recorded_at), "withdrawn_at": iso(consent.withdrawn_at),
        "withdrawn_by_name": consent.withdrawn_by_name, "withdrawal_recorded_by": email_of(withdrawal_recorder),
        "withdrawal_reason": consent.withdrawal_reason,
        "exclusions": [{"organisation_kind": x.organisation_kind,
                        "organisation": {"id": x.organisation.id, "name": x.organisation.name,
                                         "kind": x.organisation.kind} if x.organisation else None}
                       for x in exclusions],
    }


def artefacts_part(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(Artefact).where(Artefact.episode_id == episode.id).order_by(Artefact.id))
    return [{"id": a.id, "kind": a.kind, "version": a.version, "data": a.data, "task": a.human_task_id,
             "created_by": email_of(a.created_by), "created_at": iso(a.created_at)} for a in rows]


def tasks_part(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id).order_by(HumanTask.id))
    return [{"id": t.id, "task_id": t.task_id, "name": t.name, "title": t.title, "stage": t.stage, "lane": t.lane,
             "status": t.status, "form": t.form, "ui_form": t.ui_form, "assigned_to": email_of(t.assigned_user),
             "due_at": iso(t.due_at), "draft": t.draft, "submitted_data": t.submitted_data,
             "created_at": iso(t.created_at), "completed_at": iso(t.completed_at),
             "completed_by": email_of(t.completed_by)} for t in rows]


def index_entry_part(entry: IndexEntry | None) -> dict | None:
    if entry is None:
        return None
    return {"family_name": entry.family_name, "date_of_birth": iso(entry.date_of_birth),
            "postcode": entry.postcode, "nhs_number": entry.nhs_number, "authority_id": entry.authority_id, "contact": entry.contact,
            "status": entry.status, "updated_at": iso(entry.updated_at)}

