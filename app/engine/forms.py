"""User-task forms: JSON Schemas that ship with each process version, validated on the server."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from . import form_patterns

TASK_DATA_KEY = "x-ecaf-task-data"  # fields a form hands to the workflow (gateways, timers)
MESSAGE_KEY = "x-ecaf-message"  # a rule's own error message, in the words of the form's users
USER_EMAIL_FORMAT = "ecaf-user-email"


def form_files(task_spec) -> tuple[str | None, str | None]:
    props = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
    return props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename")


@lru_cache(maxsize=256)
def _parse(text: str) -> dict:
    return json.loads(text)


def load_form(forms: dict[str, str], filename: str) -> dict:
    if filename not in forms:
        raise KeyError(f"form {filename} is not part of this process version")
    return _parse(forms[filename])


def check_schema(schema: dict) -> str | None:
    """None when the schema is a valid JSON Schema, else what is wrong with it."""
    if problems := form_patterns.schema_problems(schema):  # first: these name the pattern's JSON path
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return "; ".join(problems[:3]) + more
    return _metaschema_problem(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=256)
def _metaschema_problem(canonical: str) -> str | None:
    """Checking a form against JSON Schema's metaschema is most of a deploy's time (about 50 ms a form);
    the answer depends on the text alone, so a form already checked in this process is not checked again."""
    try:
        Draft202012Validator.check_schema(json.loads(canonical))
    except SchemaError as exc:
        return exc.message
    return None


def strip_blanks(value: Any) -> Any:
    """Blank answers are left out rather than stored as empty strings (never force "N/A")."""
    if isinstance(value, dict):
        cleaned = {k: strip_blanks(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in ("", None, {})}
    if isinstance(value, list):
        return [strip_blanks(v) for v in value if strip_blanks(v) not in ("", None, {})]
    if isinstance(value, str):
        return value.strip()
    return value


class _PersonRefused(Exception):
    """Why an `ecaf-user-email` answer may not name that account here, in words for the form."""


def validate(schema: dict, data: dict, *, user_exists: Callable[[str], bool | str] | None = None) -> list[dict]:
    """Every problem with `data`, each as {"field": dotted path, "message": text}. `user_exists(email)`
    answers the `ecaf-user-email` format: True, False (no such account) or the message to show."""
    checker = FormatChecker()
    if user_exists is not None:
        def named(value) -> bool:
            answer = user_exists(value) if isinstance(value, str) else True
            if isinstance(answer, str):
                raise _PersonRefused(answer)
            return answer

        checker.checks(USER_EMAIL_FORMAT, raises=_PersonRefused)(named)
    validator = form_patterns.Validator(schema, format_checker=checker)
    with form_patterns.time_limit() as budget:
        found = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if budget.unchecked and not any(isinstance(e, form_patterns.Unchecked) for e in found):
        found.append(form_patterns.Unchecked(form_patterns.TIMED_OUT))  # unchecked inside anyOf or not
    errors = []
    for error in found:
        path = [str(p) for p in error.absolute_path]
        if isinstance(error, form_patterns.Unchecked):
            message = error.message
        elif error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path.append(missing)
            # A conditional rule (if/then) may say in its own words why the field is needed.
            own = error.schema.get(MESSAGE_KEY) if isinstance(error.schema, dict) else None
            message = own or "Enter this information"
        elif error.validator == "format" and error.validator_value == USER_EMAIL_FORMAT:
            message = str(error.cause) if isinstance(error.cause, _PersonRefused) \
                else "There is no eCAF user with this email address"
        elif error.validator == "format" and error.validator_value == "date":
            message = "Enter a real date in the form YYYY-MM-DD"
        elif error.validator == "additionalProperties":
            message = "This form has no such field: " + error.message.split("(")[-1].rstrip(")")
        elif isinstance(error.schema, dict) and error.schema.get(MESSAGE_KEY):
            message = error.schema[MESSAGE_KEY]
        else:
            message = error.message
        errors.append({"field": ".".join(path), "message": message})
    return errors


def task_data_from(schema: dict, data: dict) -> dict:
    """The few flags a submitted form hands to the workflow; the content stays in our tables."""
    return {name: data.get(name) for name in schema.get(TASK_DATA_KEY, [])}
