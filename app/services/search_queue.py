"""The administrator's side of search requests: search the authority's children and CAFs for each
child a practitioner asked about, link what was found (or nothing), and answer.

Matching uses four keys (family name, given names, date of birth, postcode), compared as the
national index compares them: a name spelt differently, day and month swapped, or the same
postcode district count as close. A candidate needs two keys matching, at least closely, because
the practitioner asks exactly when the details they hold may differ from the record's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer, joinedload, selectinload

from app import audit, outbox, policy
from app.audit_lists import episodes_shown
from app.clock import now
from app.models import Child, Episode, SearchRequest, SearchRequestChild, User
from app.services.children import normalise_postcode
from app.services import request_matching
from app.services.index_matching import district, swapped
from app.services.query_plans import plan_for_values

MAX_CANDIDATES = 20
MAX_ANSWERED_LISTED = 50


class AlreadyAnswered(RuntimeError):
    """A request is answered once: the requester has already been told."""


class AnswerInvalid(ValueError):
    """The answer is incomplete; `problems` maps form fields to messages."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


# ---------------------------------------------------------------- the queue

@dataclass
class Queue:
    waiting: list[SearchRequest]
    answered: list[SearchRequest]


def _of_authority(admin: User):
    return select(SearchRequest).where(policy.authority_clause(admin, SearchRequest.authority_id)).options(
        selectinload(SearchRequest.children), selectinload(SearchRequest.requester))


def queue(session: Session, admin: User) -> Queue:
    """Waiting requests of the administrator's authority, oldest first; then the latest answered.

    One statement reads both with their requesters (and one more their children): the answered ones
    are chosen by a subquery and the two lists put in their orders here."""
    latest_answered = (select(SearchRequest.id)
                       .where(policy.authority_clause(admin, SearchRequest.authority_id),
                              SearchRequest.status == "answered")
                       .order_by(SearchRequest.answered_at.desc(), SearchRequest.id.desc())
                       .limit(MAX_ANSWERED_LISTED))
    found = session.scalars(
        select(SearchRequest)
        .where(policy.authority_clause(admin, SearchRequest.authority_id),
               or_(SearchRequest.status == "submitted", SearchRequest.id.in_(latest_answered.scalar_subquery())))
        .options(selectinload(SearchRequest.children), joinedload(SearchRequest.requester, innerjoin=True))).all()
    waiting = sorted((r for r in found if r.status == "submitted"), key=lambda r: (r.created_at, r.id))
    # Newest answer first (answer() sets the time with the status, so every answered request has one).
    answered = sorted((r for r in found if r.status == "answered"), key=lambda r: (r.answered_at, r.id), reverse=True)
    return Queue(waiting, answered)


def request_for(session: Session, admin: User, request_id: int, *, lock: bool = False) -> SearchRequest | None:
    """The request if it was sent to the administrator's authority, else None (the caller answers 404)."""
    query = _of_authority(admin).where(SearchRequest.id == request_id)
    return session.scalar(query.with_for_update(of=SearchRequest) if lock else query)


# ---------------------------------------------------------------- searching

class Keys(request_matching.Keys):
    @classmethod
    def of(cls, child: SearchRequestChild) -> "Keys":
        return cls(child.given_names or "", child.family_name or "", child.date_of_birth,
                   normalise_postcode(child.postcode), child.nhs_number or None)


@dataclass
class Candidate:
    """A child record of the authority with one of its CAFs, and how well it matches."""
    child: Child
    episode: Episode
    exact: list[str] = field(default_factory=list)
    close: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)

    @property
    def strength(self) -> tuple:
        return (-len(self.exact) - len(self.close), -len(self.exact), self.episode.status != "open",
                -self.episode.started_at.timestamp())

    @property
    def contact(self) -> dict:
        return episode_contact(self.episode)


def _narrowing(keys: Keys):
    """Rows worth comparing, narrowed in SQL: of the two keys that must match, one is nearly always
    an exactly spelt name, the date of birth (or its swap) or the postcode district."""
    near = [func.lower(func.trim(Child.family_name)) == keys.family_name.strip().lower(),
            func.lower(func.trim(Child.given_names)) == keys.given_names.strip().lower()]
    if keys.date_of_birth is not None:
        near.append(Child.date_of_birth.in_([keys.date_of_birth] + [d for d in [swapped(keys.date_of_birth)] if d]))
    if keys.postcode is not None:
        near.append(or_(Child.postcode == keys.postcode,
                        Child.postcode.startswith(f"{district(keys.postcode)} ", autoescape=True)))
    if keys.nhs_number is not None:
        near.append(Child.nhs_number == keys.nhs_number)
    return or_(*near)


def candidates(session: Session, admin: User, keys: Keys) -> list[Candidate]:
    """The administrator's authority's CAFs (not deleted) of children matching at least two keys, best first.

    Up to 500 rows are compared from their keys alone (request_matching.best compares names in full only
    for rows that could still be among the best); only the best MAX_CANDIDATES are loaded whole."""
    plan_for_values(session)
    rows = session.execute(
        select(Child.id.label("child_id"), Child.given_names, Child.family_name, Child.date_of_birth, Child.postcode,
               Child.nhs_number, Episode.id.label("episode_id"), Episode.status, Episode.started_at)
        .join(Episode, Episode.child_id == Child.id)
        .where(policy.authority_clause(admin, Episode.authority_id), Episode.status != "deleted", _narrowing(keys))
        .order_by(Episode.started_at.desc()).limit(500))
    best = [(row.child_id, row.episode_id, how) for row, how in request_matching.best(keys, rows, MAX_CANDIDATES)]
    episodes = {e.id: e for e in session.scalars(
        select(Episode).where(Episode.id.in_([b[1] for b in best])).options(
            defer(Episode.state), joinedload(Episode.child), joinedload(Episode.authority),
            joinedload(Episode.lead_professional).joinedload(User.organisation),
            joinedload(Episode.originator).joinedload(User.organisation)))}
    return [Candidate(episodes[episode_id].child, episodes[episode_id], **how) for child_id, episode_id, how in best
            if episode_id in episodes and episodes[episode_id].child_id == child_id]


@dataclass
class ChildToAnswer:
    child: SearchRequestChild
    candidates: list[Candidate]


def search_for_request(session: Session, admin: User, request: SearchRequest,
                       extra: dict[int, Keys] | None = None) -> list[ChildToAnswer]:
    """Candidates for each child of the request; `extra` adds a search with other details for a child."""
    result = []
    for child in request.children:
        found = candidates(session, admin, Keys.of(child))
        if extra and child.id in extra:
            seen = {c.episode.id for c in found}
            found += [c for c in candidates(session, admin, extra[child.id]) if c.episode.id not in seen]
        result.append(ChildToAnswer(child, found))
    episodes_shown(session, admin.id, "search_request", [c.episode.id for r in result for c in r.candidates],
                   action="search_request_searched", request_id=request.id,
                   candidates={str(c.child.id): len(c.candidates) for c in result},
                   other_details=sorted(extra) if extra else None)
    return result


# ---------------------------------------------------------------- answering

NO_MATCH = "none"


def _an_id(text: str) -> bool:
    return text.isdigit() and len(text) < 10  # within the integer column's range


def linkable_episode(session: Session, admin: User, episode_id: int) -> Episode | None:
    return session.scalar(select(Episode).where(Episode.id == episode_id,
                                                policy.authority_clause(admin, Episode.authority_id),
                                                Episode.status != "deleted", Episode.child_id.is_not(None)))


def _links(session: Session, admin: User, request: SearchRequest, choices: dict[int, str]) -> tuple[dict, dict]:
    """({request child id: Episode or None}, problems): each child needs a CAF of the authority or NO_MATCH."""
    links, problems = {}, {}
    for child in request.children:
        choice = choices.get(child.id, "")
        episode = linkable_episode(session, admin, int(choice)) if _an_id(choice) else None
        if episode is None and choice != NO_MATCH:
            problems[f"match-{child.id}"] = (f"Select the CAF you found for {child.given_names} {child.family_name}, "
                                             "or that no CAF was found")
        links[child.id] = episode
    return links, problems


def answer(session: Session, admin: User, request: SearchRequest, choices: dict[int, str],
           notes: dict[int, str], text: str) -> int:
    """Link each child to a CAF of the authority or to none, answer, queue the email and audit it.
    `choices` maps each request child's id to an episode id (as text) or NO_MATCH. Returns the
    id of the queued email, to deliver after the commit."""
    if request.status == "answered":
        raise AlreadyAnswered(f"search request {request.reference} was answered already")
    links, problems = _links(session, admin, request, choices)
    if not text:
        problems["answer"] = "Enter your answer to the practitioner"
    if problems:
        raise AnswerInvalid(problems)
    for child in request.children:
        episode = links[child.id]
        child.matched_episode_id = episode.id if episode else None
        child.matched_child_id = episode.child_id if episode else None
        child.match_note = notes.get(child.id) or None
    request.status, request.answer = "answered", text
    request.answered_by_id, request.answered_at = admin.id, now()
    message_id = _email_requester(session, request)
    audit.record(session, "search_request_answered", actor_id=admin.id, request_id=request.id,
                 matches=[{"request_child_id": c.id, "episode_id": c.matched_episode_id} for c in request.children])
    return message_id


def _email_requester(session: Session, request: SearchRequest) -> int:
    """The email says only that there is an answer: the children's details stay in eCAF."""
    message = outbox.queue_email(
        session, kind="search_request_answered", recipient=request.requester.email,
        subject=f"eCAF: your search request {request.reference} has been answered",
        body=f"The eCAF administrator has answered your search request {request.reference}. "
             "Sign in to eCAF and open your search requests to read the answer.",
        key=f"search-request-answered:{request.id}")
    return message.id


# ---------------------------------------------------------------- what the requester sees

def episode_contact(episode: Episode) -> dict:
    """Whom to contact about a CAF: its lead professional, or its originator until one is appointed."""
    person = episode.lead_professional or episode.originator
    return {"name": person.full_name, "organisation": person.organisation.name if person.organisation else None,
            "phone": person.phone, "email": person.email}


@dataclass
class Finding:
    """What the requester is told about one child: a contact, or why there is none."""
    found: bool
    contact: dict | None = None
    authority: str | None = None
    no_longer_shared: bool = False
    deleted_since: bool = False


def finding(session: Session, child: SearchRequestChild) -> Finding:
    """Read when the requester looks, so the contact is the CAF's current one."""
    if child.matched_episode_id is None:
        return Finding(found=False)
    episode = session.get(Episode, child.matched_episode_id)
    if episode is None or episode.status == "deleted":
        return Finding(found=False, deleted_since=True)
    if episode.consent_state == "withdrawn":
        # Withdrawn consent stops sharing, as the national index stops pointing to the CAF.
        return Finding(found=True, no_longer_shared=True, authority=episode.authority.name)
    return Finding(found=True, contact=episode_contact(episode), authority=episode.authority.name)


def linked_episodes(session: Session, request: SearchRequest) -> dict[int, Episode]:
    """The CAF linked to each child of an answered request, by request child id."""
    ids = [c.matched_episode_id for c in request.children if c.matched_episode_id]
    episodes = {e.id: e for e in session.scalars(select(Episode).where(Episode.id.in_(ids)))} if ids else {}
    return {c.id: episodes[c.matched_episode_id] for c in request.children if c.matched_episode_id in episodes}
