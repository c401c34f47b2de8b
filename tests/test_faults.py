"""Real faults, no mocks: the database goes away and comes back, or another process holds its
write lock. The API and the redirects answer 503 problem+json with Retry-After (a redirect
never with a Location it cannot vouch for), /health/ready answers 503, and everything
recovers without a restart.

- PostgreSQL: the app reaches the real server through a TCP forwarder on 127.0.0.1; stopping
  the forwarder is the server going away (new connections refused, open ones cut), starting it
  on the same port is the server coming back.
- SQLite: the database file is moved away and back. A process's open connections would go on
  reading and writing the moved file, so the app checks that its connections' file is still the
  file at the path (shortener/storage/engine.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import PASSWORD, POSTGRES_URL, make_app
from live import serving
from sqlalchemy.engine import make_url
from support import Forwarder, assert_problem

from shortener.services.actors import OPERATOR
from shortener.storage.engine import FILE_CHECK_SECONDS

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/docs"
ALICE = ("alice", PASSWORD)
LOCK_TIMEOUT_MS = 300


class FileMovedAway:
    """The SQLite file is not at its path any more (moved, deleted or on a lost volume)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def stop(self) -> None:
        os.replace(self.path, self.path + ".away")
        # A redirect's held connection checks its file at most every FILE_CHECK_SECONDS;
        # until then it reads the moved file, which holds the same data.
        time.sleep(FILE_CHECK_SECONDS + 0.1)

    def start(self) -> None:
        os.replace(self.path + ".away", self.path)


@pytest.fixture
def outage(database_url):
    """(URL the app uses, the fault): ``fault.stop()`` takes the database away, ``start()``
    brings it back."""
    if database_url.startswith("sqlite"):
        yield database_url, FileMovedAway(make_url(database_url).database)
        return
    server = make_url(POSTGRES_URL)
    forwarder = Forwarder((server.host or "127.0.0.1", server.port or 5432))
    forwarder.start()
    through = make_url(database_url).set(host="127.0.0.1", port=forwarder.port)
    try:
        yield through.render_as_string(hide_password=False), forwarder
    finally:
        forwarder.stop()


@pytest.fixture
def fault_app(outage):
    url, fault = outage
    # No link cache: these redirects are about the database's read path (a worker answers the
    # links it has cached without the database; see tests/test_link_cache.py).
    app = make_app(url, LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS, LINK_CACHE_SIZE=0)
    app.extensions["shortener"].users.create(OPERATOR, username="alice", password=PASSWORD)
    client = app.test_client()
    created = client.post(LINKS, json={"target": TARGET, "slug": "docs"}, auth=ALICE)
    assert created.status_code == 201
    yield app, fault
    app.extensions["shortener"].close()


def assert_unavailable(response) -> None:
    """503, retryable, and never a redirect to somewhere."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    assert "Location" not in response.headers
    if response.request.method != "HEAD":
        body = assert_problem(response, 503)
        assert body["type"].endswith("/problems/unavailable")


def assert_serving(client) -> None:
    redirect = client.get("/docs")
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == TARGET
    assert client.head("/docs").headers["Location"] == TARGET
    assert client.get(f"{LINKS}/docs", auth=ALICE).get_json()["target"] == TARGET
    assert client.get("/health/ready").get_json() == {"status": "ready"}


def test_an_unreachable_database_answers_503_and_recovers(fault_app):
    app, fault = fault_app
    client = app.test_client()
    assert_serving(client)
    created = []
    for outage_number in range(2):  # recovery holds more than once
        fault.stop()
        for _ in range(6):  # each answer alike: the pool and the held connection keep failing
            assert_unavailable(client.get("/docs"))
            assert_unavailable(client.head("/docs"))
            assert_unavailable(client.get("/nope"))  # not a 404: the slug may exist
            assert_unavailable(client.get(f"{LINKS}/docs", auth=ALICE))
            assert_unavailable(client.get(LINKS, auth=ALICE))
            assert_unavailable(client.post(LINKS, json={"target": TARGET}, auth=ALICE))
            ready = client.get("/health/ready")
            assert_unavailable(ready)
            assert ready.headers["Cache-Control"] == "no-store"
            assert client.get("/health").get_json() == {"status": "ok"}  # the process is alive

        fault.start()
        assert_serving(client)  # the very next requests, same process
        response = client.post(LINKS, json={"target": f"{TARGET}/{outage_number}"}, auth=ALICE)
        assert response.status_code == 201
        created.append(response.get_json()["slug"])
    for number, slug in enumerate(created):
        assert client.get(f"/{slug}").headers["Location"] == f"{TARGET}/{number}"


def test_an_outage_locks_nobody_out(fault_app):
    """Credentials cannot be checked without the database: 503, not 401, so an outage longer
    than the failed-authentication limit does not leave users refused with 429 afterwards."""
    app, fault = fault_app
    client = app.test_client()
    fault.stop()
    for _ in range(12):
        assert_unavailable(client.get(LINKS, auth=ALICE))
    fault.start()
    response = client.get(LINKS, auth=ALICE)
    assert response.status_code == 200
    assert response.headers["RateLimit-Remaining"]


# -- a write lock held by another process ------------------------------------------------------

HOLDER = """
import sys
kind, where = sys.argv[1], sys.argv[2]
if kind == "sqlite":
    import sqlite3
    connection = sqlite3.connect(where, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
else:
    from sqlalchemy import create_engine, text
    connection = create_engine(where).connect()
    connection.begin()
    # Writers of links wait; readers (ACCESS SHARE) do not.
    connection.execute(text("LOCK TABLE links IN EXCLUSIVE MODE"))
print("locked", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


class LockHolder:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        kind = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
        where = url.database if kind == "sqlite" else database_url
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, kind, where],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


def test_a_write_lock_held_past_the_timeout_answers_503_while_reads_go_on(database_url):
    app = make_app(database_url, LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS, VISIT_FLUSH_INTERVAL=60)
    services = app.extensions["shortener"]
    try:
        services.users.create(OPERATOR, username="alice", password=PASSWORD)
        client = app.test_client()
        assert client.post(LINKS, json={"target": TARGET, "slug": "docs"}, auth=ALICE)
        holder = LockHolder(database_url)
        try:
            started = time.monotonic()
            assert_unavailable(client.post(LINKS, json={"target": TARGET}, auth=ALICE))
            waited = time.monotonic() - started
            assert LOCK_TIMEOUT_MS / 1000 * 0.8 <= waited < 5, waited  # the configured wait
            assert_unavailable(client.patch(f"{LINKS}/docs", json={"title": "x"}, auth=ALICE))
            assert_unavailable(client.delete(f"{LINKS}/docs", auth=ALICE))

            started = time.monotonic()
            for _ in range(3):
                assert_serving(client)
            assert client.get(LINKS, auth=ALICE).status_code == 200
            assert time.monotonic() - started < 2, "a read waited for the write lock"
        finally:
            holder.release()

        link = client.get(f"{LINKS}/docs", auth=ALICE).get_json()
        assert link["title"] is None  # the refused PATCH changed nothing
        assert client.post(LINKS, json={"target": TARGET}, auth=ALICE).status_code == 201
        services.recorder.flush()  # the visits of the redirects during the lock were kept
        assert client.get(f"{LINKS}/docs", auth=ALICE).get_json()["visit_count"] == 3  # GETs
    finally:
        services.close()


# -- a live server: the SQLite file moved away and back ---------------------------------------

COUNT_LINKS = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
slugs = [row[0] for row in connection.execute("SELECT slug FROM links")]
locked = connection.execute("SELECT visit_count FROM links WHERE slug = ?", (sys.argv[2],))
print(" ".join(slugs))
print(locked.fetchone()[0])
connection.close()  # another process's last connection: with no lock held, the log goes
"""


def seen_by_another_process(path: str, slug: str) -> tuple[set[str], int]:
    """The slugs, and the visit count of ``slug``, as a new process reads them."""
    completed = subprocess.run(
        [sys.executable, "-c", COUNT_LINKS, path, slug],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    slugs, visits = completed.stdout.splitlines()
    return set(slugs.split()), int(visits)


def test_a_live_server_loses_nothing_after_the_file_was_moved_away_and_back(tmp_path):
    """`shortener serve` (2 workers and the visit writer, each with connections of its own):
    after the file was moved away (503) and back, every write answered 201 is in the database
    for every other process, visits are counted, and another process's write lock still
    holds the server's writers off."""
    path = str(tmp_path / "shortener.db")
    settings = {
        "SHORTENER_LOCK_TIMEOUT_MS": "1000",
        "SHORTENER_LINK_CACHE_SIZE": "0",
        "SHORTENER_API_RATE_LIMIT": "1000000/minute",
    }
    with serving(f"sqlite:///{path}", tmp_path / "server.log", settings) as server:
        user = server.create_user("moved")

        def call(method: str, route: str, **kwargs) -> requests.Response:
            with requests.Session() as session:  # a connection of its own: either worker
                return session.request(
                    method, server.url + route, timeout=30, allow_redirects=False, **kwargs
                )

        def create(number: int) -> str:
            created = call("POST", LINKS, json={"target": f"{TARGET}/{number}"}, auth=user)
            assert created.status_code == 201, created.text
            return created.json()["slug"]

        assert call("PUT", f"{LINKS}/moved", json={"target": TARGET}, auth=user).status_code == 201
        with ThreadPoolExecutor(8) as pool:  # several connections in every process
            slugs = set(pool.map(create, range(24)))
            redirects = list(pool.map(lambda _: call("GET", "/moved"), range(24)))
            # Visits the writer holds (it writes every second) when the file goes away.
            redirects += list(pool.map(lambda _: call("GET", "/moved"), range(24)))
        assert {response.status_code for response in redirects} == {302}

        log_offset = server.log_size()
        os.replace(path, path + ".away")
        try:
            # A few requests only: most of the workers' pooled connections live through the
            # outage, as they do on a server with many connections and little traffic.
            for _ in range(2):
                assert call("GET", "/health/ready").status_code == 503
                assert call("POST", LINKS, json={"target": TARGET}, auth=user).status_code == 503
            # The writer's connection fails and is closed while the file is away: were the
            # workers' locks gone, that close would delete the log they still write into.
            deadline = time.monotonic() + 15
            while "could not write" not in server.log_since(log_offset):
                assert time.monotonic() < deadline, "the visit writer did not try to write"
                time.sleep(0.1)
        finally:
            os.replace(path + ".away", path)

        deadline = time.monotonic() + 15
        while call("GET", "/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the file came back"
            time.sleep(0.1)
        for round_number in range(3):  # new connections everywhere, then reconnections
            with ThreadPoolExecutor(8) as pool:
                made = set(pool.map(create, range(100 * round_number, 100 * round_number + 24)))
                redirects = list(pool.map(lambda _: call("GET", "/moved"), range(24)))
            assert {response.status_code for response in redirects} == {302}
            slugs |= made
            seen, _ = seen_by_another_process(path, "moved")
            assert slugs <= seen, f"answered 201, lost: {sorted(slugs - seen)}"

        # Every redirect answered (48 before, 72 after; the 503s were none) is a visit written.
        deadline = time.monotonic() + 20
        while seen_by_another_process(path, "moved")[1] != 48 + 72:
            assert time.monotonic() < deadline, seen_by_another_process(path, "moved")
            time.sleep(0.2)

        holder = LockHolder(f"sqlite:///{path}")  # the lock still holds every worker off
        try:
            for _ in range(4):
                blocked = call("POST", LINKS, json={"target": TARGET}, auth=user)
                assert blocked.status_code == 503, blocked.text
        finally:
            holder.release()
        slugs.add(create(999))
    seen, visits = seen_by_another_process(path, "moved")
    assert slugs <= seen and visits == 48 + 72
