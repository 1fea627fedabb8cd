"""Passkeys (WebAuthn, through py_webauthn): registering them, checking them at sign-in, requiring them.

A passkey is a second factor here, in place of the code: the password comes first. Challenges are
kept on the server (`passkey_challenge`), bound to the browser session, the user and the purpose,
deleted when an answer is checked (so a replayed answer finds nothing) and good for five minutes.
A sign count that does not go up means the authenticator was copied: the passkey is refused.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import parse_authentication_credential_json
from webauthn.helpers.parse_registration_credential_json import parse_registration_credential_json
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, AuthenticatorTransport, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from app import audit, policy
from app.accounts import sign_in
from app.clock import now
from app.models import Passkey, PasskeyChallenge, PasskeyRequirement, User

CHALLENGE_FOR = timedelta(minutes=5)
MAX_NAME = 100
MAX_CREDENTIAL_JSON = 20_000
RP_NAME = "eCAF"
REQUIRABLE_ROLES = ("practitioner", "service_team", "administrator")  # the process owner's role is national
REGISTER, SIGN_IN = "register", "sign_in"


@dataclass(frozen=True)
class RelyingParty:
    id: str      # the host name passkeys are bound to, e.g. ecaf.example.gov.uk
    origin: str  # the origin pages are served from, e.g. https://ecaf.example.gov.uk


class PasskeyRefused(Exception):
    """A registration or sign-in answer that is not accepted; `why` is what the audit trail records."""

    def __init__(self, why: str, message: str):
        super().__init__(message)
        self.why, self.message = why, message


WRONG_PASSKEY = ("That passkey could not be used to sign in. Try again with a passkey you added to eCAF, "
                 "or use the code from your authenticator app.")
STALE_CHALLENGE = "The passkey request ran out of time or was already used. Try again."
CLONED = ("That passkey has been refused because it looks like a copy of your passkey was used. Use the code "
          "from your authenticator app, then remove this passkey under Your account, Passkeys, and tell the "
          "eCAF administrator.")
REGISTRATION_FAILED = "The passkey could not be added. Try again, or use a different passkey."


def relying_party(config, host_url: str | None) -> RelyingParty | None:
    """ECAF_RP_ID and ECAF_ORIGIN; on a local run or in tests, the host the page was asked for.

    None when neither is known: a deployment without them offers no passkeys (and requires none)."""
    rp_id, origin = getattr(config, "rp_id", None), getattr(config, "origin", None)
    if not (rp_id or origin) and host_url and config.development_keys_allowed():
        origin = host_url.rstrip("/")
    if not (rp_id or origin):
        return None
    if origin and not rp_id:
        rp_id = urlsplit(origin).hostname
    if rp_id and not origin:
        origin = f"https://{rp_id}"
    return RelyingParty(id=rp_id, origin=origin.rstrip("/"))


# ---------------------------------------------------------------- challenges


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def issue_challenge(db: Session, session_id: str, user_id: int, purpose: str) -> bytes:
    moment = now()
    db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < moment))
    challenge = secrets.token_bytes(32)
    db.add(PasskeyChallenge(id=_digest(challenge), web_session_id=session_id, user_id=user_id, purpose=purpose,
                            created_at=moment, expires_at=moment + CHALLENGE_FOR))
    db.flush()
    return challenge


def take_challenge(db: Session, session_id: str | None, user_id: int, purpose: str, client_data: bytes) -> bytes:
    """The challenge the answer signed, if this session was given it for this purpose and it is still
    good; it is deleted, so the same answer never passes twice."""
    try:
        challenge = parse_client_data_json(client_data).challenge
    except WebAuthnException:
        raise PasskeyRefused("malformed", WRONG_PASSKEY if purpose == SIGN_IN else REGISTRATION_FAILED)
    taken = db.execute(delete(PasskeyChallenge).where(
        PasskeyChallenge.id == _digest(challenge), PasskeyChallenge.web_session_id == session_id,
        PasskeyChallenge.user_id == user_id, PasskeyChallenge.purpose == purpose,
        PasskeyChallenge.expires_at > now()))
    if taken.rowcount != 1:
        raise PasskeyRefused("challenge_not_issued_or_used", STALE_CHALLENGE)
    return challenge


# ---------------------------------------------------------------- what the user has, what is required


def passkeys_of(db: Session, user_id: int) -> list[Passkey]:
    return list(db.scalars(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)))


def has_passkey(db: Session, user_id: int) -> bool:
    return db.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None


def required_roles(db: Session, authority_id: int | None) -> set[str]:
    if authority_id is None:
        return set()
    return set(db.scalars(select(PasskeyRequirement.role).where(PasskeyRequirement.authority_id == authority_id)))


def is_required(db: Session, user: User) -> bool:
    return user.role in required_roles(db, policy.authority_id_of(user))


def set_required_roles(db: Session, authority_id: int, wanted: set[str], actor_id: int, reason: str) -> bool:
    """Require passkeys of exactly these roles in the authority; audited when anything changes."""
    wanted = wanted & set(REQUIRABLE_ROLES)
    current = required_roles(db, authority_id)
    if wanted == current:
        return False
    db.execute(delete(PasskeyRequirement).where(PasskeyRequirement.authority_id == authority_id,
                                                PasskeyRequirement.role.in_(current - wanted)))
    for role in sorted(wanted - current):
        db.add(PasskeyRequirement(authority_id=authority_id, role=role, set_by_id=actor_id, set_at=now()))
    audit.record(db, "passkey_requirement_changed", actor_id=actor_id, authority_id=authority_id,
                 roles=sorted(wanted), reason=reason)
    return True


# ---------------------------------------------------------------- registration


def registration_options(db: Session, rp: RelyingParty, user: User, session_id: str) -> str:
    """The JSON for navigator.credentials.create(), its challenge kept for this session."""
    options = generate_registration_options(
        rp_id=rp.id, rp_name=RP_NAME, user_id=str(user.id).encode(), user_name=user.username,
        user_display_name=user.full_name, challenge=issue_challenge(db, session_id, user.id, REGISTER),
        timeout=int(CHALLENGE_FOR.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(passkeys_of(db, user.id)))
    return options_to_json(options)


def register(db: Session, rp: RelyingParty, user: User, session_id: str | None, credential_json: str,
             name: str) -> Passkey:
    """Check the browser's answer to the registration challenge and keep the new passkey."""
    try:
        credential = parse_registration_credential_json(credential_json[:MAX_CREDENTIAL_JSON])
        challenge = take_challenge(db, session_id, user.id, REGISTER, credential.response.client_data_json)
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp.id, expected_origin=rp.origin)
    except PasskeyRefused as refused:
        _refused(db, user.id, "passkey_registration_failed", refused.why)
        raise
    except (WebAuthnException, ValueError, TypeError, KeyError) as problem:
        _refused(db, user.id, "passkey_registration_failed", f"invalid: {problem}"[:200])
        raise PasskeyRefused("invalid", REGISTRATION_FAILED) from problem
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)) is not None:
        _refused(db, user.id, "passkey_registration_failed", "already_registered")
        raise PasskeyRefused("already_registered", "That passkey has already been added to eCAF.")
    passkey = Passkey(user_id=user.id, credential_id=credential_id, public_key=verified.credential_public_key,
                      sign_count=verified.sign_count, name=clean_name(name),
                      transports=[t.value for t in (credential.response.transports or [])],
                      aaguid=verified.aaguid or None, backed_up=bool(verified.credential_backed_up),
                      created_at=now())
    db.add(passkey)
    db.flush()
    audit.record(db, "passkey_registered", actor_id=user.id, passkey_id=passkey.id, name=passkey.name)
    return passkey


def clean_name(name: str) -> str:
    return " ".join((name or "").split())[:MAX_NAME] or "Passkey"


# ---------------------------------------------------------------- sign-in


def authentication_options(db: Session, rp: RelyingParty, user: User, session_id: str) -> str:
    """The JSON for navigator.credentials.get(), offering only this user's passkeys."""
    options = generate_authentication_options(
        rp_id=rp.id, challenge=issue_challenge(db, session_id, user.id, SIGN_IN),
        timeout=int(CHALLENGE_FOR.total_seconds() * 1000),
        allow_credentials=_descriptors(passkeys_of(db, user.id)),
        user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options)


def authenticate(db: Session, rp: RelyingParty, user: User, session_id: str | None, credential_json: str) -> Passkey:
    """Check the browser's answer to the sign-in challenge: a passkey of this user, signed over a challenge
    this session was given, its sign count going up. Raises PasskeyRefused (audited) otherwise."""
    try:
        credential = parse_authentication_credential_json(credential_json[:MAX_CREDENTIAL_JSON])
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise _refuse(db, user.id, "malformed", WRONG_PASSKEY)
    try:
        challenge = take_challenge(db, session_id, user.id, SIGN_IN, credential.response.client_data_json)
    except PasskeyRefused as refused:
        raise _refuse(db, user.id, refused.why, refused.message)
    passkey = db.scalar(select(Passkey).where(Passkey.credential_id == bytes_to_base64url(credential.raw_id)))
    if passkey is None:
        raise _refuse(db, user.id, "unknown_passkey", WRONG_PASSKEY)
    if passkey.user_id != user.id:
        raise _refuse(db, user.id, "another_users_passkey", WRONG_PASSKEY, owner_id=passkey.user_id)
    try:
        # The sign count is compared below, once the signature is known to be good.
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=passkey.public_key, credential_current_sign_count=0)
    except (WebAuthnException, ValueError, TypeError, KeyError) as problem:
        raise _refuse(db, user.id, "invalid", WRONG_PASSKEY, passkey_id=passkey.id, detail=str(problem)[:200])
    if (verified.new_sign_count or passkey.sign_count) and verified.new_sign_count <= passkey.sign_count:
        audit.record(db, "passkey_clone_suspected", actor_id=user.id, passkey_id=passkey.id,
                     stored_sign_count=passkey.sign_count, presented_sign_count=verified.new_sign_count)
        raise PasskeyRefused("sign_count_went_back", CLONED)
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = bool(verified.credential_backed_up)
    passkey.last_used_at = now()
    audit.record(db, "passkey_used", actor_id=user.id, passkey_id=passkey.id)
    return passkey


def check_passkey(db: Session, config, rp: RelyingParty, user: User, session_id: str | None, credential_json: str,
                  address: str | None) -> tuple[sign_in.Outcome, PasskeyRefused | None]:
    """The passkey as the second factor, under the same waits, lock and vetting rules as a code: a refused
    passkey counts as a wrong code. Returns the outcome and, when refused, why."""
    refused: list[PasskeyRefused] = []

    def accept() -> bool:
        try:
            authenticate(db, rp, user, session_id, credential_json)
        except PasskeyRefused as refusal:
            refused.append(refusal)
            return False
        return True

    outcome = sign_in.check_second_factor(db, config, user, address, "passkey", accept, WRONG_PASSKEY)
    refusal = refused[0] if refused else None
    if refusal is not None and outcome.message == WRONG_PASSKEY:
        outcome.message = refusal.message
    return outcome, refusal


# ---------------------------------------------------------------- removal and renaming


def own_passkey(db: Session, user_id: int, passkey_id: int) -> Passkey | None:
    passkey = db.get(Passkey, passkey_id)
    return passkey if passkey is not None and passkey.user_id == user_id else None


def rename(db: Session, passkey: Passkey, name: str, actor_id: int) -> None:
    old, passkey.name = passkey.name, clean_name(name)
    audit.record(db, "passkey_renamed", actor_id=actor_id, passkey_id=passkey.id, old_name=old, name=passkey.name)


def remove(db: Session, passkey: Passkey, actor_id: int) -> None:
    audit.record(db, "passkey_removed", actor_id=actor_id, passkey_id=passkey.id, name=passkey.name,
                 user_id=passkey.user_id)
    db.delete(passkey)


# ---------------------------------------------------------------- helpers


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id),
                                          transports=[AuthenticatorTransport(t) for t in p.transports or []
                                                      if t in known] or None)
            for p in passkeys]


def _refused(db: Session, user_id: int, action: str, why: str, **detail) -> None:
    audit.record(db, action, actor_id=user_id, why=why, **detail)


def _refuse(db: Session, user_id: int, why: str, message: str, **detail) -> PasskeyRefused:
    _refused(db, user_id, "passkey_refused", why, **detail)
    return PasskeyRefused(why, message)
