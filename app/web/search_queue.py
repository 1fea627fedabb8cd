"""The administrator's queue of search requests: search for each child, link what was found, answer."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import object_session

from app import outbox
from app.audit_lists import episodes_shown
from app.services import search_queue as service
from app.services.children import normalise_postcode, valid_postcode
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("search_queue", __name__)
MAX_ANSWER, MAX_NOTE = 4000, 1000


@bp.app_template_filter("caf_finding")
def caf_finding(request_child) -> service.Finding:
    """What the requester is told about one child of an answered request (see search_requests/show.html)."""
    session = object_session(request_child)
    if session is not None:
        return service.finding(session, request_child)
    with runtime().db.session() as fresh:
        return service.finding(fresh, request_child)


@bp.get("/admin/search-requests")
@roles("administrator")
def index():
    with runtime().db.session() as session:
        found = service.queue(session, current_user())
        listed = found.waiting + found.answered
        episodes_shown(session, current_user().id, "search_queue",
                       [c.matched_episode_id for r in listed for c in r.children],
                       search_requests=[r.id for r in listed])
        return render_template("search_queue/index.html", queue=found)


def _request_or_404(session, request_id: int, *, lock: bool = False):
    found = service.request_for(session, current_user(), request_id, lock=lock)
    if found is None:
        deny(session, f"search request {request_id}")
    return found


def _other_details(found) -> tuple[dict, dict, dict]:
    """The administrator's own search for one child, from the query string: (typed, errors, {child id: keys})."""
    args = request.args
    typed = {"for_child": text(args, "for_child", 20), "given_names": text(args, "other_given_names", 200),
             "family_name": text(args, "other_family_name", 200), "dob": date_parts(args, "other_date_of_birth"),
             "postcode": text(args, "other_postcode", 10)}
    if not typed["for_child"]:
        return typed, {}, {}
    errors = {}
    children = {str(c.id): c for c in found.children}
    if typed["for_child"] not in children:
        errors["for-child"] = "Select the child you are searching for"
    born, problem = parse_date(typed["dob"], "the date of birth", past=True)
    if problem:
        errors["other-date-of-birth-day"] = problem
    postcode = normalise_postcode(typed["postcode"])
    if not valid_postcode(postcode):
        errors["other-postcode"] = "Enter a real postcode, like W9 2AB"
    given = sum(bool(v) for v in (typed["given_names"], typed["family_name"], born, postcode))
    if not errors and given < 2:
        errors["other-family-name"] = "Enter at least two of: given names, family name, date of birth, postcode"
    if errors:
        return typed, errors, {}
    keys = service.Keys(typed["given_names"], typed["family_name"], born, postcode)
    return typed, errors, {children[typed["for_child"]].id: keys}


def _answer_typed(found) -> dict:
    form = request.form
    return {"answer": text(form, "answer", MAX_ANSWER),
            "choices": {c.id: (form.get(f"match-{c.id}") or "").strip()[:20] for c in found.children},
            "notes": {c.id: text(form, f"note-{c.id}", MAX_NOTE) for c in found.children}}


def _length_problems(typed: dict) -> dict:
    problems = {}
    if len(typed["answer"]) > MAX_ANSWER:
        problems["answer"] = f"The answer must be {MAX_ANSWER} characters or fewer"
    for child_id, note in typed["notes"].items():
        if len(note) > MAX_NOTE:
            problems[f"note-{child_id}"] = f"A note must be {MAX_NOTE} characters or fewer"
    return problems


@bp.route("/admin/search-requests/<int:request_id>", methods=["GET", "POST"])
@roles("administrator")
def show(request_id: int):
    posted = request.method == "POST"
    with runtime().db.session() as session:
        found = _request_or_404(session, request_id, lock=posted)
        other, errors, extra = _other_details(found)
        typed = {"answer": "", "choices": {}, "notes": {}}
        if posted:
            if found.status == "answered":
                flash(f"Search request {found.reference} was answered already: it cannot be answered again.",
                      "important")
                return redirect(url_for("search_queue.show", request_id=request_id))
            typed = _answer_typed(found)
            errors = _length_problems(typed) or _send(session, found, typed)
            if not errors:
                flash(f"Your answer to search request {found.reference} has been sent.", "success")
                return redirect(url_for("search_queue.index"))
        return _page(session, found, typed, other, errors, extra)


def _send(session, found, typed: dict) -> dict:
    """Answer the request and commit, then ask for the email to go; the problems if it cannot be sent."""
    try:
        message_id = service.answer(session, current_user(), found, typed["choices"], typed["notes"], typed["answer"])
    except service.AnswerInvalid as exc:
        return exc.problems
    session.commit()
    outbox.deliver_soon(runtime(), [message_id])
    return {}


def _page(session, found, typed: dict, other: dict, errors: dict, extra: dict):
    children, linked = [], {}
    if found.status == "submitted":
        children = service.search_for_request(session, current_user(), found, extra)
    else:
        linked = service.linked_episodes(session, found)
        episodes_shown(session, current_user().id, "search_request", [e.id for e in linked.values()],
                       action="search_request_viewed", request_id=found.id)
    return render_template("search_queue/show.html", sr=found, children=children, linked=linked, typed=typed,
                           other=other, errors=errors, error_title=bool(errors),
                           order=_error_order(found)), 400 if errors else 200


def _error_order(found) -> list[str]:
    fields = ["for-child", "other-family-name", "other-date-of-birth-day", "other-postcode"]
    for child in found.children:
        fields += [f"match-{child.id}", f"note-{child.id}"]
    return fields + ["answer"]
