"""Problem details (RFC 9457) as a model, so the document says what every error looks like."""
from __future__ import annotations

from pydantic import BaseModel, Field


class ProblemDetails(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = Field(None, description="Each field that was wrong, and why")


PROBLEMS = {f"HTTP_{status}": ProblemDetails for status in (400, 401, 403, 413, 415)}
