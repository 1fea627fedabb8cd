"""Plans made for the values asked about, on PostgreSQL, for the queries whose best plan depends on them.

psycopg prepares a statement after its fifth run on a connection, and PostgreSQL may then switch to a
generic plan made without the parameters' values. For a list that is the wrong trade: whether an
authority holds a hundred episodes or a million, and whether a postcode prefix is 'W9 %' (a LIKE
only an index range answers when the pattern is known), decide the plan. Measured on the at-risk list
of a million-episode authority: 10 ms with a plan for the values, 100-370 ms once the generic plan
took over. Planning each time costs a fraction of a millisecond.

Nor in parallel: these queries read one authority's few thousand index entries, where starting a
parallel worker costs more than it saves (the overdue count at a million episodes: 9-20 ms with a
worker, varying run to run, against 4-5 ms without).
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


_FOR_VALUES = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                   "set_config('max_parallel_workers_per_gather', '0', true)")


def plan_for_values(session: Session) -> None:
    """For the rest of this transaction, plan every statement for its parameters' values, without
    parallel workers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_FOR_VALUES)
