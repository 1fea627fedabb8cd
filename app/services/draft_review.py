"""Two people for every deploy: a process owner submits a draft with a change note, a different
process owner reviews what changed and approves or rejects it, and only an approved draft deploys.

What is approved is the draft's content hash (`library.Bundle.content_hash`): a change after
submission or approval takes the draft back to editing (`process_drafts.withdraw_review_if_changed`),
and the deploy compares the hash again, with the draft's row locked, in the transaction that makes
the version. A refused self-review is recorded in the audit trail like every decision.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.engine import diff as version_diffs
from app.engine import library
from app.engine.errors import ProcessInvalid
from app.engine.serializer import dump_specs
from app.models import ProcessDraft, ProcessVersion, User
from app.policy import process_library as library_policy

from .draft_files import DraftRefused
from .process_drafts import check_revision, content_hash, problems_of, touch

log = logging.getLogger(__name__)

MAX_NOTE = 2000


def _text(value: str | None, *, label: str, missing: str | None, field_name: str) -> str | None:
    """Trimmed text of at most MAX_NOTE characters; `missing` is the message when it is required."""
    value = (value or "").strip()
    if not value:
        if missing:
            raise DraftRefused(missing, field_name=field_name)
        return None
    if len(value) > MAX_NOTE:
        raise DraftRefused(f"{label} must be {MAX_NOTE} characters or fewer", field_name=field_name)
    return value


def _owners_only(user: User, doing: str, field_name: str) -> None:
    # The pages are for process owners already; asked again in the transaction that makes the change.
    if not library_policy.may_change_library(user):
        raise DraftRefused(f"Only process owners {doing}", field_name=field_name, status=403)


def _from_version(draft: ProcessDraft) -> int | None:
    return draft.base_version.version if draft.base_version else None


# ---------------------------------------------------------------- submitting


def submit(session: Session, draft: ProcessDraft, user: User, change_note: str | None,
           revision: str | int | None) -> None:
    """Ask another process owner to review the draft as it is now. Refused while any problem remains."""
    _owners_only(user, "submit drafts", "submit")
    check_revision(draft, revision)
    if draft.review_status == "submitted":
        raise DraftRefused("This draft is already waiting for review", field_name="submit", status=409)
    if draft.review_status == "approved":
        raise DraftRefused("This draft is already approved: it can be deployed", field_name="submit", status=409)
    note = _text(change_note, label="The change note", missing="Enter a change note: what changed and why",
                 field_name="change_note")
    problems = problems_of(draft)
    if problems:
        raise DraftRefused(problems, field_name="problems")
    digest = content_hash(draft)
    same = session.scalar(select(ProcessVersion.version).where(ProcessVersion.process_id == draft.process_id,
                                                              ProcessVersion.content_hash == digest))
    if same is not None:
        raise DraftRefused(f"This draft is the same as version {same}, which is already deployed: there is "
                           f"nothing new to review", field_name="submit")
    draft.review_status, draft.note = "submitted", note
    draft.submitted_by_id, draft.submitted_at, draft.submitted_hash = user.id, now(), digest
    draft.reviewed_by_id = draft.reviewed_at = draft.approved_hash = draft.review_reason = None
    audit.record(session, "draft_submitted", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 content_hash=digest, change_note=note, from_version=_from_version(draft))


# ---------------------------------------------------------------- reviewing


def _check_reviewable(session: Session, draft: ProcessDraft, user: User, seen_hash: str | None,
                      decision: str) -> str:
    """The content hash being decided on, once the decision may be taken by this user."""
    if draft.review_status != "submitted":
        raise DraftRefused("This draft is not waiting for review: it was changed, withdrawn or already "
                           "reviewed. Look at it again.", field_name="decision", status=409)
    why = library_policy.review_refusal(draft, user)
    if why:
        audit.record(session, "draft_approval_refused", actor_id=user.id, process_id=draft.process_id,
                     draft_id=draft.id, decision=decision,
                     reason="self-review" if library_policy.may_change_library(user) else "not a process owner",
                     submitted_by=draft.submitted_by_id)
        raise DraftRefused(why, field_name="decision", status=403, audited=True)
    digest = content_hash(draft)
    if (seen_hash or "").strip() != digest or digest != draft.submitted_hash:
        raise DraftRefused("This draft changed since you opened it, so your decision was not recorded. Look at "
                           "what changed again.", field_name="decision", status=409)
    return digest


def approve(session: Session, draft: ProcessDraft, user: User, seen_hash: str | None,
            comment: str | None = None) -> None:
    """Approve exactly the content the reviewer saw (its hash); anyone of the process owners may then deploy it."""
    digest = _check_reviewable(session, draft, user, seen_hash, "approve")
    comment = _text(comment, label="The comment", missing=None, field_name="comment")
    draft.review_status, draft.approved_hash, draft.review_reason = "approved", digest, comment
    draft.reviewed_by_id, draft.reviewed_at = user.id, now()
    audit.record(session, "draft_approved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 content_hash=digest, submitted_by=draft.submitted_by_id, comment=comment)


def reject(session: Session, draft: ProcessDraft, user: User, seen_hash: str | None, reason: str | None) -> None:
    digest = _check_reviewable(session, draft, user, seen_hash, "reject")
    reason = _text(reason, label="The reason", missing="Enter the reason: what must change before it is approved",
                   field_name="reason")
    draft.review_status, draft.approved_hash, draft.review_reason = "rejected", None, reason
    draft.reviewed_by_id, draft.reviewed_at = user.id, now()
    audit.record(session, "draft_rejected", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 content_hash=digest, submitted_by=draft.submitted_by_id, reason=reason)


# ---------------------------------------------------------------- deploying


def deploy(session: Session, draft: ProcessDraft, user: User, revision: str | int | None) -> ProcessVersion:
    """A new immutable version from an approved draft, with its change note. The caller holds the draft's
    row locked, so the content compared with the approved hash is the content deployed."""
    _owners_only(user, "deploy drafts", "deploy")
    check_revision(draft, revision)
    if draft.review_status != "approved":
        raise DraftRefused({"editing": "Submit this draft for review first: another process owner must approve "
                                       "it before it is deployed",
                            "submitted": "This draft is waiting for review: another process owner must approve "
                                         "it before it is deployed",
                            "rejected": "This draft was rejected: change it and submit it for review again"}
                           .get(draft.review_status, "This draft is not approved"), field_name="deploy", status=409)
    digest = content_hash(draft)
    if digest != draft.approved_hash:
        raise DraftRefused("This draft changed after it was approved, so it needs approving again",
                           field_name="deploy", status=409)
    if not library_policy.approval_stands(draft):
        raise DraftRefused("Whoever approved this draft is no longer a process owner: it needs approving again",
                           field_name="deploy", status=409)
    bundle = library.Bundle(draft.bpmn_files, draft.forms)
    try:
        with session.begin_nested():
            version, created = library.deploy(session, bundle, process_id=draft.process_id,
                                              deployed_by_id=user.id, change_note=draft.note)
    except ProcessInvalid as exc:
        raise DraftRefused(exc.problems, field_name="problems") from None
    except IntegrityError:
        raise DraftRefused("Another version was deployed at the same moment, so this one was not. "
                           "Deploy again.", field_name="deploy") from None
    if not created:
        raise DraftRefused(f"This draft is the same as version {version.version}, which is already deployed: "
                           f"there is nothing new to deploy", field_name="deploy")
    draft.status, draft.deployed_version_id = "deployed", version.id
    touch(session, draft, user)
    audit.record(session, "process_deployed", actor_id=user.id, process_id=version.process_id,
                 version=version.version, content_hash=version.content_hash, change_note=draft.note,
                 draft_id=draft.id, from_version=_from_version(draft), submitted_by=draft.submitted_by_id,
                 approved_by=draft.reviewed_by_id, approved_at=draft.reviewed_at.isoformat())
    return version


# ---------------------------------------------------------------- what changed


@dataclass
class DraftChanges:
    """What the draft changes, against the version it was started from (or the current one)."""

    compared_with: ProcessVersion | None  # None: a new process, nothing to compare with
    current: int | None
    content_hash: str
    diff: version_diffs.VersionDiff | None = None
    problems: list[str] = field(default_factory=list)


def changes_of(session: Session, draft: ProcessDraft, *, against_current: bool = False) -> DraftChanges:
    """The same comparison as between two versions: steps added, removed and changed, with what changed."""
    current = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == draft.process_id)
                             .order_by(ProcessVersion.version.desc()).limit(1))
    compared = current if against_current or draft.base_version is None else draft.base_version
    found = DraftChanges(compared, current.version if current else None, content_hash(draft))
    bundle = library.Bundle(draft.bpmn_files, draft.forms)
    try:
        spec, subprocess_specs = library.validate_bundle(bundle, draft.process_id)
        if compared is not None:
            # Never added to the session: a stand-in version so the draft is compared as versions are.
            candidate = ProcessVersion(process_id=draft.process_id, name=draft.title, version=0,
                                       content_hash=found.content_hash, bpmn_files=draft.bpmn_files,
                                       forms=draft.forms, spec_json=dump_specs(spec, subprocess_specs))
            found.diff = version_diffs.compute(compared, candidate)
    except ProcessInvalid as exc:
        found.problems = list(exc.problems)
    except Exception as exc:  # a model no check foresaw: say so on the page, approve nothing unseen
        log.exception("comparing draft %s failed", draft.id)
        found.problems = [f"what changed could not be worked out ({type(exc).__name__}: {exc})"]
    return found
