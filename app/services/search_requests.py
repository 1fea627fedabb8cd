"""Search requests: a practitioner asks the eCAF administrator to look for CAFs for some children."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app import audit
from app.clock import now
from app.models import SearchRequest, SearchRequestChild, User


class NoChildren(ValueError):
    pass


def submit(session: Session, user: User, reason: str, children: list[dict]) -> SearchRequest:
    if not children:
        raise NoChildren("Add at least one child to your request")
    authority = user.authority
    if authority is None:
        raise ValueError("Your account belongs to no local authority: contact the eCAF administrator")
    request = SearchRequest(requester_id=user.id, authority_id=authority.id, reason=reason, status="submitted",
                            created_at=now())
    for child in children:
        request.children.append(SearchRequestChild(
            given_names=child["given_names"], family_name=child["family_name"],
            date_of_birth=date.fromisoformat(child["date_of_birth"]) if child.get("date_of_birth") else None,
            postcode=child.get("postcode"), nhs_number=child.get("nhs_number"), notes=child.get("notes")))
    session.add(request)
    session.flush()
    audit.record(session, "search_request_submitted", actor_id=user.id, request_id=request.id,
                 children=len(children))
    return request


def mine(session: Session, user: User) -> list[SearchRequest]:
    return session.scalars(select(SearchRequest).where(SearchRequest.requester_id == user.id)
                           .options(selectinload(SearchRequest.children))
                           .order_by(SearchRequest.created_at.desc())).all()


def one_of_mine(session: Session, user: User, request_id: int) -> SearchRequest | None:
    return session.scalar(select(SearchRequest).where(SearchRequest.id == request_id,
                                                      SearchRequest.requester_id == user.id)
                          .options(selectinload(SearchRequest.children)))
