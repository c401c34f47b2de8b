"""GET /metrics (issue 8): Prometheus text, counters that move with the requests, refused to
addresses outside SHORTENER_METRICS_ALLOW as if it did not exist.

The counts are the process's (the Flask test client runs in it), shared by every app the tests
make, so each test compares a count before and after what it does.
"""

from __future__ import annotations

import pytest
from conftest import make_app
from prometheus_client.parser import text_string_to_metric_families

from shortener import create_app
from shortener.settings import ConfigurationError

LINKS = "/api/v1.0/links"
PROBLEM_JSON = "application/problem+json"


def scrape(client, **request) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: {(name, sorted labels): value}."""
    response = client.get("/metrics", **request)
    assert response.status_code == 200, response.data
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "version=" in response.headers["Content-Type"]
    assert response.headers["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "shortener_http_requests",
        "shortener_http_request_duration_seconds",
        "shortener_redirects",
        "shortener_visits_queued",
        "shortener_visits_written",
        "shortener_visits_dropped",
        "shortener_visit_writer_lag_seconds",
        "shortener_database_errors",
        "shortener_unavailable_responses",
        "shortener_rate_limited",
    } <= names


def test_requests_are_counted_by_route_and_status(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)
    health = {"route": "/health", "status": "200"}
    assert (
        value(after, "shortener_http_requests_total", **health)
        - value(before, "shortener_http_requests_total", **health)
        == 3
    )
    latency = "shortener_http_request_duration_seconds_count"
    assert value(after, latency, route="/health") - value(before, latency, route="/health") == 3
    unmatched = {"route": "(none)", "status": "404"}
    assert (
        value(after, "shortener_http_requests_total", **unmatched)
        - value(before, "shortener_http_requests_total", **unmatched)
        == 1
    )


def test_redirects_are_counted_by_status_and_never_by_slug(client, admin):
    for slug, status in (("metrics-a", 302), ("metrics-b", 301)):
        created = client.post(
            LINKS,
            json={"target": "https://example.com/", "slug": slug, "redirect_status": status},
            auth=admin,
        )
        assert created.status_code == 201, created.data
    before = scrape(client)
    assert client.get("/metrics-a").status_code == 302
    assert client.get("/metrics-a").status_code == 302
    assert client.get("/metrics-b").status_code == 301
    response = client.get("/metrics")
    after = scrape(client)
    assert (
        value(after, "shortener_redirects_total", status="302")
        - value(before, "shortener_redirects_total", status="302")
        == 2
    )
    assert (
        value(after, "shortener_redirects_total", status="301")
        - value(before, "shortener_redirects_total", status="301")
        == 1
    )
    routed = {"route": "/<slug>", "status": "302"}
    assert (
        value(after, "shortener_http_requests_total", **routed)
        - value(before, "shortener_http_requests_total", **routed)
        == 2
    )
    assert "metrics-a" not in response.text and "metrics-b" not in response.text


@pytest.mark.parametrize("address", ["10.0.0.1", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"])
def test_other_addresses_get_404_as_if_there_were_no_metrics(client, address):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    unknown = client.get("/no-such-page/at-all", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert response.json == unknown.json
    assert "shortener_" not in response.text


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_by_default(client, address):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 200


def test_the_allow_list_is_a_setting(database_url):
    app = make_app(database_url, METRICS_ALLOW="10.0.0.0/8, 2001:db8::/32")
    try:
        client = app.test_client()
        for allowed in ("10.1.2.3", "2001:db8::5"):
            assert client.get("/metrics", environ_base={"REMOTE_ADDR": allowed}).status_code == 200
        for refused in ("127.0.0.1", "11.0.0.1"):
            response = client.get("/metrics", environ_base={"REMOTE_ADDR": refused})
            assert response.status_code == 404
    finally:
        app.extensions["shortener"].close()


def test_an_empty_allow_list_allows_no_one(database_url):
    app = make_app(database_url, METRICS_ALLOW="")
    try:
        assert app.test_client().get("/metrics").status_code == 404
    finally:
        app.extensions["shortener"].close()


@pytest.mark.parametrize(
    "allow", ["loopback", "10.0.0.1/8", "127.0.0.0/33", "127.0.0.0/8;::1/128", 42, ["::1"]]
)
def test_bad_allow_lists_are_refused_at_start_up(tmp_path, allow):
    with pytest.raises(ConfigurationError, match="SHORTENER_METRICS_ALLOW"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "METRICS_ALLOW": allow})


def test_rate_limit_refusals_are_counted_by_limit(database_url):
    app = make_app(database_url, NOT_FOUND_LIMIT="1/minute")
    try:
        client = app.test_client()
        before = scrape(client)
        assert client.get("/not-a-link-1").status_code == 404
        assert client.get("/not-a-link-2").status_code == 429
        after = scrape(client)
        limited = "shortener_rate_limited_total"
        assert (
            value(after, limited, limit="not-found") - value(before, limited, limit="not-found")
            == 1
        )
    finally:
        app.extensions["shortener"].close()


def test_database_errors_and_503s_are_counted(tmp_path):
    """A SQLite file that is not there (the server never creates one while it runs)."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'gone.db'}"})
    tmp_path.joinpath("gone.db").unlink(missing_ok=True)
    try:
        client = app.test_client()
        before = scrape(client)
        assert client.get("/health/ready").status_code == 503
        assert client.get("/some-link").status_code == 503
        after = scrape(client)
        errors = "shortener_database_errors_total"
        assert value(after, errors) - value(before, errors) >= 2
        unavailable = "shortener_unavailable_responses_total"
        for route in ("/health/ready", "/<slug>"):
            assert (
                value(after, unavailable, route=route) - value(before, unavailable, route=route)
                == 1
            )
    finally:
        app.extensions["shortener"].close()


def test_visits_queued_and_written_are_counted(app, client, admin):
    """The request workers count what they queue, the writer what it writes (here both run in
    the test's process) and how long the oldest visit of its last batch had waited."""
    created = client.post(
        LINKS, json={"target": "https://example.com/", "slug": "metrics-visits"}, auth=admin
    )
    assert created.status_code == 201, created.data
    before = scrape(client)
    for _ in range(3):
        assert client.get("/metrics-visits").status_code == 302
    assert client.head("/metrics-visits").status_code == 302  # HEAD records no visit
    app.extensions["shortener"].recorder.flush()
    after = scrape(client)
    for name in ("shortener_visits_queued_total", "shortener_visits_written_total"):
        assert value(after, name) - value(before, name) == 3, name
    assert value(after, "shortener_visits_dropped_total") == value(
        before, "shortener_visits_dropped_total"
    )
    assert 0 <= value(after, "shortener_visit_writer_lag_seconds") < 60
