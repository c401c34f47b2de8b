"""The rollups' shape (storage/visit_queries.py): a visit's total row is kept under the URL it
was sent to, and a direct visit adds no referrer row. The stats read the same breakdowns as
before, and the migration that moved existing rows to this shape changes no count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from conftest import make_app
from sqlalchemy import event, insert, select, text
from test_migrations import alembic_config

from shortener.storage import Database, migrations
from shortener.storage.tables import links, users, visit_rollups

BEFORE, MIGRATION = "0015", "0016"  # the migration "fewer rollup rows" and the one before it
LINKS = "/api/v1.0/links"
HOUR = datetime(2026, 11, 2, 10, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def app(database_url):
    """Visits land only when a test flushes."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def rollups(database: Database) -> list[tuple]:
    with database.engine.connect() as connection:
        query = select(
            visit_rollups.c.dimension,
            visit_rollups.c.value,
            visit_rollups.c.is_bot,
            visit_rollups.c.visits,
        )
        return sorted(tuple(row) for row in connection.execute(query))


def test_the_migration_moves_rows_to_the_new_shape_and_back(database):
    """Per link, hour and bot flag: 5 visits, 3 of them with a recorded target (2 to T, 1 to
    U), 1 referred; the bots' bucket has only visits written before targets were recorded."""
    migrations.upgrade(database, BEFORE)
    now = datetime.now(UTC)
    with database.write() as connection:
        owner = connection.execute(
            insert(users)
            .values(username="alice", password_hash="x", is_admin=False, created_at=now)
            .returning(users.c.id)
        ).scalar_one()
        link = connection.execute(
            insert(links)
            .values(slug="old", target="https://t.example/", redirect_status=302, visit_count=7,
                    owner_id=owner, created_at=now, updated_at=now)
            .returning(links.c.id)
        ).scalar_one()  # fmt: skip
        old_shape = [
            ("total", "", False, 5), ("target", "https://t.example/", False, 2),
            ("target", "https://u.example/", False, 1), ("referrer", "", False, 4),
            ("referrer", "r.example", False, 1), ("browser", "Firefox", False, 5),
            ("total", "", True, 2), ("referrer", "", True, 2),
        ]  # fmt: skip
        connection.execute(
            insert(visit_rollups),
            [
                {"link_id": link, "dimension": dimension, "hour": HOUR, "value": value,
                 "is_bot": is_bot, "visits": visits}
                for dimension, value, is_bot, visits in old_shape
            ],
        )  # fmt: skip
    migrations.upgrade(database, MIGRATION)
    assert rollups(database) == [
        ("browser", "Firefox", False, 5),
        ("referrer", "r.example", False, 1),
        ("total", "", False, 2),  # the visits written before targets were recorded
        ("total", "", True, 2),
        ("total", "https://t.example/", False, 2),
        ("total", "https://u.example/", False, 1),
    ]
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), BEFORE)
    assert rollups(database) == sorted(old_shape)
    migrations.upgrade(database)


def test_stats_break_down_targets_and_direct_visits_as_before(client, alice, app):
    """Two direct visits and one referred to the first target, one direct visit after the
    target changed: the totals, the referrers (direct = null) and the targets add up."""
    assert client.post(LINKS, json={"slug": "moved", "target": "https://one.example/"},
                       auth=alice).status_code == 201  # fmt: skip
    recorder = app.extensions["shortener"].recorder
    for referrer in (None, None, "https://news.example/a"):
        headers = {"User-Agent": FIREFOX} | ({"Referer": referrer} if referrer else {})
        assert client.get("/moved", headers=headers).status_code == 302
    recorder.flush()
    assert client.patch(f"{LINKS}/moved", json={"target": "https://two.example/"},
                        auth=alice).status_code == 200  # fmt: skip
    assert client.get("/moved", headers={"User-Agent": FIREFOX}).status_code == 302
    recorder.flush()
    stats = client.get(f"{LINKS}/moved/stats", auth=alice).get_json()
    assert stats["total"] == 4
    assert stats["referrers"] == [
        {"host": None, "visits": 3},
        {"host": "news.example", "visits": 1},
    ]
    assert stats["targets"] == [
        {"target": "https://one.example/", "visits": 3},
        {"target": "https://two.example/", "visits": 1},
    ]
    with app.extensions["shortener"].database.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT dimension, count(*) FROM visit_rollups GROUP BY dimension")
        ).all()
    # Four visits in one hour: 2 total rows (one a target), 1 browser, 1 os, 1 referrer.
    assert dict(stored) == {"total": 2, "browser": 1, "os": 1, "referrer": 1}


def test_a_link_s_stats_read_its_rollups_through_the_primary_key(client, alice, app):
    """On PostgreSQL every rollup query of one link's stats is a range of the primary key
    (link_id, dimension, hour, ...), even with no statistics of the table (a schema never
    analysed, as the tests' are): not the (dimension, hour) index, which reads every link's
    rows of the window's hours. (The planner is told not to prefer scanning the small table.)"""
    database = app.extensions["shortener"].database
    if database.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner (SQLite picks the primary key for these already)")
    assert client.post(LINKS, json={"slug": "read", "target": "https://one.example/"},
                       auth=alice).status_code == 201  # fmt: skip
    assert client.get("/read", headers={"User-Agent": FIREFOX}).status_code == 302
    app.extensions["shortener"].recorder.flush()
    statements = []

    def capture(connection, cursor, statement, parameters, context, executemany):
        if "visit_rollups" in statement:
            statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        assert client.get(f"{LINKS}/read/stats", auth=alice).get_json()["total"] == 1
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    assert len(statements) >= 8  # first hour, hourly totals, one per breakdown
    with database.read() as connection:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in statements:
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plan = "\n".join(str(row[0]) for row in rows)
            assert "pk_visit_rollups" in plan and "dimension_hour" not in plan, plan
