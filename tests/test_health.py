"""GET /health (liveness) and GET /health/ready (readiness): public, cheap, never cached."""

from __future__ import annotations

import pytest
from conftest import make_app
from support import JSON_HEADERS, assert_problem

from shortener import create_app

# Nothing listens on port 1: a database that cannot be reached, without a mock.
UNREACHABLE_DATABASE = "postgresql+psycopg://shortener@127.0.0.1:1/shortener?connect_timeout=2"


def assert_never_cached(response) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def unreachable_app():
    app = create_app({"TESTING": True, "DATABASE_URL": UNREACHABLE_DATABASE})
    yield app
    app.extensions["shortener"].close()


def test_liveness_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}
    assert_never_cached(response)


def test_readiness_answers_ready_when_the_database_answers(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ready"}
    assert_never_cached(response)


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_head_answers_like_get_without_a_body(client, path):
    response = client.head(path)
    assert response.status_code == 200
    assert response.get_data() == b""
    assert_never_cached(response)


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_public_even_with_wrong_credentials(client, path):
    """A load balancer sends none; credentials that fail are not even looked at."""
    response = client.get(path, auth=("nobody", "wrong password"))
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_not_allowed(client, row_counts, path, method):
    before = row_counts()
    response = client.open(path, method=method, data="{}", headers=JSON_HEADERS)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_never_rate_limited(database_url, path):
    """Probes every few seconds from one address must never be refused."""
    app = make_app(database_url, API_RATE_LIMIT="2/minute", NOT_FOUND_LIMIT="2/minute")
    try:
        client = app.test_client()
        for _ in range(10):
            response = client.get(path)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
    finally:
        app.extensions["shortener"].close()


def test_health_cannot_be_taken_as_a_slug(client, admin, row_counts):
    before = row_counts()
    response = client.post(
        "/api/v1.0/links", json={"target": "https://example.com/", "slug": "health"}, auth=admin
    )
    assert_problem(response, 422, field="slug")
    assert row_counts() == before
    assert client.get("/health").get_json() == {"status": "ok"}


def test_liveness_needs_no_database(unreachable_app):
    response = unreachable_app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("accept", [None, "application/json", "text/html"])
def test_readiness_is_a_retryable_problem_without_the_database(unreachable_app, accept):
    """503 with Retry-After, so a load balancer takes the worker out and tries again."""
    headers = {"Accept": accept} if accept else {}
    response = unreachable_app.test_client().get("/health/ready", headers=headers)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert_never_cached(response)
    if accept == "text/html":  # a person looking at it in a browser
        assert response.mimetype == "text/html"
        return
    body = assert_problem(response, 503)
    assert body["type"].endswith("/problems/unavailable")
    assert "127.0.0.1" not in response.get_data(as_text=True)  # no connection details
