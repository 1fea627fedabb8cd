"""The services directory: practitioners read what each service offers and needs; administrators keep it."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app.policy import directory as directory_policy
from app.models import Service
from app.services import directory
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import text

bp = Blueprint("services_directory", __name__)
READERS = directory_policy.DIRECTORY_READERS
# The order of the fields on the page, so the error summary follows it.
FIELDS = ["name", "offers", "contact_name", "contact_email", "contact_phone", "required_evidence",
          "response_working_days", "email"]


def _details_from(form) -> tuple[dict, directory.ServiceDetails]:
    typed = {"name": text(form, "name", directory.MAX_NAME), "offers": text(form, "offers", directory.MAX_OFFERS),
             "contact_name": text(form, "contact_name", directory.MAX_CONTACT),
             "contact_email": text(form, "contact_email", directory.MAX_EMAIL),
             "contact_phone": text(form, "contact_phone", directory.MAX_PHONE),
             "required_evidence": text(form, "required_evidence", 5000),
             "response_working_days": text(form, "response_working_days", 3),
             "active": form.get("active") == "yes"}
    evidence = directory.evidence_lines(typed["required_evidence"])
    details = directory.ServiceDetails(**{**typed, "required_evidence": evidence})
    return typed, details


def _typed_from(service: Service) -> dict:
    return {"name": service.name, "offers": service.offers, "contact_name": service.contact_name or "",
            "contact_email": service.contact_email or "", "contact_phone": service.contact_phone or "",
            "required_evidence": "\n".join(service.required_evidence or []),
            "response_working_days": str(service.response_working_days), "active": service.active}


def _service_or_404(session, service_id: int) -> Service:
    service = directory.service_of(session, current_user(), service_id)
    if service is None:
        deny(session, f"service {service_id}")
    return service


def _form_page(service: Service | None, typed: dict, errors: dict, email: str = ""):
    return render_template("services_directory/form.html", service=service, typed=typed, errors=errors,
                           email=email, fields=FIELDS), 400 if errors else 200


@bp.get("/services")
@roles(*READERS)
def index():
    user = current_user()
    with runtime().db.session() as session:
        everything = directory.services_of(session, user, active_only=False)
        active = [s for s in everything if s.active]
        # Only administrators see the services taken out of the directory, to bring them back.
        keeper = directory_policy.may_keep_directory(user)
        inactive = [s for s in everything if not s.active] if keeper else []
        return render_template("services_directory/index.html", services=active, inactive=inactive,
                               is_admin=keeper)


@bp.route("/services/new", methods=["GET", "POST"])
@roles(*directory_policy.DIRECTORY_KEEPERS)
def create():
    typed, errors = {"active": True, "response_working_days": "10"}, {}
    with runtime().db.session() as session:
        if request.method == "POST":
            typed, details = _details_from(request.form)
            service, errors = directory.create_service(session, current_user(), details)
            if not errors:
                service_id, name = service.id, service.name
                session.commit()
                flash(f"{name} is added to the services directory. Add its team members below.", "success")
                return redirect(url_for("services_directory.edit", service_id=service_id))
        return _form_page(None, typed, errors)


@bp.route("/services/<int:service_id>/edit", methods=["GET", "POST"])
@roles(*directory_policy.DIRECTORY_KEEPERS)
def edit(service_id: int):
    with runtime().db.session() as session:
        service = _service_or_404(session, service_id)
        typed, errors = _typed_from(service), {}
        if request.method == "POST":
            typed, details = _details_from(request.form)
            errors = directory.edit_service(session, current_user(), service, details)
            if not errors:
                name = service.name
                session.commit()
                flash(f"{name} is saved.", "success")
                return redirect(url_for("services_directory.index"))
        return _form_page(service, typed, errors)


@bp.post("/services/<int:service_id>/members")
@roles(*directory_policy.DIRECTORY_KEEPERS)
def add_member(service_id: int):
    email = text(request.form, "email", directory.MAX_EMAIL)
    with runtime().db.session() as session:
        service = _service_or_404(session, service_id)
        user, errors = directory.add_member(session, current_user(), service, email)
        if errors:
            return _form_page(service, _typed_from(service), errors, email)
        name, service_name = user.full_name, service.name
        session.commit()
    flash(f"{name} is now a member of {service_name}.", "success")
    return redirect(url_for("services_directory.edit", service_id=service_id))


@bp.post("/services/<int:service_id>/members/<int:member_id>/remove")
@roles(*directory_policy.DIRECTORY_KEEPERS)
def remove_member(service_id: int, member_id: int):
    with runtime().db.session() as session:
        service = _service_or_404(session, service_id)
        user = directory.remove_member(session, current_user(), service, member_id)
        if user is None:
            abort(404)
        name, service_name = user.full_name, service.name
        session.commit()
    flash(f"{name} is no longer a member of {service_name}.", "success")
    return redirect(url_for("services_directory.edit", service_id=service_id))
