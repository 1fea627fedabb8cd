"""The schema form renderer and parser: shipped forms render as GOV.UK markup and post back intact."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from werkzeug.datastructures import MultiDict

from app.engine.forms import strip_blanks, validate
from app.forms import pieces
from app.forms import schema_reading as read
from app.forms.markup import fields_markup
from app.web import schema_form as sf

ROOT = Path(__file__).resolve().parent.parent
FORMS = sorted(p.name.removesuffix(".schema.json") for p in (ROOT / "processes" / "forms").glob("*.schema.json"))
# A contribution's form has no required answer of its own: the contributor writes the assessment's
# sections it was invited to (app.contributions.form_for), which the assessment's own cases cover.
WITH_REQUIRED_ANSWERS = [name for name in FORMS if name != "contribution"]
ENV = Environment(loader=ChoiceLoader([
    FileSystemLoader(str(ROOT / "templates")),
    PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
]), autoescape=True)
PAGE = ENV.from_string(
    '{% import "components/schema_form.html" as sf %}'
    '{{ sf.error_summary(form) }}<form method="post">{{ sf.fields(form) }}</form>')
SUMMARY = ENV.from_string('{% import "components/schema_form.html" as sf %}{{ sf.summary_list(rows) }}')


def load(name: str) -> tuple[dict, dict]:
    folder = ROOT / "processes" / "forms"
    ui_path = folder / f"{name}.uischema.json"
    ui = json.loads(ui_path.read_text()) if ui_path.exists() else {}
    return json.loads((folder / f"{name}.schema.json").read_text()), ui


def render(form: sf.Form) -> str:
    return PAGE.render(form=form)


class Page(HTMLParser):
    """What a browser would post for the page (no button pressed), plus the bits tests look at."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.post: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[dict] = []  # every input/select/textarea
        self.buttons: list[dict] = []
        self.hrefs: list[str] = []
        self.legends: list[str] = []
        self.autofocus: list[str] = []
        self._textarea: dict | None = None
        self._select: dict | None = None
        self._legend: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if "autofocus" in a:
            self.autofocus.append(a.get("id"))
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.hrefs.append(a["href"])
        if tag == "legend":
            self._legend = []
        if tag == "button":
            self.buttons.append(a)
        elif tag == "input":
            self.controls.append(a)
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.post.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button"):
                self.post.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self.controls.append(a)
            self._textarea = {"name": a["name"], "text": ""}
        elif tag == "select":
            self.controls.append(a)
            self._select = {"name": a["name"], "value": None, "first": None}
        elif tag == "option" and self._select is not None:
            if self._select["first"] is None:
                self._select["first"] = a.get("value", "")
            if "selected" in a:
                self._select["value"] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea:
            self.post.append((self._textarea["name"], self._textarea["text"]))
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = self._select["value"] if self._select["value"] is not None else self._select["first"]
            self.post.append((self._select["name"], chosen or ""))
            self._select = None
        elif tag == "legend" and self._legend is not None:
            self.legends.append(" ".join("".join(self._legend).split()))
            self._legend = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["text"] += data
        if self._legend is not None:
            self._legend.append(data)

    def multidict(self, **changes) -> MultiDict:
        """The post, with `changes` typed over (or added to) what the page had."""
        return MultiDict([(n, v) for n, v in self.post if n not in changes] + list(changes.items()))

    def value(self, name: str) -> str | None:
        return next((v for n, v in self.post if n == name), None)


def sample(schema: dict, name: str = "x") -> object:
    """A full, valid answer for every editable field; two rows for every list."""
    kind = schema.get("type")
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    if kind == "object":
        return {n: sample(s, n) for n, s in schema["properties"].items() if not s.get("readOnly")}
    if kind == "array":
        items = schema["items"]
        if "oneOf" in items or "enum" in items:
            return [c["const"] for c in items.get("oneOf", [])][:2] or items["enum"][:2]
        return [sample(items, name + str(i)) for i in (1, 2)]
    if "oneOf" in schema:
        return schema["oneOf"][-1]["const"]
    if "enum" in schema:
        return schema["enum"][-1]
    if kind == "boolean":
        return True
    if kind == "integer":
        return 7
    if schema.get("format") == "date":
        return "2026-03-03"
    if "email" in schema.get("format", ""):
        return "lead@example.org"
    return f"{name} <b>&amp;</b> “quoted”"


def asked(schema: dict, ui: dict, data: dict) -> dict:
    """`data` less what the form does not ask: answers no longer asked (`ui:hidden`) and follow-up
    questions whose answer was not chosen (`ui:reveal`)."""
    hidden = {n for n, _, u in read.properties(schema, ui, hidden=True) if u.get("ui:hidden")}
    unchosen = {n for n, (question, answer) in read.follow_ups(schema, ui).items()
                if not read.chosen(sf.to_raw(schema, ui, data).get(question), answer)}
    return {n: v for n, v in data.items() if n not in hidden | unchosen}


def post_back(schema, ui, data, **extra):
    page = Page(render(sf.build_form(schema, ui, data)))
    return sf.parse_form(schema, ui, page.multidict(**extra))


ASSESSMENT = load("assessment")
PARENTS = "section_d_parents_carers.parents_carers"


# ---------------------------------------------------------------- every shipped form


@pytest.mark.parametrize("name", FORMS)
def test_every_shipped_form_renders_accessible_markup(name):
    schema, ui = load(name)
    html = render(sf.build_form(schema, ui, {}))
    page = Page(html)
    assert page.controls, "the form has fields"
    for control in page.controls:
        if control.get("type") in ("submit", "button"):
            continue
        assert control["id"] in page.label_for, f"{control['id']} has a label"
    assert len(page.ids) == len(set(page.ids)), "ids are unique"
    assert "style=" not in html and "<script" not in html
    assert "maxlength" not in html.lower()
    # everything the page posts is a field this form knows
    assert sf.unexpected_names(schema, ui, page.multidict()) == []


@pytest.mark.parametrize("name", FORMS)
def test_every_shipped_form_round_trips_full_data(name):
    schema, ui = load(name)
    data = sample(schema)
    parsed, raw, problems = post_back(schema, ui, data)
    assert problems == []
    assert parsed == asked(schema, ui, data)
    assert validate(schema, parsed) == []
    assert strip_blanks(parsed) == parsed, "nothing blank is stored"


@pytest.mark.parametrize("name", FORMS)
def test_every_shipped_form_posts_nothing_when_left_blank(name):
    schema, ui = load(name)
    data, raw, problems = post_back(schema, ui, {})
    assert (data, problems) == ({}, [])


@pytest.mark.parametrize("name", WITH_REQUIRED_ANSWERS)
def test_error_summary_links_land_on_elements(name):
    schema, ui = load(name)
    errors = validate(schema, {})
    form = sf.build_form(schema, ui, {}, errors)
    page = Page(render(form))
    assert form.error_list, "every shipped form has a required answer"
    assert [e["href"] for e in form.error_list] == page.hrefs
    for href in page.hrefs:
        assert href[1:] in page.ids
    assert all("Enter this information" != e["text"] for e in form.error_list)


# ---------------------------------------------------------------- the assessment's markup


def test_assessment_sections_dates_choices_and_rows():
    schema, ui = ASSESSMENT
    html = render(sf.build_form(schema, ui, {}))
    page = Page(html)
    assert '<h2 class="govuk-fieldset__heading">B. Identifying details of the child</h2>' in html
    names = [c.get("name") for c in page.controls]
    dob = "section_b_child.date_of_birth"
    assert [n for n in names if n.startswith(dob + ".")] == [dob + ".day", dob + ".month", dob + ".year"]
    assert 'id="section_b_child-date_of_birth-day"' in html
    gender = [c for c in page.controls if c.get("name") == "section_b_child.gender"]
    assert [c["value"] for c in gender] == ["male", "female", "unknown", ""]  # "" = Not answered
    unborn = [c for c in page.controls if c.get("name") == "section_b_child.is_unborn"]
    assert unborn[0]["type"] == "checkbox" and unborn[0]["value"] == "true"
    textarea = [c for c in page.controls if c.get("name") == "section_c_assessment_information.reason_for_assessment"]
    assert textarea and "rows" in textarea[0]
    assert "Parent or carer 1" in page.legends
    adds = [b for b in page.buttons if b.get("value") == f"add:{PARENTS}"]
    assert adds and adds[0]["name"] == "action"
    assert "Add another parent or carer" in html
    # a single empty row has nothing to remove
    assert not any(b.get("value", "").startswith(f"remove:{PARENTS}") for b in page.buttons)
    # ui:order is followed inside rows
    row = [n for n in names if n.startswith(PARENTS + ".0.")]
    assert row[:3] == [f"{PARENTS}.0.name", f"{PARENTS}.0.relationship", f"{PARENTS}.0.date_of_birth.day"]


def test_enter_key_presses_a_save_button_not_remove():
    schema, ui = ASSESSMENT
    html = render(sf.build_form(schema, ui, {}))
    first = Page(html).buttons[0]
    assert (first["name"], first["value"]) == ("action", "save")
    assert "govuk-visually-hidden" in first["class"]


def test_read_only_fields_show_saved_values_and_are_not_posted():
    schema, ui = ASSESSMENT
    saved = {"section_a_administration": {"reference_number": "CAF-0042", "version_number": 3,
                                          "date_started": "2026-01-05"}}
    form = sf.build_form(schema, ui, saved)
    html = render(form)
    assert "CAF-0042" in html
    assert form.field("section_a_administration.version_number").display == "3"
    page = Page(html)
    assert page.value("section_a_administration.reference_number") is None
    forged = page.multidict(**{"section_a_administration.reference_number": "forged"})
    data, _, _ = sf.parse_form(schema, ui, forged)
    assert "reference_number" not in data["section_a_administration"]
    assert sf.unexpected_names(schema, ui, forged) == ["section_a_administration.reference_number"]
    assert sf.carry_read_only(schema, ui, saved, data) == saved


# ---------------------------------------------------------------- parsing


TYPES = {
    "type": "object",
    "title": "Types",
    "required": ["count"],
    "properties": {
        "count": {"title": "Number of visits", "type": "integer"},
        "ratio": {"title": "Ratio", "type": "number"},
        "note": {"title": "Note", "type": ["string", "null"], "maxLength": 10},
        "agreed": {"title": "Agreed", "type": "boolean"},
        "known": {"title": "Is it known?", "type": "boolean"},
        "level": {"title": "Level", "type": "integer", "enum": [1, 2, 3]},
        "colour": {"title": "Colour", "enum": ["red", "green"]},
        "tags": {"title": "Tags", "type": "array", "uniqueItems": True,
                 "items": {"oneOf": [{"const": "a", "title": "Alpha"}, {"const": "b", "title": "Beta"},
                                     {"const": "c", "title": "Gamma"}]}},
        "when": {"title": "Date of visit", "type": "string", "format": "date"},
        "names": {"title": "Names", "type": "array", "maxItems": 3, "items": {"title": "Name", "type": "string"}},
        "country": {"title": "Country", "type": "string",
                    "enum": [f"c{i}" for i in range(12)]},
    },
}
TYPES_UI = {"known": {"ui:widget": "radios"}, "ui:order": ["note", "*", "count"]}


def test_typed_conversion():
    post = MultiDict([("count", " 1,200 "), ("ratio", "2.5"), ("note", "  hi  "), ("agreed", "true"),
                      ("known", "false"), ("level", "2"), ("colour", "green"), ("tags", "c"), ("tags", "a"),
                      ("when.day", "3"), ("when.month", "March"), ("when.year", "2026"),
                      ("names.0", "Ann"), ("names.1", ""), ("names.2", "Bo"), ("country", "c11"),
                      ("csrf_token", "x"), ("action", "save")])
    data, raw, problems = sf.parse_form(TYPES, TYPES_UI, post)
    assert problems == []
    assert data == {"count": 1200, "ratio": 2.5, "note": "hi", "agreed": True, "known": False, "level": 2,
                    "colour": "green", "tags": ["c", "a"], "when": "2026-03-03", "names": ["Ann", "Bo"],
                    "country": "c11"}
    assert raw["count"] == " 1,200 " and raw["note"] == "  hi  "
    assert raw["when"] == {"day": "3", "month": "March", "year": "2026"}
    assert validate(TYPES, data) == []


def test_widgets_order_and_plain_dict_posts():
    form = sf.build_form(TYPES, TYPES_UI, {})
    assert [f.name for f in form.fields][0] == "note" and form.fields[-1].name == "count"
    widgets = {f.name: f.widget for f in form.fields}
    assert widgets == {"note": "text", "ratio": "number", "agreed": "checkbox", "known": "radios",
                       "level": "radios", "colour": "radios", "tags": "checkboxes", "when": "date",
                       "names": "rows", "country": "select", "count": "number"}
    assert form.field("tags").options[1] == {"value": "b", "text": "Beta"}
    # a plain mapping of name -> list works as well as a MultiDict
    data, _, _ = sf.parse_form(TYPES, TYPES_UI, {"tags": ["a", "b"], "count": "3", "level": ["1"]})
    assert data == {"tags": ["a", "b"], "count": 3, "level": 1}


def test_round_trip_of_typed_values_through_html():
    data = {"count": 5, "ratio": 0.5, "note": "n", "agreed": True, "known": False, "level": 3,
            "colour": "red", "tags": ["b"], "when": "2024-02-29", "names": ["A", "B"], "country": "c4"}
    assert post_back(TYPES, TYPES_UI, data)[0] == data


def test_conversion_problems_keep_what_was_typed():
    post = {"count": "twelve", "ratio": "1.2.3", "level": "9", "tags": ["a", "zzz"], "agreed": "yes",
            "when.day": "31", "when.month": "2", "when.year": "2026"}
    data, raw, problems = sf.parse_form(TYPES, TYPES_UI, post)
    assert data == {"tags": ["a"]}
    assert {p["field"]: p["message"] for p in problems} == {
        "count": "Number of visits must be a whole number",
        "ratio": "Ratio must be a number",
        "level": "Select level from the list",
        "tags": "Select tags from the list",
        "agreed": "Select ‘Agreed’ or leave it unticked",
        "when": "Date of visit must be a real date",
    }
    form = sf.build_form(TYPES, TYPES_UI, data, problems, raw)
    html = render(form)
    page = Page(html)
    assert page.value("count") == "twelve"
    assert (page.value("when.day"), page.value("when.month"), page.value("when.year")) == ("31", "2", "2026")
    assert {"text": "Date of visit must be a real date", "href": "#when-day"} in form.error_list
    assert "govuk-input--error" in html.split('id="when-day"')[0].rsplit("<input", 1)[1]


@pytest.mark.parametrize("day, month, year, message", [
    ("", "3", "2026", "Date of visit must include a day"),
    ("3", "", "", "Date of visit must include a month and year"),
    ("3", "13", "2026", "Date of visit must be a real date"),
    ("3", "3", "26", "Date of visit must be a real date"),
    ("x", "3", "2026", "Date of visit must be a real date"),
    ("٣", "3", "2026", "Date of visit must be a real date"),
])
def test_partial_or_impossible_dates(day, month, year, message):
    post = {"when.day": day, "when.month": month, "when.year": year, "count": "1"}
    data, raw, problems = sf.parse_form(TYPES, TYPES_UI, post)
    assert "when" not in data
    assert problems == [{"field": "when", "message": message}]
    assert raw["when"] == {"day": day, "month": month, "year": year}


def test_blanks_are_left_out_and_blank_rows_dropped_and_renumbered():
    schema, ui = ASSESSMENT
    post = {f"{PARENTS}.0.name": "  ", f"{PARENTS}.3.name": "Alex", f"{PARENTS}.3.has_parental_responsibility": "",
            f"{PARENTS}.7.relationship": "Aunt", f"{PARENTS}.9.date_of_birth.day": "",
            "section_b_child.given_names": "", "section_b_child.gender": "",
            "section_k_voice.child_comments": "\r\n  \r\n"}
    data, raw, problems = sf.parse_form(schema, ui, post)
    assert problems == []
    assert data == {"section_d_parents_carers": {"parents_carers": [{"name": "Alex"}, {"relationship": "Aunt"}]}}
    assert [r["name"] for r in raw["section_d_parents_carers"]["parents_carers"]] == ["Alex", ""]


def test_problems_in_rows_use_the_renumbered_index():
    schema, ui = ASSESSMENT
    post = {f"{PARENTS}.2.name": "Sam", f"{PARENTS}.5.date_of_birth.day": "40",
            f"{PARENTS}.5.date_of_birth.month": "1", f"{PARENTS}.5.date_of_birth.year": "1990"}
    data, raw, problems = sf.parse_form(schema, ui, post)
    assert problems == [{"field": f"{PARENTS}.1.date_of_birth", "message": "Date of birth must be a real date"}]
    form = sf.build_form(schema, ui, data, problems, raw)
    field = form.field(f"{PARENTS}.1.date_of_birth")
    assert field.error == "Date of birth must be a real date" and field.parts["day"] == "40"
    html = render(form)
    assert 'id="section_d_parents_carers-parents_carers-1-date_of_birth-day"' in html
    assert form.error_list[0]["href"] == "#section_d_parents_carers-parents_carers-1-date_of_birth-day"


def test_not_answered_clears_an_optional_radio():
    schema, ui = load("consent")
    data, _, _ = post_back(schema, ui, {"decision": "refused", "subject": "child"})
    assert data["subject"] == "child"
    data, _, problems = sf.parse_form(schema, ui, {"decision": "refused", "subject": ""})
    assert data == {"decision": "refused"} and problems == []


def test_unknown_names_are_ignored_and_reported():
    schema, ui = load("consent")
    post = MultiDict([("decision", "given"), ("is_admin", "true"), ("permitted_recipients.0.x", "y"),
                      ("csrf_token", "t"), ("action", "save"), ("decision.day", "1")])
    data, _, _ = sf.parse_form(schema, ui, post)
    assert data == {"decision": "given"}
    assert sf.unexpected_names(schema, ui, post) == ["decision.day", "is_admin", "permitted_recipients.0.x"]


# ---------------------------------------------------------------- errors from the validator


def test_validator_errors_are_named_and_placed():
    schema, ui = ASSESSMENT
    data = {"section_b_child": {"given_names": "Sam", "family_name": "x" * 501},
            "section_d_parents_carers": {"parents_carers": [{"name": "A"}, {"name": "B"}]}}
    errors = validate(schema, data) + [{"field": f"{PARENTS}.1.name", "message": "Enter this information"}]
    form = sf.build_form(schema, ui, data, errors)
    texts = {e["href"]: e["text"] for e in form.error_list}
    assert texts == {
        "#section_a_administration-date_started-day": "Enter date assessment started",
        "#section_b_child-family_name": "Family name must be 500 characters or fewer",
        "#section_b_child-date_of_birth-day": "Enter date of birth or expected date of delivery",
        "#section_d_parents_carers-parents_carers-1-name": "Enter name",
    }
    assert [e["href"] for e in form.error_list][0].startswith("#section_a"), "page order"
    html = render(form)
    assert "x" * 501 in html, "too-long text is shown back, not cut off"
    assert html.count("x" * 501) == 1, "and not repeated in the message"


def test_errors_without_a_field_still_reach_the_summary():
    schema, ui = load("consent")
    form = sf.build_form(schema, ui, {}, [{"field": "", "message": "This form has no such field: 'x'"}])
    assert form.error_list == [{"text": "This form has no such field: 'x'"}]
    assert "This form has no such field" in render(form)


def test_conditional_required_answers_are_named():
    schema, ui = load("consent")
    errors = validate(schema, {"decision": "given"})
    form = sf.build_form(schema, ui, {"decision": "given"}, errors)
    assert [e["text"] for e in form.error_list] == [
        "Answer ‘Who is the assessment about?’", "Enter name of the person giving or refusing consent",
        "Enter relationship to the child", "Select ‘Agrees to the information being recorded and stored’",
        "Select how consent was given", "Enter date consent was given"]


# ---------------------------------------------------------------- adding and removing rows


def parents_page(names: list[str]) -> Page:
    schema, ui = ASSESSMENT
    data = {"section_d_parents_carers": {"parents_carers": [{"name": n, "relationship": "R" + n} for n in names]}}
    return Page(render(sf.build_form(schema, ui, data)))


def test_add_row_keeps_everything_typed_and_focuses_the_new_row():
    schema, ui = ASSESSMENT
    page = parents_page(["Ann", "Bob"])
    post = page.multidict(**{"section_b_child.given_names": "Sam", f"{PARENTS}.1.date_of_birth.day": "99"})
    assert sf.is_row_action(f"add:{PARENTS}")
    data, raw, focus = sf.apply_row_action(schema, ui, post, f"add:{PARENTS}")
    assert focus == "section_d_parents_carers-parents_carers-2"
    form = sf.build_form(schema, ui, data, None, raw, focus=focus)
    html = render(form)
    again = Page(html)
    assert "Parent or carer 3" in again.legends
    assert again.value(f"{PARENTS}.0.name") == "Ann" and again.value(f"{PARENTS}.1.date_of_birth.day") == "99"
    assert again.value("section_b_child.given_names") == "Sam"
    assert again.value(f"{PARENTS}.2.name") == ""
    assert again.autofocus == ["section_d_parents_carers-parents_carers-2-name"]
    removes = [b["value"] for b in again.buttons if b.get("value", "").startswith("remove:")]
    assert removes == [f"remove:{PARENTS}:{i}" for i in range(3)]


def test_add_to_an_empty_list_gives_two_empty_rows():
    schema, ui = ASSESSMENT
    post = Page(render(sf.build_form(schema, ui, {}))).multidict()
    data, raw, focus = sf.apply_row_action(schema, ui, post, f"add:{PARENTS}")
    assert data == {}
    form = sf.build_form(schema, ui, data, None, raw, focus=focus)
    assert len(form.field(PARENTS).rows) == 2
    data, raw, focus = sf.apply_row_action(schema, ui, Page(render(form)).multidict(), f"add:{PARENTS}")
    assert len(sf.build_form(schema, ui, data, None, raw).field(PARENTS).rows) == 3


def test_remove_row_renumbers_the_rest():
    schema, ui = ASSESSMENT
    post = parents_page(["Ann", "Bob", "Cat"]).multidict()
    data, raw, focus = sf.apply_row_action(schema, ui, post, f"remove:{PARENTS}:1")
    assert data["section_d_parents_carers"]["parents_carers"] == [
        {"name": "Ann", "relationship": "RAnn"}, {"name": "Cat", "relationship": "RCat"}]
    assert focus == "section_d_parents_carers-parents_carers-add"
    html = render(sf.build_form(schema, ui, data, None, raw, focus=focus))
    page = Page(html)
    assert page.value(f"{PARENTS}.1.name") == "Cat" and page.value(f"{PARENTS}.2.name") is None
    assert page.autofocus == ["section_d_parents_carers-parents_carers-add"]


def test_remove_the_only_row_leaves_an_empty_one():
    schema, ui = ASSESSMENT
    data, raw, _ = sf.apply_row_action(schema, ui, parents_page(["Ann"]).multidict(), f"remove:{PARENTS}:0")
    assert data == {}
    form = sf.build_form(schema, ui, data, None, raw)
    assert len(form.field(PARENTS).rows) == 1 and not form.field(PARENTS).rows[0].removable


def test_scalar_lists_add_and_remove():
    schema, ui = load("consent")
    post = {"permitted_recipients.0": "GP", "permitted_recipients.1": "School"}
    data, raw, focus = sf.apply_row_action(schema, ui, post, "add:permitted_recipients")
    assert focus == "permitted_recipients-2"
    page = Page(render(sf.build_form(schema, ui, data, None, raw, focus=focus)))
    assert [page.value(f"permitted_recipients.{i}") for i in range(3)] == ["GP", "School", ""]
    data, raw, _ = sf.apply_row_action(schema, ui, page.multidict(), "remove:permitted_recipients:0")
    assert data["permitted_recipients"] == ["School"]


def test_no_more_rows_than_max_items():
    post = {"names.0": "A", "names.1": "B", "names.2": "C"}
    data, raw, _ = sf.apply_row_action(TYPES, TYPES_UI, post, "add:names")
    form = sf.build_form(TYPES, TYPES_UI, data, None, raw)
    assert len(form.field("names").rows) == 3 and not form.field("names").can_add
    assert 'value="add:names"' not in render(form)


@pytest.mark.parametrize("action", ["add:section_b_child", "add:nope", "remove:section_d_parents_carers."
                                    "parents_carers:x", "remove:section_b_child.given_names:0", "delete:x"])
def test_bad_row_actions_are_refused(action):
    schema, ui = ASSESSMENT
    with pytest.raises(ValueError):
        sf.apply_row_action(schema, ui, {}, action)


# ---------------------------------------------------------------- escaping


def test_hostile_input_is_escaped_everywhere():
    schema, ui = ASSESSMENT
    evil = '"><script>alert(1)</script>'
    post = {"section_b_child.given_names": evil, "section_c_assessment_information.reason_for_assessment": evil,
            f"{PARENTS}.0.name": evil, "section_b_child.date_of_birth.day": evil}
    data, raw, problems = sf.parse_form(schema, ui, post)
    html = render(sf.build_form(schema, ui, data, problems + [{"field": "", "message": evil}], raw))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    page = Page(html)
    assert page.value("section_b_child.given_names") == evil
    assert page.value("section_c_assessment_information.reason_for_assessment") == evil
    assert page.value("section_b_child.date_of_birth.day") == evil
    summary_html = SUMMARY.render(rows=sf.summary(schema, ui, data))
    assert "<script>" not in summary_html and "&lt;script&gt;" in summary_html


# ---------------------------------------------------------------- compiled markup


def test_compiled_fields_match_every_macro_drawn_anew():
    """Each field's markup is compiled once (app/forms/pieces.py); filled in, it must be exactly what
    the GOV.UK macros draw for the same answers, errors, ticks, rows and focus."""
    schema, ui = ASSESSMENT
    post = Page(render(sf.build_form(schema, ui, {}))).multidict()
    states = []
    for action in (f"add:{PARENTS}", f"remove:{PARENTS}:0"):  # rows, "Remove" buttons and focus
        data, raw, focus = sf.apply_row_action(schema, ui, post, action)
        states.append(sf.build_form(schema, ui, data, None, raw, focus=focus))
    states.append(sf.build_form(TYPES, TYPES_UI, {"tags": ["a", "c"], "known": False, "level": 2, "country": "c3",
                                                  "agreed": True, "names": ["a", "b"], "when": "2024-02-29"}))
    for name in FORMS:
        schema, ui = load(name)
        data = sample(schema)
        states += [sf.build_form(schema, ui, {}), sf.build_form(schema, ui, data),
                   sf.build_form(schema, ui, data, validate(schema, {}) + [{"field": "", "message": "<x>"}])]
    for form in states:
        assert fields_markup(form) == fields_markup(form, pieces=pieces.Drawn())
        assert [f.name for f in form.walk() if pieces.compiled(f) is None] == [], "every shipped field compiles"


def test_template_syntax_from_a_process_owner_or_a_user_is_only_ever_text():
    evil = "{{ 7*7 }}{% if true %}<script>alert(1)</script>{% endif %}"
    schema = {"type": "object", "title": "Form " + evil, "description": "About " + evil, "properties": {
        "name": {"title": "Name " + evil, "description": "Hint " + evil, "type": "string"},
        "pick": {"title": "Pick " + evil, "oneOf": [{"const": "a", "title": "A " + evil}, {"const": evil}]},
        "people": {"title": "People " + evil, "type": "array", "items": {
            "title": "Person " + evil, "type": "object", "properties": {"note": {"title": evil, "type": "string"}}}},
        # a title holding the renderer's own markers cannot steer it: that field is drawn by its macro
        "odd": {"title": pieces.VALUE + pieces.ERROR + pieces.BODY, "type": "string"}}}
    data = {"name": evil, "pick": evil, "people": [{"note": evil}], "odd": evil}
    form = sf.build_form(schema, {}, data, [{"field": "name", "message": "Error " + evil}])
    html = fields_markup(form)
    assert html == fields_markup(form, pieces=pieces.Drawn())
    assert pieces.compiled(form.field("odd")) is None
    assert "<script>" not in html
    page = Page(html)
    assert page.value("name") == evil and page.value("people.0.note") == evil and page.value("odd") == evil
    assert page.value("pick") == evil, "the typed choice is ticked"
    assert {"Pick " + evil, "People " + evil, "Person " + evil + " 1"} <= set(page.legends)
    assert "</span> Error {{ 7*7 }}{% if true %}&lt;script&gt;alert(1)&lt;/script&gt;{% endif %}" in html
    assert "Hint {{ 7*7 }}" in html and "A {{ 7*7 }}" in html
    preview = ENV.get_template("process_library/_form_preview.html").render(preview={"form": form, "problem": None})
    assert "Form {{ 7*7 }}{% if true %}&lt;script&gt;" in preview and "<script>" not in preview
    # a new version's words are shown, never the old ones compiled for the same field
    schema["properties"]["name"]["title"] = "Full name"
    assert 'Full name' in fields_markup(sf.build_form(schema, {}, data)) and "Name {{" not in \
        fields_markup(sf.build_form(schema, {}, data))


# ---------------------------------------------------------------- summary


def test_summary_formats_answers_and_skips_blanks():
    schema, ui = ASSESSMENT
    data = {"section_b_child": {"given_names": "Sam", "family_name": "", "date_of_birth": "2026-03-03",
                                "gender": "female", "is_unborn": False, "disabled": True},
            "section_c_assessment_information": {"reason_for_assessment": "Line one\nLine two"},
            "section_d_parents_carers": {"parents_carers": [
                {"name": "Ann", "has_parental_responsibility": True}, {}]},
            "section_e_family_home": {}}
    rows = sf.summary(schema, ui, data)
    assert [r.key for r in rows] == ["B. Identifying details of the child", "C. Assessment information",
                                     "D. Details of parents/carers"]
    child = {r.key: r.value for r in rows[0].children}
    assert child == {"Given name(s)": "Sam", "This is an unborn baby": "No",
                     "Date of birth or expected date of delivery": "3 March 2026", "Gender": "Female",
                     "Is the child disabled?": "Yes"}
    parents = rows[2].children[0]
    assert parents.kind == "items"
    assert [(legend, [(r.key, r.value) for r in items]) for legend, items in parents.items] == [
        ("Parent or carer 1", [("Name", "Ann"), ("Has parental responsibility?", "Yes")])]
    html = SUMMARY.render(rows=rows)
    assert "Line one<br>Line two" in html
    assert '<dt class="govuk-summary-list__key">Date of birth or expected date of delivery</dt>' in html
    assert "Parent or carer 1" in html and "style=" not in html
    assert html.count("<dl") == html.count("</dl>")


def test_summary_of_lists_and_choices():
    data = {"tags": ["b", "a"], "names": ["Ann", "Bo"], "level": 2, "known": False, "count": 1200}
    rows = {r.key: r for r in sf.summary(TYPES, TYPES_UI, data)}
    assert rows["Tags"].values == ["Beta", "Alpha"]
    assert rows["Names"].values == ["Ann", "Bo"]
    assert rows["Is it known?"].value == "No"
    assert rows["Level"].value == "2" and rows["Number of visits"].value == "1200"
    assert "<li>Beta</li>" in SUMMARY.render(rows=list(rows.values()))
    assert sf.summary(TYPES, TYPES_UI, {}) == []


def test_validator_wording_is_rewritten_without_echoing_the_answer():
    schema = {"type": "object", "required": ["sure", "pets"], "properties": {
        "sure": {"title": "I am sure", "type": "boolean"},
        "pets": {"title": "Pets", "type": "array", "items": {"title": "Pet", "type": "string"}},
        "age": {"title": "Age", "type": "integer", "minimum": 1},
        "note": {"title": "NHS note", "type": "string", "maxLength": 3},
        "colour": {"title": "Colour", "enum": ["red"]},
        "email": {"title": "Email", "type": "string", "format": "email"}}}
    data = {"age": 0, "note": "secret", "colour": "blue", "email": "nope"}
    form = sf.build_form(schema, {}, data, validate(schema, data))
    assert [e["text"] for e in form.error_list] == [
        "Select ‘I am sure’", "Add at least one pet", "Age must be 1 or more",
        "NHS note must be 3 characters or fewer", "Select colour from the list",
        "Enter an email address in the correct format, like name@example.com"]


def test_numbers_and_row_numbers_too_long_to_read_are_problems_not_errors():
    schema = {"type": "object", "properties": {
        "visits": {"title": "Visits", "type": "integer"}, "weight": {"title": "Weight", "type": "number"},
        "names": {"title": "Names", "type": "array", "items": {"type": "string"}}}}
    post = MultiDict({"visits": "1" * 5000, "weight": "1e400", "names.0": "Ann", "names." + "9" * 5000: "Bo"})
    data, _, problems = sf.parse_form(schema, {}, post)
    assert problems == [{"field": "visits", "message": "Visits must be a number"},
                        {"field": "weight", "message": "Weight must be a number"}]
    assert data == {"names": ["Ann"]}
    assert sf.parse_form(schema, {}, MultiDict({"visits": "1,000", "weight": "2.5e3"}))[0] == \
        {"visits": 1000, "weight": 2500.0}
