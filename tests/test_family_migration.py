"""Migration 0019: the family tables come and go cleanly, and a family is forgotten with its children."""
from __future__ import annotations

from sqlalchemy import create_engine, inspect

from app.migrate import downgrade, upgrade

FAMILY_TABLES = {"family", "family_child", "family_adult", "family_adult_child"}


def test_the_family_tables_are_added_and_removed(tmp_path):
    url = f"sqlite:///{tmp_path / 'families.db'}"
    upgrade(url, "0019")
    engine = create_engine(url)
    assert FAMILY_TABLES <= set(inspect(engine).get_table_names())
    unique = inspect(engine).get_unique_constraints("family_child")
    assert any(c["column_names"] == ["child_id"] for c in unique), "a child is in one family"
    engine.dispose()
    downgrade(url, "0016")
    engine = create_engine(url)
    assert not FAMILY_TABLES & set(inspect(engine).get_table_names())
    engine.dispose()
