"""The process library is national: process owners change it, administrators may only read it.

- Reading the library, its versions, the differences between them and what a migration would do:
  process owners and administrators. Drafts are the owners' alone.
- Editing, submitting, reviewing and deploying drafts, and migrating episodes: process owners.
- Two people for every deploy: nobody reviews a draft they submitted or last changed, and an
  approval stands only while its approver is still an enabled process owner other than the submitter.
"""
from __future__ import annotations

from app.models import ProcessDraft, User

from .accounts import is_usable

OWNER = "process_owner"
# For the pages' role gates (app.web.access.roles); the functions below say the same per user.
LIBRARY_READERS = (OWNER, "administrator")
LIBRARY_OWNERS = (OWNER,)


def is_process_owner(user: User | None) -> bool:
    """The account an operator deploys or migrates for must be a process owner's (the operator, on
    the server, is not asked; the deploy is recorded against that owner)."""
    return user is not None and user.role == OWNER


def may_read_library(user: User | None) -> bool:
    return is_usable(user) and user.role in LIBRARY_READERS


def may_change_library(user: User | None) -> bool:
    """See, edit, submit, review and deploy drafts, and migrate episodes between versions."""
    return is_usable(user) and user.role == OWNER


def review_refusal(draft: ProcessDraft, user: User | None) -> str | None:
    """Why this user may not approve or reject the draft, or None: a second pair of eyes is somebody else's."""
    if not may_change_library(user):
        return "Only another process owner may review this draft"
    if draft.submitted_by_id == user.id:
        return "You submitted this draft, so another process owner must review it"
    if draft.updated_by_id == user.id:
        return "You made the last change to this draft, so another process owner must review it"
    return None


def approval_stands(draft: ProcessDraft) -> bool:
    """Is the draft's approval still good for a deploy? Not once its approver stopped being a process
    owner or was disabled (their approval is no longer a second owner's)."""
    approver = draft.reviewed_by
    return (approver is not None and approver.id != draft.submitted_by_id and approver.role == OWNER
            and approver.active)
