"""Schemathesis fuzzes every operation of the served /api/v1/openapi.json (so an endpoint added later is
covered without a line here), with the credentials of a client holding every scope, against an app
holding an episode in delivery, on SQLite and PostgreSQL.

For each operation it sends MAX_EXAMPLES requests that fit the document, MAX_EXAMPLES that do not, and
the document's examples (again with odd values: NUL, unusual unicode, far dates, huge integers), and
checks every answer: never a 5xx, a status the document lists for the operation, the content type
and body schema it gives for that status, and the headers it requires (Retry-After on 429). Bounded and
reproducible: derandomized (a fixed seed), no shrinking, no example database.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from app import create_app
from app.models import API_SCOPES
from tests.api_odd_input import odd_cases
from tests.journeys import to_delivery
from tests.test_api_index import register

MAX_EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# Far above what the fuzz sends, so the limits never answer in its place (their 429 has tests of its own).
NO_LIMIT = "1000000/minute"
FUZZ = settings(derandomize=True, database=None, deadline=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                print_blob=False)


@pytest.fixture
def served(runtime, people):
    to_delivery(runtime, people)
    credentials = register(runtime, people["admin"], scopes=API_SCOPES, name="Fuzz")
    app = create_app(replace(runtime.config, api_rate_limit=NO_LIMIT, api_failed_credentials_limit=NO_LIMIT))
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), {"Authorization": f"Bearer {credentials}"}


def test_every_operation_answers_as_the_served_document_says(served):
    schema, headers = served
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for kind, strategy, examples in _strategies(schema, operation):
            try:
                _fuzzed(operation, kind, strategy, examples, headers)()
            except Exception as exc:  # every operation is fuzzed; all that fail are reported together
                failures.append(f"{operation.label} ({kind}): {exc}")
    assert operations, "the document lists no operation"
    assert not failures, "\n\n".join(failures)


def _fuzzed(operation, kind, strategy, examples, headers):
    @settings(FUZZ, max_examples=examples)
    @given(case=strategy)
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=CHECKS)
        if kind == "examples":
            for odd in odd_cases(operation, case):
                odd.call_and_validate(headers=headers, checks=CHECKS)
    return fuzz


def _strategies(schema, operation):
    """Requests that fit the document, requests that do not (a missing credential among them: 401),
    and the document's own examples (which reach the data, so a 200 is checked too), each also sent
    with odd values in place of its own (tests/api_odd_input.py)."""
    yield "fits", operation.as_strategy(generation_mode=GenerationMode.POSITIVE), MAX_EXAMPLES
    yield "does not fit", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), MAX_EXAMPLES
    examples = schema.get_strategies_from_examples(operation)
    if examples:
        yield "examples", strategies.one_of(examples), len(examples)


def test_each_operation_is_given_the_errors_that_apply_to_it():
    from app.api.responses import described

    document = described({"security": [], "paths": {
        "/api/v1/transfers/{id}": {"get": {"security": [{"client": []}], "parameters": [{"name": "id"}],
                                           "responses": {"200": {}}}},
        "/api/v1/open": {"post": {"requestBody": {}, "responses": {"200": {}}}}}})
    by_id = document["paths"]["/api/v1/transfers/{id}"]["get"]["responses"]
    assert set(by_id) == {"200", "400", "401", "403", "404", "429", "500", "503"}
    assert by_id["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert by_id["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert by_id["404"]["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    unsecured = document["paths"]["/api/v1/open"]["post"]["responses"]
    assert set(unsecured) == {"200", "400", "413", "415", "429", "500", "503"}  # every call may be limited
    assert "ProblemDetails" in document["components"]["schemas"]
