"""Authorization matrix cases for asking for, releasing and declining transfers: see
tests/test_authorization_matrix.py.

Otherborough's administrator (other_admin) asks for the world's consented episode; the world's
administrator and that episode's lead professional decide. A request is seen by the authority that
asked and by those who may decide it; anyone else gets 404, like a request that does not exist.
Only the deciding side downloads the signed transfer file, and only while the release is live.
"""
from __future__ import annotations

from datetime import timedelta

from app.clock import now
from app.models import Episode, TransferRequest, User

MISSING = 999999


def seed(runtime, world: dict) -> None:
    with runtime.db.session() as session:
        episode = session.get(Episode, world["episodes"]["given"])
        child = episode.child
        asked_by = world["users"]["other_admin"]
        to_authority_id = session.get(User, asked_by).organisation.authority_id

        def request(**extra) -> int:
            row = TransferRequest(reference=episode.reference, given_names=child.given_names,
                                  family_name=child.family_name, date_of_birth=child.date_of_birth,
                                  reason="Moved", to_authority_id=to_authority_id, requested_by_id=asked_by,
                                  requested_at=now(), episode_id=episode.id, **extra)
            session.add(row)
            session.flush()
            return row.id

        world["transfers"] = {
            "waiting": request(status="requested"),
            "released": request(status="released", release_id="c" * 32, decided_by_id=world["users"]["admin"],
                                decided_at=now(), decision_reason="Moved", expires_at=now() + timedelta(days=14)),
        }


def cases(world: dict, ids: dict, rules) -> dict:
    Case, by_role, ANONYMOUS, ADMINS, PRACTITIONERS = (rules.Case, rules.by_role, rules.ANONYMOUS, rules.ADMINS,
                                                       rules.PRACTITIONERS)
    waiting, released = world["transfers"]["waiting"], world["transfers"]["released"]
    deciders = {"admin", "lead"}

    def request_page(readers: set[str], ok: int = 200):
        """Administrators and practitioners reach the pages; of them only `readers` get `ok`."""
        def expect(actor: str) -> int:
            if actor == ANONYMOUS:
                return 302
            if actor not in ADMINS | PRACTITIONERS:
                return 403
            return ok if actor in readers else 404
        return expect

    return {
        "transfer_requests.index": [Case("GET", "/transfers/requests/", by_role(ADMINS | PRACTITIONERS))],
        "transfer_requests.new": [Case("GET", "/transfers/requests/new", by_role(ADMINS)),
                                  Case("POST", "/transfers/requests/new", by_role(ADMINS, ok=400), {})],
        "transfer_requests.show": [Case("GET", f"/transfers/requests/{waiting}",
                                        request_page(deciders | {"other_admin"})),
                                   Case("GET", f"/transfers/requests/{MISSING}", request_page(set()))],
        # An empty decision is a 400 for those who may decide; the asker may read but not decide.
        "transfer_requests.decide": [Case("POST", f"/transfers/requests/{waiting}",
                                          request_page(deciders, 400), {}),
                                     Case("POST", f"/transfers/requests/{MISSING}", request_page(set()), {})],
        "transfer_requests.transfer_file": [
            Case("GET", f"/transfers/requests/{released}/transfer.json", request_page(deciders)),
            Case("GET", f"/transfers/requests/{waiting}/transfer.json", request_page(set()))],
        # The JSON API reads no session: whoever is signed in is as unknown there as anyone (401).
        # What clients may do is tested in tests/test_api_transfers.py.
        **{endpoint: [Case(method, f"/api/v1/transfers/{path}", lambda actor: 401, body)]
           for endpoint, method, path, body in (
               ("api.ask_for_transfer", "POST", "requests", {"reference": "TST-000001"}),
               ("api.list_transfer_requests", "GET", "requests", None),
               ("api.get_transfer_request", "GET", f"requests/{waiting}", None),
               ("api.decide_transfer_request", "POST", f"requests/{waiting}/decision", {"decision": "release"}),
               ("api.fetch_transfer_file", "GET", f"requests/{released}/export", None),
               ("api.import_transfer", "POST", "import", {"document": "{}"}))},
    }
