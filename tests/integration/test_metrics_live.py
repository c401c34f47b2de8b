"""GET /metrics against ``shortener serve`` (2 workers): one scrape adds up every worker's
counts (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import re
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

TIMEOUT = 30
REQUESTS = 60
# Each process hands its counts to the shared files once a second (shortener/metrics.py).
DEADLINE_SECONDS = 10
_SERVED_BY = re.compile(r'^<(\d+)> \S+ "GET /health HTTP')


def health_count(server) -> float:
    response = requests.get(server.url + "/metrics", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "shortener_http_requests_total" and sample.labels == {
                "route": "/health",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_one_scrape_adds_up_both_workers(live_server):
    before = health_count(live_server)
    log_offset = live_server.log_size()
    for _ in range(REQUESTS):  # a new connection each: the workers take turns accepting
        assert requests.get(live_server.url + "/health", timeout=TIMEOUT).status_code == 200
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (after := health_count(live_server)) - before < REQUESTS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    served_by = {
        int(match.group(1))
        for line in live_server.log_since(log_offset).splitlines()
        if (match := _SERVED_BY.match(line))
    }
    assert len(served_by) == 2, "both workers should have answered some"
    assert after - before == REQUESTS


def test_loopback_clients_may_scrape_by_default(live_server):
    """Other addresses cannot be reached here: tests/test_metrics.py refuses them."""
    response = requests.get(live_server.url + "/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "shortener_http_requests_total" in response.text
