"""Slow clients against a running server, and how fast everyone else is answered meanwhile.

Opens connections from one loopback address (127.0.0.2 by default) that send their request a
byte a second and never finish: headers that never end, or a declared body that trickles
(with or without credentials). A connection the server closes is opened again, so the count
holds for the whole run. Meanwhile requests from 127.0.0.1 (redirects and ``/health``) are
timed one after another. Used by tests/integration/test_slow_clients.py (which asserts every
request was answered) and by ``make bench`` (which reports the p99); neither asserts on time.

Traffic goes only to the loopback address given; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TRICKLE_INTERVAL = 1.0  # seconds between the bytes a slow client sends
DECLARED_BODY = 4096  # bytes a body-trickling client says it will send
REQUEST_TIMEOUT = 10.0  # a timed request not answered by then counts as unanswered
FILES_PER_SLOW_CLIENT = 3  # the client's socket, and room for the test's own


@dataclass(frozen=True)
class SlowKind:
    """How one group of slow clients starts its request, before trickling the rest."""

    name: str
    head: str  # sent at once (format fields: host, path)
    trickled: bytes  # then sent a byte at a time, forever (repeated)


def slow_kinds(slug: str, authorization: str) -> list[SlowKind]:
    """Headers trickled; a body trickled without credentials; a body trickled with them."""
    body_head = (
        "POST /api/v1.0/links HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BODY}\r\n"
    )
    return [
        SlowKind(
            "headers",
            f"GET /{slug} HTTP/1.1\r\nHost: {{host}}\r\nUser-Agent: slow\r\nX-Slow: ",
            b"a",
        ),
        SlowKind("body", body_head + "\r\n", b" "),
        SlowKind(
            "body-with-credentials", body_head + f"Authorization: {authorization}\r\n\r\n", b" "
        ),  # fmt: skip
    ]


@dataclass
class SlowLoad:
    """What the slow clients did: connections opened (first ones and re-openings), bytes."""

    opened: int = 0
    reopened: int = 0
    bytes_sent: int = 0
    failed_connects: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class Timed:
    path: str
    status: int | None  # None: no answer within REQUEST_TIMEOUT (or the connection failed)
    seconds: float


@dataclass
class SlowClientReport:
    slow_clients: int
    slow_address: str
    load: SlowLoad
    timed: list[Timed]

    @property
    def unanswered(self) -> list[Timed]:
        return [request for request in self.timed if request.status is None]

    def p99_ms(self, path_prefix: str = "") -> float:
        seconds = sorted(r.seconds for r in self.timed if r.path.startswith(path_prefix))
        if len(seconds) < 2:
            return seconds[0] * 1000 if seconds else float("nan")
        return statistics.quantiles(seconds, n=100, method="inclusive")[98] * 1000

    def p50_ms(self, path_prefix: str = "") -> float:
        seconds = [r.seconds for r in self.timed if r.path.startswith(path_prefix)]
        return statistics.median(seconds) * 1000 if seconds else float("nan")


def raise_open_files_limit(connections: int) -> None:
    """Room for the slow clients' sockets (and the server's, when it runs as our child)."""
    needed = connections * FILES_PER_SLOW_CLIENT + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def _loopback(address: str) -> str:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"slow clients only go to loopback addresses, not {address}")
    return address


class _Trickler:
    """The slow clients, on an asyncio loop of their own thread."""

    def __init__(self, host: str, port: int, source: str, kinds: Sequence[SlowKind],
                 count: int) -> None:  # fmt: skip
        self.host, self.port, self.source = host, port, source
        self.kinds = kinds
        self.count = count
        self.load = SlowLoad(by_kind={kind.name: 0 for kind in kinds})
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="slow-clients", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connected = [asyncio.Event() for _ in range(self.count)]
        clients = [
            asyncio.create_task(self._client(self.kinds[index % len(self.kinds)], done))
            for index, done in enumerate(connected)
        ]
        await asyncio.wait([asyncio.create_task(event.wait()) for event in connected], timeout=30)
        self.ready.set()
        await self._stop.wait()
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    async def _client(self, kind: SlowKind, connected: asyncio.Event) -> None:
        head = kind.head.format(host=f"{self.host}:{self.port}").encode("latin-1")
        first = True
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0)),
                    timeout=REQUEST_TIMEOUT,
                )
            except (OSError, TimeoutError):
                self.load.failed_connects += 1
                connected.set()
                await asyncio.sleep(TRICKLE_INTERVAL)
                continue
            if first:
                self.load.opened += 1
                self.load.by_kind[kind.name] += 1
                first = False
            else:
                self.load.reopened += 1
            connected.set()
            answer = asyncio.ensure_future(reader.read(65536))  # an answer, or the close
            try:
                writer.write(head)
                self.load.bytes_sent += len(head)
                while not self._stop.is_set():
                    await writer.drain()
                    done, _ = await asyncio.wait({answer}, timeout=TRICKLE_INTERVAL)
                    if done:  # answered or closed by the server: open a new one
                        break
                    writer.write(kind.trickled)
                    self.load.bytes_sent += 1
            except OSError:
                pass
            finally:
                answer.cancel()
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
            await asyncio.sleep(TRICKLE_INTERVAL)  # a slow client, not a flood


def _timed_get(host: str, port: int, path: str) -> Timed:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT,
                                            source_address=("127.0.0.1", 0))  # fmt: skip
    try:
        connection.request("GET", path, headers={"User-Agent": "timed"})
        response = connection.getresponse()
        response.read()
        status: int | None = response.status
    except (OSError, http.client.HTTPException):
        status = None
    finally:
        connection.close()
    return Timed(path, status, time.perf_counter() - started)


def measure(
    base_url: str,
    *,
    slug: str,
    authorization: str,
    slow_clients: int = 500,
    slow_address: str = "127.0.0.2",
    redirects: int = 200,
    health_checks: int = 200,
    spacing: float = 0.02,
    max_seconds: float = 40.0,
) -> SlowClientReport:
    """Holds ``slow_clients`` slow connections from ``slow_address`` while ``redirects`` GETs
    of ``/<slug>`` and ``health_checks`` GETs of ``/health`` are sent from 127.0.0.1, one at a
    time, ``spacing`` seconds apart, for at most ``max_seconds`` (a loaded machine sends fewer:
    the report says how many); then closes them all."""
    parts = urlsplit(base_url)
    host, port = _loopback(parts.hostname), parts.port
    raise_open_files_limit(slow_clients)
    trickler = _Trickler(host, port, _loopback(slow_address),
                         slow_kinds(slug, authorization), slow_clients)  # fmt: skip
    trickler.start()
    timed: list[Timed] = []
    try:
        trickler.ready.wait(timeout=60)
        paths = [f"/{slug}", "/health"]
        counts = {paths[0]: redirects, paths[1]: health_checks}
        order = [path for round_ in range(max(counts.values())) for path in paths
                 if round_ < counts[path]]  # fmt: skip
        deadline = time.monotonic() + max_seconds
        for path in order:
            if time.monotonic() > deadline:
                break
            timed.append(_timed_get(host, port, path))
            time.sleep(spacing)
    finally:
        trickler.stop()
    return SlowClientReport(slow_clients, slow_address, trickler.load, timed)
