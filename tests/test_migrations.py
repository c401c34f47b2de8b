"""Alembic migrations: an empty database of each backend reaches exactly the tables' schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select

from shortener.storage import Database, DuplicateKey, migrations
from shortener.storage.tables import links, metadata, users

APP_TABLES = {"users", "links", "visits", "visit_rollups", "api_tokens"}


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


def table_names(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_differences(database: Database) -> list:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
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
