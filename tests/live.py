"""Databases and live servers for the tests: ``shortener serve`` (gunicorn, 2 workers) on a
free port of 127.0.0.1, on a database migrated and given a first admin as the commands do
(``prepare``), on each backend.

Starting a server costs seconds, so one server per backend is shared by every test module that
can share it (``LiveServers``, behind the ``shared_live_server`` fixture of tests/conftest.py).
A module that needs other settings, or stops, kills or cuts off its server, launches its own
with ``serving``. Modules on a shared server make their own users and links with names of their
own and never count on an empty database.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from pg_schemas import MigratedSchemas
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.storage import migrations

REPO_ROOT = Path(__file__).resolve().parents[1]
SHORTENER = Path(sys.executable).with_name("shortener")
STARTUP_SECONDS = 20
STOP_SECONDS = 10
COMMAND_SECONDS = 60
TIMEOUT = 30
LOG_TAIL_CHARS = 4000
USERS = "/api/v1.0/users"

# -- backends --------------------------------------------------------------------------------
POSTGRES_URL = os.environ.get("SHORTENER_TEST_DATABASE_URL")
POSTGRES_MISSING = "SHORTENER_TEST_DATABASE_URL is not set"
# Parameters of every fixture that runs a test per backend. PostgreSQL without a URL is a
# visible skip, never a silent omission; the ids keep `-k postgresql` selecting that half.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(POSTGRES_URL is None, reason=POSTGRES_MISSING),
    ),
]


def postgres_schema_url(schema: str) -> str:
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


# Migrated schemas, recycled between tests (tests/pg_schemas.py; conftest.make_app adopts one).
SCHEMAS = MigratedSchemas(POSTGRES_URL, postgres_schema_url) if POSTGRES_URL else None


@contextmanager
def fresh_database(backend: str, directory: Path, prefix: str = "test") -> Iterator[str]:
    """A URL to an empty database: a new SQLite file in ``directory``, or a new PostgreSQL
    schema that is gone afterwards (dropped, or emptied back into the pool of migrated
    schemas when only its rows changed)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'shortener.db'}"
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with SCHEMAS.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        SCHEMAS.release(schema)


# -- the server ------------------------------------------------------------------------------
# The access log as shipped, plus the worker's pid, so a test can prove both workers answered.
ACCESS_LOG_FORMAT = '%(p)s %(h)s "%(r)s" %(s)s %(b)s'
_SERVED_BY = re.compile(r'^<(\d+)> \S+ "(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+)')

# Limits high enough for the whole suite on one server: the hostile timing case alone fails
# to sign in 400 times, and the redirect storms ask for hundreds of unknown slugs. Modules
# about the limits themselves launch servers of their own.
SUITE_LIMITS = {
    "SHORTENER_API_RATE_LIMIT": "1000000/minute",
    "SHORTENER_AUTH_FAIL_LIMIT": "1000000/minute",
    "SHORTENER_NOT_FOUND_LIMIT": "1000000/minute",
    # Webhook receivers of the tests listen on 127.0.0.1.
    "SHORTENER_WEBHOOK_ALLOW_PRIVATE": "true",
    "SHORTENER_WEBHOOK_POLL_INTERVAL": "0.2",
}


@dataclass
class LiveServer:
    url: str
    admin: tuple[str, str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Runs ``shortener ARGS`` against this server's database."""
        return run_cli(self.env, *args, input=input)

    @property
    def database_url(self) -> str:
        return self.env["SHORTENER_DATABASE_URL"]

    def log_size(self) -> int:
        """Where the log ends now: ``log_since(size)`` is what was written after."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except FileNotFoundError:
            return "(no log)"

    def workers_that_served(self, path_prefix: str) -> set[int]:
        """Pids of the gunicorn workers whose access log shows a request starting so."""
        pids = set()
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _SERVED_BY.match(line)
            if match and match.group(2).startswith(path_prefix):
                pids.add(int(match.group(1)))
        return pids

    def create_user(self, prefix: str, *, admin: bool = False) -> tuple[str, str]:
        """A new user with a name no other test has, made by this server's admin through the
        API; returns Basic credentials."""
        credentials = (f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(18))
        return self.create_named_user(credentials[0], admin=admin, password=credentials[1])

    def create_named_user(
        self, name: str, *, admin: bool = False, password: str | None = None
    ) -> tuple[str, str]:
        credentials = (name, password or secrets.token_urlsafe(18))
        response = requests.post(
            self.url + USERS,
            json={"username": name, "password": credentials[1], "is_admin": admin},
            auth=self.admin,
            timeout=TIMEOUT,
        )
        assert response.status_code == 201, response.text
        return credentials


def run_cli(env: Mapping[str, str], *args: str, input: str | None = None):
    return subprocess.run(
        [str(SHORTENER), *args],
        input=input,
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(database_url: str, settings: Mapping[str, str] = ()) -> dict[str, str]:
    """The caller's environment without any SHORTENER_* setting of the developer's shell, so
    the server runs on its defaults (scrypt hashing included: we test what we ship), plus
    ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHORTENER_")}
    env["SHORTENER_DATABASE_URL"] = database_url
    env.update(settings)
    return env


def checked(completed: subprocess.CompletedProcess, what: str) -> None:
    if completed.returncode != 0:
        pytest.fail(
            f"{what} failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}",
            pytrace=False,
        )


def prepare(env: Mapping[str, str], username: str = "admin") -> tuple[str, str]:
    """What ``shortener db upgrade`` and ``shortener users create USERNAME --admin`` do (the
    migrations, then an admin hashed with the shipped method), in this process: the commands
    themselves are tested as commands in tests/test_cli.py, and two interpreters starting cost
    seconds per server on a loaded machine. An empty PostgreSQL schema of ``fresh_database``
    adopts a migrated one (tests/pg_schemas.py). Returns the admin's credentials."""
    url = env["SHORTENER_DATABASE_URL"]
    admin = (username, secrets.token_urlsafe(18))
    adopted = SCHEMAS is not None and url.startswith("postgresql") and SCHEMAS.adopt(url)
    services = create_app({"DATABASE_URL": url}).extensions["shortener"]
    try:
        if not adopted:
            migrations.upgrade(services.database)
        services.users.create(OPERATOR, username=admin[0], password=admin[1], is_admin=True)
    finally:
        services.close()
    return admin


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (master and workers), SIGKILL if any outlives it."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process.poll() is None:
        process.wait(timeout=STOP_SECONDS)


def _wait_until_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"shortener serve exited with {server.process.returncode}:\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            if requests.get(server.url + "/api/v1.0/", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"shortener serve did not answer within {STARTUP_SECONDS} s:\n{server.log_tail()}",
        pytrace=False,
    )


def launch(env: dict[str, str], admin: tuple[str, str], log_path: Path) -> LiveServer:
    """``shortener serve`` with 2 workers on a free port, answering once this returns."""
    port = free_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", admin=admin, env=env, log_path=log_path)
    access_log = f"--access-logfile - --access-logformat '{ACCESS_LOG_FORMAT}'"
    server_env = {**env, "GUNICORN_CMD_ARGS": access_log}
    command = [str(SHORTENER), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(
            [*command, "--workers", "2"],
            cwd=REPO_ROOT,
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_ready(server)
    except BaseException:
        _stop(server.process)
        raise
    return server


def stop(server: LiveServer) -> None:
    """SIGTERM, the graceful stop: workers finish their requests and write buffered visits."""
    _stop(server.process)


@contextmanager
def serving(
    database_url: str, log_path: Path, settings: Mapping[str, str] = ()
) -> Iterator[LiveServer]:
    """A migrated database with the admin ``admin``, served until the block ends."""
    env = server_env(database_url, settings)
    server = launch(env, prepare(env), log_path)
    try:
        yield server
    finally:
        stop(server)


class LiveServers:
    """One server per backend, each on a database of its own, started when a test first asks
    for it and stopped by ``close`` (at the end of the session)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._servers: dict[str, LiveServer] = {}
        self._stack = ExitStack()

    def get(self, backend: str) -> LiveServer:
        if backend not in self._servers:
            directory = self._tmp.mktemp(f"shared-{backend}")
            url = self._stack.enter_context(fresh_database(backend, directory, "shared"))
            self._servers[backend] = self._stack.enter_context(
                serving(url, directory / "server.log", SUITE_LIMITS)
            )
        return self._servers[backend]

    def close(self) -> None:
        self._stack.close()
