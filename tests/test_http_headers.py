"""Headers of API responses: never cached, never sniffed; CORS only when configured."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, make_app
from support import assert_problem

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.settings import ConfigurationError

API = "/api/v1.0"
LINKS = f"{API}/links"
APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://other.example:8443"
EVIL_ORIGIN = "https://evil.example"


@pytest.fixture
def cors_app(database_url):
    """CORS for two origins, written the way an operator might: comma, space, a default port
    and a trailing slash."""
    app = make_app(database_url, CORS_ORIGINS=f"{APP_ORIGIN}:443/, {OTHER_ORIGIN}")
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def any_origin_app(database_url):
    app = make_app(database_url, CORS_ORIGINS="*")
    yield app
    app.extensions["shortener"].close()


def listed(header_value: str) -> set[str]:
    return {item.strip().lower() for item in header_value.split(",")}


def cors_headers(response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def seed_link(client, auth, slug="docs"):
    response = client.post(LINKS, json={"target": "https://example.com/", "slug": slug}, auth=auth)
    assert response.status_code == 201
    return response


# -- no-store and nosniff ---------------------------------------------------------------------


API_REQUESTS = [
    ("root", "GET", f"{API}/", {}, 200),
    ("root-without-slash", "GET", API, {}, 200),
    ("list", "GET", LINKS, {"auth": True}, 200),
    ("one", "GET", f"{LINKS}/docs", {"auth": True}, 200),
    ("create", "POST", LINKS, {"auth": True, "json": {"target": "https://example.org/"}}, 201),
    ("delete", "DELETE", f"{LINKS}/docs", {"auth": True}, 204),
    ("no-credentials", "GET", LINKS, {}, 401),
    ("unknown-link", "GET", f"{LINKS}/nope", {"auth": True}, 404),
    ("unknown-path", "GET", f"{API}/nope", {}, 404),
    ("wrong-method", "DELETE", f"{API}/", {}, 405),
    ("wrong-type", "POST", LINKS, {"auth": True, "data": "x"}, 415),
    ("invalid", "POST", LINKS, {"auth": True, "json": {"target": "javascript:x"}}, 422),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in API_REQUESTS],
)
def test_every_api_response_is_never_cached_nor_sniffed(
    client, admin, method, path, kwargs, status
):
    seed_link(client, admin)
    kwargs = dict(kwargs)
    if kwargs.pop("auth", False):
        kwargs["auth"] = admin
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if status >= 400:
        assert_problem(response, status)


def test_redirects_keep_their_own_cache_control(client, admin):
    seed_link(client, admin)
    response = client.get("/docs")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, max-age=90"


def test_redirect_cache_control_follows_its_setting(database_url):
    app = make_app(database_url, REDIRECT_MAX_AGE=0)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="alice", password=PASSWORD)
        client = app.test_client()
        seed_link(client, ("alice", PASSWORD))
        assert client.get("/docs").headers["Cache-Control"] == "no-store"
    finally:
        app.extensions["shortener"].close()


# -- CORS off by default ----------------------------------------------------------------------


def test_cors_is_off_by_default(client, admin):
    seed_link(client, admin)
    for response in (
        client.get(f"{API}/", headers={"Origin": APP_ORIGIN}),
        client.get(LINKS, auth=admin, headers={"Origin": APP_ORIGIN}),
        client.options(
            LINKS, headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
        ),
    ):
        assert cors_headers(response) == {}


# -- CORS for listed origins ------------------------------------------------------------------


@pytest.mark.parametrize("origin", [APP_ORIGIN, OTHER_ORIGIN])
def test_a_listed_origin_is_echoed_with_credentials(cors_app, origin):
    client = cors_app.test_client()
    response = client.get(f"{API}/", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    exposed = response.headers["Access-Control-Expose-Headers"]
    for header in ("Location", "Link", "Retry-After", "RateLimit-Remaining"):
        assert header in exposed


@pytest.mark.parametrize(
    "origin",
    [
        EVIL_ORIGIN,
        "http://app.example",  # another scheme is another origin
        "https://app.example:8443",  # so is another port
        "https://app.example.evil.example",
        "null",
    ],
)
def test_another_origin_gets_no_cors_headers(cors_app, origin):
    client = cors_app.test_client()
    response = client.get(f"{API}/", headers={"Origin": origin})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "Origin" in response.headers["Vary"]  # caches must not reuse it for another origin


def test_a_preflight_from_a_listed_origin_is_answered(cors_app, row_counts):
    before = row_counts()
    response = cors_app.test_client().options(
        LINKS,
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert {"get", "post"} <= listed(response.headers["Access-Control-Allow-Methods"])
    allowed = listed(response.headers["Access-Control-Allow-Headers"])
    assert {"authorization", "content-type"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers  # no credentials needed for a preflight
    assert row_counts() == before


def test_a_preflight_names_the_methods_of_that_resource(cors_app):
    client = cors_app.test_client()
    preflight = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"}
    root = client.options(f"{API}/", headers=preflight)
    assert "post" not in listed(root.headers["Access-Control-Allow-Methods"])
    one = client.options(f"{LINKS}/docs", headers=preflight)
    assert {"get", "put", "patch", "delete"} <= listed(one.headers["Access-Control-Allow-Methods"])


def test_a_preflight_from_another_origin_is_not_allowed(cors_app):
    response = cors_app.test_client().options(
        LINKS, headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert cors_headers(response) == {}


def test_cors_headers_reach_errors_too(cors_app):
    """A script must be able to read a 401 or a problem, or it cannot tell the user why."""
    client = cors_app.test_client()
    response = client.get(LINKS, headers={"Origin": APP_ORIGIN})
    assert_problem(response, 401)
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


def test_cors_is_only_for_the_api(cors_app):
    response = cors_app.test_client().get("/nope", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 404
    assert cors_headers(response) == {}


# -- CORS for any origin ----------------------------------------------------------------------


@pytest.mark.parametrize("origin", [APP_ORIGIN, EVIL_ORIGIN])
def test_any_origin_never_allows_credentials(any_origin_app, origin):
    client = any_origin_app.test_client()
    response = client.get(f"{API}/", headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    preflight = client.options(
        LINKS, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "authorization" in listed(preflight.headers["Access-Control-Allow-Headers"])


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origins",
    [
        "* https://app.example",  # a wildcard with credentials' origins: refused, not guessed
        "app.example",
        "ftp://app.example",
        "https://app.example/path",
        "https://user@app.example",
        "https://app.example?x=1",
        "https://app.example:99999",
        "https://",
        "true",
    ],
)
def test_unusable_cors_origins_stop_the_start(database_url, origins):
    with pytest.raises(ConfigurationError, match="SHORTENER_CORS_ORIGINS"):
        create_app({"DATABASE_URL": database_url, "CORS_ORIGINS": origins})


def test_cors_origins_from_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("SHORTENER_CORS_ORIGINS", f"{APP_ORIGIN} {OTHER_ORIGIN}")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    try:
        response = app.test_client().get(f"{API}/", headers={"Origin": OTHER_ORIGIN})
        assert response.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN
    finally:
        app.extensions["shortener"].close()
