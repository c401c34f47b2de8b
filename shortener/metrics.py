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

import ipaddress
import os
import shutil
import time
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
class CountRequests:
    """WSGI wrapper: every answer counted by route and status, and timed by route."""

    def __init__(self, application: Callable) -> None:
        self.application = application
        self._children: dict[tuple[str, int], tuple[Any, ...]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        statuses: list[str] = []

        def start(status: str, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = self.application(environ, start)
        status = int(statuses[-1][:3]) if statuses else 500
        self.count(environ.get(ROUTE, FAST_PATH_ROUTE), status, time.perf_counter() - started)
        return body

    def count(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:
            children = self._children[(route, status)] = _children(route, status)
        requests, latency, *more = children
        requests.inc()
        latency.observe(seconds)
        for series in more:  # a redirect's, a 503's
            series.inc()


def _children(route: str, status: int) -> tuple[Any, ...]:
    """The labelled series one (route, status) counts into, looked up once."""
    children = [REQUESTS.labels(route, str(status)), LATENCY.labels(route)]
    if route == FAST_PATH_ROUTE and 300 <= status < 400:
        children.append(REDIRECTS.labels(str(status)))
    if status == 503:
        children.append(UNAVAILABLE.labels(route))
    return tuple(children)


def _note_route(response: Response) -> Response:
    """Flask's half: which URL rule answered (the WSGI wrapper cannot see it)."""
    rule = request.url_rule
    request.environ[ROUTE] = rule.rule if rule is not None else NO_ROUTE
    return response


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
