"""Checking an import before anything changes: the release the file names, then the episode, the
child, the process and the new lead professional. Every rule raises TransferRefused with its reason."""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app import nhs_number, policy
from app.clock import now
from app.engine import transfer as engine_transfer
from app.models import (OPEN_STATUSES, ApiClient, ORGANISATION_KINDS, Authority, Child, Episode, Organisation, ProcessVersion,
                        TransferRequest, User)
from app.models.episode import MOVED_OUTCOME
from app.models.services import Contribution, ServiceRequest
from app.service_requests import OPEN_REQUEST_STATUSES
from app.uk_time import date_time

from .common import LEAD_FIELD, TransferRefused
from .export import content


@dataclass
class Transfer:
    """A checked import: what moves, from where, to whom."""

    document: dict
    source: Episode
    child: Child
    version: ProcessVersion
    importer: User | ApiClient
    receiving: Authority
    lead: User
    users: dict[str, int]  # email -> user id, for everyone the document names
    organisations: dict[int, int]  # exported organisation id -> organisation id here
    release: TransferRequest


def _receiving_authority(session: Session, importer: User | ApiClient | None) -> Authority:
    if not policy.may_receive_transfers(importer):
        raise TransferRefused("Only an administrator of the receiving local authority can import an episode")
    return session.get(Authority, policy.acting_authority_id(importer))


def _release(session: Session, document: dict, receiving: Authority, lock: bool) -> TransferRequest:
    """The release the (signed) file names: released, to this authority, not used, not expired."""
    named = document["transfer"]
    query = select(TransferRequest).where(TransferRequest.release_id == named["release_id"])
    release = session.scalar(query.with_for_update() if lock else query)
    if (release is None or release.status not in ("released", "used")
            or release.episode_id != document["episode"]["id"]):
        raise TransferRefused("The file names no release of this episode: the authority the child has left must "
                              "release it to you before it can move")
    if not policy.is_released_to(release, receiving.id):
        raise TransferRefused(f"The episode was released to {release.to_authority.name}, not to {receiving.name}: "
                              "only that authority can import it")
    if release.status == "used":
        raise TransferRefused(f"This release has already been used (the file was imported on "
                              f"{date_time(release.used_at)}): a release moves an episode once")
    if not release.live(now()):
        raise TransferRefused(f"The release expired on {date_time(release.expires_at)}: ask the "
                              "authority the child has left to release the episode again")
    return release


def _source_episode(session: Session, document: dict, lock: bool) -> Episode:
    part = document["episode"]
    query = select(Episode).where(Episode.id == part["id"])
    source = session.scalar(query.with_for_update() if lock else query)
    if (source is None or source.status == "deleted" or source.reference != part["reference"]
            or source.authority_id != document["source_authority"]["id"]):
        raise TransferRefused(f"The episode {part['reference']} named in the file does not exist in eCAF "
                              "(it may have been deleted)")
    return source


def _other_open_episode(session: Session, source: Episode, child: Child) -> Episode | None:
    """An open episode for this child, or for another record of the same child, other than the source.
    A record holding another NHS number is another child."""
    same_person = and_(func.lower(Child.given_names) == child.given_names.lower(),
                       func.lower(Child.family_name) == child.family_name.lower(),
                       Child.date_of_birth == child.date_of_birth) if child.date_of_birth else Child.id == child.id
    if child.nhs_number:
        same_person = or_(Child.nhs_number == child.nhs_number,
                          and_(same_person, nhs_number.not_another(Child.nhs_number, child.nhs_number)))
    return session.scalar(select(Episode).join(Child, Episode.child_id == Child.id).where(
        Episode.status.in_(OPEN_STATUSES), Episode.id != source.id,
        or_(Episode.child_id == child.id, same_person)).order_by(Episode.id).limit(1))


def _check_child(session: Session, document: dict, source: Episode) -> Child:
    child = source.child
    if child is None or document["child"] is None or document["child"]["id"] != child.id:
        raise TransferRefused(f"The child in the file is not the child of episode {source.reference}")
    other = _other_open_episode(session, source, child)
    if other is not None:
        raise TransferRefused(
            f"{child.display_name} already has an open episode ({other.reference}, {other.authority.name}). "
            "A child can have only one open episode: contact that episode's lead professional")
    return child


def _check_not_moved(session: Session, source: Episode) -> None:
    if source.outcome != MOVED_OUTCOME:
        return
    moved = session.scalar(select(Episode).where(Episode.transferred_from == source.reference)
                           .order_by(Episode.id.desc()).limit(1))
    where = f" to {moved.authority.name} as episode {moved.reference}" if moved else ""
    raise TransferRefused(f"Episode {source.reference} has already moved{where}: this file has been imported before")


def check_source_open(source: Episode) -> None:
    if not source.is_open:
        raise TransferRefused(f"Episode {source.reference} is {source.status}: only an open episode can move "
                              "to another authority")
    if source.consent_state != "given":
        # Sending the CAF to another authority is sharing it, which needs the family's consent.
        raise TransferRefused(f"The family has not agreed to share episode {source.reference} (consent: "
                              f"{source.consent_state}), so it cannot be sent to another authority. Start a new "
                              "CAF there instead")


def check_nothing_pending(session: Session, source: Episode) -> None:
    """Requests to services and contributions belong to the old authority's teams and people:
    they are answered (or the episode's lead professional lets them lapse) before it moves."""
    requests = session.scalar(select(func.count()).select_from(ServiceRequest).where(
        ServiceRequest.episode_id == source.id, ServiceRequest.status.in_(OPEN_REQUEST_STATUSES)))
    contributions = session.scalar(select(func.count()).select_from(Contribution).where(
        Contribution.episode_id == source.id, Contribution.status.in_(("invited", "submitted", "returned"))))
    if requests or contributions:
        waiting = " and ".join(part for part in (
            f"{requests} request{'s' if requests != 1 else ''} to a service" if requests else "",
            f"{contributions} contribution{'s' if contributions != 1 else ''}" if contributions else "") if part)
        raise TransferRefused(f"Episode {source.reference} still has {waiting} waiting for an answer in "
                              f"{source.authority.name}. They must be answered before the episode can move")


def _check_unchanged(session: Session, document: dict, source: Episode) -> None:
    """The file must say what eCAF holds now: a draft saved or a record added after the export
    would otherwise be lost in the move."""
    current = json.loads(json.dumps(content(session, source)))
    changed = [part.replace("_", " ") for part, value in current.items() if document[part] != value]
    if changed:
        raise TransferRefused(f"Episode {source.reference} has changed since this file was exported at "
                              f"{document['exported_at']} (changed: {', '.join(changed)}). Export it again so "
                              "that nothing is lost")


def _process_version(session: Session, document: dict) -> ProcessVersion:
    process = document["process"]
    version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process["process_id"],
                                                          ProcessVersion.content_hash == process["content_hash"]))
    if version is None:
        raise TransferRefused(f"The episode runs on process version {process['label']} (content hash "
                              f"{process['content_hash'][:12]}…), which is not deployed here. A process owner must "
                              "deploy that version before the episode can be imported")
    workflow = document["workflow"]
    if workflow["state"] is None:
        raise TransferRefused("The file holds no workflow state, so the episode cannot continue here")
    problem = engine_transfer.state_problem(version, workflow["state"], workflow["serializer_version"])
    if problem:
        raise TransferRefused(f"The episode cannot continue here: {problem}")
    return version


def _lead_professional(session: Session, document: dict, email: str, receiving: Authority) -> User:
    email = (email or "").strip()
    if not email:
        raise TransferRefused("Enter the email address of the lead professional in your authority",
                              field=LEAD_FIELD)
    lead = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if not policy.may_lead_moved_episode(lead, receiving.id):
        raise TransferRefused(f"There is no active, vetted practitioner with the email address {email} in "
                              f"{receiving.name}", field=LEAD_FIELD)
    excluded = _excluded_by_family(document, lead)
    if excluded:
        raise TransferRefused(f"The family excluded {excluded} from seeing this CAF, so {lead.full_name} cannot "
                              "be its lead professional: choose a practitioner from another organisation",
                              field=LEAD_FIELD)
    return lead


def _excluded_by_family(document: dict, user: User) -> str | None:
    """How the current consent excludes this person's organisation, if it does."""
    organisation = user.organisation
    for consent in document["consents"]:
        for exclusion in consent["exclusions"]:
            named = exclusion["organisation"]
            if exclusion["organisation_kind"] and exclusion["organisation_kind"] == organisation.kind:
                return ORGANISATION_KINDS.get(organisation.kind, organisation.kind).lower()
            if named and named["id"] == organisation.id:
                return organisation.name
    return None


def _named_emails(document: dict) -> set[str]:
    part = document["episode"]
    emails = {part["originator"], part["lead_professional"]}
    for member in document["members"]:
        emails |= {member["email"], member["added_by"], member["removed_by"]}
    for consent in document["consents"]:
        emails |= {consent["recorded_by"], consent["withdrawal_recorded_by"]}
    for artefact in document["artefacts"]:
        emails.add(artefact["created_by"])
    for task in document["tasks"]:
        emails |= {task["assigned_to"], task["completed_by"]}
    return {e for e in emails if e}


def _users(session: Session, document: dict) -> dict[str, int]:
    emails = sorted(_named_emails(document))
    rows = session.execute(select(func.lower(User.email), User.id).where(
        func.lower(User.email).in_([e.lower() for e in emails]))).all() if emails else []
    return dict(rows)


def _organisations(session: Session, document: dict) -> dict[int, int]:
    """Every organisation the family excluded must be known here, or the exclusion would be lost."""
    found, missing = {}, []
    for consent in document["consents"]:
        for exclusion in consent["exclusions"]:
            named = exclusion["organisation"]
            if named is None:
                continue
            organisation = session.get(Organisation, named["id"])
            if organisation is None or organisation.name != named["name"]:
                missing.append(named["name"])
            else:
                found[named["id"]] = organisation.id
    if missing:
        raise TransferRefused("The family excluded organisations eCAF does not know, so their exclusion could not "
                              "be kept: " + ", ".join(sorted(set(missing))))
    return found


def check(session: Session, document: dict, importer: User | ApiClient | None, lead_email: str, *,
          lock: bool = False) -> Transfer:
    """Every rule an import must pass, in the order a person would want to hear about them."""
    receiving = _receiving_authority(session, importer)
    release = _release(session, document, receiving, lock)
    source = _source_episode(session, document, lock)
    if source.authority_id == receiving.id:
        raise TransferRefused(f"Episode {source.reference} already belongs to {receiving.name}: import it into "
                              "the authority the child has moved to")
    _check_not_moved(session, source)
    child = _check_child(session, document, source)
    if not policy.may_import_for(importer, source):
        raise TransferRefused(f"{child.display_name} is shielded: a person in your authority imports this file, "
                              "not a client system")
    check_source_open(source)
    check_nothing_pending(session, source)
    version = _process_version(session, document)
    _check_unchanged(session, document, source)
    lead = _lead_professional(session, document, lead_email, receiving)
    return Transfer(document, source, child, version, importer, receiving, lead, _users(session, document),
                    _organisations(session, document), release)
