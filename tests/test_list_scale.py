"""Lists that stay fast at a million episodes give the same answers as before: pages by key, the task
list read as columns, and a schema whose indexes the models and the migrations agree on."""
from __future__ import annotations

import warnings
from datetime import date, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, create_engine, select, text

from app.clock import now
from app.db import normalise_url
from app.engine.library import current_version
from app.models import Base, Child, Episode, EpisodeMember, HumanTask, User
from app.services import admin_episodes as lists
from app.services import task_list
from app.services.task_list import ready_tasks

from .conftest import other_authority


# Indexes on expressions, which each database spells back its own way: compared by name only.
EXPRESSION_INDEXES = {index.name for table in Base.metadata.sorted_tables for index in table.indexes
                      if any(not isinstance(part, Column) for part in index.expressions)}


def test_the_models_and_the_migrations_agree(database_url):
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLite cannot reflect expression indexes: they are named below
            context = MigrationContext.configure(conn, opts={
                "include_object": lambda obj, name, kind, reflected, other: name not in EXPRESSION_INDEXES})
            assert compare_metadata(context, Base.metadata) == []
            for table in Base.metadata.sorted_tables:
                declared = {index.name for index in table.indexes}
                built = set(conn.scalars(text(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
                    if conn.dialect.name == "sqlite" else
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = :t"),
                    {"t": table.name}))
                assert declared <= built, f"{table.name}: {declared - built} declared but not migrated"
    finally:
        engine.dispose()


def _episodes(runtime, people, count: int, authority_id: int, originator_id: int, *, start: int = 0) -> list[int]:
    """`count` open episodes, some changed at the same moment (the id breaks the tie)."""
    moment = now()
    with runtime.db.session() as session:
        version_id = current_version(session).id
        ids = []
        for n in range(start, start + count):
            child = Child(given_names=f"Kid{n}", family_name="Pager", date_of_birth=date(2015, 1, 1),
                          home_authority_id=authority_id, created_at=moment)
            session.add(child)
            session.flush()
            episode = Episode(child_id=child.id, authority_id=authority_id, process_version_id=version_id,
                              status=("open", "open", "error", "suspended")[n % 4], stage="delivery",
                              consent_state="given", originator_id=originator_id, lead_professional_id=originator_id,
                              started_at=moment - timedelta(days=n % 17),
                              updated_at=moment - timedelta(hours=n // 3))
            session.add(episode)
            session.flush()
            ids.append(episode.id)
        return ids


def _page(runtime, admin_id: int, args: dict) -> tuple[list[int], bool, lists.Filters]:
    filters = lists.read_filters(args)
    with runtime.db.session() as session:
        rows, more = lists.episode_list(session, session.get(User, admin_id), filters, stuck_after_days=14)
    return [row.episode.id for row in rows], more, filters


def _link(filters: lists.Filters, page: int) -> dict:
    return {key: str(value) for key, value in filters.as_args(page=page).items()}


def test_pages_follow_by_key_in_the_lists_order_and_only_in_the_administrators_authority(runtime, people):
    ours = _episodes(runtime, people, 130, people["authority"], people["originator"])
    elsewhere = other_authority(runtime, "olga")
    theirs = _episodes(runtime, people, 20, elsewhere["authority"], elsewhere["olga"], start=130)
    for sort in ("updated", "updated_oldest", "started", "started_oldest"):
        with runtime.db.session() as session:
            column, newest = lists.SORT_KEYS[sort]
            expected = session.scalars(select(Episode.id).where(Episode.id.in_(ours))
                                       .order_by(*lists.SORTS[sort])).all()
        shown, args, pages = [], {"show": "open", "sort": sort}, []
        while True:
            ids, more, filters = _page(runtime, people["admin"], args)
            shown += ids
            pages.append((args, ids))
            if not more:
                break
            args = _link(filters, filters.page + 1)
            assert "after" in args and "page" in args
        assert shown == expected and not set(shown) & set(theirs)
        assert len(pages) == 3
        # Back from the last page: the previous page again, by key, with a next page after it.
        last_args, _ = pages[-1]
        _, _, last_filters = _page(runtime, people["admin"], last_args)
        back = _link(last_filters, last_filters.page - 1)
        assert "before" in back
        ids, more, _ = _page(runtime, people["admin"], back)
        assert ids == pages[-2][1] and more
        # A page number typed without its key still shows that page.
        ids, _, _ = _page(runtime, people["admin"], {"show": "open", "sort": sort, "page": "2"})
        assert ids == pages[1][1]
    # A key that is not one is ignored, and page 1 needs none.
    assert _page(runtime, people["admin"], {"show": "open", "page": "2", "after": "x_1"})[2].after == ""
    assert "after" not in _link(_page(runtime, people["admin"], {"show": "open"})[2], 1)


def test_the_task_list_orders_names_and_scopes_tasks_as_before(runtime, people):
    ids = _episodes(runtime, people, 6, people["authority"], people["originator"])
    elsewhere = other_authority(runtime, "olga")
    hidden = _episodes(runtime, people, 1, elsewhere["authority"], elsewhere["olga"], start=6)[0]
    moment = now()
    dues = [moment + timedelta(days=3), moment - timedelta(days=1), None, moment + timedelta(days=1),
            moment - timedelta(days=2), moment + timedelta(days=2)]
    with runtime.db.session() as session:
        for n, (episode_id, due) in enumerate(zip(ids + [hidden], dues + [moment - timedelta(days=9)])):
            if episode_id != hidden:  # a task of theirs assigned to our practitioner: not theirs to see
                session.add(EpisodeMember(episode_id=episode_id, user_id=people["originator"], role="originator",
                                          added_at=moment))
            session.add(HumanTask(episode_id=episode_id, task_id=f"t{n}", name="action_plan", title=f"Task {n}",
                                  stage="delivery", lane="Practitioner", assigned_user_id=people["originator"],
                                  status="ready", created_at=moment, due_at=due,
                                  draft={"x": 1} if n == 3 else None))
        session.get(Episode, ids[5]).child_protection = True
        user = session.get(User, people["originator"])
        rows = ready_tasks(session, user, set())
        overdue = ready_tasks(session, user, {"overdue"})
    assert [row.title for row in rows] == ["Task 4", "Task 1", "Task 5", "Task 3", "Task 0", "Task 2"]
    assert [row.title for row in overdue] == ["Task 4", "Task 1"]
    first = rows[0]
    assert first.reference == f"TST-{ids[4]:06d}" and first.child_name == "Kid4 Pager" and first.overdue
    assert [row.has_draft for row in rows] == [False, False, False, True, False, False]
    assert rows[2].child_protection and all(row.assigned_to_me and not row.claimable for row in rows)
    assert hidden not in {row.episode_id for row in rows}
    assert not rows.more


def test_a_long_task_list_shows_the_most_urgent_and_says_there_are_more(runtime, people, monkeypatch):
    monkeypatch.setattr(task_list, "SHOWN", 3)
    ids = _episodes(runtime, people, 4, people["authority"], people["originator"])
    moment = now()
    with runtime.db.session() as session:
        for n, episode_id in enumerate(ids):
            session.add(EpisodeMember(episode_id=episode_id, user_id=people["originator"], role="originator",
                                      added_at=moment))
            session.add(HumanTask(episode_id=episode_id, task_id=f"t{n}", name="action_plan", title=f"Task {n}",
                                  stage="delivery", lane="Practitioner", assigned_user_id=people["originator"],
                                  status="ready", created_at=moment, due_at=moment + timedelta(days=n)))
        user = session.get(User, people["originator"])
        rows = ready_tasks(session, user, set())
        narrowed = ready_tasks(session, user, {"soon"})  # the first is due now, so not "soon": three left
    assert [row.title for row in rows] == ["Task 0", "Task 1", "Task 2"] and rows.more
    assert [row.title for row in narrowed] == ["Task 1", "Task 2", "Task 3"] and not narrowed.more
