"""The one accessibility finding the checks accept (GOV.UK Frontend's aria-expanded on a revealing
radio) is accepted exactly: anything else on the same element, or elsewhere, still fails."""
from __future__ import annotations

from tests.browser.conftest import _without_reveal_state

RADIO = '<input class="govuk-radios__input" id="decision-2" type="radio" aria-controls="c" aria-expanded="true">'


def _node(html: str, *data: str) -> dict:
    return {"html": html, "any": [], "all": [{"id": "aria-allowed-attr", "data": list(data)}], "none": []}


def test_only_the_reveal_state_on_a_radio_is_accepted():
    accepted = {"id": "aria-allowed-attr", "nodes": [_node(RADIO, 'aria-expanded="true"')]}
    assert _without_reveal_state([accepted]) == []
    mixed = {"id": "aria-allowed-attr", "nodes": [_node(RADIO, 'aria-expanded="true"'),
                                                   _node(RADIO, 'aria-expanded="true"', 'aria-pressed="true"'),
                                                   _node('<div class="x" aria-expanded="true">', 'aria-expanded="true"')]}
    (left,) = _without_reveal_state([mixed])
    assert len(left["nodes"]) == 2, "another attribute on the radio, or another element, still fails"
    other = {"id": "color-contrast", "nodes": [_node(RADIO, 'aria-expanded="true"')]}
    assert _without_reveal_state([other]) == [other]
