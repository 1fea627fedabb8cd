"""The child's NHS number as a form asks for it: the number, or which of the Act's exceptions applies.

Field names carry a prefix ("child-0-" on Start a CAF's rows); errors are keyed by the ids the
templates give the fields (components/child_identity.html), so the error summary links to them.
"""
from __future__ import annotations

from dataclasses import dataclass

from app import nhs_number


@dataclass
class NhsIdentity:
    number: str | None = None  # the ten digits, checked
    missing: str | None = None  # a key of nhs_number.MISSING_REASONS


def field_id(prefix: str, name: str) -> str:
    return f"{prefix}{name}".replace("_", "-")


def typed(form, prefix: str = "") -> dict:
    """What was typed and chosen, kept to show the form again."""
    return {"nhs_number": (form.get(f"{prefix}nhs_number") or "").strip()[:40],
            "nhs_number_missing": (form.get(f"{prefix}nhs_number_missing") or "").strip()[:20]}


def read(values: dict, prefix: str = "", *, who: str = "the child",
         choice_required: bool = False) -> tuple[NhsIdentity, dict[str, str]]:
    """The NHS number or the reason it is missing, from `typed` values, and any problems by field id.

    `choice_required`: recording a child asks for one or the other (never both); a search takes the
    number alone, when it is known."""
    number, missing = values.get("nhs_number", ""), values.get("nhs_number_missing", "")
    number_id, missing_id = field_id(prefix, "nhs_number"), field_id(prefix, "nhs_number_missing")
    errors = {}
    if missing and missing not in nhs_number.MISSING_REASONS:
        errors[missing_id] = f"Choose why the NHS number of {who} is not included"
    elif number and missing and choice_required:
        errors[number_id] = (f"Enter the NHS number of {who}, or choose why it is not included, not both")
    elif number:
        problem = nhs_number.problem(number)
        if problem:
            errors[number_id] = problem.replace("NHS number", f"the NHS number of {who}", 1) \
                if problem.startswith("NHS number") else problem
            errors[number_id] = errors[number_id][0].upper() + errors[number_id][1:]
    elif choice_required and not missing:
        errors[number_id] = f"Enter the NHS number of {who}, or choose why it is not included"
    if errors:
        return NhsIdentity(), errors
    return NhsIdentity(number=nhs_number.digits(number) or None, missing=None if number else (missing or None)), {}
