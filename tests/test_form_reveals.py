"""Follow-up questions revealed by one answer (`ui:reveal`) and people chosen rather than typed (`person`)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from werkzeug.datastructures import MultiDict

from app.engine.forms import validate
from app.forms import pieces
from app.forms.markup import fields_markup
from app.forms.schema_reading import follow_ups
from app.web import schema_form as sf

from .test_schema_form import Page, load, render

CONSENT = load("consent")
DECISION = load("service_decision")


class _Reveal(HTMLParser):
    """The conditional reveal a choice controls (`data-aria-controls`): its classes and the names inside."""

    def __init__(self, html: str, control_id: str):
        super().__init__(convert_charrefs=True)
        controls = re.search(rf'id="{re.escape(control_id)}"[^>]*data-aria-controls="([^"]+)"', html)
        assert controls, f"{control_id} reveals something"
        self.target, self.depth, self.classes, self.names, self.text = controls.group(1), 0, "", [], ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.depth:
            self.depth += tag not in ("input", "br", "hr")
            if a.get("name"):
                self.names.append(a["name"])
        elif a.get("id") == self.target:
            self.depth, self.classes = 1, a.get("class", "")

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text += data


def test_a_follow_up_sits_under_its_answer_hidden_until_chosen():
    schema, ui = CONSENT
    form = sf.build_form(schema, ui, {})
    assert "refusal_reason" not in [f.name for f in form.fields], "asked under its answer, not on its own"
    decision = form.field("decision")
    assert [f.name for f in decision.reveals["refused"]] == ["refusal_reason"]
    html = render(form)
    refused = _Reveal(html, "decision-2")
    assert refused.names == ["refusal_reason"] and "govuk-radios__conditional--hidden" in refused.classes
    assert html.count('name="refusal_reason"') == 1
    assert 'data-module="govuk-radios"' in html, "govuk-frontend's radios reveal and hide it"

    chosen = render(sf.build_form(schema, ui, {"decision": "refused", "refusal_reason": "Not now"}))
    assert "govuk-radios__conditional--hidden" not in _Reveal(chosen, "decision-2").classes
    assert "Not now" in _Reveal(chosen, "decision-2").text


def test_a_follow_up_of_an_answer_not_chosen_is_neither_stored_nor_checked():
    schema, ui = DECISION
    post = MultiDict({"decision": "accept", "next_steps": "We call on Monday",
                      "question": "Typed before changing my mind", "reason": "Kept: not a follow-up"})
    data, raw, problems = sf.parse_form(schema, ui, post)
    assert data == {"decision": "accept", "next_steps": "We call on Monday", "reason": "Kept: not a follow-up"}
    assert "question" not in raw and problems == []
    assert sf.unexpected_names(schema, ui, post) == [], "the follow-up was on the page: not tampering"

    asked = MultiDict({"decision": "more_information", "next_steps": "Ignored now"})
    data, raw, problems = sf.parse_form(schema, ui, asked)
    assert data == {"decision": "more_information"}
    errors = validate(schema, data)
    form = sf.build_form(schema, ui, data, errors, raw)
    assert [e["text"] for e in form.error_list] == ["Answer ‘What do you need to know?’"]
    assert form.error_list[0]["href"] == "#question", "the link lands on the revealed question"
    assert "question" in Page(render(form)).ids


def test_a_ticked_box_reveals_its_details_and_unticked_drops_them():
    schema, ui = load("pre_assessment_checklist")
    typed = {"decision": "full_caf", "child_protection_details": "Bruise seen on Monday"}
    data, _, _ = sf.parse_form(schema, ui, MultiDict(typed))
    assert "child_protection_details" not in data
    data, _, _ = sf.parse_form(schema, ui, MultiDict({**typed, "child_protection_concern": "true"}))
    assert data["child_protection_details"] == "Bruise seen on Monday"
    html = render(sf.build_form(schema, ui, {}))
    assert _Reveal(html, "child_protection_concern").names == ["child_protection_details"]


def test_a_problem_in_a_follow_up_not_chosen_is_dropped_with_it():
    schema = {"type": "object", "properties": {
        "moved": {"type": "boolean"}, "moved_on": {"title": "Date moved", "type": "string", "format": "date"}}}
    ui = {"moved": {"ui:widget": "radios", "ui:reveal": {"true": ["moved_on"]}}}
    bad_date = {"moved_on.day": "31", "moved_on.month": "2", "moved_on.year": "2026"}
    _, _, problems = sf.parse_form(schema, ui, MultiDict({"moved": "false", **bad_date}))
    assert problems == []
    _, _, problems = sf.parse_form(schema, ui, MultiDict({"moved": "true", **bad_date}))
    assert [p["field"] for p in problems] == ["moved_on"]


def test_adding_a_row_keeps_what_was_typed_under_an_answer_not_chosen():
    schema = {"type": "object", "properties": {
        "share": {"type": "boolean"},
        "with": {"type": "array", "items": {"title": "Organisation", "type": "string"}}}}
    ui = {"share": {"ui:reveal": {"true": ["with"]}}}
    data, raw, _ = sf.apply_row_action(schema, ui, MultiDict({"with.0": "School"}), "add:with")
    assert raw["with"] == ["School", ""]


def test_mistaken_reveals_leave_the_question_asked_on_its_own():
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "enum": ["x", "y"]}, "b": {"type": "string", "enum": ["x", "y"]},
        "c": {"type": "string"}, "d": {"type": "string"}}}
    ui = {"a": {"ui:reveal": {"x": ["c", "nope", "a"], "y": ["c"], "z": ["d"]}},
          "b": {"ui:reveal": {"x": ["a", "d"]}}}
    # c once only; "nope" and "a" itself ignored; "z" is no answer of a; a reveals, so b cannot hide it
    assert follow_ups(schema, ui) == {"c": ("a", "x"), "d": ("b", "x")}


def test_forms_with_follow_ups_draw_what_the_macros_draw():
    for schema, ui, data in [(*CONSENT, {"decision": "refused", "subject": "child"}),
                             (*DECISION, {"decision": "redirect"}),
                             (*load("final_summary"), {"closure_reason": "other"})]:
        for errors in ([], validate(schema, {})):
            form = sf.build_form(schema, ui, data, errors)
            assert fields_markup(form) == fields_markup(form, pieces=pieces.Drawn())


# ---------------------------------------------------------------- a person chosen, not typed

LEAD = load("lead_professional")
OFFERED = [{"value": "leah@testshire.test", "text": "Leah Lead", "hint": "Teacher, Test Primary (at the TAC meeting)"},
           {"value": "olive@testshire.test", "text": "Olive Origin", "hint": "Teacher, Test Primary"}]


def _lead_ui() -> dict:
    schema, ui = LEAD
    return {**ui, "lead_professional_email": {**ui["lead_professional_email"], "ui:people": OFFERED}}


def test_the_lead_professional_is_chosen_from_the_people_offered():
    schema, ui = LEAD[0], _lead_ui()
    form = sf.build_form(schema, ui, {})
    html = render(form)
    page = Page(html)
    assert [f.name for f in form.fields] == ["lead_professional_email", "agreed_on"], \
        "name, role, organisation and phone come from the account, not typed"
    assert "Leah Lead" in html and "Teacher, Test Primary (at the TAC meeting)" in html
    assert 'value="leah@testshire.test"' in html and "Someone else" in html
    assert _Reveal(html, "lead_professional_email-4").names == ["lead_professional_email.other"]
    assert sf.unexpected_names(schema, ui, page.multidict()) == []

    data, _, problems = sf.parse_form(schema, ui, MultiDict({"lead_professional_email": "olive@testshire.test"}))
    assert (data, problems) == ({"lead_professional_email": "olive@testshire.test"}, [])
    typed = MultiDict({"lead_professional_email": "other", "lead_professional_email.other": " sam@testshire.test "})
    data, raw, problems = sf.parse_form(schema, ui, typed)
    assert data == {"lead_professional_email": "sam@testshire.test"} and problems == []
    again = render(sf.build_form(schema, ui, data, None, raw))
    assert 'value=" sam@testshire.test "' in again, "what was typed is shown back"
    _, _, problems = sf.parse_form(schema, ui, MultiDict({"lead_professional_email": "mallory@evil.test"}))
    assert problems == [{"field": "lead_professional_email", "message": "Select lead professional from the list"}]


def test_a_saved_lead_professional_shows_as_their_choice_or_as_someone_else():
    schema, ui = LEAD[0], _lead_ui()
    listed = Page(render(sf.build_form(schema, ui, {"lead_professional_email": "LEAH@testshire.test"})))
    assert listed.value("lead_professional_email") == "leah@testshire.test"
    other = Page(render(sf.build_form(schema, ui, {"lead_professional_email": "sam@testshire.test"})))
    assert other.value("lead_professional_email") == "other"
    assert other.value("lead_professional_email.other") == "sam@testshire.test"


def test_a_lead_professional_not_chosen_or_unknown_is_named_in_the_error():
    schema, ui = LEAD[0], _lead_ui()
    form = sf.build_form(schema, ui, {}, validate(schema, {}))
    assert form.error_list == [{"text": "Select the lead professional", "href": "#lead_professional_email"}]
    typed = MultiDict({"lead_professional_email": "other", "lead_professional_email.other": "nobody@testshire.test"})
    data, raw, _ = sf.parse_form(schema, ui, typed)
    errors = validate(schema, data, user_exists=lambda email: False)
    form = sf.build_form(schema, ui, data, errors, raw)
    assert form.error_list == [{"text": "There is no eCAF user with this email address",
                                "href": "#lead_professional_email-other"}]
    html = render(form)
    assert 'id="lead_professional_email-other-error"' in html, "the error sits on the email typed"
