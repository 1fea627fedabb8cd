"""Validator and parse problems placed on the fields they name, in GOV.UK wording."""
from __future__ import annotations

import re

from app.forms import schema_reading as read
from app.forms.model import Field, Form

REQUIRED_MESSAGE = "Enter this information"  # what app.engine.forms.validate says for `required`


def attach_errors(form: Form, errors: list[dict]) -> list[str]:
    """Put each error on the field its path names (or the nearest enclosing one). Returns the rest."""
    by_path = {f.path: f for f in form.walk()}
    unplaced = []
    for error in errors:
        path, message = str(error.get("field") or ""), str(error.get("message") or "")
        target = by_path.get(path)
        while target is None and "." in path:
            path = path.rsplit(".", 1)[0]
            target = by_path.get(path)
        if target is None:
            unplaced.append(message)
        elif target.widget == "group" and message == REQUIRED_MESSAGE and _blank_required(target):
            for child in _blank_required(target):  # a missing section: name the answers it needs
                child.error = child.error or _humanise(child, message)
        elif target.error is None:  # one message per field, the first one found
            target.error = _humanise(target, message)
    return unplaced


def _blank_required(group: Field) -> list[Field]:
    found = []
    for child in group.children:
        for asked in [child] + child.revealed():
            if asked.widget == "group" and asked.required:
                found += _blank_required(asked)
            elif asked.required and read.blank(asked.value):
                found.append(asked)
    return found


def _humanise(f: Field, message: str) -> str:
    """Validator wording -> GOV.UK style messages that name the field."""
    label, lower = f.label, read.lower_first(f.label)
    if message == REQUIRED_MESSAGE:
        if f.widget == "rows":
            return f"Add at least one {read.lower_first(f.item_title)}"
        if f.widget == "person":
            if f.person["choice"] == read.OTHER_PERSON:
                return "Enter the email address they sign in to eCAF with"
            return f"Select the {lower}"
        if f.widget == "group":
            return f"Complete ‘{label}’"
        if f.label.endswith("?"):
            return f"Answer ‘{label}’"
        if f.widget == "checkbox":
            return f"Select ‘{label}’"
        if f.widget in ("radios", "select", "checkboxes"):
            return f"Select {lower}"
        return f"Enter {lower}"
    if message.startswith("Enter a real date"):
        return f"{label} must be a real date"
    if message.endswith("is too long"):
        if f.widget in ("rows", "checkboxes") and f.max_items:
            return f"{label} can have up to {f.max_items} entries"
        if f.max_length:
            return f"{label} must be {f.max_length:,} characters or fewer"
    if message.endswith("is not valid under any of the given schemas") or " is not one of " in message:
        return f"Select {lower} from the list"
    if message.endswith("is not a 'email'"):
        return "Enter an email address in the correct format, like name@example.com"
    minimum = re.search(r"is less than the minimum of (\S+)$", message)
    if minimum:
        return f"{label} must be {minimum.group(1)} or more"
    maximum = re.search(r"is greater than the maximum of (\S+)$", message)
    if maximum:
        return f"{label} must be {maximum.group(1)} or less"
    if "is not of type 'integer'" in message:
        return f"{label} must be a whole number"
    return message
