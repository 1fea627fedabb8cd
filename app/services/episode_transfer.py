"""Episode export, transfer to another local authority, and subject-access export.

An export is one self-contained JSON document (docs/episode-export.md, checked by
docs/episode-export.schema.json). Importing it into the authority the child has moved to closes the
old episode with the reason "moved to another local authority" and opens the same episode there,
on the same process version and at the same point of it, in one transaction. A refused import
changes nothing but the audit trail.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import audit, membership, policy
from app.clock import now
from app.config import PROJECT_ROOT
from app.engine import transfer as engine_transfer
from app.engine.context import StepContext
from app.models import (OPEN_STATUSES, ORGANISATION_KINDS, Artefact, AuditEvent, Authority, Child, Consent,
                        ConsentExclusion, Episode, EpisodeMember, HumanTask, IndexEntry, Organisation, ProcessVersion,
                        SearchRequestChild, User)
from app.models.services import Contribution, ServiceRequest
from app.service_requests import OPEN_REQUEST_STATUSES
from handlers import index

if TYPE_CHECKING:
    from app.config import Config
    from app.db import Database
    from app.jobs.runtime import Runtime

FORMAT = "ecaf-episode-export"
SCHEMA_VERSION = 1
SCHEMA_PATH = PROJECT_ROOT / "docs" / "episode-export.schema.json"
MOVED_OUTCOME = "moved_to_another_authority"
MOVED_REASON = "moved to another local authority"
MAX_LISTED_PROBLEMS = 50
LEAD_FIELD = "lead_professional_email"


class TransferRefused(Exception):
    """An import that cannot go ahead; the message says why, `problems` lists every detail and
    `field` names what the person should change: the file, or the lead professional's email."""

    def __init__(self, message: str, problems: list[str] | None = None, field: str = "document"):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.field = field


# ---------------------------------------------------------------- small conversions

def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _email(user: User | None) -> str | None:
    return user.email if user is not None else None


def _authority(authority: Authority) -> dict:
    return {"id": authority.id, "code": authority.code, "name": authority.name}


def canonical(document: dict) -> bytes:
    """The bytes the checksum is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def checksum(document: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in document.items() if k != "checksum"})).hexdigest()


# ---------------------------------------------------------------- export

def export_episode(session: Session, episode: Episode, user: User) -> dict:
    """Everything eCAF holds about one episode, as one document. The caller checks the policy."""
    document = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "exported_at": now().isoformat(),
        "exported_by": {"email": user.email, "name": user.full_name, "role": user.role},
        **_content(session, episode),
    }
    document["checksum"] = {"algorithm": "sha256", "value": checksum(document)}
    audit.record(session, "episode_exported", actor_id=user.id, episode_id=episode.id,
                 reference=episode.reference, checksum=document["checksum"]["value"])
    return document


def _content(session: Session, episode: Episode) -> dict:
    """What the document says about the episode, as opposed to about the export."""
    return {
        "source_authority": _authority(episode.authority),
        "episode": _episode_part(episode),
        "child": _child_part(episode.child),
        "process": _process_part(episode.process_version),
        "workflow": {"serializer_version": episode.serializer_version,
                     "state": json.loads(episode.state) if episode.state else None},
        "members": _members(session, episode),
        "consents": _consents(session, episode),
        "artefacts": _artefacts(session, episode),
        "tasks": _tasks(session, episode),
        "index_entry": _index_entry(session.scalar(select(IndexEntry).where(IndexEntry.episode_id == episode.id))),
    }


def _episode_part(episode: Episode) -> dict:
    return {
        "id": episode.id, "reference": episode.reference, "status": episode.status, "stage": episode.stage,
        "outcome": episode.outcome, "consent_state": episode.consent_state,
        "child_protection": episode.child_protection, "legal_hold": episode.legal_hold,
        "sibling_group": episode.sibling_group, "transferred_from": episode.transferred_from,
        "lock_version": episode.lock_version, "originator": _email(episode.originator),
        "lead_professional": _email(episode.lead_professional),
        "started_at": _iso(episode.started_at), "updated_at": _iso(episode.updated_at),
        "submitted_at": _iso(episode.submitted_at), "closed_at": _iso(episode.closed_at),
        "deleted_at": _iso(episode.deleted_at), "next_timer_at": _iso(episode.next_timer_at),
        "last_error": episode.last_error, "error_task": episode.error_task,
    }


def _child_part(child: Child | None) -> dict | None:
    if child is None:
        return None
    return {
        "id": child.id, "given_names": child.given_names, "family_name": child.family_name,
        "date_of_birth": _iso(child.date_of_birth), "address": child.address, "postcode": child.postcode,
        "shielded": child.shielded, "created_at": _iso(child.created_at),
        "home_authority": _authority(child.home_authority),
    }


def _process_part(version: ProcessVersion) -> dict:
    return {"process_id": version.process_id, "version": version.version, "label": version.label,
            "name": version.name, "content_hash": version.content_hash}


def _members(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(EpisodeMember).where(EpisodeMember.episode_id == episode.id)
                           .order_by(EpisodeMember.added_at, EpisodeMember.id))
    return [{"email": m.user.email, "name": m.user.full_name, "role": m.role, "sections": m.sections,
             "added_at": _iso(m.added_at), "added_by": _email(m.added_by), "removed_at": _iso(m.removed_at),
             "removed_by": _email(m.removed_by), "removal_reason": m.removal_reason} for m in rows]


def _consents(session: Session, episode: Episode) -> list[dict]:
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
        "method": consent.method, "given_on": _iso(consent.given_on), "recorded_by": _email(consent.recorded_by),
        "recorded_at": _iso(consent.recorded_at), "withdrawn_at": _iso(consent.withdrawn_at),
        "withdrawn_by_name": consent.withdrawn_by_name, "withdrawal_recorded_by": _email(withdrawal_recorder),
        "withdrawal_reason": consent.withdrawal_reason,
        "exclusions": [{"organisation_kind": x.organisation_kind,
                        "organisation": {"id": x.organisation.id, "name": x.organisation.name,
                                         "kind": x.organisation.kind} if x.organisation else None}
                       for x in exclusions],
    }


def _artefacts(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(Artefact).where(Artefact.episode_id == episode.id).order_by(Artefact.id))
    return [{"id": a.id, "kind": a.kind, "version": a.version, "data": a.data, "task": a.human_task_id,
             "created_by": _email(a.created_by), "created_at": _iso(a.created_at)} for a in rows]


def _tasks(session: Session, episode: Episode) -> list[dict]:
    rows = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id).order_by(HumanTask.id))
    return [{"id": t.id, "task_id": t.task_id, "name": t.name, "title": t.title, "stage": t.stage, "lane": t.lane,
             "status": t.status, "form": t.form, "ui_form": t.ui_form, "assigned_to": _email(t.assigned_user),
             "due_at": _iso(t.due_at), "draft": t.draft, "submitted_data": t.submitted_data,
             "created_at": _iso(t.created_at), "completed_at": _iso(t.completed_at),
             "completed_by": _email(t.completed_by)} for t in rows]


def _index_entry(entry: IndexEntry | None) -> dict | None:
    if entry is None:
        return None
    return {"family_name": entry.family_name, "date_of_birth": _iso(entry.date_of_birth),
            "postcode": entry.postcode, "authority_id": entry.authority_id, "contact": entry.contact,
            "status": entry.status, "updated_at": _iso(entry.updated_at)}


# ---------------------------------------------------------------- reading an import file

@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_problems(document: Any) -> list[str]:
    """Every way the document breaks the export schema, each naming where."""
    validator = Draft202012Validator(schema(), format_checker=FormatChecker())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "the document"
        problems.append(f"{where}: {error.message[:300]}")
    return problems


def parse(raw: str | bytes | dict) -> dict:
    """The document from a file's bytes, checked for format, schema version, schema and checksum."""
    if isinstance(raw, (bytes, str)):
        try:
            # Exports are UTF-8; an editor may have added a byte-order mark.
            document = json.loads(raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw)
        except UnicodeDecodeError:
            raise TransferRefused("The file is not UTF-8 text: choose the .json file eCAF gave you when the "
                                  "episode was exported") from None
        except json.JSONDecodeError as exc:
            raise TransferRefused(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
                                  "Choose the .json file eCAF gave you when the episode was exported") from None
    else:
        document = raw
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferRefused("The file is not an eCAF episode export (its \"format\" is not "
                              f"\"{FORMAT}\")")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise TransferRefused(f"The file uses export schema version {document.get('schema_version')!r}; "
                              f"this eCAF reads schema version {SCHEMA_VERSION} only")
    problems = schema_problems(document)
    if problems:
        raise TransferRefused(f"The file does not match the export schema ({len(problems)} "
                              f"problem{'s' if len(problems) != 1 else ''})", problems[:MAX_LISTED_PROBLEMS])
    if document["checksum"]["value"] != checksum(document):
        raise TransferRefused("The file has been changed since it was exported (its checksum does not match). "
                              "Export the episode again")
    return document


# ---------------------------------------------------------------- checking an import

@dataclass
class Transfer:
    """A checked import: what moves, from where, to whom."""

    document: dict
    source: Episode
    child: Child
    version: ProcessVersion
    importer: User
    receiving: Authority
    lead: User
    users: dict[str, int]  # email -> user id, for everyone the document names
    organisations: dict[int, int]  # exported organisation id -> organisation id here


def _receiving_authority(session: Session, importer: User | None) -> Authority:
    authority_id = policy.authority_id_of(importer)
    if importer is None or not policy.is_administrator_of(importer, authority_id):
        raise TransferRefused("Only an administrator of the receiving local authority can import an episode")
    return session.get(Authority, authority_id)


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
    """An open episode for this child, or for another record of the same child, other than the source."""
    same_person = and_(func.lower(Child.given_names) == child.given_names.lower(),
                       func.lower(Child.family_name) == child.family_name.lower(),
                       Child.date_of_birth == child.date_of_birth) if child.date_of_birth else Child.id == child.id
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


def _check_source_open(source: Episode) -> None:
    if not source.is_open:
        raise TransferRefused(f"Episode {source.reference} is {source.status}: only an open episode can move "
                              "to another authority")
    if source.consent_state != "given":
        # Sending the CAF to another authority is sharing it, which needs the family's consent.
        raise TransferRefused(f"The family has not agreed to share episode {source.reference} (consent: "
                              f"{source.consent_state}), so it cannot be sent to another authority. Start a new "
                              "CAF there instead")


def _check_nothing_pending(session: Session, source: Episode) -> None:
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
    current = json.loads(json.dumps(_content(session, source)))
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
    if (lead is None or lead.role != "practitioner" or not policy.is_vetted(lead)
            or policy.authority_id_of(lead) != receiving.id):
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


def check(session: Session, document: dict, importer: User | None, lead_email: str, *,
          lock: bool = False) -> Transfer:
    """Every rule an import must pass, in the order a person would want to hear about them."""
    receiving = _receiving_authority(session, importer)
    source = _source_episode(session, document, lock)
    if source.authority_id == receiving.id:
        raise TransferRefused(f"Episode {source.reference} already belongs to {receiving.name}: import it into "
                              "the authority the child has moved to")
    _check_not_moved(session, source)
    child = _check_child(session, document, source)
    _check_source_open(source)
    _check_nothing_pending(session, source)
    version = _process_version(session, document)
    _check_unchanged(session, document, source)
    lead = _lead_professional(session, document, lead_email, receiving)
    return Transfer(document, source, child, version, importer, receiving, lead, _users(session, document),
                    _organisations(session, document))


# ---------------------------------------------------------------- the import

def import_episode(runtime: Runtime, raw: str | bytes | dict, importer_id: int,
                   lead_professional_email: str) -> Episode:
    """Move the exported episode into the importer's authority; returns the new episode.

    Raises TransferRefused (after auditing the refusal in its own transaction) and changes nothing else."""
    document: dict | None = None
    try:
        with runtime.db.session() as session:
            importer = session.get(User, importer_id)
            _receiving_authority(session, importer)
            document = parse(raw)
            transfer = check(session, document, importer, lead_professional_email, lock=runtime.db.is_postgresql)
            episode, outbox = carry_over(session, transfer, runtime.config)
            session.flush()
            episode.authority  # loaded now: the caller reads the reference after the session ends
    except TransferRefused as refusal:
        _record_refusal(runtime.db, importer_id, refusal, document)
        raise
    except (IntegrityError, StaleDataError):
        refusal = TransferRefused("The episode or the child's record changed while it was being imported "
                                  "(someone else may have started or imported an episode for this child). "
                                  "Nothing was changed: try again")
        _record_refusal(runtime.db, importer_id, refusal, document)
        raise refusal from None
    engine_transfer.announce(runtime.engine, episode, outbox)
    return episode


def _record_refusal(db: Database, importer_id: int | None, refusal: TransferRefused, document: dict | None) -> None:
    part = (document or {}).get("episode") or {}
    with db.session() as session:
        source_id = part.get("id") if isinstance(part.get("id"), int) else None
        known = source_id is not None and session.get(Episode, source_id) is not None
        audit.record(session, "episode_import_refused", actor_id=importer_id,
                     episode_id=source_id if known else None, reason=refusal.message,
                     problems=refusal.problems[:10] or None, source_reference=part.get("reference"))


def carry_over(session: Session, transfer: Transfer, config: Config) -> tuple[Episode, list[int]]:
    """Close the old episode and open it again in the receiving authority, in the caller's transaction."""
    source = transfer.source
    _close_source(session, transfer)
    # The old episode must be closed in the database before the new one is written: only one
    # episode per child may be open, and the index that says so is checked row by row.
    session.flush()
    transfer.child.home_authority_id = transfer.receiving.id
    episode = _new_episode(session, transfer)
    renumbering = engine_transfer.Renumbering(episode=(source.id, episode.id))
    renumbering.tasks = _copy_tasks(session, transfer, episode)
    renumbering.artefacts = _copy_artefacts(session, transfer, episode, renumbering.tasks)
    _copy_consents(session, transfer, episode, renumbering.artefacts)
    membership.appoint_lead(session, episode, transfer.lead, by_id=transfer.importer.id)
    session.flush()
    session.refresh(episode, ["lead_professional"])
    workflow = transfer.document["workflow"]
    ready = engine_transfer.adopt_state(session, episode, workflow["state"], workflow["serializer_version"],
                                        renumbering)
    _hand_over_tasks(ready, transfer.lead)
    ctx = StepContext(session=session, episode=episode, config=config, actor_id=transfer.importer.id,
                      task_id="transfer")
    _repoint_index_entry(session, transfer, episode, ctx)
    _tell_lead_professional(ctx, transfer, episode)
    audit.record(session, "episode_imported", actor_id=transfer.importer.id, episode_id=episode.id,
                 transferred_from=source.reference, from_authority=source.authority.code,
                 source_episode_id=source.id, lead_professional_id=transfer.lead.id,
                 checksum=transfer.document["checksum"]["value"])
    return episode, [m.id for m in ctx.outbox]


def _close_source(session: Session, transfer: Transfer) -> None:
    source, moment = transfer.source, now()
    source.status, source.outcome = "closed", MOVED_OUTCOME
    source.closed_at, source.updated_at, source.next_timer_at = moment, moment, None
    for task in session.scalars(select(HumanTask).where(HumanTask.episode_id == source.id,
                                                        HumanTask.status == "ready")):
        task.status, task.completed_at = "cancelled", moment
    audit.record(session, "episode_transferred_out", actor_id=transfer.importer.id, episode_id=source.id,
                 reason=MOVED_REASON, to_authority=transfer.receiving.code)


def _new_episode(session: Session, transfer: Transfer) -> Episode:
    part = transfer.document["episode"]
    episode = Episode(
        child_id=transfer.child.id, authority_id=transfer.receiving.id, process_version_id=transfer.version.id,
        sibling_group=part["sibling_group"], status=part["status"], stage=part["stage"], outcome=part["outcome"],
        child_protection=part["child_protection"], legal_hold=part["legal_hold"],
        consent_state=part["consent_state"], transferred_from=transfer.source.reference,
        last_error=part["last_error"], error_task=part["error_task"],
        # The originator stays who started the CAF: the history of the episode, not a member here.
        originator_id=transfer.source.originator_id, started_at=_datetime(part["started_at"]),
        updated_at=now(), submitted_at=_datetime(part["submitted_at"]))
    session.add(episode)
    session.flush()
    return episode


def _copy_tasks(session: Session, transfer: Transfer, episode: Episode) -> dict[int, int]:
    users, ids = transfer.users, {}
    for task in transfer.document["tasks"]:
        row = HumanTask(
            episode_id=episode.id, task_id=task["task_id"], name=task["name"], title=task["title"],
            stage=task["stage"], lane=task["lane"], form=task["form"], ui_form=task["ui_form"],
            status=task["status"], assigned_user_id=_user(users, task["assigned_to"]),
            due_at=_datetime(task["due_at"]), draft=task["draft"], submitted_data=task["submitted_data"],
            created_at=_datetime(task["created_at"]), completed_at=_datetime(task["completed_at"]),
            completed_by_id=_user(users, task["completed_by"]))
        session.add(row)
        session.flush()
        ids[task["id"]] = row.id
    return ids


def _copy_artefacts(session: Session, transfer: Transfer, episode: Episode, tasks: dict[int, int]) -> dict[int, int]:
    ids = {}
    for artefact in transfer.document["artefacts"]:
        row = Artefact(episode_id=episode.id, kind=artefact["kind"], version=artefact["version"],
                       data=artefact["data"], human_task_id=tasks.get(artefact["task"]),
                       created_by_id=_user(transfer.users, artefact["created_by"]),
                       created_at=_datetime(artefact["created_at"]))
        session.add(row)
        session.flush()
        ids[artefact["id"]] = row.id
    return ids


def _copy_consents(session: Session, transfer: Transfer, episode: Episode, artefacts: dict[int, int]) -> None:
    users = transfer.users
    for statement in transfer.document["consents"]:
        row = Consent(
            episode_id=episode.id, artefact_id=artefacts.get(statement["artefact_id"]),
            subject=statement["subject"], given_by_name=statement["given_by_name"],
            relationship_to_child=statement["relationship_to_child"],
            has_parental_responsibility=statement["has_parental_responsibility"],
            competence_assessed=statement["competence_assessed"], to_storage=statement["to_storage"],
            to_sharing=statement["to_sharing"], permitted=statement["permitted"], excluded=statement["excluded"],
            method=statement["method"], given_on=_date(statement["given_on"]),
            recorded_by_id=_user(users, statement["recorded_by"]), recorded_at=_datetime(statement["recorded_at"]),
            withdrawn_at=_datetime(statement["withdrawn_at"]), withdrawn_by_name=statement["withdrawn_by_name"],
            withdrawal_recorded_by_id=_user(users, statement["withdrawal_recorded_by"]),
            withdrawal_reason=statement["withdrawal_reason"])
        session.add(row)
        session.flush()
        for exclusion in statement["exclusions"]:
            named = exclusion["organisation"]
            session.add(ConsentExclusion(
                consent_id=row.id, episode_id=episode.id, organisation_kind=exclusion["organisation_kind"],
                organisation_id=transfer.organisations[named["id"]] if named else None))
    session.flush()


def _user(users: dict[str, int], email: str | None) -> int | None:
    return users.get(email.lower()) if email else None


def _hand_over_tasks(ready: list[HumanTask], lead: User) -> None:
    """Tasks for one person of the episode go to the new lead professional; tasks for a role are
    left for someone with that role in the receiving authority to claim."""
    for task in ready:
        task.assigned_user_id = lead.id if engine_transfer.is_person_lane(task.lane) else None


def _repoint_index_entry(session: Session, transfer: Transfer, episode: Episode, ctx: StepContext) -> None:
    """The index entry follows the episode: same entry, new episode, authority and contact."""
    entry = session.scalar(select(IndexEntry).where(IndexEntry.episode_id == transfer.source.id))
    if entry is None:
        return
    entry.episode_id = episode.id
    session.flush()
    index.follow_episode(ctx, "episode_transferred")


def _tell_lead_professional(ctx: StepContext, transfer: Transfer, episode: Episode) -> None:
    ctx.notify("lead_professional_appointed", transfer.lead.email,
               f"eCAF {episode.reference}: you are the lead professional",
               f"Episode {transfer.source.reference} has moved to {transfer.receiving.name} as episode "
               f"{episode.reference}. You have been appointed its lead professional.")


# ---------------------------------------------------------------- subject access

def may_see_child(session: Session, user: User | None, child: Child) -> bool:
    """Administrators of the child's home authority, or of an authority holding one of its episodes."""
    authority_id = policy.authority_id_of(user)
    if not policy.is_administrator_of(user, authority_id):
        return False
    if child.home_authority_id == authority_id:
        return True
    return session.scalar(select(Episode.id).where(Episode.child_id == child.id,
                                                   Episode.authority_id == authority_id).limit(1)) is not None


def subject_access(session: Session, child: Child, user: User) -> dict:
    """Everything eCAF holds about one child. The caller checks `may_see_child`."""
    if not may_see_child(session, user, child):
        raise PermissionError(f"user {user.id} may not see child {child.id}")
    episodes = session.scalars(select(Episode).where(Episode.child_id == child.id).order_by(Episode.id)).all()
    episode_ids = [e.id for e in episodes]
    document = {
        "format": "ecaf-subject-access",
        "generated_at": now().isoformat(),
        "generated_by": {"email": user.email, "name": user.full_name,
                         "authority": _authority(user.organisation.authority)},
        "child": _child_part(child),
        "episodes": [_episode_held(session, e) for e in episodes],
        "index_entries": [_index_entry(e) | {"episode_id": e.episode_id} for e in session.scalars(
            select(IndexEntry).where(or_(IndexEntry.child_id == child.id, IndexEntry.episode_id.in_(episode_ids)))
            .order_by(IndexEntry.id))],
        "search_requests": _search_request_matches(session, child),
        "audit": _audit_rows(session, child, episode_ids),
    }
    for episode_id in episode_ids or [None]:
        audit.record(session, "subject_access_export", actor_id=user.id, episode_id=episode_id, child_id=child.id)
    return document


def _episode_held(session: Session, episode: Episode) -> dict:
    if episode.status == "deleted":
        # Deletion removed the content for good; only the stub remains.
        return {"id": episode.id, "reference": episode.reference, "status": episode.status,
                "deleted_at": _iso(episode.deleted_at), "authority": _authority(episode.authority)}
    return {**_episode_part(episode), "authority": _authority(episode.authority),
            "process": _process_part(episode.process_version), "members": _members(session, episode),
            "consents": _consents(session, episode), "artefacts": _artefacts(session, episode),
            "tasks": _tasks(session, episode)}


def _search_request_matches(session: Session, child: Child) -> list[dict]:
    rows = session.scalars(select(SearchRequestChild).where(SearchRequestChild.matched_child_id == child.id)
                           .order_by(SearchRequestChild.id))
    return [{"request": r.request.reference, "requested_by": _email(r.request.requester),
             "requested_at": _iso(r.request.created_at), "reason": r.request.reason, "status": r.request.status,
             "answer": r.request.answer, "answered_at": _iso(r.request.answered_at),
             "as_asked": {"given_names": r.given_names, "family_name": r.family_name,
                          "date_of_birth": _iso(r.date_of_birth), "postcode": r.postcode, "notes": r.notes}}
            for r in rows]


def _audit_rows(session: Session, child: Child, episode_ids: list[int]) -> list[dict]:
    about_child = AuditEvent.detail["child_id"].as_integer() == child.id
    about_episodes = AuditEvent.episode_id.in_(episode_ids) if episode_ids else None
    where = or_(about_child, about_episodes) if about_episodes is not None else about_child
    rows = session.execute(select(AuditEvent, User.email).outerjoin(User, User.id == AuditEvent.actor_id)
                           .where(where).order_by(AuditEvent.at, AuditEvent.id)).all()
    return [{"at": _iso(event.at), "action": event.action, "actor": email, "episode_id": event.episode_id,
             "detail": event.detail} for event, email in rows]
