"""The `ecaf users` commands: accounts made and changed by an operator on the server.

Process owner is a national role: the process library serves every authority, so only an operator
gives it or takes it away (`create --role process_owner`, `grant`, `revoke`), never a local
administrator's pages.
"""
from __future__ import annotations

import getpass
import sys

import click

from app.models import ROLES


def _runtime():
    from app.cli import _runtime as make  # late: app.cli registers this group

    return make()


@click.group(help="Accounts. Process owner is a national role: only these commands give it or take it away.")
def users() -> None:
    pass


def _operator() -> str:
    """Who ran the command on the server (the operator is not an eCAF account): kept in the audit trail."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name, as in some containers
        return "unknown"


@users.command("create", help="Create an account (for example the first administrator). Asks for the password.")
@click.argument("username")
@click.option("--email", required=True, help="Work email: one account per person.")
@click.option("--name", "full_name", required=True, help="Full name.")
@click.option("--role", type=click.Choice(ROLES), default="practitioner", show_default=True)
@click.option("--organisation", "organisation_id", type=int, help="Organisation id.")
@click.password_option(help="At least 12 characters.")
def users_create(username, email, full_name, role, organisation_id, password) -> None:
    from sqlalchemy import func, select

    from app import audit
    from app.accounts import passwords
    from app.clock import now
    from app.models import Organisation, User

    from app.accounts import vetting

    if vetting.generic_mailbox(email):
        click.echo("use the person's own work email, not a shared mailbox: one account per person", err=True)
        sys.exit(1)
    problem = passwords.password_problem(password, context_words=(username, full_name))
    if problem:
        click.echo(problem, err=True)
        sys.exit(1)
    runtime = _runtime()
    with runtime.db.session() as session:
        taken = session.scalar(select(User.id).where((func.lower(User.username) == username.lower())
                                                     | (func.lower(User.email) == email.lower())))
        if taken is not None:
            click.echo("an account with this username or email already exists", err=True)
            sys.exit(1)
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            click.echo(f"there is no organisation {organisation_id}", err=True)
            sys.exit(1)
        user = User(username=username, email=email, full_name=full_name, role=role, organisation_id=organisation_id,
                    password_hash=passwords.hash_password(password), password_changed_at=now(), created_at=now())
        session.add(user)
        session.flush()
        audit.record(session, "account_created", user_id=user.id, role=role, via="command line",
                     operator=_operator())
    click.echo(f"created {username}: record their vetting (ecaf users vet) before they can sign in; "
               "they set up their authenticator at first sign-in")


@users.command("vet", help="Record an account's vetting check and eCAF training; without them it cannot sign in.")
@click.argument("username")
@click.option("--type", "kind", required=True, help="enhanced_dbs, standard_dbs or npp_v.")
@click.option("--reference", required=True, help="The check's reference number.")
@click.option("--checked-on", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Date of the check.")
@click.option("--expires-on", type=click.DateTime(["%Y-%m-%d"]), help="When the check must be renewed.")
@click.option("--training-on", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Date of eCAF training.")
@click.option("--by", "by_username", required=True, help="The administrator recording it.")
def users_vet(username, kind, reference, checked_on, expires_on, training_on, by_username) -> None:
    from app import policy
    from app.accounts import sign_in, vetting

    runtime = _runtime()
    with runtime.db.session() as session:
        user, admin = sign_in.find_user(session, username), sign_in.find_user(session, by_username)
        if user is None:
            click.echo("no such account", err=True)
            sys.exit(1)
        if not policy.may_record_vetting(admin):
            click.echo(f"{by_username} is not an administrator", err=True)
            sys.exit(1)
        check = vetting.VettingCheck(kind, reference, checked_on.date(),
                                     expires_on.date() if expires_on else None, training_on.date())
        found = vetting.record(session, user, check, by_id=admin.id)
    if found:
        click.echo("\n".join(found), err=True)
        sys.exit(1)
    click.echo(f"recorded the vetting of {username}")


@users.command("totp", help="Print the current sign-in code of a demo account (demo accounts only).")
@click.argument("username")
def users_totp(username: str) -> None:
    from app.accounts import sign_in, totp

    runtime = _runtime()
    with runtime.db.session() as session:
        user = sign_in.find_user(session, username)
        if user is None or not user.demo_account:
            click.echo("codes are printed for demo accounts only", err=True)
            sys.exit(1)
        code = totp.current_code(runtime.config, user)
    if code is None:
        click.echo(f"{username} has no authenticator yet: it is set up at first sign-in", err=True)
        sys.exit(1)
    click.echo(code)


@users.command("unlock", help="Unlock an account after repeated failed sign-ins.")
@click.argument("username")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
def users_unlock(username: str, reason: str) -> None:
    from app.accounts import sign_in

    runtime = _runtime()
    with runtime.db.session() as session:
        user = sign_in.find_user(session, username)
        if user is None:
            click.echo("no such account", err=True)
            sys.exit(1)
        sign_in.unlock(session, user, None, reason)
    click.echo(f"{username} is unlocked")


def _account_or_exit(session, username: str):
    from app.accounts import sign_in

    user = sign_in.find_user(session, username)
    if user is None:
        click.echo("no such account", err=True)
        sys.exit(1)
    return user


@users.command("grant", short_help="Give an account a role, e.g. process_owner.",
               help="Give an account a role, replacing the one it has (an account has one role). "
                    "Process owners are appointed here: no local administrator can make one.")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The role given, e.g. process_owner.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail with who ran the command).")
def users_grant(username: str, role: str, reason: str) -> None:
    from app import audit

    if not reason.strip():
        click.echo("say why: --reason is recorded in the audit trail", err=True)
        sys.exit(2)
    runtime = _runtime()
    with runtime.db.session() as session:
        user = _account_or_exit(session, username)
        previous = user.role
        if previous == role:
            click.echo(f"{username} is already {role}: nothing was changed")
            return
        user.role = role
        audit.record(session, "role_granted", user_id=user.id, role=role, role_from=previous, reason=reason.strip(),
                     operator=_operator(), via="command line")
    click.echo(f"{username} is now {role} (was {previous})")


@users.command("revoke", short_help="Take a role, e.g. process_owner, away.",
               help="Take a role away from an account, which gets --to instead (an account has one "
                    "role). Only here can a process owner stop being one.")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The role taken away: the account's own.")
@click.option("--to", "new_role", type=click.Choice(ROLES), default="practitioner", show_default=True,
              help="The account's role afterwards.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail with who ran the command).")
def users_revoke(username: str, role: str, new_role: str, reason: str) -> None:
    from app import audit

    if not reason.strip():
        click.echo("say why: --reason is recorded in the audit trail", err=True)
        sys.exit(2)
    if new_role == role:
        click.echo("--to must be another role than the one taken away", err=True)
        sys.exit(2)
    runtime = _runtime()
    with runtime.db.session() as session:
        user = _account_or_exit(session, username)
        if user.role != role:
            click.echo(f"{username} is {user.role}, not {role}: nothing was changed", err=True)
            sys.exit(1)
        user.role = new_role
        audit.record(session, "role_removed", user_id=user.id, role=role, role_to=new_role, reason=reason.strip(),
                     operator=_operator(), via="command line")
    click.echo(f"{username} is no longer {role}: now {new_role}")
