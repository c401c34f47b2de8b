"""Case 10: the database goes away (PostgreSQL unreachable, or the SQLite file gone) and comes
back; another process holds the write lock past the lock timeout. The API and the redirects
answer 503 problems with Retry-After (never a redirect to anywhere), readiness says 503, and the
same server recovers by itself.

PostgreSQL is never stopped: the server reaches it through a TCP forwarder in this process,
and the forwarder is what stops (refusing new connections and cutting open ones)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import Forwarder

from .conftest import API, LINKS, assert_problem, cast_of

pytestmark = pytest.mark.integration

# Named after this module, as on a shared server (this one has its own).
CAST = cast_of(__name__)

# A short lock timeout keeps the lock case quick; the outage cases do not depend on it.
# No link cache: these redirects are about the database's read path (a worker answers the
# links it has cached without the database; see tests/test_link_cache.py).
SERVER_SETTINGS = {"SHORTENER_LOCK_TIMEOUT_MS": "1000", "SHORTENER_LINK_CACHE_SIZE": "0"}
LOCK_TIMEOUT = 1.0
RECOVERY_SECONDS = 15
# A redirect's held SQLite connection notices a moved file within half a second.
NOTICE_SECONDS = 1.0
PROBES = 8  # fresh connections per request kind, so both workers answer


@pytest.fixture(scope="module")
def forwarder(live_database_url) -> Iterator[Forwarder | None]:
    if not live_database_url.startswith("postgresql"):
        yield None
        return
    url = make_url(live_database_url)
    forwarder = Forwarder((url.host or "127.0.0.1", url.port or 5432))
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()


@pytest.fixture(scope="module")
def server_database_url(live_database_url, forwarder) -> str:
    """PostgreSQL through the forwarder; SQLite as it is."""
    if forwarder is None:
        return live_database_url
    url = make_url(live_database_url).set(host="127.0.0.1", port=forwarder.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def outage(live_database_url, forwarder):
    """``with outage():`` the database is unreachable for the server, then back."""

    @contextmanager
    def unreachable() -> Iterator[None]:
        if forwarder is not None:
            forwarder.stop()
            try:
                yield
            finally:
                forwarder.start()
            return
        path = make_url(live_database_url).database
        os.rename(path, path + ".away")
        try:
            time.sleep(NOTICE_SECONDS)
            yield
        finally:
            os.rename(path + ".away", path)

    return unreachable


def assert_unavailable(response) -> None:
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert "Location" not in response.headers


def every_kind_of_request(battery):
    """(method, path, credentials, json) that each need the database."""
    return [
        ("GET", f"{LINKS}/{CAST.alices_link}", battery.alice, None),
        ("GET", LINKS, battery.alice, None),
        ("POST", LINKS, battery.alice, {"target": "https://example.com/during-outage"}),
        ("PUT", f"{LINKS}/made-during-outage", battery.alice, {"target": "https://e.com/"}),
        ("PATCH", f"{LINKS}/{CAST.alices_link}", battery.alice, {"title": "changed during outage"}),
        ("DELETE", f"{LINKS}/{CAST.bobs_link}", battery.bob, None),
        ("GET", f"{LINKS}/{CAST.alices_link}/stats", battery.alice, None),
        ("GET", f"{API}/users", battery.admin, None),
    ]


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Another connection, in this process, holds the write lock on links until the block ends."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            # Plain reads (ACCESS SHARE) still go through; every write to links waits.
            connection.execute(text("LOCK TABLE links IN EXCLUSIVE MODE"))
            yield
            transaction.rollback()
    finally:
        engine.dispose()


def test_database_outage_gives_503_and_the_same_server_recovers(battery, outage):
    target = battery.links["alice"]["target"]
    assert battery.call("GET", "/health/ready").status_code == 200
    assert battery.call("HEAD", f"/{CAST.alices_link}").status_code == 302
    workers_before = battery.server.workers_that_served("/")

    with battery.storage.unchanged(), outage():
        # Every worker: redirects, readiness and the API all say 503, none redirects.
        for response in battery.until_every_worker("GET", f"/{CAST.alices_link}?outage-get-"):
            assert_unavailable(response)
        for response in battery.until_every_worker("HEAD", f"/{CAST.alices_link}?outage-head-"):
            assert response.status_code == 503
            assert "Location" not in response.headers
        for response in battery.until_every_worker("GET", "/health/ready?outage-"):
            assert_unavailable(response)
        for response in battery.until_every_worker(
            "GET", f"{LINKS}/{CAST.alices_link}?outage-", auth=battery.alice
        ):
            assert_unavailable(response)
        # Liveness does not depend on the database.
        assert battery.call("GET", "/health").status_code == 200
        for _ in range(PROBES):
            for method, path, credentials, body in every_kind_of_request(battery):
                assert_unavailable(battery.call(method, path, auth=credentials, json=body))
        # Wrong credentials cannot be told apart from right ones while nothing can be checked.
        assert_unavailable(battery.call("GET", LINKS, auth=(battery.alice[0], "wrong")))

    deadline = time.monotonic() + RECOVERY_SECONDS
    while battery.call("GET", "/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the database came back"
        time.sleep(0.2)
    with battery.storage.unchanged(visits={CAST.alices_link: PROBES}):
        for response in battery.until_every_worker("GET", "/health/ready?recovered-"):
            assert response.status_code == 200
        for response in battery.until_every_worker("HEAD", f"/{CAST.alices_link}?recovered-"):
            assert response.status_code == 302
            assert response.headers["Location"] == target
        for response in battery.until_every_worker(
            "GET", f"{LINKS}/{CAST.alices_link}?recovered-", auth=battery.alice
        ):
            assert response.status_code == 200
            assert response.json()["title"] == battery.links["alice"]["title"]
        for _ in range(PROBES):
            redirect = battery.call("GET", f"/{CAST.alices_link}")
            assert redirect.status_code == 302
            assert redirect.headers["Location"] == target
    # Recovered in place: the same master, and only workers that were already serving.
    assert battery.server.process.poll() is None
    assert battery.server.workers_that_served("/health/ready?recovered") <= workers_before
    created = battery.call("POST", LINKS, auth=battery.alice, json={"target": "https://e.com/"})
    assert created.status_code == 201, created.text


# After the outage on purpose: the file moved away and back must leave every worker's writes
# in the one database and under its lock (workers once committed into a deleted write-ahead
# log after it, unseen by the lock holder; see tests/test_faults.py).
def test_a_write_lock_past_the_timeout_gives_503_while_readers_work(battery):
    target = battery.links["alice"]["target"]
    with battery.storage.unchanged(visits={CAST.alices_link: 3}):
        with write_lock_held(battery.storage.engine.url.render_as_string(hide_password=False)):
            started = time.monotonic()
            blocked = battery.call(
                "POST", LINKS, auth=battery.alice, json={"target": "https://e.com/locked"}
            )
            waited = time.monotonic() - started
            assert_unavailable(blocked)
            assert waited >= LOCK_TIMEOUT * 0.9, waited
            patched = battery.call(
                "PATCH", f"{LINKS}/{CAST.alices_link}", auth=battery.alice, json={"title": "locked"}
            )
            assert_unavailable(patched)

            # Readers do not wait for the writer.
            for _ in range(3):
                started = time.monotonic()
                redirect = battery.call("GET", f"/{CAST.alices_link}")
                assert redirect.status_code == 302
                assert redirect.headers["Location"] == target
                read = battery.call("GET", f"{LINKS}/{CAST.alices_link}", auth=battery.alice)
                assert read.status_code == 200
                assert battery.call("GET", "/health/ready").status_code == 200
                assert time.monotonic() - started < LOCK_TIMEOUT, "a reader waited for the lock"
        # The lock is gone: the visits above are written now, and writes work again.
    created = battery.call("POST", LINKS, auth=battery.alice, json={"target": "https://e.com/free"})
    assert created.status_code == 201, created.text
