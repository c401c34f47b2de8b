"""Visits survive what a real deployment does to them: a stop right after a burst, a database
that holds the visits table locked while redirects keep coming, and kill -9 of the visit
writer, of a request worker and of the whole server (README: "How visits are written, and
what a crash can lose")."""

from __future__ import annotations

import os
import re
import secrets
import signal
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from live import launch, prepare, server_env, stop
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration

TIMEOUT = 30
SETTLE_SECONDS = 30
LINKS = "/api/v1.0/links"
WRITER_STARTED = re.compile(r"visit writer started \(pid (\d+)\)")


@pytest.fixture
def prepared(live_database_url, tmp_path):
    """A migrated database with an admin, and what it takes to launch servers on it."""
    return prepare_database(live_database_url, tmp_path)


def prepare_database(live_database_url: str, tmp_path):
    env = server_env(live_database_url)
    admin = prepare(env, f"admin-{secrets.token_hex(4)}")  # one module database, many admins
    return env, admin, tmp_path


def stored_counts(database_url: str, slug: str) -> tuple[int, int]:
    """(visit rows, visit_count) of the link, read straight from the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT links.visit_count, (SELECT count(*) FROM visits"
                    " WHERE visits.link_id = links.id) FROM links WHERE slug = :slug"
                ),
                {"slug": slug},
            ).one()
    finally:
        engine.dispose()
    return row[1], row[0]


def burst(url: str, count: int) -> Counter:
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = pool.map(
            lambda _: requests.get(url, allow_redirects=False, timeout=TIMEOUT), range(count)
        )
        return Counter(response.status_code for response in responses)


def create_link(server, slug: str) -> dict:
    response = requests.post(
        server.url + LINKS,
        json={"target": "https://example.com/" + slug, "slug": slug},
        auth=server.admin,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_graceful_stop_right_after_a_burst_writes_every_visit(prepared, live_database_url):
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "burst")
        assert burst(link["short_url"], 300) == {302: 300}
    finally:
        stop(server)  # at once: the writers have had no second to run
    assert stored_counts(live_database_url, "burst") == (300, 300)


def _hold_visits_locked(database_url: str, seconds: float, locked: threading.Event) -> None:
    """Another client holds a write lock on the visits for ``seconds``."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the database-wide write lock
        locked.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()
        return
    engine = create_engine(database_url)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE visits IN ACCESS EXCLUSIVE MODE"))
        locked.set()
        time.sleep(seconds)
        connection.rollback()
    engine.dispose()


def test_redirects_stay_fast_while_visit_writes_are_locked(prepared, live_database_url):
    """The lock outlasts SQLite's 5 s busy timeout, so writes fail, are logged and retried."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "locked")
        wait_for_writer(server)  # up and writing before the lock is taken
        locked = threading.Event()
        holder = threading.Thread(target=_hold_visits_locked, args=(live_database_url, 7.0, locked))
        holder.start()
        assert locked.wait(10)
        started = time.monotonic()
        answers = Counter()
        for _ in range(10):  # spread over the lock, each a fresh connection
            answers += burst(link["short_url"], 20)
            time.sleep(0.3)
        elapsed = time.monotonic() - started
        holder.join()
        assert answers == {302: 200}
        assert elapsed < 7.0, "redirects waited for the lock"
        deadline = time.monotonic() + 20
        while stored_counts(live_database_url, "locked")[0] < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(server)
    assert stored_counts(live_database_url, "locked") == (200, 200)
    if live_database_url.startswith("sqlite"):
        assert "could not write" in server.log_path.read_text()


def settled(database_url: str, slug: str, expected: int) -> tuple[int, int]:
    """(visit rows, visit_count) once both reach ``expected``, or as they are at the deadline."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (counts := stored_counts(database_url, slug)) != (expected, expected):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return counts


def wait_for_writer(server) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while "[visit-writer] [INFO] started" not in server.log_path.read_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)


def writer_pids(server) -> list[int]:
    """Every visit writer the master started, in order."""
    return [int(pid) for pid in WRITER_STARTED.findall(server.log_path.read_text())]


def test_concurrent_redirects_are_all_written_while_the_server_runs(prepared, live_database_url):
    """N concurrent redirects give N visits and visit_count = N, through the visit writer."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "exact")
        assert burst(link["short_url"], 400) == {302: 400}
        assert settled(live_database_url, "exact", 400) == (400, 400)
        assert len(writer_pids(server)) == 1
    finally:
        stop(server)
    assert stored_counts(live_database_url, "exact") == (400, 400)


def test_a_killed_writer_is_restarted_and_loses_nothing_queued(prepared, live_database_url):
    """kill -9 of the writer: redirects still answer, the master starts another writer, and
    what was queued meanwhile (in the socket, or the workers' buffers) is written."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "writer-killed")
        assert burst(link["short_url"], 100) == {302: 100}
        assert settled(live_database_url, "writer-killed", 100) == (100, 100)
        [first] = writer_pids(server)
        os.kill(first, signal.SIGKILL)
        assert burst(link["short_url"], 200) == {302: 200}  # while it is down or restarting
        assert settled(live_database_url, "writer-killed", 300) == (300, 300)
        pids = writer_pids(server)
        assert len(pids) == 2 and pids[1] != first, server.log_tail()
        assert "restarting" in server.log_path.read_text()
    finally:
        stop(server)
    assert stored_counts(live_database_url, "writer-killed") == (300, 300)


def test_a_killed_worker_loses_nothing_it_had_handed_over(prepared, live_database_url):
    """kill -9 of both request workers right after a burst: every visit was handed over when
    its redirect answered, so all are written (measured: nothing lost)."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "worker-killed")
        assert burst(link["short_url"], 300) == {302: 300}
        workers = server.workers_that_served("/worker-killed")
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        assert settled(live_database_url, "worker-killed", 300) == (300, 300)
        assert burst(link["short_url"], 10) == {302: 10}  # the master started new workers
        assert settled(live_database_url, "worker-killed", 310) == (310, 310)
    finally:
        stop(server)


def test_a_killed_server_keeps_what_was_written_and_never_half_a_batch(prepared, live_database_url):
    """kill -9 of every process: what was written stays, and what was lost (visits still in
    the socket or the writer's batch) is lost whole: visit rows always equal visit_count."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "crash")
        assert burst(link["short_url"], 100) == {302: 100}
        assert settled(live_database_url, "crash", 100) == (100, 100)
        assert burst(link["short_url"], 300) == {302: 300}
    finally:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        stop(server)  # reaps whatever is left of the group
    rows, counted = stored_counts(live_database_url, "crash")
    assert rows == counted
    assert 100 <= rows <= 400
    print(f"kill -9 of the whole server right after 300 redirects lost {400 - rows} visits")
