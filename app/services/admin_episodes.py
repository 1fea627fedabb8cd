"""The administrator's view of their authority's episodes: dashboard counts and filtered lists.

Everything is read from indexed columns and projections (episode, human_task, admin_alert,
search_request); no workflow is loaded. Each dashboard count is the size of the list it links to:
both come from the same `CONDITIONS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased, defer, joinedload

from app import policy
from app.clock import as_utc, now
from app.models import (OPEN_STATUSES, AdminAlert, Child, Episode, HumanTask, Organisation, ProcessVersion,
                        SearchRequest, User)
from app.services.query_plans import plan_for_values

PAGE_SIZE = 50
COUNT_CAP = 10_000
AT_RISK_DAYS = 7  # the 35-day limit within a week
AT_RISK_PROTECTION_HOURS = 12  # the 48-hour limit within half a day
STAGES = ("preparation", "assessment", "delivery", "closure")
# Each sort: the column a page is ordered by (then the id, so the order is total) and whether newest first.
SORT_KEYS = {"updated": (Episode.updated_at, True), "updated_oldest": (Episode.updated_at, False),
             "started": (Episode.started_at, True), "started_oldest": (Episode.started_at, False)}
SORTS = {name: ((column.desc(), Episode.id.desc()) if newest else (column.asc(), Episode.id.asc()))
         for name, (column, newest) in SORT_KEYS.items()}

_Task = aliased(HumanTask)
_Alert = aliased(AdminAlert)


def _open():
    return Episode.status.in_(OPEN_STATUSES)


def errored():
    """Episodes whose automatic step failed: open ones, and closed ones whose six-month outcome check
    failed (they stay closed: a new CAF may be open for the child)."""
    return or_(Episode.status == "error", and_(Episode.status == "closed", Episode.error_task.is_not(None)))


def _not_submitted():
    return and_(Episode.submitted_at.is_(None), Episode.stage.in_(("preparation", "assessment")))


def _overdue_alert():
    # An alert carries its episode's authority (an episode never changes authority: a transfer opens a
    # new one), so naming it lets the database start from the authority's few alerts.
    return exists().where(_Alert.episode_id == Episode.id, _Alert.authority_id == Episode.authority_id,
                          _Alert.kind == "assessment_overdue")


def _conditions(moment: datetime, stuck_after_days: int) -> dict:
    """Each named list as a WHERE clause over Episode (the policy's authority clause is added by the caller)."""
    waiting_on_person = exists().where(_Task.episode_id == Episode.id, _Task.status == "ready")
    return {
        "open": _open(),
        "timer": and_(Episode.status == "open", Episode.next_timer_at.is_not(None)),
        "overdue": and_(_open(), exists().where(_Task.episode_id == Episode.id, _Task.status == "ready",
                                                _Task.due_at < moment)),
        "at_risk": and_(Episode.status == "open", _not_submitted(), Episode.next_timer_at > moment, or_(
            and_(Episode.child_protection.is_(True),
                 Episode.next_timer_at <= moment + timedelta(hours=AT_RISK_PROTECTION_HOURS)),
            and_(Episode.child_protection.is_(False), Episode.next_timer_at <= moment + timedelta(days=AT_RISK_DAYS),
                 ~_overdue_alert()))),
        "errored": errored(),
        "stuck": and_(Episode.status == "open", Episode.updated_at < moment - timedelta(days=stuck_after_days),
                      waiting_on_person),
        "pending_deletion": and_(_open(), _not_submitted(), Episode.legal_hold.is_(False), _overdue_alert()),
        "suspended": Episode.status == "suspended",
        "closed": Episode.status == "closed",
    }


LISTS = {"open": "Open", "timer": "Waiting on a timer", "overdue": "Overdue", "at_risk": "At risk",
         "errored": "Errored", "stuck": "Stuck", "pending_deletion": "Pending deletion", "suspended": "Suspended",
         "closed": "Closed"}


@dataclass
class Dashboard:
    by_stage: dict[str, int]
    counts: dict[str, int]
    search_requests_waiting: int


def _capped(*where):
    """How many, counting no further than COUNT_CAP (as SQL): past that the page says "10,000+" and the
    list itself is the answer, so a huge authority never pays for a full count."""
    limited = select(Episode.id).where(*where).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(limited).scalar_subquery()


def _capped_count(session: Session, *where) -> int:
    return session.scalar(select(_capped(*where)))


COUNTED = ("timer", "overdue", "at_risk", "errored", "stuck", "pending_deletion", "suspended")


def _count_bounds(moment: datetime) -> dict:
    """Conditions a count adds to its list's, implied by it (so the number is the same): the at-risk
    windows' outer end gives its index a closed range to count from the index alone. The list itself
    goes without: its planner then walks the newest first, which finds a page sooner."""
    return {"at_risk": (Episode.next_timer_at <= moment + max(timedelta(days=AT_RISK_DAYS),
                                                              timedelta(hours=AT_RISK_PROTECTION_HOURS)),)}


def _counts_of(admin: User, names, moment: datetime, stuck_after_days: int) -> list:
    conditions, bounds = _conditions(moment, stuck_after_days), _count_bounds(moment)
    in_authority = policy.authority_clause(admin, Episode.authority_id)
    return [_capped(in_authority, conditions[name], *bounds.get(name, ())) for name in names]


def count(session: Session, admin: User, name: str, *, stuck_after_days: int) -> int:
    """The size of one list (capped), as the dashboard shows it."""
    plan_for_values(session)
    return session.scalar(select(*_counts_of(admin, [name], now(), stuck_after_days)))


def dashboard(session: Session, admin: User, *, stuck_after_days: int) -> Dashboard:
    """Every count in one statement: one round trip instead of twelve."""
    plan_for_values(session)
    moment = now()
    in_authority = policy.authority_clause(admin, Episode.authority_id)
    waiting = (select(func.count()).select_from(SearchRequest).where(
        policy.authority_clause(admin, SearchRequest.authority_id), SearchRequest.status == "submitted")
        .scalar_subquery())
    figures = session.execute(select(
        *(_capped(in_authority, Episode.stage == stage, _open()) for stage in STAGES),
        *_counts_of(admin, COUNTED, moment, stuck_after_days), waiting)).one()
    by_stage = dict(zip(STAGES, figures[:len(STAGES)]))
    counts = dict(zip(COUNTED, figures[len(STAGES):-1]))
    return Dashboard(by_stage, counts, figures[-1])


@dataclass
class Filters:
    """A list's filters as typed (kept on the page) and as understood; `errors` names what was not."""

    show: str = "open"
    stage: str = ""
    version: str = ""
    organisation: str = ""
    lead: str = ""
    started_from: date | None = None
    started_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    sort: str = "updated"
    page: int = 1
    # Keyset pagination: the page starts after (or ends before) this row's sort key, "<microseconds>_<id>".
    after: str = ""
    before: str = ""
    errors: dict = field(default_factory=dict)
    # The sort keys of the first and last rows shown, set by `episode_list` for the page's links.
    first_key: str = ""
    last_key: str = ""

    def as_args(self, **changes) -> dict:
        values = {"show": self.show, "stage": self.stage, "version": self.version,
                  "organisation": self.organisation, "lead": self.lead, "sort": self.sort, "page": self.page}
        for name in ("started_from", "started_to", "updated_from", "updated_to"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value.isoformat()
        values.update(changes)
        # The next and previous pages carry the key they start from, so no page skips rows with OFFSET.
        page = values.get("page")
        if page == self.page + 1 and self.last_key:
            values["after"] = self.last_key
        elif page == self.page - 1 and page > 1 and self.first_key:
            values["before"] = self.first_key
        return {k: v for k, v in values.items() if v not in ("", None)}


def read_filters(args) -> Filters:
    filters = Filters()
    filters.show = args.get("show", "open") if args.get("show", "open") in LISTS else "open"
    filters.stage = args.get("stage", "") if args.get("stage", "") in STAGES + ("closed",) else ""
    filters.version = args.get("version", "") if args.get("version", "").isdigit() else ""
    filters.organisation = args.get("organisation", "") if args.get("organisation", "").isdigit() else ""
    filters.lead = args.get("lead", "") if args.get("lead", "").isdigit() else ""
    filters.sort = args.get("sort", "updated") if args.get("sort") in SORTS else (
        "updated" if filters.show != "stuck" else "updated_oldest")
    page = args.get("page", "1")
    filters.page = max(1, min(int(page), 10_000)) if page.isdigit() else 1
    if filters.page > 1:
        filters.after = args.get("after", "") if _key(args.get("after", "")) else ""
        filters.before = args.get("before", "") if not filters.after and _key(args.get("before", "")) else ""
    for name in ("started_from", "started_to", "updated_from", "updated_to"):
        value = (args.get(name) or "").strip()
        if not value:
            continue
        try:
            setattr(filters, name, date.fromisoformat(value))
        except ValueError:
            filters.errors[name] = "Enter a date like 2026-03-31"
    return filters


@dataclass
class EpisodeRow:
    episode: Episode
    child_name: str
    lead_name: str | None
    originator_name: str
    organisation: str | None
    version: str


def version_labels(session: Session) -> dict[int, str]:
    """Labels of every process version, read once (never the versions' large XML and spec columns)."""
    return {id_: f"{process_id} v{version}" for id_, process_id, version in session.execute(
        select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.version))}


def episode_list(session: Session, admin: User, filters: Filters, *,
                 stuck_after_days: int) -> tuple[list[EpisodeRow], bool]:
    """One page of the list and whether there is a next one (no total count: it would scan).

    Pages are keyset pages: the next page starts after the last row's sort key (the index walk
    starts there, however deep the page); only a page number typed without its key is skipped to
    with OFFSET. Sets `filters.first_key` and `filters.last_key` for the page's links."""
    plan_for_values(session)
    column, newest = SORT_KEYS[filters.sort]
    # The page's ids first (from an index, most lists), then those 50 episodes with their people, child
    # and authority: joined to every candidate row, these would be read for thousands of rows before
    # the page's 50 were picked.
    query = _filtered(select(Episode.id), admin, filters, stuck_after_days)
    backwards = bool(filters.before)
    if filters.after or filters.before:
        moment, episode_id = _key(filters.after or filters.before)
        later = (newest != backwards)  # rows further down the list in the direction walked
        bound = tuple_(column, Episode.id)
        query = query.where(bound < tuple_(moment, episode_id) if later else bound > tuple_(moment, episode_id))
        order = SORTS[filters.sort] if not backwards else (
            (column.asc(), Episode.id.asc()) if newest else (column.desc(), Episode.id.desc()))
        query = query.order_by(*order)
    else:
        query = query.order_by(*SORTS[filters.sort]).offset((filters.page - 1) * PAGE_SIZE)
    ids = session.scalars(query.limit(PAGE_SIZE + 1)).all()
    more = len(ids) > PAGE_SIZE
    ids = ids[:PAGE_SIZE]
    if backwards:
        ids, more = ids[::-1], True  # the page the reader came back from follows
    loaded = {e.id: e for e in session.scalars(
        select(Episode).where(Episode.id.in_(ids)).options(
            defer(Episode.state), joinedload(Episode.child), joinedload(Episode.lead_professional),
            joinedload(Episode.originator).joinedload(User.organisation), joinedload(Episode.authority))).unique()}
    episodes = [loaded[episode_id] for episode_id in ids if episode_id in loaded]
    if episodes:
        filters.first_key = _key_of(getattr(episodes[0], column.key), episodes[0].id)
        filters.last_key = _key_of(getattr(episodes[-1], column.key), episodes[-1].id)
    labels = version_labels(session)
    rows = [EpisodeRow(e, e.child.display_name if e.child else "(record removed)",
                       e.lead_professional.full_name if e.lead_professional else None, e.originator.full_name,
                       e.originator.organisation.name if e.originator.organisation else None,
                       labels.get(e.process_version_id, ""))
            for e in episodes]
    return rows, more


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _key_of(moment: datetime, episode_id: int) -> str:
    return f"{(as_utc(moment) - _EPOCH) // timedelta(microseconds=1)}_{episode_id}"


def _key(text: str) -> tuple[datetime, int] | None:
    """A page key as (sort column value, episode id), or None when it is not one."""
    moment, _, episode_id = text.partition("_")
    if not (moment.isdigit() and episode_id.isdigit() and len(moment) < 19 and len(episode_id) < 10):
        return None
    return _EPOCH + timedelta(microseconds=int(moment)), int(episode_id)


def matching_ids(session: Session, admin: User, filters: Filters, *, stuck_after_days: int,
                 limit: int = 1000) -> list[int]:
    """Every episode the filter matches (for a bulk action), up to `limit`."""
    query = _filtered(select(Episode.id), admin, filters, stuck_after_days)
    return list(session.scalars(query.order_by(*SORTS[filters.sort]).limit(limit)))


def _filtered(query, admin: User, filters: Filters, stuck_after_days: int):
    moment = now()
    query = query.where(policy.authority_clause(admin, Episode.authority_id),
                        _conditions(moment, stuck_after_days)[filters.show])
    if filters.stage:
        query = query.where(Episode.stage == filters.stage)
    if filters.version:
        query = query.where(Episode.process_version_id == int(filters.version))
    if filters.lead:
        query = query.where(Episode.lead_professional_id == int(filters.lead))
    if filters.organisation:
        query = query.where(Episode.originator_id.in_(
            select(User.id).where(User.organisation_id == int(filters.organisation))))
    day = timedelta(days=1)
    for column, low, high in ((Episode.started_at, filters.started_from, filters.started_to),
                              (Episode.updated_at, filters.updated_from, filters.updated_to)):
        if low is not None:
            query = query.where(column >= datetime(low.year, low.month, low.day, tzinfo=moment.tzinfo))
        if high is not None:
            query = query.where(column < datetime(high.year, high.month, high.day, tzinfo=moment.tzinfo) + day)
    return query


def filter_choices(session: Session, admin: User) -> dict:
    """What the list's select boxes offer: process versions in use, organisations, lead professionals."""
    versions = session.execute(select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.version)
                               .order_by(ProcessVersion.id.desc())).all()
    organisations = session.execute(select(Organisation.id, Organisation.name).where(
        policy.authority_clause(admin, Organisation.authority_id)).order_by(Organisation.name)).all()
    leads = session.execute(select(User.id, User.full_name).join(Organisation, User.organisation_id == Organisation.id)
                            .where(policy.leads_clause(admin, Organisation.authority_id))
                            .order_by(User.full_name)).all()
    return {"versions": versions, "organisations": organisations, "leads": leads}


def child_of(session: Session, episode: Episode) -> Child | None:
    return session.get(Child, episode.child_id) if episode.child_id else None
