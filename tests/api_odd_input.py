"""Odd values a schema allows but a database may refuse: each documented example of an operation, with
one value at a time replaced by NUL characters, unusual unicode, a date at the edge of the calendar or
an integer too large for a database column. PostgreSQL refuses NUL in text, and a far date or a huge
number can overflow arithmetic or a column: each must be a 4xx, never a 500."""
from __future__ import annotations

import re
from typing import Iterator

ODD_TEXT = ["nul \x00 inside", "Zoë \u202eright to left\u202c \U0001f600 \u0301\ufdfd"]
ODD_DATES = ["0001-01-01", "9999-12-31"]
ODD_TIMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
ODD_INTEGERS = [2**63, -(2**63) - 1, 10**30]
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def odd_values(value) -> list:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return ODD_INTEGERS
    if isinstance(value, str):
        return ODD_DATES if DATE.match(value) else ODD_TIMES if TIME.match(value) else ODD_TEXT
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return [[text] for text in ODD_TEXT]
    return []


def odd_cases(operation, example) -> Iterator:
    """`example` again, with one body field, query or path parameter at a time made odd."""
    parts = {"body": example.body, "query": example.query, "path_parameters": example.path_parameters}
    for part, values in parts.items():
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            for odd in odd_values(value):
                changed = {**parts, part: {**values, name: odd}}
                yield operation.Case(body=changed["body"], query=changed["query"],
                                     path_parameters=changed["path_parameters"], media_type=example.media_type)
