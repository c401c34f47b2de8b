"""A real server: ``shortener serve`` (gunicorn, 2 workers) on a free port of 127.0.0.1, set up
with the real commands, on each backend of tests/conftest.py."""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[2]
SHORTENER = Path(sys.executable).with_name("shortener")
STARTUP_SECONDS = 20
STOP_SECONDS = 10
COMMAND_SECONDS = 60
LOG_TAIL_CHARS = 4000
# The access log as shipped, plus the worker's pid, so a test can prove both workers answered.
ACCESS_LOG_FORMAT = '%(p)s %(h)s "%(r)s" %(s)s %(b)s'
_SERVED_BY = re.compile(r'^<(\d+)> \S+ "(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+)')


def _load_root_conftest():
    """tests/conftest.py, for its BACKENDS and postgres_schema_url.

    Loaded by path: ``import conftest`` finds whichever conftest.py pytest imported last when
    a directory has no ``__init__.py``, so it must not decide what this module sees.
    """
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_shortener_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


root_conftest = _load_root_conftest()


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


def run_cli(env: dict[str, str], *args: str, input: str | None = None):
    return subprocess.run(
        [str(SHORTENER), *args],
        input=input,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_env(database_url: str) -> dict[str, str]:
    """The caller's environment without any SHORTENER_* setting of the developer's shell, so
    the server runs on its defaults (scrypt hashing included: we test what we ship)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHORTENER_")}
    env["SHORTENER_DATABASE_URL"] = database_url
    return env


def _checked(completed: subprocess.CompletedProcess, what: str) -> None:
    if completed.returncode != 0:
        pytest.fail(
            f"{what} failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}",
            pytrace=False,
        )


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


@pytest.fixture(scope="module", params=root_conftest.BACKENDS)
def live_database_url(request, tmp_path_factory) -> Iterator[str]:
    """An empty database for one live server per backend, like ``database_url`` in
    tests/conftest.py: a new SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('live-sqlite') / 'shortener.db'}"
        return
    schema = f"live_{uuid.uuid4().hex[:16]}"
    engine = create_engine(root_conftest.POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield root_conftest.postgres_schema_url(schema)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def launch(env: dict[str, str], admin: tuple[str, str], log_path: Path) -> LiveServer:
    """``shortener serve`` with 2 workers on a free port, answering once this returns."""
    port = _free_port()
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


@pytest.fixture(scope="module")
def live_server(live_database_url, tmp_path_factory) -> Iterator[LiveServer]:
    env = _server_env(live_database_url)
    admin = ("admin", secrets.token_urlsafe(18))
    _checked(run_cli(env, "db", "upgrade"), "shortener db upgrade")
    _checked(
        run_cli(env, "users", "create", admin[0], "--admin", "--password-stdin", input=admin[1]),
        "shortener users create",
    )

    server = launch(env, admin, tmp_path_factory.mktemp("live-server") / "server.log")
    try:
        yield server
    finally:
        stop(server)
