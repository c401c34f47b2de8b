"""Rate limits: per credential on the API, failed authentications and unknown slugs per address.

Counts live in Flask-Limiter's storage: ``memory://`` (one count per worker) and, when a Redis
answers at SHORTENER_TEST_REDIS_URL (default redis://127.0.0.1:6379/11), ``redis://`` too,
shared by every worker. Keys in a shared Redis outlive a test by up to a minute, so every test
that counts uses addresses and passwords of its own.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import socket
import time

import pytest
import redis
from conftest import PASSWORD, make_app
from sqlalchemy import text
from support import assert_problem
from werkzeug.exceptions import TooManyRequests

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.settings import ConfigurationError

API = "/api/v1.0"
LINKS = f"{API}/links"
REDIS_URL = os.environ.get("SHORTENER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def _redis_answers() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        with client:
            return bool(client.ping())
    except redis.RedisError:
        return False


STORAGES = ["memory://"] + ([REDIS_URL] if _redis_answers() else [])


@pytest.fixture(params=STORAGES, ids=lambda uri: uri.partition(":")[0])
def storage_uri(request) -> str:
    return request.param


@pytest.fixture
def make_limited_app(database_url):
    """``make(**config)`` -> an app on the test database; several are several workers."""
    apps = []

    def make(**config):
        app = make_app(database_url, **config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["shortener"].close()


def new_user(app, username: str, *, admin: bool = False) -> tuple[str, str]:
    """A user whose password (and so whose credential's count) no earlier run has used."""
    password = f"{PASSWORD} {secrets.token_hex(8)}"
    app.extensions["shortener"].users.create(
        OPERATOR, username=username, password=password, is_admin=admin
    )
    return (username, password)


def new_address() -> str:
    """A client address of this test alone (TEST-NET-2 is never routed)."""
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def seed_docs(client, auth) -> str:
    """Creates /docs; returns its target."""
    target = "https://example.com/docs"
    response = client.post(LINKS, json={"target": target, "slug": "docs"}, auth=auth)
    assert response.status_code == 201
    return target


def count_links(app) -> int:
    with app.extensions["shortener"].database.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM links")).scalar_one()


def assert_too_many(response, limit: int, *, window: int = 60) -> dict:
    """A 429 problem that says when to come back, in seconds, and which limit it hit."""
    body = assert_problem(response, 429)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(response.headers["RateLimit-Reset"]) <= retry_after
    return body


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- RateLimit headers ------------------------------------------------------------------------


def test_api_responses_carry_ratelimit_headers(make_limited_app):
    app = make_limited_app()
    alice = new_user(app, "alice")
    client = client_at(app, new_address())
    first = client.get(LINKS, auth=alice)
    second = client.post(LINKS, json={"target": "https://example.com/"}, auth=alice)
    assert (first.status_code, second.status_code) == (200, 201)
    for response, remaining in ((first, 599), (second, 598)):
        assert response.headers["RateLimit-Limit"] == "600"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        assert "Retry-After" not in response.headers


def test_the_root_is_neither_counted_nor_labelled(make_limited_app):
    app = make_limited_app(API_RATE_LIMIT="3/minute")
    alice = new_user(app, "alice")
    client = client_at(app, new_address())
    for path in (f"{API}/", API):
        for _ in range(3):
            response = client.get(path, auth=alice)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
    remaining = [client.get(LINKS, auth=alice).headers["RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]


# -- per credential ---------------------------------------------------------------------------


def test_a_credential_over_its_limit_gets_429_and_changes_nothing(make_limited_app, storage_uri):
    app = make_limited_app(API_RATE_LIMIT="3/minute", RATELIMIT_STORAGE_URI=storage_uri)
    alice, bob = new_user(app, "alice"), new_user(app, "bob")
    client = client_at(app, new_address())
    for _ in range(3):
        assert client.get(LINKS, auth=alice).status_code == 200

    refused = client.get(LINKS, auth=alice)
    body = assert_too_many(refused, 3)
    assert body["type"] == "about:blank" and body["title"] == "Too Many Requests"
    assert refused.headers["Cache-Control"] == "no-store"
    assert "credentials" in body["detail"]
    before = count_links(app)
    create = client.post(LINKS, json={"target": "https://example.com/"}, auth=alice)
    assert_too_many(create, 3)
    assert count_links(app) == before
    # The count is the credential's, wherever it comes from; other credentials have their own.
    assert_too_many(client_at(app, new_address()).get(LINKS, auth=alice), 3)
    assert client.get(LINKS, auth=bob).status_code == 200


def test_without_credentials_the_address_is_counted(make_limited_app):
    app = make_limited_app(API_RATE_LIMIT="3/minute", AUTH_FAIL_LIMIT="100/minute")
    alice = new_user(app, "alice")
    address = new_address()
    client = client_at(app, address)
    for _ in range(3):
        assert_problem(client.get(LINKS), 401)
    body = assert_too_many(client.get(LINKS), 3)
    assert "address" in body["detail"]
    assert_problem(client_at(app, new_address()).get(LINKS), 401)  # another address
    assert client.get(LINKS, auth=alice).status_code == 200  # a credential has its own count


# -- failed authentications -------------------------------------------------------------------


def _basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


FAILED_AUTHENTICATIONS = [
    {"auth": ("alice", "wrong password")},
    {"auth": ("nobody", PASSWORD)},
    {},
    {"headers": {"Authorization": "Basic !!!"}},
    {"headers": _basic("no colon")},
    {"headers": {"Authorization": "Bearer not-a-token"}},
    {"headers": {"Authorization": "Digest username=alice"}},
    {"auth": ("alice", "")},
    {"auth": ("", "")},
    {"auth": ("alice", "wrong again")},
]


def test_failed_authentications_block_the_address(make_limited_app, storage_uri):
    """Ten 401s (the default), of every kind; then every /api/ request from that address is
    refused, even with good credentials, while another address is served."""
    app = make_limited_app(RATELIMIT_STORAGE_URI=storage_uri)
    alice = new_user(app, "alice")
    attacker = client_at(app, new_address())
    seed_docs(attacker, alice)
    before = count_links(app)

    for kwargs in FAILED_AUTHENTICATIONS:
        assert_problem(attacker.get(LINKS, **kwargs), 401)

    body = assert_too_many(attacker.get(LINKS, auth=alice), 10)
    assert "failed authentications" in body["detail"]
    assert_too_many(attacker.get(f"{API}/"), 10)
    create = attacker.post(LINKS, json={"target": "https://example.org/"}, auth=alice)
    assert_too_many(create, 10)
    assert count_links(app) == before
    assert attacker.get("/docs").status_code == 302  # redirects are not the API

    legitimate = client_at(app, new_address())
    assert legitimate.get(LINKS, auth=alice).status_code == 200


def test_only_failed_authentications_count(make_limited_app):
    app = make_limited_app(AUTH_FAIL_LIMIT="3/minute")
    alice = new_user(app, "alice")
    client = client_at(app, new_address())
    for _ in range(5):
        assert client.get(LINKS, auth=alice).status_code == 200
        assert_problem(client.get(f"{LINKS}/nope", auth=alice), 404)
        assert_problem(client.post(LINKS, json={"target": "ftp://x"}, auth=alice), 422)
        assert client.get(f"{API}/").status_code == 200
    for _ in range(3):
        assert_problem(client.get(LINKS, auth=("alice", "wrong")), 401)
    assert_too_many(client.get(LINKS, auth=alice), 3)


def test_the_block_ends_with_its_window(make_limited_app):
    app = make_limited_app(AUTH_FAIL_LIMIT="2/second")
    alice = new_user(app, "alice")
    client = client_at(app, new_address())
    for _ in range(2):
        assert_problem(client.get(LINKS, auth=("alice", "wrong")), 401)
    refused = client.get(LINKS, auth=alice)
    assert_too_many(refused, 2, window=1)
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)
    assert client.get(LINKS, auth=alice).status_code == 200


# -- client addresses and proxies -------------------------------------------------------------


def _spoofed(number: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{number}", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("limit", ["API_RATE_LIMIT", "AUTH_FAIL_LIMIT"])
def test_forwarded_for_changes_no_key_without_trusted_proxies(make_limited_app, limit):
    """SHORTENER_TRUSTED_PROXIES=0 (the default): a client cannot pick its own address."""
    config = {"API_RATE_LIMIT": "100/minute", "AUTH_FAIL_LIMIT": "100/minute", limit: "3/minute"}
    app = make_limited_app(**config)
    client = client_at(app, new_address())
    for number in range(3):
        assert_problem(client.get(LINKS, headers=_spoofed(number)), 401)
    assert_too_many(client.get(LINKS, headers=_spoofed(99)), 3)


def test_behind_a_trusted_proxy_each_client_has_its_own_count(make_limited_app):
    app = make_limited_app(TRUSTED_PROXIES=1, AUTH_FAIL_LIMIT="2/minute")
    alice = new_user(app, "alice")
    proxy = client_at(app, new_address())
    attacker, other = new_address(), new_address()
    for _ in range(2):
        response = proxy.get(LINKS, auth=("alice", "x"), headers={"X-Forwarded-For": attacker})
        assert_problem(response, 401)
    assert_too_many(proxy.get(LINKS, auth=alice, headers={"X-Forwarded-For": attacker}), 2)
    assert proxy.get(LINKS, auth=alice, headers={"X-Forwarded-For": other}).status_code == 200


# -- unknown slugs ----------------------------------------------------------------------------


def test_unknown_slugs_are_limited_per_address(make_limited_app, storage_uri):
    """60 404s a minute (the default), GET and HEAD alike; then 429 for further unknown slugs
    only: a link that exists still redirects, and other addresses still get their 404."""
    app = make_limited_app(RATELIMIT_STORAGE_URI=storage_uri)
    alice = new_user(app, "alice")
    prober = client_at(app, new_address())
    target = seed_docs(prober, alice)

    for number in range(60):
        response = (prober.get if number % 2 else prober.head)(f"/probe{number}")
        assert response.status_code == 404
    refused = prober.get("/probe60")
    body = assert_too_many(refused, 60)
    assert "unknown short links" in body["detail"]
    assert prober.head("/probe61").status_code == 429

    found = prober.get("/docs")
    assert found.status_code == 302
    assert found.headers["Location"] == target
    assert_problem(client_at(app, new_address()).get("/probe60"), 404)


def test_found_redirects_do_not_count(make_limited_app):
    app = make_limited_app(NOT_FOUND_LIMIT="3/minute")
    alice = new_user(app, "alice")
    client = client_at(app, new_address())
    seed_docs(client, alice)
    for _ in range(30):
        assert client.get("/docs").status_code == 302
        assert client.head("/docs").status_code == 302
    for _ in range(3):
        assert_problem(client.get("/nope"), 404)
    assert_too_many(client.get("/nope"), 3)


def test_a_browser_over_the_limit_gets_a_page(make_limited_app):
    app = make_limited_app(NOT_FOUND_LIMIT="1/minute")
    client = client_at(app, new_address())
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    assert client.get("/nope", headers=browser).status_code == 404
    refused = client.get("/nope", headers=browser)
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Traceback" not in refused.get_data(as_text=True)


# -- the storage ------------------------------------------------------------------------------


@pytest.fixture
def dead_storage_app(make_limited_app):
    """An app whose rate-limit storage is a Redis that is not there (a closed port), with a
    link seeded through another app on the same database."""
    seeder = make_limited_app()
    alice = new_user(seeder, "alice")
    seed_docs(seeder.test_client(), alice)
    app = make_limited_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}/0")
    return app, alice


def _storage_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rate-limit storage" in r.getMessage()]


def test_found_redirects_never_call_the_limiter_storage(dead_storage_app, caplog):
    """Measured, not assumed: any call to this storage fails and is logged. Found redirects log
    nothing; the first unknown slug does (and still gets its 404)."""
    app, _ = dead_storage_app
    client = client_at(app, new_address())
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            assert client.get("/docs").status_code == 302
            assert client.head("/docs").status_code == 302
        assert _storage_warnings(caplog) == []
        assert_problem(client.get("/nope"), 404)
        assert len(_storage_warnings(caplog)) == 1


def test_without_its_storage_the_api_is_served_unlimited(dead_storage_app, caplog):
    """An outage of the limiter is not an outage of the shortener; it is logged, not per
    request."""
    app, alice = dead_storage_app
    client = client_at(app, new_address())
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            response = client.get(LINKS, auth=alice)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
        for _ in range(12):
            assert_problem(client.get(LINKS, auth=("alice", "wrong")), 401)
        assert client.get(LINKS, auth=alice).status_code == 200
    assert len(_storage_warnings(caplog)) == 1


def test_workers_share_counts_through_redis_not_through_memory(make_limited_app, storage_uri):
    """Two apps are two workers: with Redis one credential has one count everywhere; with
    memory:// each worker counts for itself."""
    config = {"API_RATE_LIMIT": "4/minute", "RATELIMIT_STORAGE_URI": storage_uri}
    first, second = make_limited_app(**config), make_limited_app(**config)
    alice = new_user(first, "alice")
    address = new_address()
    for worker in (first, second, first, second):
        assert client_at(worker, address).get(LINKS, auth=alice).status_code == 200
    fifth = client_at(second, address).get(LINKS, auth=alice)
    if not storage_uri.startswith("redis"):
        assert fifth.status_code == 200
        assert fifth.headers["RateLimit-Remaining"] == "1"
        return
    assert_too_many(fifth, 4)
    # What Redis holds is the user's id (the authenticated identity), never the credential.
    header = "Basic " + base64.b64encode(f"{alice[0]}:{alice[1]}".encode()).decode()
    with redis.Redis.from_url(storage_uri) as store:
        keys = [key.decode() for key in store.scan_iter("*LIMITER/shortener/*")]
    user_id = first.extensions["shortener"].users.get(OPERATOR, alice[0]).id
    assert any(f"/shortener/api/user:{user_id}:" in key for key in keys), keys
    secret_forms = (alice[1], header.split()[1], header.split()[1].rstrip("="))
    assert not any(secret in key for key in keys for secret in secret_forms)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_RATE_LIMIT", "600"),
        ("API_RATE_LIMIT", "0/minute"),
        ("API_RATE_LIMIT", "10/second;600/minute"),
        ("API_RATE_LIMIT", 600),
        ("AUTH_FAIL_LIMIT", "ten per minute"),
        ("AUTH_FAIL_LIMIT", ""),
        ("NOT_FOUND_LIMIT", "60/fortnight"),
        ("NOT_FOUND_LIMIT", None),
        ("RATELIMIT_STORAGE_URI", "memory"),
        ("RATELIMIT_STORAGE_URI", "postgresql://127.0.0.1/x"),
        ("RATELIMIT_STORAGE_URI", "async+redis://127.0.0.1:6379"),
        ("LOCK_TIMEOUT_MS", 0),
        ("LOCK_TIMEOUT_MS", "soon"),
    ],
)
def test_unusable_limit_settings_stop_the_start(database_url, name, value):
    with pytest.raises(ConfigurationError, match=f"SHORTENER_{name}"):
        create_app({"DATABASE_URL": database_url, name: value})


def test_limits_from_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("SHORTENER_API_RATE_LIMIT", "2 per minute")
    app = make_app(database_url)
    try:
        alice = new_user(app, "alice")
        client = client_at(app, new_address())
        assert [client.get(LINKS, auth=alice).status_code for _ in range(3)] == [200, 200, 429]
    finally:
        app.extensions["shortener"].close()


def test_a_429_raised_anywhere_is_a_problem_that_keeps_retry_after(make_limited_app):
    """Werkzeug's TooManyRequests (Flask-Limiter's RateLimitExceeded is one) goes through the
    one renderer too, keeping its Retry-After."""
    app = make_limited_app()

    def refuse():
        raise TooManyRequests(retry_after=7)

    app.add_url_rule(f"{API}/refuse", "refuse", refuse)
    response = app.test_client().get(f"{API}/refuse")
    body = assert_problem(response, 429)
    assert response.headers["Retry-After"] == "7"
    assert "Retry-After" in body["detail"]
    assert response.headers["Cache-Control"] == "no-store"
