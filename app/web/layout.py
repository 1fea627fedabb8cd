"""What every page's layout needs: support contacts, navigation and display filters."""
from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_login import current_user

from app import nhs_number
from app.models import ORGANISATION_KINDS
from app.uk_time import date_time, long_date
from app.web import runtime


def support_contacts() -> dict:
    """The signed-in user's authority's contacts; the service's own before sign-in."""
    config = runtime().config
    authority = current_user.authority if current_user and current_user.is_authenticated else None
    return {
        "admin_email": (authority and authority.admin_email) or config.support_email,
        "admin_phone": (authority and authority.admin_phone) or config.support_phone,
        "safeguarding_phone": (authority and authority.safeguarding_phone) or config.safeguarding_phone,
        "authority": authority.name if authority else None,
    }


def text_or_time(value: str) -> str:
    """Text as it is, unless it is an ISO date and time (as task data keeps them): then in UK time."""
    if len(value) < 16 or value[10:11] != "T":
        return value
    try:
        return date_time(datetime.fromisoformat(value))
    except ValueError:
        return value


# The menu: each entry's endpoint, label, the blueprints whose pages it heads, and the roles that see
# it (None: everyone). The administrators' entries are groups: accounts with vetting, episodes with
# transfers and the system's state, searches with the index, reports with the audit trail.
MENU = [
    ("tasks.home", "Tasks", ("tasks", "alerts"), None),
    ("children.find", "Start a CAF", ("children",), ("practitioner",)),
    ("search_requests.index", "Search requests", ("search_requests",), ("practitioner",)),
    ("national_index.search", "Is there a CAF?", ("national_index",), ("practitioner",)),
    ("service_requests.inbox", "Requests", ("service_requests",), ("service_team",)),
    ("admin.dashboard", "Episodes", ("admin", "transfer_requests", "transfers", "duty_to_share", "status", "system"),
     ("administrator",)),
    ("accounts.index", "Accounts", ("accounts", "vetting"), ("administrator",)),
    ("search_queue.index", "Search requests", ("search_queue", "national_index"), ("administrator",)),
    ("reports.index", "Reports", ("reports", "audit_trail", "authority_settings"), ("administrator",)),
    ("duty_to_share.shared_with_me", "Shared with you", (), ("practitioner",)),
    ("services_directory.index", "Services", ("services_directory",), ("practitioner", "administrator", "service_team")),
    ("process_library.index", "Processes", ("process_library", "process_migrations", "process_guide"),
     ("process_owner", "administrator")),
    ("auth.account", "Your account", ("auth", "passkey_settings", "passkeys"), None),
]
# The pages of an administrator's group, offered under the menu while one of them is open:
# endpoint, label, and the blueprints whose pages it heads.
GROUP_PAGES = {
    "admin.dashboard": [("admin.dashboard", "Dashboard", ("admin",)),
                        ("transfer_requests.index", "Moving episodes", ("transfer_requests", "transfers")),
                        ("duty_to_share.approvals", "Decisions to share", ("duty_to_share",)),
                        ("status.index", "Service status", ("status",)),
                        ("system.index", "System", ("system",))],
    "accounts.index": [("accounts.index", "Accounts", ("accounts",)),
                       ("accounts.applications", "Applications", ()),
                       ("vetting.index", "Vetting and training", ("vetting",))],
    "search_queue.index": [("search_queue.index", "Search requests", ("search_queue",)),
                           ("national_index.search", "Is there a CAF?", ("national_index",))],
    "reports.index": [("reports.index", "Reports", ("reports",)),
                      ("audit_trail.browse", "Audit trail", ("audit_trail",)),
                      ("authority_settings.settings", "Settings", ("authority_settings",))],
}


def _heading(entries: list, endpoint: str, blueprint: str):
    """The entry for the page shown: the one it is, or else the first whose blueprints hold it."""
    return (next((e for e in entries if e[0] == endpoint), None)
            or next((e for e in entries if blueprint in e[2]), None))


def _offered(user, roles: tuple[str, ...] | None) -> bool:
    """Whether the menu names an entry to the user: each role sees the pages its routes admit (the
    routes' own role gates decide access, not the menu)."""
    return roles is None or user.role in roles


def menu(user, endpoint: str | None) -> tuple[list[dict], list[dict]]:
    """The menu entries for the user's role and, for an administrator inside a group, the group's
    pages; each says whether it is the page (or heads the page) being shown."""
    endpoint = endpoint or ""
    blueprint = endpoint.split(".")[0]
    mine = [entry for entry in MENU if _offered(user, entry[3])]
    active = _heading(mine, endpoint, blueprint)
    entries = [{"endpoint": e[0], "label": e[1], "active": e is active} for e in mine]
    pages = []
    if active is not None and active[0] in GROUP_PAGES:  # groups are the administrators' entries
        group = GROUP_PAGES[active[0]]
        shown = _heading(group, endpoint, blueprint)
        pages = [{"endpoint": e[0], "label": e[1], "active": e is shown} for e in group]
    return entries, pages


def install(app: Flask) -> None:
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["date_time"] = date_time
    app.jinja_env.filters["nhs_number"] = nhs_number.formatted
    app.jinja_env.filters["nhs_number_missing"] = lambda reason: nhs_number.MISSING_REASONS.get(reason, reason)
    app.jinja_env.filters["text_or_time"] = text_or_time
    app.jinja_env.filters["organisation_kind"] = lambda kind: ORGANISATION_KINDS.get(kind, kind)
    app.jinja_env.filters["section_title"] = lambda name, titles: titles.get(name, name)
    app.jinja_env.globals["service_name"] = "eCAF"
    app.jinja_env.globals["menu"] = menu

    @app.context_processor
    def contacts():
        return {"support": support_contacts()}
