"""The live server of each backend, its storage read straight from the database, and the
assertions every hostile case makes: the status, problem+json without a stack trace, and a
database that is exactly as it was.

Modules share the session's server (tests/live.py), each with users and links named after the
module (``cast_of``). A module that sets ``SERVER_SETTINGS`` (extra ``SHORTENER_*`` variables)
gets a server and a database of its own.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from live import SUITE_LIMITS, LiveServer, serving
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.pool import NullPool

from shortener.storage import tables

TIMEOUT = 30
API = "/api/v1.0"
LINKS = f"{API}/links"
USERS = f"{API}/users"
PROBLEM_JSON = "application/problem+json"
VISIT_WAIT_SECONDS = 15
WORKERS = 2
# What the server logs when a request ended in a 500 (problems.render_error).
UNHANDLED = "unhandled error"


# -- storage, read straight from the database ------------------------------------------------
Snapshot = dict[str, dict[tuple, dict[str, Any]]]


class Storage:
    """Every application table, row by row, keyed by primary key."""

    def __init__(self, database_url: str) -> None:
        is_sqlite = database_url.startswith("sqlite")
        # No pooled connection of ours may hold a SQLite lock between snapshots.
        self.engine = create_engine(database_url, poolclass=NullPool if is_sqlite else None)
        present = set(inspect(self.engine).get_table_names())
        # link_changes only counts changes for the link caches (every change bumps it): not data.
        self.tables = [
            table
            for table in tables.metadata.sorted_tables
            if table.name in present and table.name != "link_changes"
        ]

    def dispose(self) -> None:
        self.engine.dispose()

    def snapshot(self) -> Snapshot:
        result: Snapshot = {}
        with self.engine.connect() as connection:
            for table in self.tables:
                key_columns = [column.name for column in table.primary_key.columns]
                rows = {}
                for row in connection.execute(select(table)):
                    mapping = dict(row._mapping)
                    rows[tuple(mapping[name] for name in key_columns)] = mapping
                result[table.name] = rows
        return result

    def link(self, slug: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(tables.links).where(tables.links.c.slug == slug)
            ).first()
        return None if row is None else dict(row._mapping)

    def visits_of(self, link_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            query = select(tables.visits).where(tables.visits.c.link_id == link_id)
            return [dict(row._mapping) for row in connection.execute(query)]

    def wait_for_visit_count(self, slug: str, expected: int) -> int:
        """The link's visit_count once it reaches ``expected`` (visits are written in batches
        once a second), or its last value after VISIT_WAIT_SECONDS."""
        deadline = time.monotonic() + VISIT_WAIT_SECONDS
        while True:
            link = self.link(slug)
            count = link["visit_count"] if link else -1
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.1)

    @contextmanager
    def unchanged(self, *, visits: Mapping[str, int] | None = None) -> Iterator[None]:
        """Asserts the block changed nothing in any table, except ``visits``: {slug: n} visits
        the block itself caused by following links (their rows, counts and rollups)."""
        visits = dict(visits or {})
        before = self.snapshot()
        yield
        link_ids = {}
        for slug, expected in visits.items():
            link = _by_slug(before, slug)
            link_ids[link["id"]] = expected
            reached = self.wait_for_visit_count(slug, link["visit_count"] + expected)
            assert reached == link["visit_count"] + expected, (slug, reached)
        after = self.snapshot()
        if visits:
            _discount_visits(before, after, link_ids)
        changes = diff(before, after)
        assert not changes, f"storage changed: {changes}"


def _by_slug(snapshot: Snapshot, slug: str) -> dict[str, Any]:
    (link,) = [row for row in snapshot["links"].values() if row["slug"] == slug]
    return link


def _discount_visits(before: Snapshot, after: Snapshot, expected: Mapping[int, int]) -> None:
    """Takes the expected visits out of ``after``: n new rows and n counted per link."""
    new_keys = after["visits"].keys() - before["visits"].keys()
    for link_id, count in expected.items():
        mine = [key for key in new_keys if after["visits"][key]["link_id"] == link_id]
        assert len(mine) == count, (link_id, len(mine), count)
        after["links"][(link_id,)]["visit_count"] -= count
    for key in new_keys:
        if after["visits"][key]["link_id"] in expected:
            del after["visits"][key]
    # Rollups sum visits per hour; the rows above were checked one by one instead.
    before.pop("visit_rollups", None)
    after.pop("visit_rollups", None)


def diff(before: Snapshot, after: Snapshot) -> dict[str, dict[str, list]]:
    changes = {}
    for name in before.keys() | after.keys():
        old, new = before.get(name, {}), after.get(name, {})
        found = {
            "added": [new[key] for key in new.keys() - old.keys()],
            "removed": [old[key] for key in old.keys() - new.keys()],
            "changed": [
                (old[key], new[key]) for key in old.keys() & new.keys() if old[key] != new[key]
            ],
        }
        found = {kind: rows for kind, rows in found.items() if rows}
        if found:
            changes[name] = found
    return changes


# -- raw HTTP, for what requests would refuse or clean up --------------------------------------
@dataclass
class RawResponse:
    status_code: int
    header_list: list[tuple[str, str]]
    content: bytes

    def headers_named(self, name: str) -> list[str]:
        return [value for key, value in self.header_list if key.lower() == name.lower()]

    @property
    def headers(self) -> dict[str, str]:
        """Case-insensitive, repeated headers joined with ", " (as requests does)."""
        return _Headers(self.header_list)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Headers(dict):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        joined: dict[str, str] = {}
        for key, value in pairs:
            key = key.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        super().__init__(joined)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def raw_request(
    base_url: str,
    method: str,
    target: str | bytes,
    headers: list[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
    *,
    content_length: bool = True,
    source_address: tuple[str, int] | None = None,
) -> RawResponse:
    """One request written byte for byte on a new connection; ``Host``, ``Content-Length``
    (unless told otherwise) and ``Connection: close`` are added."""
    parts = urlsplit(base_url)
    lines = [_as_bytes(method) + b" " + _as_bytes(target) + b" HTTP/1.1"]
    lines.append(b"Host: " + parts.netloc.encode())
    lines += [_as_bytes(name) + b": " + _as_bytes(value) for name, value in headers]
    if content_length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(
        (parts.hostname, parts.port), timeout=TIMEOUT, source_address=source_address
    ) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        content = response.read()
    return RawResponse(response.status, response.getheaders(), content)


# -- assertions ------------------------------------------------------------------------------
def assert_problem(response, status: int | set[int], *, field: str | None = None) -> dict:
    """An RFC 9457 problem with the status (or one of them), and no stack trace."""
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    content_type = response.headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, content_type
    assert_no_stack_trace(response)
    body = response.json()
    assert body["status"] == response.status_code
    assert body["type"] and body["title"]
    if field is not None:
        assert field in body.get("errors", {}), body
    return body


def assert_no_stack_trace(response) -> None:
    text = response.text
    for tell in ("Traceback", 'File "/', "sqlalchemy", "psycopg", "sqlite3."):
        assert tell not in text, text[:2000]


def assert_unauthorized(response) -> dict:
    """401, problem+json, and a challenge for each scheme the API takes."""
    body = assert_problem(response, 401)
    challenges = response.headers.get("WWW-Authenticate", "")
    assert 'Basic realm="shortener"' in challenges, challenges
    assert 'Bearer realm="shortener"' in challenges, challenges
    return body


# The access log line of integration.conftest's format: <pid> host "request line" status size
_ANSWERED = re.compile(r'^<(\d+)> \S+ "\S+ (\S+) [^"]*" (\d{3}) ')


# -- the server ------------------------------------------------------------------------------
@dataclass
class Battery:
    server: LiveServer
    storage: Storage
    alice: tuple[str, str]
    bob: tuple[str, str]
    links: dict[str, dict] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin(self) -> tuple[str, str]:
        return self.server.admin

    def call(self, method: str, path: str, *, auth=None, **kwargs) -> requests.Response:
        """One request on a fresh connection, redirects not followed."""
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, auth=auth, **kwargs)

    def until_every_worker(
        self, method: str, marker: str, *, auth=None, **kwargs
    ) -> list[requests.Response]:
        """``method marker<n>`` on fresh connections, 4 at a time, until the access log shows
        that both workers answered (bounded); every response, for the caller to check."""
        responses: list[requests.Response] = []
        for batch in range(50):
            paths = [f"{marker}{batch}-{number}" for number in range(4)]
            with ThreadPoolExecutor(max_workers=4) as pool:
                responses += pool.map(
                    lambda path: self.call(method, path, auth=auth, **kwargs), paths
                )
            if len(self.server.workers_that_served(marker)) >= WORKERS:
                return responses
        pytest.fail(f"only workers {self.server.workers_that_served(marker)} answered {marker}")

    def answers(self, marker: str) -> list[tuple[int, int]]:
        """(worker pid, status) of each request whose target starts with ``marker``, from the
        access log."""
        found = []
        for line in self.server.log_path.read_text(errors="replace").splitlines():
            match = _ANSWERED.match(line)
            if match and match.group(2).startswith(marker):
                found.append((int(match.group(1)), int(match.group(3))))
        return found

    def raw_until_every_worker(
        self, method: str, marker: str, headers=(), *, status: int | None = None, **kwargs
    ) -> list[RawResponse]:
        """Raw requests to ``marker<n>``, 4 at a time, until the access log shows every worker
        answered one (with ``status``, when given); ``headers`` may be a function of the
        target. Bounded; returns every response."""
        responses: list[RawResponse] = []

        def send(target: str) -> RawResponse:
            chosen = headers(target) if callable(headers) else headers
            return self.raw(method, target, chosen, **kwargs)

        for batch in range(50):
            targets = [f"{marker}{batch}-{number}" for number in range(4)]
            with ThreadPoolExecutor(max_workers=4) as pool:
                responses += pool.map(send, targets)
            answered = {pid for pid, code in self.answers(marker) if status in (None, code)}
            if len(answered) >= WORKERS:
                return responses
        pytest.fail(f"not every worker answered {marker} with {status}: {self.answers(marker)}")

    def raw(self, method: str, target: str | bytes, headers=(), body: bytes = b"", **kwargs):
        return raw_request(self.url, method, target, list(headers), body, **kwargs)

    def basic(self, credentials: tuple[str, str]) -> tuple[str, str]:
        """("Authorization", "Basic ...") for raw requests."""
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        return ("Authorization", f"Basic {token}")

    def create_link(self, owner: tuple[str, str], **fields) -> dict:
        response = self.call("POST", LINKS, auth=owner, json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def get_link(self, slug: str, owner: tuple[str, str]) -> dict:
        response = self.call("GET", f"{LINKS}/{slug}", auth=owner)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass(frozen=True)
class Cast:
    """The users and links of one module, named after it, so that modules can share a server."""

    alice: str
    bob: str
    alices_link: str
    bobs_link: str


def cast_of(module_name: str) -> Cast:
    """``cast_of(__name__)``: hostile.test_authorization -> alice-authorization, ..."""
    suffix = module_name.rsplit(".", 1)[-1].removeprefix("test_")
    return Cast(f"alice-{suffix}", f"bob-{suffix}", f"alices-link-{suffix}", f"bobs-link-{suffix}")


@pytest.fixture(scope="module")
def server_database_url(live_database_url) -> str:
    """Where a module's own server (and its CLI) find the database; a module may put something
    between."""
    return live_database_url


@pytest.fixture(scope="module")
def hostile_server(request, live_backend, tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    """(server, URL to read its database straight): the shared server, or one of the module's
    own when it sets SERVER_SETTINGS (limits to reach, a short lock timeout, a database to cut
    off, one-character slugs to run out of)."""
    settings = getattr(request.module, "SERVER_SETTINGS", None)
    if settings is None:
        server = request.getfixturevalue("shared_live_server")
        yield server, server.database_url
        return
    storage_url = request.getfixturevalue("live_database_url")
    log_path = tmp_path_factory.mktemp("hostile") / "server.log"
    with serving(
        request.getfixturevalue("server_database_url"), log_path, {**SUITE_LIMITS, **settings}
    ) as server:
        yield server, storage_url


@pytest.fixture(scope="module")
def battery(request, hostile_server) -> Iterator[Battery]:
    """A migrated database with an admin, and the module's alice and bob, served by 2 gunicorn
    workers; each user owns one link. At the end, what the server logged meanwhile must show
    no unhandled error."""
    server, storage_url = hostile_server
    log_start = server.log_size()
    cast = cast_of(request.module.__name__)
    storage = Storage(storage_url)
    try:
        battery = Battery(
            server,
            storage,
            server.create_named_user(cast.alice),
            server.create_named_user(cast.bob),
        )
        battery.links["alice"] = battery.create_link(
            battery.alice, target="https://example.com/alice/secret-plan", slug=cast.alices_link
        )
        battery.links["bob"] = battery.create_link(
            battery.bob, target="https://example.org/bob", slug=cast.bobs_link
        )
        yield battery
    finally:
        storage.dispose()
    log = server.log_since(log_start)
    if UNHANDLED in log:
        start = log.index(UNHANDLED)
        pytest.fail(f"the server logged a 500:\n{log[max(0, start - 200) : start + 3000]}")
