"""Where the JSON API lives: its requests get problem details, never a page, a session or a cookie."""
from __future__ import annotations

PREFIX = "/api/v1"
# Far above the largest search; anything bigger is refused with 413 before it is read.
BODY_LIMIT = 16 * 1024
# The one exception: a signed transfer file holds a whole episode (as the web import, 20 MB).
LARGER_BODIES = {"api.import_transfer": 20 * 1024 * 1024}


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
