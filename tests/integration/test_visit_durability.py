"""Visits survive what a real deployment does to them: a stop right after a burst, and a
database that holds the visits table locked while redirects keep coming."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from live import checked, launch, run_cli, server_env, stop
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration

TIMEOUT = 30
LINKS = "/api/v1.0/links"


@pytest.fixture
def prepared(live_database_url, tmp_path):
    """A migrated database with an admin, and what it takes to launch servers on it."""
    env = server_env(live_database_url)
    admin = (f"admin-{secrets.token_hex(4)}", secrets.token_urlsafe(18))  # one module database
    checked(run_cli(env, "db", "upgrade"), "shortener db upgrade")
    checked(
        run_cli(env, "users", "create", *admin[:1], "--admin", "--password-stdin", input=admin[1]),
        "shortener users create",
    )
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


def test_a_crash_loses_at_most_the_last_second(prepared, live_database_url):
    """SIGKILL gives no chance to flush: only what the writer wrote each second survives, and
    everything older than one flush interval (1 s) must have been written by then."""
    env, admin, tmp_path = prepared
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "crash")
        assert burst(link["short_url"], 100) == {302: 100}
        time.sleep(2.5)  # more than one interval, plus room for a slow batch
    finally:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        stop(server)  # reaps whatever is left of the group
    assert stored_counts(live_database_url, "crash") == (100, 100)
