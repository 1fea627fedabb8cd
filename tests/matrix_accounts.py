"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py."""
from __future__ import annotations

# The matrix runs in an emptied database whose ids start at 1: organisation 1 is the people fixture's
# school (this authority), and the first application posted below (by the first actor) is number 1.
SCHOOL_ID = 1
APPLICATION_ID = 1
APPLICATION = {"full_name": "Andy Applicant", "email": "andy.applicant@ecaf.test", "job_title": "School nurse",
               "phone": "0100 000 555", "organisation_id": str(SCHOOL_ID), "manager_name": "Mary Manager",
               "manager_email": "mary.manager@ecaf.test", "reason": "I support children at the school"}
VETTING = {"kind": "enhanced_dbs", "reference": "DBS-778899", "checked_on-day": "3", "checked_on-month": "2",
           "checked_on-year": "2025", "training_on-day": "10", "training_on-month": "2", "training_on-year": "2025"}
# Complete, valid forms but for the role: process owner is national, never a local administrator's to give or take.
DETAILS = {"job_title": "Teacher", "phone": "0100 000 333", "organisation_id": str(SCHOOL_ID),
           "reason": "Asked to maintain the process"}
FORGED_NEW = {**DETAILS, **VETTING, "full_name": "Nina New", "username": "nnew", "email": "nina.new@ecaf.test",
              "role": "process_owner"}
FORGED_APPROVAL = {**VETTING, "decision": "approve", "username": "andy", "role": "process_owner",
                   "approve_reason": "Confirmed with the manager"}
# The actions on one account: path segment -> endpoint.
ACTIONS = {"disable": "disable", "enable": "enable", "unlock": "unlock", "revoke-sessions": "revoke_sessions",
           "reset-authenticator": "reset_authenticator", "reset-password": "send_password_link"}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, episode_rule, ANONYMOUS, ADMINS, PRACTITIONERS,
    SIGNED_IN, VIEW, MANAGE and child_rule (an administrator's page about one record of their authority)."""
    Case, admins = rules.Case, rules.ADMINS

    def own_authority(ok: int):
        """Another authority's administrator gets 404 (the record is not theirs), other roles 403."""
        return lambda actor: (302 if actor == rules.ANONYMOUS else ok if actor == "admin"
                              else 404 if actor in admins else 403)

    def everyone(status: int):
        return lambda actor: status

    account = f"/accounts/{world['users']['member']}"
    owner = f"/accounts/{world['users']['owner']}"
    application = f"/accounts/applications/{APPLICATION_ID}"
    found = {
        "accounts.index": [Case("GET", "/accounts", rules.by_role(admins))],
        "accounts.create": [Case("GET", "/accounts/new", rules.by_role(admins)),
                            Case("POST", "/accounts/new", rules.by_role(admins, ok=400), {}),
                            Case("POST", "/accounts/new", rules.by_role(admins, ok=400), FORGED_NEW)],
        "accounts.show": [Case("GET", account, rules.child_rule)],
        "accounts.edit": [Case("GET", f"{account}/edit", rules.child_rule),
                          Case("POST", f"{account}/edit", own_authority(400), {}),
                          Case("POST", f"{account}/edit", own_authority(400),
                               {**DETAILS, "full_name": "Tom Team", "role": "process_owner"}),
                          Case("POST", f"{owner}/edit", own_authority(400),
                               {**DETAILS, "full_name": "Owen Owner", "role": "practitioner"})],
        "accounts.reset_password": [Case("GET", "/password/reset/not-a-real-token", everyone(200)),
                                    Case("POST", "/password/reset/not-a-real-token", everyone(400), {})],
        # Posted first by the first actor: later ones are duplicates and get the same page.
        "accounts.apply": [Case("GET", "/apply", everyone(200)),
                           Case("POST", "/apply", everyone(400), {}),
                           Case("POST", "/apply", everyone(200), APPLICATION)],
        "accounts.applications": [Case("GET", "/accounts/applications", rules.by_role(admins))],
        "accounts.application": [Case("GET", application, rules.child_rule),
                                 Case("POST", application, own_authority(400), {}),
                                 Case("POST", application, own_authority(400), FORGED_APPROVAL)],
    }
    for segment, endpoint in ACTIONS.items():
        # Without a reason an allowed administrator is refused (400) and nothing changes.
        found[f"accounts.{endpoint}"] = [Case("POST", f"{account}/{segment}", own_authority(400), {})]
    return found
