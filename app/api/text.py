"""Text an API call may not carry into eCAF, and how it is written where it must be kept."""
from __future__ import annotations

import re
from typing import Iterable

# NUL and other control characters: never typed by a person, and PostgreSQL refuses NUL in text.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What an audit row may not hold as sent: control characters and lone surrogates.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def control_problems(fields: Iterable[tuple[str, object]]) -> dict[str, str]:
    """Each text field holding a control character, with the message a form would give."""
    return {field: "Remove the control characters" for field, value in fields
            if isinstance(value, str) and CONTROL.search(value)}
