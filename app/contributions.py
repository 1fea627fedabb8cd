"""Contributions: the lead professional invites a member to write named sections of the assessment.

Switched off unless the authority turns them on. The contributor's form is the assessment's own
form cut down to the invited sections; what they write goes into the assessment only when the
lead professional takes it in (into the assessment being written, or as a new version of a
submitted one).
"""
from __future__ import annotations

import copy

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.engine.forms import load_form
from app.forms import sections as parts
from app.forms.building import to_raw
from app.engine.library import forms_of
from app.models import Artefact, Contribution, Episode, HumanTask

ASSESSMENT_FORM = "assessment.schema.json"
ASSESSMENT_UI = "assessment.uischema.json"
CONTRIBUTION_FORM = "contribution.schema.json"
CONTRIBUTION_UI = "contribution.uischema.json"
STATUS_LABELS = {"invited": "Being written", "submitted": "Waiting for the lead professional",
                 "returned": "Returned to the contributor", "accepted": "In the assessment",
                 "cancelled": "Cancelled"}


def _form(forms: dict | None, name: str) -> dict:
    """A form of the episode's process version, parsed once (shared: not to be changed)."""
    return load_form(forms, name) if forms and name in forms else {}


def sections_of(episode: Episode) -> dict[str, str]:
    """The assessment's sections by name, from the episode's own process version."""
    schema = _form(forms_of(episode.process_version), ASSESSMENT_FORM)
    return {name: part.get("title", name) for name, part in (schema.get("properties") or {}).items()}


def form_for(episode: Episode, contribution: Contribution) -> tuple[dict, dict]:
    """The assessment's schema and UI schema, limited to the invited sections."""
    forms = forms_of(episode.process_version)
    schema = _form(forms, ASSESSMENT_FORM)
    ui = _form(forms, ASSESSMENT_UI)
    wanted = [s for s in contribution.sections if s in (schema.get("properties") or {})]
    cut = {key: value for key, value in schema.items() if key not in ("properties", "required", "allOf",
                                                                        "if", "then", "else")}
    cut["title"] = "Your contribution to the assessment"
    cut["properties"] = {name: copy.deepcopy(schema["properties"][name]) for name in wanted}
    cut_ui = {name: ui[name] for name in wanted if name in ui}
    # The contribution form's own fields (a comment to the lead professional) follow the sections.
    own = _form(forms, CONTRIBUTION_FORM)
    own_ui = _form(forms, CONTRIBUTION_UI)
    for name, part in (own.get("properties") or {}).items():
        cut["properties"].setdefault(name, part)
        if name in own_ui:
            cut_ui[name] = own_ui[name]
    cut_ui["ui:order"] = list(cut["properties"])
    return cut, cut_ui


def assessment_in_progress(session: Session, episode_id: int) -> HumanTask | None:
    return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                  HumanTask.name == "complete_assessment",
                                                  HumanTask.status == "ready"))


def latest_assessment(session: Session, episode_id: int) -> Artefact | None:
    return session.scalar(select(Artefact).where(Artefact.episode_id == episode_id, Artefact.kind == "assessment")
                          .order_by(Artefact.version.desc()).limit(1))


def prefill(session: Session, contribution: Contribution) -> dict:
    """What the contributor starts from: their last version, else the sections as they stand."""
    if contribution.content:
        return dict(contribution.content)
    in_progress = assessment_in_progress(session, contribution.episode_id)
    if in_progress is not None and in_progress.draft:
        current = in_progress.draft.get("data") or {}
    else:
        stored = latest_assessment(session, contribution.episode_id)
        current = stored.data if stored else {}
    return {name: current[name] for name in contribution.sections if name in current}


def taken_into_draft(draft: dict | None, episode: Episode, written: dict) -> dict:
    """The assessment's draft with contributed sections taken in, as the form shows a draft: its
    answers and what was "typed" (the form shows a draft's raw when it has one). Everything else the
    author saved stays: other sections, their statuses, their unchecked problems, when it was saved.
    On a sectioned assessment each contributed section reads "In progress" for the author to check."""
    forms = forms_of(episode.process_version)
    schema, ui = _form(forms, ASSESSMENT_FORM), _form(forms, ASSESSMENT_UI)
    kept = dict(draft or {})
    if parts.is_sectioned(schema, ui):
        raw = to_raw(schema, ui, written)
        for section in parts.sections(schema, ui):
            if section.path[0] in written:
                kept = parts.with_section(kept, section.name, written, raw, parts.IN_PROGRESS)
        return kept
    kept["data"] = {**(kept.get("data") or {}), **written}
    if isinstance(kept.get("raw"), dict):
        kept["raw"] = {**kept["raw"], **to_raw(schema, ui, written)}
    return kept
