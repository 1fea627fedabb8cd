"""On a phone every table is a stack of cards with its header row hidden (frontend/app.scss, "Small
screens"), so each data cell names its column in `data-label`, shown above the value. An action column,
whose header is visually hidden, has no label; a row header (`<th scope="row">`) is the card's title.

Two checks: every table in templates/ read as written (Jinja and all), and a few real pages as served."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.clock import now
from tests.test_reports import add_episode
from tests.test_service_requests import send, teams  # noqa: F401 - the fixture

from .journeys import prepare
from .web import browser, give_credentials, make_app

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TABLE = re.compile(r"<table\b[^>]*>.*?</table>", re.S)
ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.S)
CELL = re.compile(r"<(td|th)\b([^>]*)>(.*?)</\1>", re.S)
JINJA_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.S)
HIDDEN_SPAN = re.compile(r'<span class="govuk-visually-hidden">.*?</span>', re.S)
VOID = ("br", "wbr", "hr", "img", "input", "meta", "link")


def _attribute(attributes: str, name: str) -> str | None:
    found = re.search(rf'\b{name}="([^"]*)"', attributes)
    return found.group(1) if found else None


def _words(text: str) -> str:
    """Text as a reader sees it: no tags, single spaces, one kind of quote inside Jinja expressions."""
    return " ".join(re.sub(r"<[^>]+>", " ", JINJA_STATEMENT.sub("", text)).replace("'", '"').split())


@dataclass
class Header:
    text: str
    hidden: bool  # an action column: the header is there for screen readers only


def _headers(table: str) -> list[Header]:
    head = re.search(r"<thead\b.*?</thead>", table, re.S)
    assert head, "a table without a header row"
    return [Header(_words(inner), not _words(HIDDEN_SPAN.sub("", inner)))
            for tag, _, inner in CELL.findall(head.group(0)) if tag == "th"]


def template_problems(source: str) -> list[str]:
    """Every body cell of every GOV.UK table in a template, against its column's header.

    Cells are matched to headers by position. A cell or header inside `{% if %}` counts as present:
    templates here show or hide a column's header and its cells under the same condition. A header row
    built by a loop cannot be matched so: its cells need a label, and the served page is checked."""
    problems = []
    for table in TABLE.findall(source):
        if not re.search(r'class="govuk-table[" ]', table):
            continue  # not a GOV.UK table (the printed CAF's facts): the card styles do not apply
        head = re.search(r"<thead\b.*?</thead>", table, re.S).group(0)
        built_by_loop = "{% for" in head
        headers = _headers(table)
        body = re.search(r"<tbody\b.*?</tbody>", table, re.S)
        for row in ROW.findall(body.group(0) if body else ""):
            cells = CELL.findall(row)
            if any(_attribute(attributes, "colspan") for _, attributes, _ in cells):
                continue  # a message across the whole table, such as "nothing yet"
            if not built_by_loop and len(cells) != len(headers):
                problems.append(f"a row of {len(cells)} cells under {len(headers)} headers: {_words(row)[:80]}")
                continue
            for position, (tag, attributes, inner) in enumerate(cells):
                label = _attribute(attributes, "data-label")
                if built_by_loop:
                    if tag == "td" and not (label or "").strip():
                        problems.append(f"no data-label on “{_words(inner)[:60]}”")
                    continue
                header = headers[position]
                if header.hidden:
                    if label is not None:
                        problems.append(f"a label on the action cell “{_words(inner)[:60]}”")
                elif label is None:
                    if tag == "td":
                        problems.append(f"no data-label “{header.text}” on “{_words(inner)[:60]}”")
                elif _words(label) != header.text:
                    problems.append(f"data-label “{label}” under the header “{header.text}”")
    return problems


def _with_tables() -> list[Path]:
    return sorted(path for path in TEMPLATES.rglob("*.html") if "<table" in path.read_text())


@pytest.mark.parametrize("path", _with_tables(), ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_every_cell_of_every_table_names_its_column(path):
    assert template_problems(path.read_text()) == []


def test_the_check_finds_a_missing_or_wrong_label():
    table = """<table class="govuk-table"><thead class="govuk-table__head"><tr class="govuk-table__row">
      <th scope="col" class="govuk-table__header">Child</th>{% if wide %}<th scope="col">Due</th>{% endif %}
      <th scope="col"><span class="govuk-visually-hidden">Action</span></th></tr></thead>
      <tbody class="govuk-table__body">{% for r in rows %}<tr class="govuk-table__row">{}</tr>{% endfor %}</tbody></table>"""
    good = ('<td class="govuk-table__cell" data-label="Child">{{ r.name }}</td>{% if wide %}'
            '<td class="govuk-table__cell" data-label="Due">{{ r.due }}</td>{% endif %}<td><a href="#">Open</a></td>')
    assert template_problems(table.replace("{}", good)) == []
    assert template_problems(table.replace("{}", good.replace(' data-label="Due"', ""))) == [
        "no data-label “Due” on “{{ r.due }}”"]
    assert template_problems(table.replace("{}", good.replace('"Due"', '"When"'))) == [
        "data-label “When” under the header “Due”"]
    assert template_problems(table.replace("{}", good.replace("<td>", '<td data-label="Action">'))) == [
        "a label on the action cell “Open”"]


# ---------------------------------------------------------------- pages as served

class _Tables(HTMLParser):
    """The GOV.UK tables of a page: each header's text and whether it is visually hidden, and each body
    cell's tag, data-label, colspan and text."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._cell: dict | None = None
        self._section = None
        self._hidden_depth = 0
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "table" and "govuk-table" in classes:
            self.tables.append({"headers": [], "rows": []})
        elif not self.tables:
            return
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self._section == "tbody":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = {"tag": tag, "label": attrs.get("data-label"), "colspan": attrs.get("colspan"),
                          "text": "", "shown": ""}
            self._depth, self._hidden_depth = 0, 0
        elif self._cell is not None and tag not in VOID:
            self._depth += 1
            if "govuk-visually-hidden" in classes and not self._hidden_depth:
                self._hidden_depth = self._depth

    def handle_endtag(self, tag):
        if not self.tables or self._section is None:
            return
        if tag in ("th", "td") and self._cell is not None:
            cell, self._cell = self._cell, None
            cell["text"], cell["shown"] = " ".join(cell["text"].split()), " ".join(cell["shown"].split())
            if self._section == "thead":
                self.tables[-1]["headers"].append(cell)
            else:
                self.tables[-1]["rows"][-1].append(cell)
        elif tag in ("thead", "tbody"):
            self._section = None
        elif self._cell is not None and tag not in VOID:
            if self._hidden_depth == self._depth:
                self._hidden_depth = 0
            self._depth -= 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
            if not self._hidden_depth:
                self._cell["shown"] += data


def page_problems(html: str) -> tuple[list[str], int]:
    """Each served `<td>` against its column's `<th>`; and how many cells were labelled."""
    found = _Tables()
    found.feed(html)
    problems, labelled = [], 0
    for table in found.tables:
        headers = table["headers"]
        for row in table["rows"]:
            if any(cell["colspan"] for cell in row):
                continue
            assert len(row) == len(headers), f"a row of {len(row)} cells under {len(headers)} headers"
            for cell, header in zip(row, headers):
                if cell["tag"] == "th":
                    continue
                if not header["shown"]:
                    if cell["label"] is not None:
                        problems.append(f"a label on the action cell “{cell['text']}”")
                elif cell["label"] != header["text"]:
                    problems.append(f"“{cell['text'][:60]}” labelled {cell['label']!r} under “{header['text']}”")
                else:
                    labelled += 1
    return problems, labelled


def _signed_in(app, runtime, user_id: int, username: str):
    client = browser(app)
    client.sign_in(username, give_credentials(runtime, user_id))
    return client


def _labelled(response, *labels: str) -> None:
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    problems, labelled = page_problems(html)
    assert problems == [] and labelled, (problems, labelled)
    for label in labels:
        assert f'data-label="{label}"' in html


def test_the_practitioners_pages_label_every_cell_with_its_column(runtime, people, teams):
    episode_id = prepare(runtime, people)
    send(runtime, people, teams, episode_id)
    app = make_app(runtime)
    olive = _signed_in(app, runtime, people["originator"], "olive")
    _labelled(olive.get("/"), "Child", "Episode", "Task", "Due")
    _labelled(olive.get(f"/episodes/{episode_id}"), "What", "By", "Name", "Role", "Contact")
    _labelled(olive.get(f"/episodes/{episode_id}/service-requests"), "Service", "Asked by", "Status")

    eve = _signed_in(app, runtime, teams["eve"], "eve")
    _labelled(eve.get("/team/requests"), "Child", "Service", "Status", "Answer due")


def test_tables_built_from_data_or_markdown_label_each_cell_with_its_column(web):
    add_episode(web["runtime"], web["people"], now() - timedelta(days=3), submitted=now() - timedelta(days=1))
    admin = browser(web["app"])
    admin.sign_in("adam", web["secrets"]["admin"])
    _labelled(admin.get("/reports"), "Assessments submitted", "Median days")
    _labelled(admin.get("/processes/expressions"), "Where", "Example from the shipped models", "Helper")
