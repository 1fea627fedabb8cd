"""The episode page: the child, the people, deadlines, the timeline, the records, the diagram; print and PDF."""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit, policy
from app.clock import now
from app.models import Artefact, Contribution, Episode, ProcessVersion, ServiceRequest
from app.services import episode_record as record
from app.services import families
from app.web import deadlines, printing, request_db, runtime
from app.web.access import current_user, episode_or_404, signed_in
from app.web.schema_form import summary

bp = Blueprint("episodes", __name__, url_prefix="/episodes")
bp.record_once(lambda state: deadlines.install(state.app))  # deadlines read the same on every page


def _episode_or_404(session, episode_id: int) -> Episode:
    return episode_or_404(session, episode_id, f"episode {episode_id}")


@bp.get("/<int:episode_id>")
@signed_in
def show(episode_id: int):
    with request_db.transaction() as session:  # in the transaction the session row was read in
        episode = _episode_or_404(session, episode_id)
        audit.record(session, "episode_viewed", actor_id=current_user().id, episode_id=episode.id)
        tasks = record.ready_tasks(session, episode)
        positions = runtime().engine.positions(episode)
        last = record.last_step(session, episode)
        page = render_template(
            "episodes/show.html", episode=episode, child=episode.child, people=record.people(session, episode),
            deadlines=record.deadlines(session, episode, tasks), timeline=record.timeline(session, episode),
            artefacts=record.artefacts(session, episode, summary), tasks=tasks,
            my_tasks={t.id for t in tasks if policy.may_complete(current_user(), t)},
            siblings=_siblings(session, episode), positions=positions,
            family_id=families.family_of_child(session, episode.child_id),
            may_add_sibling=policy.may_start_sibling_caf(session, current_user(), episode_id=episode.id),
            stages=record.stages(episode, positions), current_steps=record.own_steps(tasks), last_step=last,
            protection_due=record.protection_due(session, episode, tasks), outcome=record.outcome_text(episode),
            requests_made=episode.is_open or _has(session, ServiceRequest, episode),
            contributions_made=episode.is_open or _has(session, Contribution, episode),
            printable=record.PRINTABLE,
            may=policy.permissions(session, current_user(), episode))
    return page


@bp.get("/<int:episode_id>/outcome")
@signed_in
def outcome(episode_id: int):
    """How a CAF ended, said as an outcome: what it means, what was kept, what to do now."""
    with request_db.transaction() as session:
        episode = _episode_or_404(session, episode_id)
        if episode.is_open:
            return redirect(url_for("episodes.show", episode_id=episode.id))
        # The child's name, the refusal's reason and how long the record is kept: a view of the CAF.
        audit.record(session, "episode_viewed", actor_id=current_user().id, episode_id=episode.id, page="outcome")
        refusal = session.scalar(select(Artefact).where(Artefact.episode_id == episode.id,
                                                        Artefact.kind == "consent_refusal")
                                 .order_by(Artefact.version.desc()).limit(1))
        template = "episodes/refused.html" if episode.outcome == "consent_refused" else "episodes/closed.html"
        return render_template(template, episode=episode, child=episode.child, refusal=refusal,
                               outcome=record.outcome_text(episode), kept_until=record.kept_until(episode))


def _has(session, model, episode: Episode) -> bool:
    """Whether a closed episode has any of these (requests, contributions) to look back at."""
    return session.scalar(select(model.id).where(model.episode_id == episode.id).limit(1)) is not None


def _siblings(session, episode: Episode) -> list[Episode]:
    if not episode.sibling_group:
        return []
    return session.scalars(select(Episode).where(Episode.sibling_group == episode.sibling_group,
                                                 Episode.id != episode.id, Episode.status != "deleted",
                                                 policy.episode_filter(current_user()))).all()


@bp.get("/<int:episode_id>/diagram.bpmn")
@signed_in
def diagram(episode_id: int):
    """The BPMN of the version this episode runs on, for the read-only diagram."""
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        version: ProcessVersion = episode.process_version
        files = version.bpmn_files
        main = next((xml for xml in files.values() if f'id="{version.process_id}"' in xml),
                    next(iter(files.values())))
    return Response(main, mimetype="application/xml", headers={"X-Content-Type-Options": "nosniff"})


@bp.get("/<int:episode_id>/records/<int:artefact_id>")
@signed_in
def artefact(episode_id: int, artefact_id: int):
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        row = session.get(Artefact, artefact_id)
        if row is None or row.episode_id != episode.id or row.kind == "contact":
            abort(404)
        audit.record(session, "artefact_viewed", actor_id=current_user().id, episode_id=episode.id,
                     kind=row.kind, version=row.version)
        versions = session.scalars(select(Artefact).where(Artefact.episode_id == episode.id,
                                                          Artefact.kind == row.kind)
                                   .order_by(Artefact.version.desc())).all()
        view = record.artefact_view(session, episode, row, summary, latest=row.version == versions[0].version)
        return render_template("episodes/artefact.html", episode=episode, artefact=view, raw=row,
                               versions=versions, printable=record.PRINTABLE)


def _print_context(session, episode: Episode, artefact_id: int | None):
    """The records a print shows: one chosen record, or the latest of each printable kind."""
    query = select(Artefact).where(Artefact.episode_id == episode.id, Artefact.kind.in_(record.PRINTABLE))
    rows = session.scalars(query.order_by(Artefact.kind, Artefact.version.desc())).all()
    if artefact_id is not None:
        rows = [r for r in rows if r.id == artefact_id]
        if not rows:
            abort(404)
    else:
        newest: dict[str, Artefact] = {}
        for row in rows:  # newest version first within each kind
            newest.setdefault(row.kind, row)
        reviews = [r for r in rows if r.kind == "review"]
        rows = [newest[k] for k in record.PRINTABLE if k in newest and k != "review"] + reviews
    views = [(record.artefact_view(session, episode, r, summary), r.data.get("signature")) for r in rows]
    return {"episode": episode, "child": episode.child, "records": views, "printed_by": current_user(),
            "printed_at": now()}


def _chosen_artefact() -> int | None:
    value = request.args.get("record", "")
    return int(value) if value.isdigit() else None


def _printed(episode_id: int, action: str, *, pdf: bool) -> tuple[str, str]:
    """The print page's HTML and the episode reference; the print is recorded in the audit trail."""
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        context = _print_context(session, episode, _chosen_artefact())
        html = render_template("episodes/print.html", pdf=pdf, **context)
        audit.record(session, action, actor_id=current_user().id, episode_id=episode.id,
                     records=[v.kind for v, _ in context["records"]])
        return html, episode.reference


@bp.get("/<int:episode_id>/print")
@signed_in
def print_view(episode_id: int):
    html, _ = _printed(episode_id, "episode_printed", pdf=False)
    return html


@bp.get("/<int:episode_id>/print.pdf")
@signed_in
def print_pdf(episode_id: int):
    html, reference = _printed(episode_id, "episode_pdf_downloaded", pdf=True)
    return Response(printing.html_to_pdf(html), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="CAF-{reference}.pdf"'})
