"""Recording a decision under the duty to share, and its approval by a second person.

A decision to share starts its own approval process (processes/duty_to_share.bpmn) in the same
transaction that records it; a decision not to share is recorded as it is, with its reason. Each
use case here opens the transaction, asks the policy inside it and records what it did or refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from app import attachments, audit, policy
from app.clock import as_utc, now
from app.engine.errors import FormInvalid
from app.engine.library import MAIN_PROCESS, Bundle, current_version, deploy
from app.models import Artefact, Contribution, Episode, Organisation, ShareDecision, User
from app.services.episode_record import ARTEFACT_TITLES, PRINTABLE

PROCESS = "duty_to_share"
APPROVAL_TASK = "approve_share"
MAX_DAYS = 90  # the longest a share may last before it is decided again
TEXT_LIMIT = 5000


class NotFound(LookupError):
    """Nothing the user may see (the page answers 404)."""


@dataclass
class Outcome:
    """What was typed and what is wrong with it; no errors means it was done (`decision` the row's id)."""

    typed: dict
    errors: dict = field(default_factory=dict)
    decision: int | None = None
    outbox: list[int] = field(default_factory=list)


def shareable_records(session: Session, episode: Episode) -> list[tuple[str, str]]:
    """(key, label) of each record of the episode a decision can name: the latest version of each
    kind of record, each attachment and each contribution."""
    kinds = session.scalars(select(Artefact.kind).distinct().where(Artefact.episode_id == episode.id,
                                                                    Artefact.kind.in_(PRINTABLE))).all()
    found = [(f"artefact:{kind}", ARTEFACT_TITLES[kind]) for kind in PRINTABLE if kind in kinds]
    found += [(f"attachment:{a.id}", f"Attachment: {a.filename}") for a in attachments.for_episode(session, episode)]
    found += [(f"contribution:{c.id}", f"Contribution from {c.contributor.full_name}")
              for c in session.scalars(select(Contribution).where(Contribution.episode_id == episode.id,
                                                                  Contribution.content.is_not(None))
                                       .order_by(Contribution.id))]
    return found


def organisations(session: Session) -> list[Organisation]:
    return session.scalars(select(Organisation).order_by(Organisation.name)).all()


def _episode(session: Session, user: User, episode_id: int, lock: bool) -> Episode:
    if lock and session.bind.dialect.name == "postgresql":
        session.execute(select(Episode.id).where(Episode.id == episode_id).with_for_update())
    episode = policy.visible_episode(session, user, episode_id)
    if episode is None or not policy.may_record_share_decision(session, user, episode):
        raise NotFound(episode_id)
    return episode


def ask_page(runtime, episode_id: int, user: User) -> tuple[Episode, list, list]:
    with runtime.db.session() as session:
        episode = _episode(session, user, episode_id, lock=False)
        episode.authority  # noqa: B018 - the page names the episode by its reference
        return episode, shareable_records(session, episode), organisations(session)


def _typed(form: dict) -> dict:
    def text(name: str) -> str:
        return (form.get(name) or "").strip()[:TEXT_LIMIT]

    return {"decision": text("decision"), "recipient_kind": text("recipient_kind"),
            "recipient_email": text("recipient_email")[:320], "recipient_organisation": text("recipient_organisation"),
            "records": [r for r in form.get("records") or [] if r], "purpose": text("purpose"),
            "detriment_reasoning": text("detriment_reasoning"), "not_sharing_reason": text("not_sharing_reason"),
            "tell_family": text("tell_family"), "family_email": text("family_email")[:320],
            "not_telling_reason": text("not_telling_reason"), "expires_at": form.get("expires_at")}


def _recipient(session: Session, episode: Episode, typed: dict, errors: dict):
    """(user, organisation): whom the decision is about, with an error for anything else."""
    if typed["recipient_kind"] == "person":
        if not typed["recipient_email"]:
            errors["recipient_email"] = "Enter the email address of the practitioner to share with"
            return None, None
        user = session.scalar(select(User).options(joinedload(User.organisation))
                              .where(func.lower(User.email) == typed["recipient_email"].lower()))
        if (refusal := policy.recipient_refusal(session, episode, user)) is not None:
            errors["recipient_email"] = refusal
            return None, None
        return user, None
    if typed["recipient_kind"] == "organisation":
        organisation = session.get(Organisation, int(typed["recipient_organisation"])) \
            if typed["recipient_organisation"].isdigit() else None
        if organisation is None:
            errors["recipient_organisation"] = "Select an organisation that eCAF knows"
        return None, organisation
    errors["recipient_kind"] = "Select whether you are sharing with a practitioner or with an organisation"
    return None, None


def _check_share(session: Session, episode: Episode, typed: dict, errors: dict) -> None:
    known = {key for key, _ in shareable_records(session, episode)}
    if not typed["records"]:
        errors["records"] = "Select the records to share"
    elif not set(typed["records"]) <= known:
        errors["records"] = "Select only records this CAF has"
    if not typed["purpose"]:
        errors["purpose"] = "Enter the purpose of sharing"
    if not typed["detriment_reasoning"]:
        errors["detriment_reasoning"] = "Explain why sharing is not more detrimental to the child than not sharing"
    expires_at = typed["expires_at"]
    if isinstance(expires_at, datetime) and "expires_at" not in errors:
        if as_utc(expires_at) <= now():
            errors["expires_at"] = "The date the access ends must be in the future"
        elif as_utc(expires_at) > now() + timedelta(days=MAX_DAYS + 1):
            errors["expires_at"] = f"The access can last at most {MAX_DAYS} days: record a new decision after that"
    elif "expires_at" not in errors:
        errors["expires_at"] = "Enter the date the access ends"
    if typed["tell_family"] == "no":
        if not typed["not_telling_reason"]:
            errors["not_telling_reason"] = "Explain why telling the family would be detrimental to the child"
    elif typed["tell_family"] != "yes":
        errors["tell_family"] = "Select whether the family will be told"
    elif typed["family_email"] and "@" not in typed["family_email"]:
        errors["family_email"] = "Enter an email address in the correct format, like name@example.com"


def record(runtime, episode_id: int, user: User, form: dict, errors: dict | None = None) -> Outcome:
    """Record a decision to share (which starts its approval) or not to share. `errors`: what the
    page already found wrong while reading the form (the date)."""
    outcome = Outcome(_typed(form), dict(errors or {}))
    typed, errors = outcome.typed, outcome.errors
    with runtime.db.session() as session:
        episode = _episode(session, user, episode_id, lock=True)
        if typed["decision"] not in ("share", "not_share"):
            errors["decision"] = "Select whether you decided to share or not to share"
        recipient, organisation = _recipient(session, episode, typed, errors)
        if typed["decision"] == "not_share":
            errors.pop("expires_at", None)
            if not typed["not_sharing_reason"]:
                errors["not_sharing_reason"] = "Explain why you decided not to share"
        elif typed["decision"] == "share":
            _check_share(session, episode, typed, errors)
        if errors:
            return outcome
        sharing = typed["decision"] == "share"
        row = ShareDecision(
            episode_id=episode.id, asked_by_id=user.id, asked_at=now(),
            recipient_user_id=recipient.id if recipient else None,
            recipient_organisation_id=organisation.id if organisation else None,
            records=typed["records"] if sharing else [], consent_position=episode.consent_state,
            purpose=typed["purpose"] or None, detriment_reasoning=typed["detriment_reasoning"] or None,
            not_sharing_reason=None if sharing else typed["not_sharing_reason"],
            tell_family=sharing and typed["tell_family"] == "yes", family_email=typed["family_email"] or None,
            not_telling_reason=typed["not_telling_reason"] or None,
            expires_at=typed["expires_at"] if sharing else None,
            status="awaiting_approval" if sharing else "not_shared")
        session.add(row)
        session.flush()
        session.refresh(row)
        if sharing:
            outcome.outbox = runtime.engine.own_processes.start(session, row, episode, _version(session), user.id,
                                                                share={"id": row.id})
        else:
            audit.record(session, "share_not_shared", actor_id=user.id, episode_id=episode.id, decision=row.id,
                         recipient=row.recipient_name, reason=row.not_sharing_reason)
        outcome.decision = row.id
    _deliver(runtime, outcome.outbox)
    return outcome


def _version(session: Session):
    """The duty-to-share process shipped with the current episode model (deployed from its files the
    first time it is asked for: both come from the same processes/ folder)."""
    main = current_version(session, MAIN_PROCESS)
    bundle = Bundle(dict(main.bpmn_files), dict(main.forms))
    try:
        with session.begin_nested():
            version, _ = deploy(session, bundle, process_id=PROCESS, deployed_by_id=main.deployed_by_id,
                                change_note=f"shipped with {main.label}")
    except IntegrityError:  # another first share deployed it at the same moment: theirs is the same
        version, _ = deploy(session, bundle, process_id=PROCESS)
    return version


def _deliver(runtime, outbox: list[int]) -> None:
    """After the commit: the messages go for delivery (the delivery loop sends any a lost job missed)."""
    dispatcher = runtime.engine.dispatcher
    if outbox and dispatcher is not None:
        dispatcher.messages_queued(outbox)


def for_episode(runtime, episode_id: int, user: User) -> tuple[Episode, list[ShareDecision]]:
    with runtime.db.session() as session:
        episode = _episode(session, user, episode_id, lock=False)
        episode.authority  # noqa: B018 - the page names the episode by its reference
        rows = session.scalars(select(ShareDecision).where(ShareDecision.episode_id == episode.id)
                               .options(joinedload(ShareDecision.recipient_user),
                                        joinedload(ShareDecision.recipient_organisation),
                                        joinedload(ShareDecision.asked_by), joinedload(ShareDecision.decided_by))
                               .order_by(ShareDecision.asked_at.desc(), ShareDecision.id.desc())).unique().all()
        return episode, rows


def _decision(session: Session, user: User, decision_id: int, lock: bool = False) -> ShareDecision | None:
    """The decision, to an administrator of its episode's authority; None to anyone else (recorded,
    to be answered with NotFound once the transaction has kept the record)."""
    query = select(ShareDecision).where(ShareDecision.id == decision_id)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None or not policy.is_administrator_of(user, row.episode.authority_id) \
            or row.episode.status == "deleted":
        if row is not None:
            audit.record(session, "access_denied", actor_id=user.id, episode_id=row.episode_id,
                         asked_for=f"decision to share {row.id}")
        return None
    return row


def approval_page(runtime, decision_id: int, user: User) -> tuple[ShareDecision, dict, str | None]:
    """The decision, its records' titles and why `user` may not decide on it (None: they may)."""
    with runtime.db.session() as session:
        row = _decision(session, user, decision_id)
        if row is None:
            session.commit()
            raise NotFound(decision_id)
        titles = dict(shareable_records(session, row.episode))
        refusal = policy.approval_refusal(user, row)
        for relation in ("asked_by", "recipient_user", "recipient_organisation", "decided_by"):
            getattr(row, relation)
        row.episode.authority  # noqa: B018 - the page names the episode by its reference
        return row, titles, refusal


def decide(runtime, decision_id: int, user: User, form: dict) -> Outcome:
    """Approve or reject a decision to share: an administrator of the authority who did not ask."""
    typed = {"decision": (form.get("decision") or "").strip(), "reason": (form.get("reason") or "").strip()}
    outcome = Outcome({k: v[:TEXT_LIMIT] for k, v in typed.items()}, decision=decision_id)
    with runtime.db.session() as session:
        row = _decision(session, user, decision_id, lock=True)
        if row is None:
            session.commit()  # the refusal stays recorded
            raise NotFound(decision_id)
        if (refusal := policy.approval_refusal(user, row)) is not None:
            outcome.errors["decision"] = refusal
            audit.record(session, "share_approval_refused", actor_id=user.id, episode_id=row.episode_id,
                         decision=row.id, reason=refusal)
            return outcome
        if outcome.typed["decision"] == "approve" and as_utc(row.expires_at) <= now():
            outcome.errors["decision"] = ("The date this access was to end has passed: reject it, and record a new "
                                          "decision if sharing is still needed")
            return outcome
        submitted = {k: v for k, v in outcome.typed.items() if v}
        processes = runtime.engine.own_processes
        try:
            with session.begin_nested():
                row.decided_by_id, row.decided_at, row.decision_note = user.id, now(), submitted.get("reason")
                outcome.outbox = processes.complete(session, row, row.episode, APPROVAL_TASK, submitted, user.id)
        except FormInvalid as invalid:
            outcome.errors.update({e["field"] or "decision": e["message"] for e in invalid.errors})
            return outcome
    _deliver(runtime, outcome.outbox)
    return outcome


def awaiting_approval(runtime, user: User) -> list[ShareDecision]:
    """Decisions of the administrator's authority waiting for a second person."""
    with runtime.db.session() as session:
        rows = session.scalars(select(ShareDecision).join(Episode, Episode.id == ShareDecision.episode_id)
                               .where(ShareDecision.status == "awaiting_approval",
                                      policy.authority_clause(user, Episode.authority_id),
                                      Episode.status != "deleted")
                               .options(joinedload(ShareDecision.episode).joinedload(Episode.authority),
                                        joinedload(ShareDecision.asked_by),
                                        joinedload(ShareDecision.recipient_user),
                                        joinedload(ShareDecision.recipient_organisation))
                               .order_by(ShareDecision.asked_at)).unique().all()
        return rows
