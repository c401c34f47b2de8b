"""VisitRecorder: buffered visit writes that never slow or fail a redirect (issue 3), and the
hand-over of shortener serve's workers to the visit writer (issue 8).

Faults are real: a database without tables, a renamed table, a server that is not there, and
SQLite's write lock held by another connection.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest
from conftest import PASSWORD, make_app
from sqlalchemy import create_engine, text, update

from shortener.services import visit_handover
from shortener.services.actors import OPERATOR
from shortener.services.visit_handover import HandOverRecorder
from shortener.services.visits import RawVisit, VisitRecorder
from shortener.settings import ConfigurationError
from shortener.storage import Database
from shortener.storage.tables import links

LINKS = "/api/v1.0/links"
LOGGER = "shortener.services.visits"
# Nothing listens on port 1: connecting fails at once, like a database server that is down.
UNREACHABLE_DATABASE = "postgresql+psycopg://shortener@127.0.0.1:1/shortener?connect_timeout=2"


@pytest.fixture
def app(database_url):
    """Visits land only when a test flushes: the app's own writer would wait a minute."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def recorders():
    """``recorders(database, **options)`` -> a VisitRecorder whose writer waits a minute."""
    made = []

    def make(database: Database, **options) -> VisitRecorder:
        recorder = VisitRecorder(database, **{"flush_interval": 60, **options})
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close(timeout=0)


@pytest.fixture
def empty_database(database_url):
    """The test's database before migrations: every visit write fails (no tables)."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def migrate(database_url):
    """``migrate()`` -> (app, client, alice) once the empty database gets its tables and a
    first link, ``go`` (id 1), for the visits queued meanwhile. The link is dated back: it
    existed while its visits waited (a visit from before its link was created is dropped)."""
    apps = []

    def build():
        app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
        apps.append(app)
        app.extensions["shortener"].users.create(
            OPERATOR, username="alice", password=PASSWORD, is_admin=False
        )
        client, alice = app.test_client(), ("alice", PASSWORD)
        created = client.post(
            LINKS, json={"target": "https://example.com/", "slug": "go"}, auth=alice
        )
        assert created.status_code == 201
        assert link_id(app, "go") == 1
        with app.extensions["shortener"].database.write() as connection:
            connection.execute(update(links).values(created_at=datetime(2020, 1, 1, tzinfo=UTC)))
        return app, client, alice

    yield build
    for app in apps:
        app.extensions["shortener"].close()


def create(client, auth, slug: str) -> None:
    response = client.post(LINKS, json={"target": "https://example.com/", "slug": slug}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)


def link_id(app, slug: str) -> int:
    return app.extensions["shortener"].links.get(OPERATOR, slug).id


def raw(link: int, referrer: str | None = None, user_agent: str | None = None) -> RawVisit:
    return RawVisit(
        link_id=link,
        visited_at=datetime.now(UTC),
        referrer=referrer,
        user_agent=user_agent,
        remote_addr="203.0.113.77",
    )


def sql(app, query: str) -> list[tuple]:
    with app.extensions["shortener"].database.engine.begin() as connection:
        result = connection.execute(text(query))
        return [tuple(row) for row in result] if result.returns_rows else []


def visit_rows(app) -> int:
    return sql(app, "SELECT count(*) FROM visits")[0][0]


def visit_count(client, auth, slug: str) -> int:
    return client.get(f"{LINKS}/{slug}", auth=auth).get_json()["visit_count"]


def retry_warnings(caplog) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.WARNING and record.exc_info
    ]


# -- flush and close ------------------------------------------------------------------------


def test_flush_writes_everything_pending_in_batches_and_returns_the_count(
    app, client, alice, recorders
):
    create(client, alice, "go")
    recorder = recorders(app.extensions["shortener"].database, max_batch=2)
    for n in range(5):
        recorder.record(raw(link_id(app, "go"), referrer=f"https://r{n}.example/"))
    assert recorder.pending == 5
    assert recorder.flush() == 5
    assert recorder.pending == 0
    assert recorder.flush() == 0
    assert visit_rows(app) == 5 == visit_count(client, alice, "go")
    referrers = [row[0] for row in sql(app, "SELECT referrer FROM visits ORDER BY id")]
    assert referrers == [f"https://r{n}.example/" for n in range(5)], "written in arrival order"


def test_the_writer_describes_each_visit(app, client, alice, recorders):
    """The hot path keeps raw headers; the writer parses, cleans and anonymizes them."""
    create(client, alice, "go")
    recorder = recorders(app.extensions["shortener"].database, anonymize_ips=False)
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    recorder.record(
        raw(link_id(app, "go"), referrer="https://x.example/\x00", user_agent=googlebot)
    )
    assert recorder.flush() == 1
    assert sql(app, "SELECT referrer, user_agent, browser, is_bot, ip FROM visits") == [
        ("https://x.example/", googlebot, "Googlebot", True, "203.0.113.77")
    ]


def test_close_writes_what_is_left(app, client, alice, recorders):
    create(client, alice, "go")
    recorder = recorders(app.extensions["shortener"].database)
    for _ in range(3):
        recorder.record(raw(link_id(app, "go")))
    recorder.close()
    assert recorder.pending == 0
    assert visit_rows(app) == 3


def test_recording_after_close_starts_a_new_writer(database_url):
    """After close() (a gunicorn reload, a test's teardown) a record() still gets written."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=0.1)
    try:
        services = app.extensions["shortener"]
        services.users.create(OPERATOR, username="alice", password=PASSWORD)
        client = app.test_client()
        create(client, ("alice", PASSWORD), "go")
        services.recorder.close()
        assert client.get("/go").status_code == 302
        assert wait_for(lambda: visit_rows(app) == 1, seconds=2)
    finally:
        app.extensions["shortener"].close()


def test_services_close_writes_buffered_visits(database_url):
    """A graceful stop: Services.close() (SIGTERM, gunicorn reload) writes every visit."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    services = app.extensions["shortener"]
    services.users.create(OPERATOR, username="alice", password=PASSWORD)
    client = app.test_client()
    create(client, ("alice", PASSWORD), "go")
    for _ in range(4):
        assert client.get("/go").status_code == 302
    assert services.recorder.pending == 4
    services.close()
    reopened = Database(database_url)
    try:
        with reopened.engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM visits")).scalar_one()
            total = connection.execute(text("SELECT visit_count FROM links")).scalar_one()
        assert count == total == 4
    finally:
        reopened.dispose()


def wait_for(condition, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_background_writer_flushes_by_itself(database_url):
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=0.1)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="alice", password=PASSWORD)
        client, alice = app.test_client(), ("alice", PASSWORD)
        create(client, alice, "go")
        for _ in range(3):
            assert client.get("/go").status_code == 302
        started = time.monotonic()
        assert wait_for(lambda: visit_count(client, alice, "go") == 3, seconds=2)
        assert time.monotonic() - started < 2
        assert visit_rows(app) == 3
    finally:
        app.extensions["shortener"].close()


def test_concurrent_redirects_are_all_counted(database_url):
    """Threads redirect while the writer flushes every 50 ms: no visit lost or counted twice."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=0.05)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="alice", password=PASSWORD)
        alice = ("alice", PASSWORD)
        create(app.test_client(), alice, "one")
        create(app.test_client(), alice, "two")
        failures = []

        def hammer(slug: str) -> None:
            client = app.test_client()
            for _ in range(40):
                if client.get(f"/{slug}").status_code != 302:
                    failures.append(slug)

        threads = [threading.Thread(target=hammer, args=(s,)) for s in ("one", "two") * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        app.extensions["shortener"].recorder.close()
        assert failures == []
        client = app.test_client()
        assert visit_count(client, alice, "one") == visit_count(client, alice, "two") == 80
        assert visit_rows(app) == 160
        rollup = sql(app, "SELECT sum(visits) FROM visit_rollups WHERE dimension = 'total'")
        assert rollup == [(160,)]
    finally:
        app.extensions["shortener"].close()


class WriteLock:
    """Another connection holds off every visit write (SQLite's write lock; on PostgreSQL a
    lock on links, whose visit_count every batch adds to) until ``release``."""

    def __init__(self, database_url: str) -> None:
        self._engine = None
        if database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite:///")
            self._holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._holder.execute("BEGIN IMMEDIATE")
            return
        self._engine = create_engine(database_url)
        self._holder = self._engine.connect()
        self._holder.begin()
        self._holder.execute(text("LOCK TABLE links IN EXCLUSIVE MODE"))

    def release(self) -> None:
        if self._engine is None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            return
        self._holder.rollback()
        self._holder.close()
        self._engine.dispose()


def test_close_waits_for_the_batch_the_writer_is_writing(database_url):
    """close() returns once every visit is written, including the batch the background
    thread took from the queue and is writing at that moment (once, close returned at once
    because the queue was empty, and the visits of that batch were counted later, or never
    if the process ended)."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=0.05)
    services = app.extensions["shortener"]
    try:
        services.users.create(OPERATOR, username="alice", password=PASSWORD)
        client, alice = app.test_client(), ("alice", PASSWORD)
        create(client, alice, "go")
        lock = WriteLock(database_url)
        try:
            for _ in range(3):
                assert client.get("/go").status_code == 302
            # The background thread took the batch and waits for the lock to write it.
            assert wait_for(lambda: services.recorder.pending == 0, seconds=10)
            threading.Timer(0.5, lock.release).start()
            services.recorder.close()
        except BaseException:
            lock.release()
            raise
        assert visit_count(client, alice, "go") == 3
        assert visit_rows(app) == 3
    finally:
        services.close()


# -- failures -------------------------------------------------------------------------------


def test_a_failing_write_keeps_the_visits_queued_and_logs_a_warning(
    empty_database, migrate, recorders, caplog
):
    recorder = recorders(empty_database)
    recorder.record(raw(1, referrer="https://first.example/"))
    recorder.record(raw(1, referrer="https://second.example/"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert recorder.flush() == 0
        assert recorder.flush() == 0  # retried, still failing, still nothing lost
    assert recorder.pending == 2
    warnings = retry_warnings(caplog)
    assert len(warnings) == 2
    assert "will retry" in warnings[0].getMessage()

    app, client, alice = migrate()
    assert recorder.flush() == 2
    assert recorder.pending == 0
    assert visit_count(client, alice, "go") == 2
    referrers = [row[0] for row in sql(app, "SELECT referrer FROM visits ORDER BY id")]
    assert referrers == ["https://first.example/", "https://second.example/"]


def test_a_full_backlog_drops_the_oldest_with_an_error(empty_database, migrate, recorders, caplog):
    recorder = recorders(empty_database, max_pending=3)
    for n in range(5):
        recorder.record(raw(1, referrer=f"https://r{n}.example/"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert recorder.flush() == 0
    assert recorder.pending == 3
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "dropped the 2 oldest" in errors[0].getMessage()

    app, _, _ = migrate()
    assert recorder.flush() == 3
    referrers = [row[0] for row in sql(app, "SELECT referrer FROM visits ORDER BY id")]
    assert referrers == [f"https://r{n}.example/" for n in (2, 3, 4)]


def test_redirects_answer_while_visit_writes_fail_and_nothing_is_half_written(
    app, client, alice, caplog
):
    """A write that fails midway (the rollups table is gone) leaves no visit row and no count;
    once the table is back, the retried batch lands whole."""
    create(client, alice, "go")
    sql(app, "ALTER TABLE visit_rollups RENAME TO visit_rollups_away")
    recorder = app.extensions["shortener"].recorder
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            response = client.get("/go")
            assert response.status_code == 302
            assert response.headers["Location"] == "https://example.com/"
        assert recorder.flush() == 0
    assert retry_warnings(caplog)
    assert recorder.pending == 3
    assert visit_rows(app) == 0
    assert visit_count(client, alice, "go") == 0

    sql(app, "ALTER TABLE visit_rollups_away RENAME TO visit_rollups")
    assert recorder.flush() == 3
    assert visit_rows(app) == 3 == visit_count(client, alice, "go")
    stats = client.get(f"{LINKS}/go/stats", auth=alice).get_json()
    assert stats["total"] == 3


def test_redirects_answer_while_the_visit_database_is_down(app, client, alice, caplog):
    """A recorder writes to a server that is not there: its visits stay queued, redirects and
    the API carry on, and what was queued lands when the database is back."""
    create(client, alice, "go")
    services = app.extensions["shortener"]
    down = Database(UNREACHABLE_DATABASE)
    recorder = VisitRecorder(down, flush_interval=60)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            for _ in range(2):
                recorder.record(raw(link_id(app, "go")))
                assert client.get("/go").status_code == 302
            assert recorder.flush() == 0
            assert client.get(f"{LINKS}/go", auth=alice).status_code == 200
        assert retry_warnings(caplog)
        assert recorder.pending == 2
        recorder.database = services.database  # the database is back
        assert recorder.flush() == 2
        services.recorder.flush()  # the app's own visits of the two redirects
        assert visit_count(client, alice, "go") == 4
    finally:
        recorder.close(timeout=0)
        down.dispose()


def test_database_is_locked_never_reaches_the_client(tmp_path):
    """Another process holds SQLite's write lock: redirects and reads still answer at once."""
    path = tmp_path / "locked.db"
    app = make_app(f"sqlite:///{path}", VISIT_FLUSH_INTERVAL=60)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="alice", password=PASSWORD)
        client, alice = app.test_client(), ("alice", PASSWORD)
        create(client, alice, "go")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            for _ in range(3):
                assert client.get("/go").status_code == 302
            assert client.get(f"{LINKS}/go", auth=alice).status_code == 200
            assert time.monotonic() - started < 1, "nothing waited for the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert app.extensions["shortener"].recorder.flush() == 3
        assert visit_count(client, alice, "go") == 3
    finally:
        app.extensions["shortener"].close()


# -- a visit that cannot be written ---------------------------------------------------------


def test_a_visit_that_cannot_be_written_is_dropped_and_its_batch_still_lands(
    app, client, alice, caplog
):
    """A naive visited_at is refused by the storage type: a data error of that visit alone."""
    create(client, alice, "mixed")
    link = link_id(app, "mixed")
    poisoned = dataclasses.replace(raw(link), visited_at=datetime.now())  # no tzinfo
    recorder = app.extensions["shortener"].recorder
    for visit in (raw(link), poisoned, raw(link)):
        recorder._pending.append(visit)  # as record() does, without starting the writer
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert recorder.flush() == 2
    assert recorder.pending == 0
    assert visit_count(client, alice, "mixed") == visit_rows(app) == 2
    dropped = [r for r in caplog.records if r.levelno == logging.ERROR and "dropped" in r.message]
    assert len(dropped) == 1


def test_when_every_visit_fails_they_all_stay_queued(app, client, alice):
    """Only naive visits: nothing to tell a bad visit from a bad system, so nothing is lost."""
    create(client, alice, "all-bad")
    recorder = app.extensions["shortener"].recorder
    naive = dataclasses.replace(raw(link_id(app, "all-bad")), visited_at=datetime.now())
    recorder._pending.extend([naive, naive])
    assert recorder.flush() == 0
    assert recorder.pending == 2
    recorder._pending.clear()


# -- the hand-over of shortener serve's workers (services/visit_handover.py) ---------------


def test_a_handed_over_visit_arrives_whole_with_its_uid():
    sending, receiving = visit_handover.make_channel()
    try:
        recorder = HandOverRecorder(sending, max_buffered=100)
        visit = raw(7, referrer="https://r.example/é", user_agent="curl/8\n")
        recorder.record(visit)
        recorder.record(visit)
        first, second = (visit_handover.decode(receiving.recv(65536)) for _ in range(2))
        assert first.uid and second.uid and first.uid != second.uid
        assert dataclasses.replace(first, uid=None) == visit
        assert recorder.pending == 0
    finally:
        sending.close()
        receiving.close()


def test_a_full_socket_keeps_visits_in_a_bounded_buffer_then_sends_them(caplog):
    """The writer takes nothing: the socket fills, then the worker's buffer up to its bound
    (the oldest dropped, with an error log), and the redirect never waits. Once the writer
    reads again, the buffered visits go through, several a datagram."""
    sending, receiving = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sending.setblocking(False)
    sending.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    try:
        recorder = HandOverRecorder(sending, max_buffered=100)
        recorder._start_sender = lambda: None  # flushed by hand below
        with caplog.at_level(logging.ERROR, logger="shortener.services.visit_handover"):
            for n in range(400):
                recorder.record(raw(1, referrer=f"https://r{n}.example/"))
        assert recorder.pending == 100
        assert recorder.dropped > 0
        assert "dropped" in caplog.text
        receiving.setblocking(False)
        received = []
        while recorder.pending:
            try:
                while True:
                    received.extend(receiving.recv(1 << 17).split(b"\n"))
            except BlockingIOError:
                pass
            recorder.flush()
        try:
            while True:
                received.extend(receiving.recv(1 << 17).split(b"\n"))
        except BlockingIOError:
            pass
        referrers = [visit_handover.decode(line).referrer for line in received]
        assert referrers[-100:] == [f"https://r{n}.example/" for n in range(300, 400)]
        assert len(referrers) + recorder.dropped == 400
    finally:
        sending.close()
        receiving.close()


def test_with_the_writer_end_closed_visits_wait_in_the_buffer():
    sending, receiving = visit_handover.make_channel()
    receiving.close()
    try:
        recorder = HandOverRecorder(sending, max_buffered=10)
        recorder._start_sender = lambda: None
        recorder.record(raw(1))
        assert recorder.pending == 1
        assert recorder.flush() == 0
        assert recorder.pending == 1
    finally:
        sending.close()


@pytest.mark.parametrize(
    "line",
    [b"", b"not json", b"[1, 2]", b'["u", "1", 0, null, null, null]',
     b'["u", 1, 0, 5, null, null]', b'{"uid": "u"}'],
)  # fmt: skip
def test_a_record_that_is_not_a_visit_is_refused(line):
    with pytest.raises((ValueError, TypeError)):
        visit_handover.decode(line)


@pytest.mark.parametrize(
    ("key", "value"),
    [("REDIS_URL", "http://127.0.0.1:6379"), ("REDIS_URL", 5), ("VISIT_BUFFER", 10),
     ("VISIT_BUFFER", "many"), ("VISIT_CLAIM_IDLE", 0), ("VISIT_STREAM", "")],
)  # fmt: skip
def test_visit_settings_are_checked(database_url, key, value):
    with pytest.raises(ConfigurationError, match=f"SHORTENER_{key}"):
        make_app(database_url, **{key: value})
