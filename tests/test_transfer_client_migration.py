"""Migration 0023: a transfer request may name the client system that asked or decided it, and the
downgrade refuses to drop a request that names no person rather than lose it."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import create_engine, inspect, text

from app.migrate import downgrade, upgrade


def _columns(url: str) -> dict:
    engine = create_engine(url)
    try:
        return {c["name"]: c["nullable"] for c in inspect(engine).get_columns("transfer_request")}
    finally:
        engine.dispose()


def test_the_client_columns_come_and_go(tmp_path):
    url = f"sqlite:///{tmp_path / 'transfers.db'}"
    upgrade(url, "0023")
    columns = _columns(url)
    assert columns["requested_by_id"] is True and {"requested_by_client_id", "decided_by_client_id"} <= set(columns)
    engine = create_engine(url)
    [check] = [c for c in inspect(engine).get_check_constraints("transfer_request")]
    assert check["name"] == "ck_transfer_request_one_asker"
    with engine.begin() as conn, pytest.raises(Exception, match="CHECK constraint failed: ck_transfer_request_one_asker"):
        conn.execute(text("INSERT INTO authority (code, name, admin_email) VALUES ('A', 'A', 'a@a.test')"))
        conn.execute(text("INSERT INTO transfer_request (reference, given_names, family_name, date_of_birth, "
                          "reason, to_authority_id, requested_at, status) VALUES ('A-1', 'C', 'C', :born, 'r', "
                          "1, '2026-12-04 10:00:00', 'requested')"), {"born": date(2015, 5, 1)})
    engine.dispose()
    downgrade(url, "0021")
    columns = _columns(url)
    assert columns["requested_by_id"] is False and "requested_by_client_id" not in columns
