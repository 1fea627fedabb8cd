"""Headline outcomes of an episode: what its forms say of them, the rules those statements follow, and
the rows (outcome_record) that keep them for reports.

A plan chooses the outcomes it works towards; each review and the final summary record progress
against exactly those; six months after a closure with outcomes met, the check says whether each
outcome met was sustained. The rules are plain functions of the submitted data and what was recorded
before, so the form page and the step that completes the task ask the same questions."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import now
from app.models import HEADLINE_OUTCOMES, Artefact, Episode, HumanTask, OutcomeRecord

# The forms that speak of outcomes (by schema file), the stage they record and the field they use.
FORMS = {
    "action_plan": ("action_plan", "headline_outcomes"),
    "review": ("review", "outcome_progress"),
    "final_summary": ("closure", "outcome_progress"),
    "outcome_sustained": ("six_months", "outcome_sustained"),
}
SUSTAINED = {"yes": "sustained", "no": "not_sustained"}
_ORDER = {code: n for n, code in enumerate(HEADLINE_OUTCOMES)}


def form_kind(form_file: str | None) -> str | None:
    """The FORMS key of a task's schema file, or None when the form says nothing of outcomes."""
    stem = (form_file or "").removesuffix(".schema.json")
    return stem if stem in FORMS else None


def title(code: str) -> str:
    return HEADLINE_OUTCOMES.get(code, code)


# ---------------------------------------------------------------- what was recorded before

def _latest(session: Session, episode_id: int, stage: str) -> list[OutcomeRecord]:
    """The statements of the latest submission of a stage (all rows of one form share its task id)."""
    rows = list(session.scalars(select(OutcomeRecord).where(
        OutcomeRecord.episode_id == episode_id, OutcomeRecord.stage == stage).order_by(OutcomeRecord.id)))
    if not rows:
        return []
    last = rows[-1].human_task_id
    return [row for row in rows if row.human_task_id == last]


def chosen(session: Session, episode_id: int) -> list[str]:
    """The headline outcomes the episode's current action plan works towards. An episode moved from
    another authority brings its plans as records only: their latest plan's choice stands until the
    next plan here."""
    rows = _latest(session, episode_id, "action_plan")
    if rows:
        return [row.outcome for row in rows]
    plan = session.scalar(select(Artefact.data).where(Artefact.episode_id == episode_id, Artefact.kind == "action_plan")
                          .order_by(Artefact.version.desc()).limit(1))
    codes = (plan or {}).get("headline_outcomes") or []
    return [code for code in codes if code in HEADLINE_OUTCOMES]


def met_at_closure(session: Session, episode_id: int) -> list[str]:
    return [row.outcome for row in _latest(session, episode_id, "closure") if row.progress == "met"]


def expected(session: Session, episode_id: int, kind: str) -> list[str]:
    """The outcomes a form of this kind must speak of: the plan's for progress, those met for the check."""
    return met_at_closure(session, episode_id) if kind == "outcome_sustained" else chosen(session, episode_id)


# ---------------------------------------------------------------- the rules

def problems(kind: str, data: dict, expected_codes: list[str]) -> list[dict]:
    """What is wrong with the outcomes a submitted form states, one message per field."""
    if kind == "action_plan":
        return []  # the schema itself asks for at least one known outcome
    field = FORMS[kind][1]
    stated = data.get(field) or {}
    errors = []
    for code in stated:
        if code not in expected_codes:
            why = ("was not met at closure" if kind == "outcome_sustained"
                   else "is not one of the headline outcomes chosen in the action plan")
            errors.append({"field": f"{field}.{code}", "message": f"“{title(code)}” {why}: leave it out"})
    answer = "sustained" if kind == "outcome_sustained" else "progress"
    for code in expected_codes:
        given = stated.get(code) or {}
        if not given.get(answer):
            verb = "Say whether" if kind == "outcome_sustained" else "Select the progress towards"
            tail = " was sustained" if kind == "outcome_sustained" else ""
            errors.append({"field": f"{field}.{code}.{answer}", "message": f"{verb} “{title(code)}”{tail}"})
        elif not given.get("evidence") and (kind == "outcome_sustained" or given.get(answer) == "met"):
            errors.append({"field": f"{field}.{code}.evidence",
                           "message": f"Enter the evidence for “{title(code)}”"})
    return errors


def statements(kind: str, data: dict) -> list[tuple[str, str, str | None]]:
    """(outcome, progress, evidence) for each outcome a submitted form speaks of."""
    field = FORMS[kind][1]
    if kind == "action_plan":
        return [(code, "chosen", None) for code in data.get(field) or []]
    found = []
    stated = data.get(field) or {}
    # In the framework's order (PostgreSQL's JSONB keeps no order of its own).
    for code, answer in sorted(stated.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER))):
        if kind == "outcome_sustained":
            progress = SUSTAINED.get(answer.get("sustained"))
        else:
            progress = answer.get("progress")
        if progress:
            found.append((code, progress, answer.get("evidence")))
    return found


def record(session: Session, episode: Episode, kind: str, form: HumanTask) -> dict[str, str]:
    """Keep what a completed form says of each outcome; returns {outcome: progress}."""
    stage = FORMS[kind][0]
    written = {}
    for code, progress, evidence in statements(kind, form.submitted_data or {}):
        if code not in HEADLINE_OUTCOMES:
            raise ValueError(f"{code!r} is not a headline outcome")
        session.add(OutcomeRecord(episode_id=episode.id, authority_id=episode.authority_id, outcome=code,
                                  stage=stage, progress=progress, evidence=evidence, human_task_id=form.id,
                                  recorded_by_id=form.completed_by_id, recorded_at=now()))
        written[code] = progress
    session.flush()
    return written
