"""What /api/v1/transfers reads and answers, as pydantic models (and so as the OpenAPI document says)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import ProblemDetails


class TransferAsk(BaseModel):
    """What the receiving authority knows: the episode's reference and the child, and why it should move."""
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(..., max_length=40, examples=["TST-000123"],
                           description="The episode's reference as the other authority gave it")
    given_names: str = Field(..., max_length=200)
    family_name: str = Field(..., max_length=200)
    date_of_birth: date
    reason: str = Field(..., max_length=2000, description="Why the episode should move (the other side reads it)")


class TransferDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["release", "decline"]
    reason: str = Field(..., max_length=2000, description="Why (the asking authority reads it)")


class TransferImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any] = Field(..., description="The signed transfer file, exactly as fetched")
    lead_professional_email: str = Field(..., max_length=320,
                                         description="A vetted practitioner of the client's authority")


class TransferRequestView(BaseModel):
    """A request as its side sees it. The asking side sees what it typed, and never which episode (or
    whether any) matched until the holding authority releases or declines."""
    id: int
    side: Literal["asking", "deciding"]
    status: Literal["requested", "released", "expired", "declined", "used"]
    reference: str = Field(..., description="As typed by the asking authority")
    given_names: str
    family_name: str
    date_of_birth: date
    reason: str
    asking_authority: str
    requested_at: datetime
    asked_by: str | None = Field(None, description="Only to the deciding side: a person, or '<name> (client system)'")
    episode_reference: str | None = Field(None, description="Only to the deciding side")
    holding_authority: str | None = Field(None, description="To the asking side only once decided")
    release_problem: str | None = Field(None, description="Deciding side: why the episode cannot be released now")
    decided_by: str | None = Field(None, description="Only to the deciding side")
    decided_at: datetime | None = None
    decision_reason: str | None = None
    release_id: str | None = None
    expires_at: datetime | None = None


class TransferRequestList(BaseModel):
    to_decide: list[TransferRequestView] = Field(..., description="Requests for episodes of the client's authority")
    made: list[TransferRequestView] = Field(..., description="Requests the client's authority made")


class TransferFile(BaseModel):
    """The signed episode export for transfer (docs/episode-export.md): send it back unchanged to import."""
    model_config = ConfigDict(extra="allow")
    format: Literal["ecaf-episode-export"]
    schema_version: int
    transfer: dict[str, Any]
    checksum: dict[str, Any]
    signature: dict[str, Any]


class ImportedEpisode(BaseModel):
    reference: str = Field(..., description="The episode's new reference in the client's authority")
    transferred_from: str
    lead_professional_email: str


class ImportRefusal(ProblemDetails):
    """Why the import was refused; nothing changed but the audit trail."""
    problems: list[str] | None = Field(None, description="Every detail, e.g. each way the file breaks the schema")
