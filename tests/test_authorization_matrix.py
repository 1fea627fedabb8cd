"""Every route of the app, against every role and every part in an episode, in every consent state.

The expected answers are written out here from the rules (MISSION N4, N5; CAF.md decision 4), not
computed by app/policy/, so a change to the policy that breaks a rule fails. A route that is not
listed here fails the test: every new route must declare who may use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

from sqlalchemy import select

from app.models import Artefact, Episode, EpisodeMember, HumanTask

from . import (access_world, matrix_accounts, matrix_api_clients, matrix_admin_queue, matrix_assessment_sections, matrix_attachments,
               matrix_contributions, matrix_duty_to_share, matrix_families, matrix_process_library,
               matrix_process_migrations, matrix_service_requests, matrix_services, matrix_transfers)
from .web import browser, csrf_token, make_app

ANONYMOUS = "anonymous"
SIGNED_IN = set(access_world.ACTORS)
PRACTITIONERS = {"originator", "lead", "member", "contributor", "excluded", "non_member"}
ADMINS = {"admin", "other_admin"}

# Who may open an episode, by consent state (the lead professional exists only once consent is given).
VIEW = {"none": {"originator", "admin"},
        "given": {"originator", "lead", "member", "contributor", "admin"},
        "withdrawn": {"lead", "admin"}}
# Who may manage members, withdraw consent, read the episode's audit and export it.
MANAGE = {"none": {"originator", "admin"}, "given": {"lead", "admin"}, "withdrawn": {"lead", "admin"}}
# Start a CAF for the world's child (Casey Child, born 1 May 2015).
CASEY_SEARCH = {"family_name": "Child", "date_of_birth-day": "1", "date_of_birth-month": "5",
                "date_of_birth-year": "2015"}
CASEY_RECORD = {"count": "1", "child-0-given_names": "Casey", "child-0-family_name": "Child",
                "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "5",
                "child-0-date_of_birth-year": "2015", "child-0-nhs_number_missing": "not_known",
                "address": "1 Test Road", "postcode": "TE1 1ST", "action": "start"}
# Whose task is ready in each episode.
TASK_HOLDER = {"none": {"originator"}, "given": {"lead"}, "withdrawn": set()}


@dataclass
class Case:
    method: str
    path: str
    expect: Callable[[str], int]  # actor -> status code
    data: dict | None = None
    token_from: str | None = None  # a page to read a fresh CSRF token from first


def by_role(allowed: set[str], denied: int = 403, ok: int = 200) -> Callable[[str], int]:
    """A page for some roles: others are refused, anonymous users are sent to sign in."""
    return lambda actor: 302 if actor == ANONYMOUS else (ok if actor in allowed else denied)


def admin_record_rule(exists: bool, ok: int) -> Callable[[str], int]:
    """A record of the world's authority (when seeded): its administrator gets `ok`, the other
    authority's 404 (as for one that does not exist), everyone else 403."""
    def expect(actor: str) -> int:
        if actor == ANONYMOUS:
            return 302
        if actor == "admin" and exists:
            return ok
        return 404 if actor in ADMINS else 403
    return expect


def episode_rule(allowed: set[str], ok: int = 200) -> Callable[[str], int]:
    return lambda actor: 302 if actor == ANONYMOUS else (ok if actor in allowed else 404)


def _cases(world, ids) -> dict[str, list[Case]]:
    """For each endpoint, the requests that exercise it and the expected answer of each actor."""
    cases: dict[str, list[Case]] = {
        "static": [Case("GET", "/assets/ecaf/favicon.svg", lambda actor: 200)],
        "health.liveness": [Case("GET", "/healthz", lambda actor: 200)],
        "health.readiness": [Case("GET", "/readyz", lambda actor: 200)],
        "support.index": [Case("GET", "/support", lambda actor: 200)],
        # Signing in opens nothing: only loopback or the token does (tests/test_metrics.py), and actors come from 10.0.0.x.
        "metrics.scrape": [Case("GET", "/metrics", lambda actor: 404)],
        "system.index": [Case("GET", "/admin/system", by_role(ADMINS))],
        "auth.sign_in": [Case("GET", "/sign-in", lambda actor: 200 if actor == ANONYMOUS else 302)],
        "auth.code": [Case("GET", "/sign-in/code", lambda actor: 302)],
        "auth.recovery_code": [Case("GET", "/sign-in/recovery-code", lambda actor: 302)],
        "auth.enrol": [Case("GET", "/sign-in/set-up-authenticator", lambda actor: 302)],
        "auth.account": [Case("GET", "/account", by_role(SIGNED_IN))],
        "auth.change_password": [Case("GET", "/account/password", by_role(SIGNED_IN))],
        # Passkeys: a user's own only (someone else's, or none, answers 404); the sign-in steps need a password first.
        "passkeys.index": [Case("GET", "/account/passkeys", by_role(SIGNED_IN))],
        "passkeys.register": [Case("POST", "/account/passkeys", by_role(SIGNED_IN, ok=400), {})],
        "passkeys.rename": [Case("GET", "/account/passkeys/999999/name", by_role(SIGNED_IN, denied=404, ok=404))],
        "passkeys.remove": [Case("GET", "/account/passkeys/999999/remove", by_role(SIGNED_IN, denied=404, ok=404))],
        "passkeys.sign_in_with_passkey": [Case("GET", "/sign-in/passkey", lambda actor: 302)],
        "passkeys.set_up": [Case("GET", "/sign-in/set-up-passkey", lambda actor: 302)],
        "passkey_settings.settings": [Case("GET", "/admin/settings/passkeys", by_role(ADMINS)),
                                      Case("POST", "/admin/settings/passkeys", by_role(ADMINS, ok=400), {})],
        "tasks.home": [Case("GET", "/", by_role(SIGNED_IN))],
        "status.index": [Case("GET", "/status", by_role(ADMINS))],
        "children.find": [Case("GET", "/children/find", by_role(PRACTITIONERS)),
                          # Searching for the world's child asks the index too: practitioners only.
                          Case("POST", "/children/find", by_role(PRACTITIONERS), CASEY_SEARCH)],
        "children.record": [Case("POST", "/children/new", by_role(PRACTITIONERS, ok=400), {"postcode": ""}),
                            # Casey has open CAFs: refused for every practitioner, member or not.
                            Case("POST", "/children/new", by_role(PRACTITIONERS, ok=400),
                                 {**CASEY_RECORD, "authority": str(world["authority"])})],
        "search_requests.index": [Case("GET", "/search-requests/", by_role(PRACTITIONERS))],
        "search_requests.new": [Case("GET", "/search-requests/new", by_role(PRACTITIONERS))],
        "search_requests.show": [Case("GET", "/search-requests/999999", by_role(PRACTITIONERS, ok=404))],
        "national_index.search": [Case("GET", "/index", by_role(PRACTITIONERS | ADMINS))],
        "audit_trail.browse": [Case("GET", "/audit", by_role({"admin", "other_admin"}))],
        "transfers.import_episode": [Case("GET", "/transfers/import", by_role(ADMINS))],
    }

    def child_rule(actor: str) -> int:
        """An administrator's page about one child, or one account, of their own authority."""
        return 302 if actor == ANONYMOUS else 200 if actor == "admin" else 404 if actor in ADMINS else 403

    child_id = world["child"]
    cases["national_index.shielding"] = [Case("GET", f"/children/{child_id}/shielding", child_rule)]
    cases["transfers.subject_access"] = [Case("GET", f"/children/{child_id}/subject-access.json", child_rule)]
    cases["vetting.index"] = [Case("GET", "/accounts/vetting", by_role(ADMINS))]
    cases["vetting.record"] = [Case("GET", f"/accounts/{world['users']['member']}/vetting", child_rule)]

    for state, episode_id in world["episodes"].items():
        view, manage, holder = VIEW[state], MANAGE[state], TASK_HOLDER[state]
        base = f"/episodes/{episode_id}"
        artefact_id, member_id, task_id = ids[state]["artefact"], ids[state]["member"], ids[state]["task"]
        base_artefact = artefact_id or 999999
        withdrawable = state == "given"
        add = cases.setdefault
        add("episodes.show", []).append(Case("GET", base, episode_rule(view)))
        # How a CAF ended: an open one's viewers are sent to its page instead.
        add("episodes.outcome", []).append(Case("GET", f"{base}/outcome",
                                                episode_rule(view, 302 if ids[state]["open"] else 200)))
        add("episodes.diagram", []).append(Case("GET", f"{base}/diagram.bpmn", episode_rule(view)))
        add("episodes.artefact", []).append(Case("GET", f"{base}/records/{base_artefact}",
                                                 episode_rule(view if artefact_id else set())))
        add("episodes.print_view", []).append(Case("GET", f"{base}/print", episode_rule(view)))
        add("episodes.print_pdf", []).append(Case("GET", f"{base}/print.pdf", episode_rule(view)))
        add("episode_people.people", []).append(Case("GET", f"{base}/people", episode_rule(view)))
        add("episode_people.add", []).append(Case("POST", f"{base}/people", episode_rule(manage, 400), {}))
        add("episode_people.remove", []).append(
            Case("POST", f"{base}/people/{member_id}/remove", episode_rule(manage, 400), {}))
        add("episode_people.withdraw", []).extend([
            Case("GET", f"{base}/consent/withdraw", episode_rule(manage, 200 if withdrawable else 302)),
            Case("POST", f"{base}/consent/withdraw", episode_rule(manage, 400 if withdrawable else 302), {})])
        add("audit_trail.episode_audit", []).append(Case("GET", f"{base}/audit", episode_rule(manage)))
        add("transfers.export_episode", []).append(Case("GET", f"{base}/export.json", episode_rule(manage)))
        add("tasks.form", []).append(Case("GET", f"/tasks/{task_id}", episode_rule(holder)))
        add("tasks.submit", []).append(Case("POST", f"/tasks/{task_id}", episode_rule(holder, 302), {"action": "save"}))
        # Person-lane tasks are never claimed or released; role-lane claiming is tested with the task list.
        add("tasks.claim", []).append(Case("POST", f"/tasks/{task_id}/claim", episode_rule(set()), {}))
        add("tasks.release", []).append(Case("POST", f"/tasks/{task_id}/release", episode_rule(set()), {}))
    cases["admin.dashboard"] = [Case("GET", "/admin/", by_role(ADMINS))]
    cases["admin.episodes"] = [Case("GET", "/admin/episodes?show=errored", by_role(ADMINS))]
    cases["admin.bulk"] = [Case("GET", "/admin/episodes/bulk?show=errored", by_role(ADMINS))]
    # No errored episode in the world: the confirmation sends an administrator back to the preview.
    cases["admin.bulk_confirm"] = [Case("GET", "/admin/episodes/bulk/confirm?show=errored&action=retry",
                                        lambda actor: 302 if actor == ANONYMOUS or actor in ADMINS else 403)]
    missing_message = lambda actor: 302 if actor == ANONYMOUS else 404 if actor in ADMINS else 403  # noqa: E731
    cases["admin.message"] = [Case("POST", "/admin/messages/999999", missing_message, {}),
                              Case("GET", "/admin/messages/999999", missing_message)]
    for state, episode_id in world["episodes"].items():
        cases.setdefault("admin.episode", []).append(Case("GET", f"/admin/episodes/{episode_id}", child_rule))
        cases.setdefault("admin.episode_tab", []).append(Case("GET", f"/admin/episodes/{episode_id}/history",
                                                              child_rule))
        cases.setdefault("admin.repair_page", []).append(
            Case("GET", f"/admin/episodes/{episode_id}/repair/suspend", child_rule))
        cases.setdefault("admin.repair_episode", []).append(
            Case("POST", f"/admin/episodes/{episode_id}/repair",
                 lambda actor: 400 if actor == "admin" else child_rule(actor), {}))
    rules = SimpleNamespace(Case=Case, by_role=by_role, episode_rule=episode_rule, ANONYMOUS=ANONYMOUS, ADMINS=ADMINS,
                            PRACTITIONERS=PRACTITIONERS, SIGNED_IN=SIGNED_IN, VIEW=VIEW, MANAGE=MANAGE,
                            child_rule=child_rule, admin_record_rule=admin_record_rule)
    for area in (matrix_accounts, matrix_admin_queue, matrix_services, matrix_attachments, matrix_contributions,
                 matrix_process_library, matrix_process_migrations, matrix_service_requests, matrix_transfers,
                 matrix_assessment_sections, matrix_families, matrix_duty_to_share, matrix_api_clients):
        cases.update(area.cases(world, ids, rules))
    # Ending sessions comes last for each actor.
    cases["auth.sign_out_everywhere"] = [Case("POST", "/account/sign-out-everywhere", lambda actor: 302, {})]
    cases["auth.sign_out"] = [Case("POST", "/sign-out", lambda actor: 302, {}, token_from="/sign-in")]
    return cases


def _ids(runtime, world) -> dict:
    """An artefact, a removable member and a task of each episode."""
    found = {}
    with runtime.db.session() as session:
        for state, episode_id in world["episodes"].items():
            artefact = session.scalar(select(Artefact.id).where(Artefact.episode_id == episode_id,
                                                                Artefact.kind != "contact").limit(1))
            member = session.scalar(select(EpisodeMember.id).where(
                EpisodeMember.episode_id == episode_id, EpisodeMember.user_id == world["users"]["member"]))
            task = session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode_id)
                                  .order_by(HumanTask.status != "ready", HumanTask.id.desc()).limit(1))
            is_open = session.get(Episode, episode_id).is_open
            found[state] = {"artefact": artefact, "member": member, "task": task, "open": is_open}
    return found


def test_every_route_answers_every_actor_exactly_as_the_rules_say(runtime, people, tmp_path):
    world = access_world.build(runtime, people)
    world["child"], world["authority"] = people["child"], people["authority"]
    matrix_admin_queue.seed(runtime, world)
    matrix_services.seed(runtime, world)
    matrix_assessment_sections.seed(runtime, world)
    matrix_service_requests.seed(runtime, world)
    matrix_process_library.seed(runtime, world)
    matrix_process_migrations.seed(runtime, world)
    matrix_attachments.seed(runtime, world, tmp_path / "attachments")
    matrix_transfers.seed(runtime, world)
    matrix_families.seed(runtime, world)
    matrix_duty_to_share.seed(runtime, world)
    matrix_api_clients.seed(runtime, world)
    app = make_app(runtime)
    cases = _cases(world, _ids(runtime, world))

    undeclared = sorted({rule.endpoint for rule in app.url_map.iter_rules()} - set(cases))
    assert not undeclared, f"routes without a declared rule in the authorization matrix: {undeclared}"

    wrong = []
    for number, actor in enumerate((ANONYMOUS,) + access_world.ACTORS, start=1):
        client = browser(app)
        # Each actor from its own address, as people are: per-address limits on public forms stay out of the way.
        client.client.environ_base["REMOTE_ADDR"] = f"10.0.0.{number}"
        if actor == ANONYMOUS:
            token = csrf_token(client.get("/sign-in").get_data(as_text=True))
        else:
            client.sign_in(access_world.USERNAMES[actor], world["secrets"][actor])
            token = csrf_token(client.get("/account").get_data(as_text=True))
        for endpoint, endpoint_cases in cases.items():
            for case in endpoint_cases:
                if case.method == "GET":
                    got = client.get(case.path).status_code
                else:
                    if case.token_from:
                        token = csrf_token(client.get(case.token_from).get_data(as_text=True))
                    got = client.client.open(case.path, method=case.method,
                                             data={**(case.data or {}), "csrf_token": token}).status_code
                if got != case.expect(actor):
                    wrong.append(f"{actor:12} {case.method:4} {case.path:40} expected {case.expect(actor)}, got {got}")
    assert not wrong, "\n" + "\n".join(wrong)
