"""The store itself: schema upgrades, aware times on every backend."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Column, Integer, Table, inspect, text

from publisher.errors import StoreError
from publisher.store import open_store
from publisher.store.migrate import MIGRATIONS, current_version, upgrade
from publisher.store.schema import metadata


def test_fresh_database_is_at_the_newest_version(store):
    with store.reading() as conn:
        assert current_version(conn) == MIGRATIONS[-1][0]


def test_older_database_is_upgraded_with_a_message(store):
    def add_column(conn):
        conn.execute(text("ALTER TABLE runs ADD COLUMN note TEXT"))

    said = []
    steps = [*MIGRATIONS, (MIGRATIONS[-1][0] + 1, "runs.note", add_column)]
    with store.writing() as conn:
        assert upgrade(conn, steps, announce=said.append) == steps[-1][0]
    assert said == [f"upgrading the database from schema version {MIGRATIONS[-1][0]} "
                    f"to {steps[-1][0]}"]
    with store.reading() as conn:
        assert "note" in {c["name"] for c in inspect(conn).get_columns("runs")}
        assert current_version(conn) == steps[-1][0]
    with store.writing() as conn:  # a second start has nothing to do and says nothing
        upgrade(conn, steps, announce=said.append)
    assert len(said) == 1


def test_store_refuses_naive_times(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.runs.start("x", datetime(2026, 1, 1))  # noqa: DTZ001


def test_unreachable_database_is_a_user_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path}/missing/dir/x.db")


def test_schema_has_the_tables_later_stages_need():
    assert {"articles", "article_sections", "subscribers", "digests", "outbox", "runs",
            "sources", "inbox_files"} <= set(metadata.tables)
    assert isinstance(metadata.tables["articles"], Table)
    assert isinstance(Column("x", Integer), Column)


def test_a_version_1_database_gains_the_archive_entries_table(settings, store):
    """Databases made before archive entries were kept (schema version 1)."""
    with store.writing() as conn:
        conn.execute(text("DROP TABLE archive_entries"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 1"))
    store.close()
    said = []
    upgraded = open_store(settings.database_url, announce=said.append)
    try:
        assert said == ["upgrading the database from schema version 1 to "
                        f"{MIGRATIONS[-1][0]}"]
        with upgraded.reading() as conn:
            assert inspect(conn).has_table("archive_entries")
        assert upgraded.archive_entries.count() == 0
    finally:
        upgraded.close()
