"""The recycled PostgreSQL schemas of tests/pg_schemas.py are what the migrations make: the
same structure and rows as a schema migrated in place, emptied between tests (ids start over),
and never reused once a test changed their structure."""

from __future__ import annotations

import pytest
from conftest import make_app
from live import BACKENDS, SCHEMAS, fresh_database
from pg_schemas import _namespace, _structure, schema_of
from sqlalchemy import text

from shortener.services.actors import OPERATOR
from shortener.storage import Database, migrations

# PostgreSQL only (SQLite copies one migrated file: conftest.migrated_sqlite); a visible skip
# without SHORTENER_TEST_DATABASE_URL.
pytestmark = pytest.mark.parametrize("backend", [p for p in BACKENDS if p.id == "postgresql"])


def structure_and_rows(url: str) -> tuple[frozenset, dict]:
    schema = schema_of(url)
    with SCHEMAS.engine.connect() as connection:
        shape = _structure(connection, _namespace(connection, schema), schema)
        rows = {
            table: sorted(map(tuple, connection.execute(text(f'SELECT * FROM "{schema}".{table}'))))
            for table in ("alembic_version", "link_changes", "users", "links")
        }
    return shape, rows


def test_an_adopted_schema_is_the_migrated_one(backend, tmp_path):
    with fresh_database(backend, tmp_path) as migrated_url:
        database = Database(migrated_url)
        migrations.upgrade(database)
        database.dispose()
        with fresh_database(backend, tmp_path) as adopted_url:
            make_app(adopted_url).extensions["shortener"].close()
            assert structure_and_rows(adopted_url) == structure_and_rows(migrated_url)


def test_a_released_schema_comes_back_empty_with_ids_from_the_start(backend, tmp_path):
    for _ in range(2):  # the second time, from the pool, after the first test's rows
        with fresh_database(backend, tmp_path) as url:
            app = make_app(url)
            users = app.extensions["shortener"].users
            created = users.create(OPERATOR, username="alice", password="a password")
            app.extensions["shortener"].close()
            assert created.id == 1
            _, rows = structure_and_rows(url)
            assert [row[1] for row in rows["users"]] == ["alice"]
            assert rows["link_changes"] == [("links", 0)]


def test_a_schema_whose_structure_changed_is_dropped_not_reused(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        make_app(url).extensions["shortener"].close()
        schema = schema_of(url)
        with SCHEMAS.engine.begin() as connection:
            connection.execute(text(f'ALTER TABLE "{schema}".links ADD COLUMN stray INTEGER'))
        pool_before = set(SCHEMAS._pool)
    assert set(SCHEMAS._pool) <= pool_before
    with SCHEMAS.engine.connect() as connection:
        assert _namespace(connection, schema) is None
