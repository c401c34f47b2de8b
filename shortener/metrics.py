"""Prometheus metrics: what they count, how they are counted, and ``GET /metrics``.

``shortener serve`` runs several processes (gunicorn workers, the visit writer), so counts
live in prometheus-client's multiprocess mode: each process writes its own files under
``PROMETHEUS_MULTIPROC_DIR`` (made fresh by ``prepare_multiprocess_dir`` at start-up) and a
scrape adds them up. Without that variable when this module is first imported (tests, a single
process) the default registry of the process is used.

Requests are counted by a WSGI wrapper around everything the app answers, the redirect's fast
path included; its labels are the URL rule (``/<slug>``, never the slug itself, so label
values stay few) and the status. Other parts of the code count their own events with the
objects below (``VISITS_QUEUED.inc()``).

``/metrics`` answers only addresses in ``SHORTENER_METRICS_ALLOW``; to anyone else it does not
exist (404).
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import os
import re
import shutil
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

from .declarations import PUBLIC, described

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Decided once, as prometheus-client decides where values live when it is imported.
_MULTIPROCESS = bool(os.environ.get(MULTIPROCESS_DIR))
# The environ key where Flask leaves the URL rule it matched, for the WSGI wrapper.
ROUTE = "shortener.route"
NO_ROUTE = "(none)"  # Flask matched no rule: an unknown path, a 404 or 405
# Requests that never reach Flask: only the redirect's fast path answers those.
FAST_PATH_ROUTE = "/<slug>"

REQUESTS = Counter(
    "shortener_http_requests",
    "HTTP requests answered, by route (the URL rule, e.g. /<slug>) and status.",
    ["route", "status"],
)
LATENCY = Histogram(
    "shortener_http_request_duration_seconds",
    "Time from a request reaching the app to its answer being ready, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REDIRECTS = Counter(
    "shortener_redirects", "Short links followed (GET and HEAD), by redirect status.", ["status"]
)
UNAVAILABLE = Counter(
    "shortener_unavailable_responses", "503 answers (the database could not answer), by route.",
    ["route"],
)  # fmt: skip
DATABASE_ERRORS = Counter(
    "shortener_database_errors",
    "Times the database could not be reached, did not answer or stayed locked, in any process "
    "(each becomes a 503, or a write retried later).",
)
RATE_LIMITED = Counter(
    "shortener_rate_limited",
    "429 answers, by the limit that refused: api, auth-fail or not-found.",
    ["limit"],
)
VISITS_QUEUED = Counter(
    "shortener_visits_queued", "Visits recorded by the request workers, to be written."
)
VISITS_WRITTEN = Counter("shortener_visits_written", "Visits written to the database.")
VISITS_DROPPED = Counter(
    "shortener_visits_dropped",
    "Visits dropped unwritten: a backlog over its bound, or a visit the database refuses.",
)
WRITER_LAG = Gauge(
    "shortener_visit_writer_lag_seconds",
    "How long the oldest visit not yet written had waited, at the visit writer's last round.",
    multiprocess_mode="livemax",
)

blueprint = Blueprint("metrics", __name__)


# -- counting requests ----------------------------------------------------------------------
# In multiprocess mode every inc() or observe() writes a file under a lock (measured here:
# ~6 us each, four a redirect: more than a third of the redirect's own time). So requests are
# counted in plain Python and handed to prometheus-client once a second (FLUSH_SECONDS), by a
# background thread of each process, and by a scrape before it collects.
FLUSH_SECONDS = 1.0
_BOUNDS = LATENCY._upper_bounds  # noqa: SLF001 - the buckets as prometheus-client keeps them


class Deferred:
    """A counter series counted in this process and flushed with the request counts: for
    the hot path (``VISITS_QUEUED_SOON.inc()``)."""

    def __init__(self, series: Any) -> None:
        self.series = series
        self.pending = 0
        _deferred.append(self)

    def inc(self, amount: int = 1) -> None:
        self.pending += amount
        _flusher.ensure_running()

    def flush(self) -> None:
        amount, self.pending = self.pending, 0
        if amount:
            self.series.inc(amount)


class _RouteCounts:
    """One (route, status)'s requests, latency histogram and extra counters, not flushed yet."""

    __slots__ = ("buckets", "count", "extras", "latency", "requests", "seconds")

    def __init__(self, route: str, status: int) -> None:
        self.requests = REQUESTS.labels(route, str(status))
        self.latency = LATENCY.labels(route)
        self.extras = []
        if route == FAST_PATH_ROUTE and 300 <= status < 400:
            self.extras.append(REDIRECTS.labels(str(status)))
        if status == 503:
            self.extras.append(UNAVAILABLE.labels(route))
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(_BOUNDS)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        self.buckets[bisect_left(_BOUNDS, seconds)] += 1  # the first bound >= seconds

    def flush(self) -> None:
        count, self.count = self.count, 0
        if not count:
            return
        seconds, self.seconds = self.seconds, 0.0
        buckets, self.buckets = self.buckets, [0] * len(_BOUNDS)
        self.requests.inc(count)
        # What Histogram.observe does, a bucket at a time rather than a request at a time.
        self.latency._sum.inc(seconds)  # noqa: SLF001
        for index, amount in enumerate(buckets):
            if amount:
                self.latency._buckets[index].inc(amount)  # noqa: SLF001
        for series in self.extras:
            series.inc(count)


class _Flusher:
    """Hands what this process counted to prometheus-client every FLUSH_SECONDS (a daemon
    thread, a greenlet under gevent), and at exit."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
            atexit.register(flush)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            flush()


_deferred: list[Deferred] = []
_routes: dict[tuple[str, int], _RouteCounts] = {}
_flusher = _Flusher()


def flush() -> None:
    """Everything this process counted so far, into prometheus-client's values."""
    for counts in list(_routes.values()):
        counts.flush()
    for deferred in _deferred:
        deferred.flush()


class CountRequests:
    """WSGI wrapper: every answer counted by route and status, and timed by route."""

    def __init__(self, application: Callable) -> None:
        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        statuses: list[str] = []

        def start(status: str, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = self.application(environ, start)
        status = int(statuses[-1][:3]) if statuses else 500
        count(environ.get(ROUTE, FAST_PATH_ROUTE), status, time.perf_counter() - started)
        return body


def count(route: str, status: int, seconds: float) -> None:
    """One answer: counted now, handed to prometheus-client within FLUSH_SECONDS."""
    counts = _routes.get((route, status))
    if counts is None:
        counts = _routes.setdefault((route, status), _RouteCounts(route, status))
        _flusher.ensure_running()
    counts.add(seconds)


VISITS_QUEUED_SOON = Deferred(VISITS_QUEUED)


def _note_route(response: Response) -> Response:
    """Flask's half: which URL rule answered (the WSGI wrapper cannot see it)."""
    rule = request.url_rule
    request.environ[ROUTE] = _route_label(rule.rule) if rule is not None else NO_ROUTE
    return response


@functools.cache
def _route_label(rule: str) -> str:
    """The rule without converter names: ``/<slug>``, not ``/<slug:slug>``."""
    return _CONVERTER.sub(r"<\1>", rule)


_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^:<>]+)>")


# -- /metrics -------------------------------------------------------------------------------
@blueprint.get("/metrics")
@described("GET", "getMetrics", "Prometheus metrics of every process (allowed addresses only)",
           description="In the Prometheus text format. Addresses outside "
           "SHORTENER_METRICS_ALLOW (default: loopback) get 404, as if it did not exist.",
           scope=PUBLIC, errors=(404,), content_type="text/plain",
           tags=("metrics",))  # fmt: skip
def scrape() -> Response:
    allowed = current_app.extensions["shortener.settings"].metrics_allow
    if not is_allowed(request.remote_addr, allowed):
        abort(404)
    flush()  # this worker's latest; the others' are at most FLUSH_SECONDS old
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(
        encode(registry()),
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def registry() -> CollectorRegistry:
    """Every process's counts under ``shortener serve``; this process's otherwise."""
    if not _MULTIPROCESS:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected


def is_allowed(address: str | None, networks: Iterable[ipaddress._BaseNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's IPv4 client
    return any(ip in network for network in networks)


# -- processes -------------------------------------------------------------------------------
def prepare_multiprocess_dir(instance_path: str) -> Path:
    """An empty directory for this server's counts, ``<instance>/metrics/<pid>`` (the pid is
    gunicorn's master's: ``shortener serve`` execs it). Directories of servers that are no
    longer running are removed."""
    parent = Path(instance_path) / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        if old.name.isdigit() and not _running(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    directory = parent / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    return directory


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def process_ended(pid: int) -> None:
    """gunicorn's ``child_exit``: a dead worker's live gauges stop counting."""
    if _MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.after_request(_note_route)


def install(app: Flask) -> None:
    """Wraps the app's whole WSGI (the fast redirect included), inside ProxyFix."""
    app.wsgi_app = CountRequests(app.wsgi_app)
