"""One-time links to set a password: emailed through the outbox, only the SHA-256 of the token stored.

An administrator never chooses or sees a password: they send a link (`accounts.reset_password`), and a
new account gets one with its welcome email.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit, outbox, policy
from app.accounts import passwords
from app.clock import as_utc, now
from app.models import PasswordReset, User
from app.web.sessions import end_all_sessions

RESET_LINK_HOURS = 24
RESET_LINK_LIFETIME = timedelta(hours=RESET_LINK_HOURS)

LinkFor = Callable[[str], str]  # token -> the absolute address of the set-password page


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _contacts(user: User) -> str:
    authority = user.authority
    parts = [authority.admin_phone if authority else None, authority.admin_email if authority else None]
    known = [p for p in parts if p]
    return f"the eCAF administrator ({', '.join(known)})" if known else "the eCAF administrator"


def send(session: Session, user: User, *, by_id: int, link_for: LinkFor, welcome: bool) -> int:
    """A new one-time link for `user` (earlier unused ones stop working), queued as an email."""
    moment = now()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                PasswordReset.expires_at > moment)
                    .values(expires_at=moment))
    token = secrets.token_urlsafe(32)
    reset = PasswordReset(user_id=user.id, token_hash=_digest(token), created_at=moment,
                          expires_at=moment + RESET_LINK_LIFETIME, created_by_id=by_id)
    session.add(reset)
    session.flush()
    if welcome:
        subject = "Your eCAF account: set your password"
        opening = (f"An eCAF account has been created for you. Your username is {user.username}.\n\n"
                   f"Set your password with this link. It works once, within {RESET_LINK_HOURS} hours:")
        after = ("When you first sign in you will set up an authenticator app on your work phone. Complete "
                 "your eCAF training before you use the service.")
    else:
        subject = "Set a new eCAF password"
        opening = ("The eCAF administrator has sent you a link to set a new password. It works once, "
                   f"within {RESET_LINK_HOURS} hours:")
        after = "Setting a new password signs you out on every device."
    body = (f"Hello {user.full_name},\n\n{opening}\n\n{link_for(token)}\n\n{after}\n\n"
            f"If the link has stopped working, or you did not expect this email, contact {_contacts(user)}.\n")
    message = outbox.queue_email(session, kind="account_welcome" if welcome else "password_reset",
                                 recipient=user.email, subject=subject, body=body, key=f"password-reset:{reset.id}")
    return message.id


def usable_reset(session: Session, token: str) -> PasswordReset | None:
    """The link's record if it is known, unused, unexpired and its account enabled; else None."""
    if not token or len(token) > 100:
        return None
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _digest(token)))
    if reset is None or reset.used_at is not None or as_utc(reset.expires_at) <= now():
        return None
    user = session.get(User, reset.user_id)
    return reset if policy.may_get_password_link(user) else None


def complete_reset(session: Session, reset: PasswordReset, new_password: str, confirm: str) -> dict[str, str]:
    """Set the password once: the link is spent, every session ends and failed sign-ins are forgotten."""
    user = session.get(User, reset.user_id)
    problem = passwords.password_problem(new_password, context_words=(user.username, user.full_name,
                                                                      user.email.split("@")[0]))
    if problem:
        return {"new_password": problem}
    if new_password != confirm:
        return {"confirm_password": "Enter the same password twice"}
    spent = session.execute(update(PasswordReset).where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
                            .values(used_at=now()))
    if spent.rowcount != 1:  # another request used the link first
        return {"link": "used"}
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = now()
    user.failed_sign_ins, user.last_failed_at = 0, None
    ended = end_all_sessions(session, user.id)
    audit.record(session, "password_reset_completed", actor_id=user.id, reset_id=reset.id, sessions_ended=ended)
    return {}
