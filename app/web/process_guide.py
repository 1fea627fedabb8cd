"""The process owners' guide to the expression language, drawn from docs/process-expressions.md so
the page and the document in the repository never disagree."""
from __future__ import annotations

import re
from functools import lru_cache
from html import unescape

import markdown
from flask import Blueprint, render_template
from markupsafe import Markup, escape

from app.config import PROJECT_ROOT
from app.web.access import roles

bp = Blueprint("process_guide", __name__)
GUIDE = PROJECT_ROOT / "docs" / "process-expressions.md"

# GOV.UK Frontend classes for the plain HTML Markdown writes.
_CLASSES = {"h1": "govuk-heading-l", "h2": "govuk-heading-m", "h3": "govuk-heading-s", "p": "govuk-body",
            "ul": "govuk-list govuk-list--bullet", "table": "govuk-table", "thead": "govuk-table__head",
            "tbody": "govuk-table__body", "tr": "govuk-table__row", "th": "govuk-table__header",
            "td": "govuk-table__cell", "pre": "ecaf-code-block", "a": "govuk-link"}


@lru_cache(maxsize=1)
def _guide_html() -> str:
    html = markdown.markdown(GUIDE.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"])
    html = re.sub(r"<(h1|h2|h3|p|ul|table|thead|tbody|tr|th|td|pre|a)([ >])",
                  lambda m: f'<{m.group(1)} class="{_CLASSES[m.group(1)]}"{m.group(2)}', html)
    return re.sub(r"<table\b.*?</table>", _label_cells, html, flags=re.S)


def _label_cells(table: re.Match) -> str:
    """Each cell names its column, as every table's cells do: a phone shows the table as cards."""
    html = table.group(0)
    head, _, body = html.partition("</thead>")
    columns = [escape(unescape(re.sub(r"<[^>]+>", "", text)).strip())
               for text in re.findall(r"<th\b[^>]*>(.*?)</th>", head, re.S)]

    def label_row(row: re.Match) -> str:
        cells = iter(columns)
        return re.sub(r"<td\b", lambda _: f'<td data-label="{next(cells, "")}"', row.group(0))
    return head + _ + re.sub(r"<tr\b.*?</tr>", label_row, body, flags=re.S)


@bp.get("/processes/expressions")
@roles("process_owner", "administrator")
def guide():
    # The document is part of the code base, not user input: its HTML is trusted.
    return render_template("process_library/expressions.html", guide=Markup(_guide_html()))
