"""Fixtures: every storage test runs on SQLite and, when SHORTENER_TEST_DATABASE_URL is set,
on PostgreSQL, each test in a fresh database (a new file, or a new PostgreSQL schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.storage import migrations

POSTGRES_URL = os.environ.get("SHORTENER_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

# Hashing with scrypt costs ~150 ms; tests that are not about hashing use a cheap method.
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "correct horse battery"


def postgres_schema_url(schema: str) -> str:
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shortener.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:16]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def make_app(database_url: str, **config):
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "PASSWORD_HASH_METHOD": FAST_HASH, **config}
    )
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
