"""The form renderer's public face for the web app (the work is done in `app.forms`).

Render: `build_form` -> templates/components/schema_form.html (`fields(form)` is `form.markup()`).
Read back: `parse_form`. Read-only display: `summary`.
"""
from app.forms.building import build_form, to_raw
from app.forms.model import Field, Form, Row
from app.forms.posted import apply_row_action, carry_read_only, is_row_action, parse_form, unexpected_names
from app.forms.summary import SummaryRow, summary

__all__ = ["Field", "Form", "Row", "SummaryRow", "apply_row_action", "build_form", "carry_read_only",
           "is_row_action", "parse_form", "summary", "to_raw", "unexpected_names"]
