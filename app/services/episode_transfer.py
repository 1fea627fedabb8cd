"""Episode export, transfer to another local authority, and subject-access export: the names callers use.

The work is in app/services/transfers/, one job per module; who may do what is in app/policy/transfers.py.
"""
from __future__ import annotations

from app.services.transfers.apply import carry_over, import_episode
from app.services.transfers.checks import Transfer, check
from app.models.episode import MOVED_OUTCOME
from app.services.transfers.common import (FORMAT, LEAD_FIELD, MOVED_REASON, SCHEMA_VERSION,
                                           TransferRefused, canonical, checksum)
from app.services.transfers.document import SCHEMA_PATH, parse, schema, schema_problems, sign, signature_matches
from app.services.transfers.export import export_episode, export_for_transfer
from app.services.transfers.subject_access import subject_access

__all__ = ["FORMAT", "LEAD_FIELD", "MOVED_OUTCOME", "MOVED_REASON", "SCHEMA_PATH", "SCHEMA_VERSION", "Transfer",
           "TransferRefused", "canonical", "carry_over", "check", "checksum", "export_episode", "export_for_transfer",
           "import_episode", "parse", "schema", "schema_problems", "sign", "signature_matches", "subject_access"]
