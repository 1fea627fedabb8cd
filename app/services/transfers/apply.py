"""The import: close the old episode and open the same one in the receiving authority, in one
transaction, using up the release the file names. A refused import changes nothing but the audit trail."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import audit, membership, policy
from app.clock import now
from app.engine import transfer as engine_transfer
from app.engine.context import StepContext
from app.models import ApiClient, Artefact, Consent, ConsentExclusion, Episode, HumanTask, IndexEntry, TransferRequest, User
from app.models.episode import MOVED_OUTCOME
from handlers import index

from .checks import Transfer, check
from .common import MOVED_REASON, TransferRefused, acted_by, parse_date, parse_datetime, user_id_of
from .document import parse

if TYPE_CHECKING:
    from app.config import Config
    from app.db import Database
    from app.jobs.runtime import Runtime


def import_episode(runtime: Runtime, raw: str | bytes | dict, importer_id: int | None,
                   lead_professional_email: str, *, client_id: int | None = None) -> Episode:
    """Move the exported episode into the importer's authority (a person's, or with `client_id` a
    client system's); returns the new episode.

    Raises TransferRefused (after auditing the refusal in its own transaction) and changes nothing else."""
    document: dict | None = None
    acted = {"actor_id": importer_id}
    try:
        with runtime.db.session() as session:
            importer = session.get(ApiClient, client_id) if client_id is not None else session.get(User, importer_id)
            acted = acted_by(importer) if importer is not None else acted
            if not policy.may_receive_transfers(importer):
                raise TransferRefused("Only an administrator of the receiving local authority can import an episode")
            document = parse(raw, runtime.config)
            transfer = check(session, document, importer, lead_professional_email, lock=runtime.db.is_postgresql)
            episode, outbox = carry_over(session, transfer, runtime.config)
            session.flush()
            episode.authority  # loaded now: the caller reads the reference after the session ends
    except TransferRefused as refusal:
        _record_refusal(runtime.db, acted, refusal, document)
        raise
    except (IntegrityError, StaleDataError):
        refusal = TransferRefused("The episode or the child's record changed while it was being imported "
                                  "(someone else may have started or imported an episode for this child). "
                                  "Nothing was changed: try again")
        _record_refusal(runtime.db, acted, refusal, document)
        raise refusal from None
    engine_transfer.announce(runtime.engine, episode, outbox)
    return episode


def _record_refusal(db: Database, acted: dict, refusal: TransferRefused, document: dict | None) -> None:
    part = (document or {}).get("episode") or {}
    with db.session() as session:
        source_id = part.get("id") if isinstance(part.get("id"), int) else None
        known = source_id is not None and session.get(Episode, source_id) is not None
        named = (document or {}).get("transfer")
        audit.record(session, "episode_import_refused", **acted,
                     episode_id=source_id if known else None, reason=refusal.message,
                     problems=refusal.problems[:10] or None, source_reference=part.get("reference"),
                     release_id=named.get("release_id") if isinstance(named, dict) else None)


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
    membership.appoint_lead(session, episode, transfer.lead, by_id=user_id_of(transfer.importer))
    session.flush()
    session.refresh(episode, ["lead_professional"])
    workflow = transfer.document["workflow"]
    ready = engine_transfer.adopt_state(session, episode, workflow["state"], workflow["serializer_version"],
                                        renumbering)
    _hand_over_tasks(ready, transfer.lead)
    ctx = StepContext(session=session, episode=episode, config=config, actor_id=user_id_of(transfer.importer),
                      task_id="transfer")
    _repoint_index_entry(session, transfer, episode, ctx)
    _tell_lead_professional(ctx, transfer, episode)
    _use_release(session, transfer, episode)
    audit.record(session, "episode_imported", **acted_by(transfer.importer), episode_id=episode.id,
                 transferred_from=source.reference, from_authority=source.authority.code,
                 source_episode_id=source.id, lead_professional_id=transfer.lead.id,
                 checksum=transfer.document["checksum"]["value"], release_id=transfer.release.release_id)
    return episode, list(ctx.outbox)


def _use_release(session: Session, transfer: Transfer, episode: Episode) -> None:
    """A release moves an episode once: the row changes only if nobody used it in the meantime."""
    moment = now()
    used = session.execute(update(TransferRequest).where(
        TransferRequest.id == transfer.release.id, TransferRequest.status == "released",
        TransferRequest.expires_at > moment).values(
        status="used", used_at=moment, used_by_id=user_id_of(transfer.importer), new_episode_id=episode.id)
        .execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise StaleDataError("the release was used or expired while the episode was being imported")
def _close_source(session: Session, transfer: Transfer) -> None:
    source, moment = transfer.source, now()
    source.status, source.outcome = "closed", MOVED_OUTCOME
    source.closed_at, source.updated_at, source.next_timer_at = moment, moment, None
    source.last_error = source.error_task = None  # what failed moves with it; nothing here is run again
    for task in session.scalars(select(HumanTask).where(HumanTask.episode_id == source.id,
                                                        HumanTask.status == "ready")):
        task.status, task.completed_at = "cancelled", moment
    audit.record(session, "episode_transferred_out", **acted_by(transfer.importer), episode_id=source.id,
                 reason=MOVED_REASON, to_authority=transfer.receiving.code, release_id=transfer.release.release_id)


def _new_episode(session: Session, transfer: Transfer) -> Episode:
    part = transfer.document["episode"]
    episode = Episode(
        child_id=transfer.child.id, authority_id=transfer.receiving.id, process_version_id=transfer.version.id,
        sibling_group=part["sibling_group"], status=part["status"], stage=part["stage"], outcome=part["outcome"],
        child_protection=part["child_protection"], legal_hold=part["legal_hold"],
        consent_state=part["consent_state"], transferred_from=transfer.source.reference,
        last_error=part["last_error"], error_task=part["error_task"],
        # The originator stays who started the CAF: the history of the episode, not a member here.
        originator_id=transfer.source.originator_id, started_at=parse_datetime(part["started_at"]),
        updated_at=now(), submitted_at=parse_datetime(part["submitted_at"]))
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
            due_at=parse_datetime(task["due_at"]), draft=task["draft"], submitted_data=task["submitted_data"],
            created_at=parse_datetime(task["created_at"]), completed_at=parse_datetime(task["completed_at"]),
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
                       created_at=parse_datetime(artefact["created_at"]))
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
            method=statement["method"], given_on=parse_date(statement["given_on"]),
            recorded_by_id=_user(users, statement["recorded_by"]), recorded_at=parse_datetime(statement["recorded_at"]),
            withdrawn_at=parse_datetime(statement["withdrawn_at"]), withdrawn_by_name=statement["withdrawn_by_name"],
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

