"""What every page's layout needs: support contacts, navigation and display filters."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask_login import current_user

from app.clock import as_utc
from app.models import ORGANISATION_KINDS
from app.web import runtime

LONDON = ZoneInfo("Europe/London")


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


def long_date(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = as_utc(value).astimezone(LONDON).date()
    return f"{value.day} {value:%B %Y}"


def date_time(value) -> str:
    if value is None:
        return ""
    local = as_utc(value).astimezone(LONDON)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def install(app: Flask) -> None:
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["date_time"] = date_time
    app.jinja_env.filters["organisation_kind"] = lambda kind: ORGANISATION_KINDS.get(kind, kind)
    app.jinja_env.filters["section_title"] = lambda name, titles: titles.get(name, name)
    app.jinja_env.globals["service_name"] = "eCAF"

    @app.context_processor
    def contacts():
        return {"support": support_contacts()}
