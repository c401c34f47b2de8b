"""Fixtures: every storage test runs on SQLite and on PostgreSQL (skipped, with the reason,
when SHORTENER_TEST_DATABASE_URL is not set), each test in a fresh database (a new file, or a
new PostgreSQL schema). Live servers: tests/live.py."""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import browser, browser_page  # noqa: F401 - fixtures for every test
from live import (  # noqa: F401 - POSTGRES_URL: tests/test_faults.py takes it from here
    BACKENDS,
    POSTGRES_URL,
    SCHEMAS,
    LiveServer,
    LiveServers,
    fresh_database,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.storage import migrations

# Hashing with scrypt costs ~150 ms; tests that are not about hashing use a cheap method.
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "correct horse battery"


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A URL to an empty database of each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def live_backend(request) -> str:
    """The backend of a module's live server: each module runs once per backend."""
    return request.param


@pytest.fixture(scope="module")
def live_database_url(live_backend, tmp_path_factory) -> Iterator[str]:
    """An empty database for a module that launches a server of its own."""
    directory = tmp_path_factory.mktemp(f"live-{live_backend}")
    with fresh_database(live_backend, directory, "live") as url:
        yield url


@pytest.fixture(scope="session")
def live_servers(tmp_path_factory) -> Iterator[LiveServers]:
    servers = LiveServers(tmp_path_factory)
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def shared_live_server(live_backend, live_servers) -> LiveServer:
    """The session's server for this backend (generous rate limits, shipped defaults
    otherwise), shared by every module that asks for it: not an empty database."""
    return live_servers.get(live_backend)


@functools.cache
def migrated_sqlite() -> Path:
    """A SQLite database migrated once per session by the real migrations. A test's new SQLite
    database starts as a byte-for-byte copy of it instead of being migrated again (~55 ms a
    test). PostgreSQL: tests/pg_schemas.py."""
    directory = Path(tempfile.mkdtemp(prefix="shortener-migrated-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "shortener.db"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}"})
    migrations.upgrade(app.extensions["shortener"].database)
    app.extensions["shortener"].close()
    # Fold the write-ahead log into the file, so that the file alone is the whole database.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def make_app(database_url: str, **config):
    """The app on a migrated database: a SQLite file that does not exist yet starts as a copy of
    ``migrated_sqlite()``, an empty PostgreSQL schema of ``fresh_database`` becomes one that
    the migrations made (tests/pg_schemas.py); any other database is migrated here."""
    path = make_url(database_url).database if database_url.startswith("sqlite") else None
    copied = path not in (None, "", ":memory:") and not Path(path).exists()
    if copied:
        shutil.copyfile(migrated_sqlite(), path)
    elif database_url.startswith("postgresql") and SCHEMAS is not None:
        copied = SCHEMAS.adopt(database_url)
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "PASSWORD_HASH_METHOD": FAST_HASH, **config}
    )
    if not copied:
        migrations.upgrade(app.extensions["shortener"].database)
    return app


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def production_app(database_url):
    """As deployed: PROPAGATE_EXCEPTIONS off, so Flask-RESTful cannot re-raise under TESTING."""
    app = make_app(database_url, PROPAGATE_EXCEPTIONS=False, TESTING=False)
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    """Creates a user through the service and returns Basic credentials ``(name, password)``."""

    def make(username: str, *, admin: bool = False, password: str = PASSWORD):
        app.extensions["shortener"].users.create(
            OPERATOR, username=username, password=password, is_admin=admin
        )
        return (username, password)

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin", admin=True)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def row_counts(app):
    """``row_counts()`` -> {"users": n, "links": n}: proof that a refused request stored nothing."""
    engine = app.extensions["shortener"].database.engine

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("users", "links")
            }

    return counts
