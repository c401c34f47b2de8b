"""Visits through a Redis Stream (SHORTENER_REDIS_URL): several ``shortener visits work``
consumers, one killed mid-run, and a Redis that is not there, then is back.

Each test has a stream of its own (SHORTENER_VISIT_STREAM) in the Redis database of
SHORTENER_TEST_REDIS_URL (default redis://127.0.0.1:6379/12), so tests never see each other's
visits. Without a Redis answering there, these tests are skipped, visibly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import redis
from live import REPO_ROOT, SHORTENER, free_port, launch, stop

from .test_visit_durability import burst, create_link, prepare_database, settled

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("SHORTENER_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
GROUP = "shortener-visit-writers"
DEADLINE_SECONDS = 30


def _redis_answers() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
        return True
    except redis.RedisError:
        return False


@pytest.fixture
def prepared(live_database_url, tmp_path):
    """(server environment, admin, tmp_path) on a migrated database of each backend."""
    return prepare_database(live_database_url, tmp_path)


@pytest.fixture
def stream():
    """(Redis client, a stream key of this test's own); the key is deleted afterwards."""
    if not _redis_answers():
        pytest.skip(f"no Redis answers at {REDIS_URL} (SHORTENER_TEST_REDIS_URL)")
    client = redis.Redis.from_url(REDIS_URL)
    key = f"test:{uuid.uuid4().hex}:visits"
    yield client, key
    client.delete(key)
    client.close()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def pending_of(client: redis.Redis, key: str) -> dict[str, int]:
    """Unacknowledged entries per consumer."""
    try:
        summary = client.xpending(key, GROUP)
    except redis.ResponseError:  # no group yet
        return {}
    return {c["name"].decode(): int(c["pending"]) for c in summary.get("consumers") or []}


def consumers_of(client: redis.Redis, key: str) -> set[str]:
    try:
        return {c["name"].decode() for c in client.xinfo_consumers(key, GROUP)}
    except redis.ResponseError:  # no stream or group yet
        return set()


def entries_read(client: redis.Redis, key: str) -> int:
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no stream yet
        return 0
    return sum(int(group.get("entries-read") or 0) for group in groups)


@contextmanager
def consumer(env: dict[str, str], name: str, log_path, **settings: str):
    """``shortener visits work --name NAME``, stopped (SIGTERM) when the block ends."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(SHORTENER), "visits", "work", "--name", name],
            cwd=REPO_ROOT,
            env={**env, **settings},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=DEADLINE_SECONDS)


def test_two_consumers_one_killed_mid_run_every_visit_counted_once(prepared, stream):
    """serve's writer and two `shortener visits work` consumers share the stream; one consumer
    is killed (SIGKILL) while it holds visits it read and never acknowledged: after
    SHORTENER_VISIT_CLAIM_IDLE another takes them over, and N redirects give exactly N
    visits and visit_count = N."""
    env, admin, tmp_path = prepared
    client, key = stream
    env = {**env, "SHORTENER_REDIS_URL": REDIS_URL, "SHORTENER_VISIT_STREAM": key,
           "SHORTENER_VISIT_CLAIM_IDLE": "1"}  # fmt: skip
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "streamed")
        # The victim holds what it reads for 5 s before writing: a wide window to kill it in.
        with (
            consumer(env, "victim", tmp_path / "victim.log", SHORTENER_VISIT_FLUSH_INTERVAL="5")
            as victim,
            consumer(env, "survivor", tmp_path / "survivor.log"),
        ):  # fmt: skip
            wait_until(lambda: {"victim", "survivor"} <= consumers_of(client, key),
                       "both consumers in the group")  # fmt: skip
            answers = burst(link["short_url"], 400)
            wait_until(lambda: pending_of(client, key).get("victim", 0) > 0,
                       "the victim to hold unacknowledged visits")  # fmt: skip
            victim.kill()
            victim.wait(timeout=DEADLINE_SECONDS)
            assert answers == {302: 400}
            assert settled(server.database_url, "streamed", 400) == (400, 400)
            wait_until(lambda: sum(pending_of(client, key).values()) == 0, "no pending visit")
            assert client.xlen(key) == 0  # written entries are deleted, nothing left behind
        assert "took over" in (tmp_path / "survivor.log").read_text() + server.log_tail()
    finally:
        stop(server)
    assert settled(server.database_url, "streamed", 400) == (400, 400)


class Forwarder:
    """A TCP forwarder to Redis on a port of its own: closed until ``open()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):  # the other direction's thread stops too
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()  # each direction's thread closes the socket it reads


def test_redirects_answer_while_redis_is_unreachable_and_no_visit_is_lost(prepared, stream):
    """SHORTENER_REDIS_URL points at a closed port: redirects answer, visits go the local way
    and are all written; once Redis is reachable, visits go through the stream again."""
    env, admin, tmp_path = prepared
    client, key = stream
    parsed = client.connection_pool.connection_kwargs
    forwarder = Forwarder((parsed["host"], parsed["port"]))
    env = {**env, "SHORTENER_REDIS_URL": f"redis://127.0.0.1:{forwarder.port}/{parsed['db']}",
           "SHORTENER_VISIT_STREAM": key}  # fmt: skip
    server = launch(env, admin, tmp_path / "server.log")
    try:
        link = create_link(server, "no-redis")
        assert burst(link["short_url"], 200) == {302: 200}
        assert settled(server.database_url, "no-redis", 200) == (200, 200)
        assert "handing visits over locally" in server.log_path.read_text()

        forwarder.open()
        sent = 200

        def through_the_stream() -> bool:
            nonlocal sent
            assert burst(link["short_url"], 20) == {302: 20}
            sent += 20
            return entries_read(client, key) > 0

        wait_until(through_the_stream, "visits through the stream once Redis is back")
        assert settled(server.database_url, "no-redis", sent) == (sent, sent)
    finally:
        stop(server)
        forwarder.close()
    assert settled(server.database_url, "no-redis", sent) == (sent, sent)


def test_visits_work_refuses_to_start_without_a_stream(prepared):
    env, _, _ = prepared
    completed = subprocess.run(
        [str(SHORTENER), "visits", "work"],
        cwd=REPO_ROOT,
        env={k: v for k, v in env.items() if k != "SHORTENER_REDIS_URL"},
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert completed.returncode == 1
    assert "SHORTENER_REDIS_URL is not set" in completed.stderr


def test_a_consumer_stops_gracefully_on_sigterm(prepared, stream, tmp_path):
    env, _, _ = prepared
    _, key = stream
    env = {**env, "SHORTENER_REDIS_URL": REDIS_URL, "SHORTENER_VISIT_STREAM": key}
    with consumer(env, "polite", tmp_path / "polite.log") as process:
        wait_until(lambda: "started" in (tmp_path / "polite.log").read_text(), "the consumer")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_SECONDS) == 0
    assert "consumer polite stopped" in (tmp_path / "polite.log").read_text()
