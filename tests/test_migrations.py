"""Alembic migrations: an empty database of each backend reaches exactly the tables' schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text

from shortener.storage import Database, DuplicateKey, migrations
from shortener.storage.tables import links, metadata, users

APP_TABLES = {
    "users",
    "links",
    "visits",
    "visit_rollups",
    "api_tokens",
    "idempotency_keys",
    "link_changes",
    "webhooks",
    "webhook_messages",
    "webhook_deliveries",
    "link_revisions",
    "tags",
    "link_tags",
}


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "shortener:migrations")
    config.attributes["connection"] = connection
    return config


def downgrade(database: Database, revision: str) -> None:
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


# SQLite's FTS5 search table of links and its shadow tables (migration 0017): made by the
# migration, not in the table definitions.
SEARCH_TABLES = re.compile(r"links_search(_\w+)?")


def table_names(database: Database) -> set[str]:
    """The tables, the search index's aside (it is checked on its own)."""
    with database.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    return {name for name in names if not SEARCH_TABLES.fullmatch(name)}


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# Made by migration 0017 on PostgreSQL only, and only where pg_trgm can be created: not in the
# table definitions, which every database shares.
ONLY_MIGRATED = {"ix_links_search"}


def _declared(obj, name, type_, reflected, compare_to) -> bool:
    if type_ == "table" and reflected and SEARCH_TABLES.fullmatch(name):
        return False
    return not (type_ == "index" and reflected and name in ONLY_MIGRATED)


def schema_differences(database: Database) -> list:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _declared,
            },
        )
        return compare_metadata(context, metadata)


def head() -> str:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def add_user(database: Database, username: str) -> None:
    with database.write() as connection:
        connection.execute(
            insert(users).values(
                username=username,
                password_hash="pbkdf2:sha256:1$salt$hash",
                is_admin=False,
                created_at=datetime.now(UTC),
            )
        )


def test_empty_database_is_not_current(database):
    assert table_names(database) == set()
    assert current_revision(database) is None
    assert not migrations.is_current(database)


def test_upgrade_creates_the_schema(database):
    migrations.upgrade(database)
    assert table_names(database) == APP_TABLES | {"alembic_version"}
    assert current_revision(database) == head()
    assert migrations.is_current(database)


def test_migrated_schema_matches_the_table_definitions(database):
    """The migrations and shortener.storage.tables describe the same schema, on each backend."""
    migrations.upgrade(database)
    assert schema_differences(database) == []


def test_upgrade_twice_is_a_no_op(database):
    migrations.upgrade(database)
    add_user(database, "alice")
    migrations.upgrade(database)
    assert current_revision(database) == head()
    assert schema_differences(database) == []
    with database.read() as connection:
        assert connection.execute(select(users.c.username)).scalars().all() == ["alice"]


def test_downgrade_to_base_then_upgrade_again(database):
    migrations.upgrade(database)
    downgrade(database, "base")
    assert table_names(database) & APP_TABLES == set()
    assert current_revision(database) is None
    assert not migrations.is_current(database)

    migrations.upgrade(database)
    assert table_names(database) == APP_TABLES | {"alembic_version"}
    assert migrations.is_current(database)
    assert schema_differences(database) == []


def test_migrated_schema_enforces_unique_usernames_and_slugs(database):
    """The constraints the services rely on for 409s exist in the migrated database."""
    migrations.upgrade(database)
    add_user(database, "alice")
    with pytest.raises(DuplicateKey):
        add_user(database, "alice")
    with database.read() as connection:
        owner_id = connection.execute(select(users.c.id)).scalar_one()
    now = datetime.now(UTC)
    link = dict(
        slug="taken",
        target="https://example.com/",
        redirect_status=302,
        visit_count=0,
        owner_id=owner_id,
        created_at=now,
        updated_at=now,
    )
    with database.write() as connection:
        connection.execute(insert(links).values(**link))
    with pytest.raises(DuplicateKey), database.write() as connection:
        connection.execute(insert(links).values(**link))


def test_migrated_schema_enforces_link_owners(database):
    """A link cannot point at a missing user (SQLite too: foreign keys are on).

    Storage reports every integrity error as DuplicateKey.
    """
    migrations.upgrade(database)
    now = datetime.now(UTC)
    with pytest.raises(DuplicateKey), database.write() as connection:
        connection.execute(
            insert(links).values(
                slug="orphan",
                target="https://example.com/",
                redirect_status=302,
                visit_count=0,
                owner_id=999,
                created_at=now,
                updated_at=now,
            )
        )


def test_timestamps_come_back_as_utc(database):
    migrations.upgrade(database)
    add_user(database, "alice")
    with database.read() as connection:
        created_at = connection.execute(select(users.c.created_at)).scalar_one()
    assert created_at.tzinfo is not None
    assert created_at.utcoffset().total_seconds() == 0


# -- 0004: ids are never reused (issue 7) ----------------------------------------------------------
TABLES_WITH_IDS = sorted(table.name for table in metadata.sorted_tables if "id" in table.c)
ROWS_AT_0003 = {
    # Written as SQL, not through shortener.storage.tables: these are the columns of revision
    # 0003, whatever later revisions add.
    "users": "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES "
    "(1, 'admin', 'h', true, '2026-11-01 09:00:00'),"
    " (2, 'alice', 'h', false, '2026-11-02 09:00:00')",
    "links": "INSERT INTO links (id, slug, target, title, redirect_status, visit_count, owner_id,"
    " created_at, updated_at) VALUES (1, 'one', 'https://example.com/1', 'One', 301, 2, 2,"
    " '2026-11-03 09:00:00', '2026-11-04 09:00:00'), (3, 'three', 'https://example.com/3',"
    " NULL, 302, 0, 1, '2026-11-03 09:00:00', '2026-11-03 09:00:00')",
    "visits": "INSERT INTO visits (id, link_id, visited_at, referrer, user_agent, browser, os,"
    " is_bot, ip) VALUES (1, 1, '2026-11-05 10:00:00', 'example.org', 'curl/8', 'curl', NULL,"
    " false, '127.0.0.0'), (2, 1, '2026-11-05 10:30:00', NULL, NULL, NULL, NULL, true, NULL)",
    "visit_rollups": "INSERT INTO visit_rollups (link_id, dimension, hour, value, is_bot, visits)"
    " VALUES (1, 'total', '2026-11-05 10:00:00', '', false, 1),"
    " (1, 'total', '2026-11-05 10:00:00', '', true, 1)",
    "api_tokens": "INSERT INTO api_tokens (id, user_id, name, digest, scopes, created_at,"
    " expires_at, last_used_at) VALUES (4, 2, 'script', '" + "a" * 64 + "', 'links:read',"
    " '2026-11-06 09:00:00', NULL, NULL)",
}
TABLES_AT_0003 = list(ROWS_AT_0003)


def rows_of(database: Database, tables=TABLES_AT_0003) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order, as plain tuples."""
    with database.read() as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4"))
            ]
            for table in tables
        }


def fill_revision_0003(database: Database) -> None:
    migrations.upgrade(database, "0003")
    with database.write() as connection:
        for statement in ROWS_AT_0003.values():
            connection.execute(text(statement))
        if connection.dialect.name == "postgresql":  # as if the rows came from the sequences
            for table in ("users", "links", "visits", "api_tokens"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                        f"FROM {table}"
                    )
                )


def uses_autoincrement(database: Database, table: str) -> bool:
    with database.read() as connection:
        sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": table},
        ).scalar_one()
    return "AUTOINCREMENT" in sql.upper()


def test_upgrade_from_0003_keeps_every_row_id_and_index(database):
    fill_revision_0003(database)
    before = rows_of(database)
    with database.engine.connect() as connection:
        indexes_before = {
            table: sorted(index["name"] for index in inspect(connection).get_indexes(table))
            for table in TABLES_AT_0003
        }

    migrations.upgrade(database)
    assert current_revision(database) == head()
    # 0005 adds a version to users and links, 1 for every existing row; 0006 a uid to visits,
    # NULL for every existing row; 0008 the lifetime columns to links (none set, cap_used 0);
    # 0009 crawlable, false; 0010 forward_query false, the UTM fields and password_hash NULL;
    # 0011 rules and variants NULL, and the visits' target_used, rule, variant, country NULL;
    # 0012 imported_visits 0; 0014 sort_title, the title or ''.
    added = {
        "users": (1,),
        "links": (1, None, None, None, 0, None, None, False, False)
        + (None,) * 6
        + (None,) * 2
        + (0,),
        "visits": (None,) + (None,) * 4,
    }
    sort_title = {"links": lambda row: (row[3] or "",)}
    assert rows_of(database) == {
        table: [
            row + added.get(table, ()) + sort_title.get(table, lambda row: ())(row) for row in rows
        ]
        for table, rows in before.items()
    }
    with database.engine.connect() as connection:
        inspector = inspect(connection)
        for table in TABLES_AT_0003:
            indexes = sorted(index["name"] for index in inspector.get_indexes(table))
            assert set(indexes_before[table]) <= set(indexes), table
        assert {fk["referred_table"] for fk in inspector.get_foreign_keys("links")} == {"users"}
        assert {fk["referred_table"] for fk in inspector.get_foreign_keys("visits")} == {"links"}
        assert {fk["referred_table"] for fk in inspector.get_foreign_keys("api_tokens")} == {
            "users"
        }
        assert not any(name.startswith("_old_") for name in inspector.get_table_names())
    assert schema_differences(database) == []


def test_upgrade_from_0003_then_new_rows_follow_the_old_ids(database):
    """The copied rows set SQLite's sequence: a new row's id is above every id kept."""
    fill_revision_0003(database)
    migrations.upgrade(database)
    add_user(database, "carol")
    with database.read() as connection:
        assert (
            connection.execute(select(users.c.id).where(users.c.username == "carol")).scalar_one()
            == 3
        )


def test_upgrade_from_0003_keeps_constraints(database):
    fill_revision_0003(database)
    migrations.upgrade(database)
    with pytest.raises(DuplicateKey):
        add_user(database, "alice")
    with pytest.raises(DuplicateKey), database.write() as connection:  # the owner must exist
        connection.execute(text("UPDATE links SET owner_id = 99 WHERE id = 1"))
    with database.write() as connection:  # deleting a user still deletes their tokens
        connection.execute(text("DELETE FROM links WHERE owner_id = 2"))
        connection.execute(text("DELETE FROM users WHERE id = 2"))
    remaining = rows_of(database)
    assert remaining["api_tokens"] == []
    assert remaining["visits"] == [] and remaining["visit_rollups"] == []  # cascaded from link 1
    assert [row[0] for row in remaining["links"]] == [3]


def test_downgrade_from_0004_to_0003_keeps_every_row(database):
    fill_revision_0003(database)
    before = rows_of(database)
    migrations.upgrade(database, "0004")
    downgrade(database, "0003")
    assert current_revision(database) == "0003"
    assert rows_of(database) == before
    if database.is_sqlite:
        assert not uses_autoincrement(database, "users")


@pytest.mark.parametrize("table", TABLES_WITH_IDS)
def test_every_id_is_autoincrement_or_a_sequence_that_never_cycles(database, table):
    """SQLite: AUTOINCREMENT (never below the largest id ever used). PostgreSQL: the id comes
    from a sequence that does not cycle."""
    migrations.upgrade(database)
    if database.is_sqlite:
        assert uses_autoincrement(database, table)
        return
    with database.read() as connection:
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}
        ).scalar_one()
        assert sequence, f"{table}.id has no sequence"
        cycles = connection.execute(
            text("SELECT seqcycle FROM pg_sequence WHERE seqrelid = CAST(:name AS regclass)"),
            {"name": sequence},
        ).scalar_one()
    assert cycles is False


@pytest.mark.parametrize("table", TABLES_WITH_IDS)
def test_metadata_declares_sqlite_autoincrement(table):
    assert metadata.tables[table].dialect_options["sqlite"]["autoincrement"] is True
