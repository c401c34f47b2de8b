"""One error format everywhere: every failure, from a Resource, a plain view or Werkzeug's
routing, answers RFC 9457 problem+json, as configured for tests and as deployed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from support import JSON_HEADERS, assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.links import LinkFields
from shortener.storage import DatabaseUnavailable

PASSWORD = "errors-test-password"
ADMIN = ("admin", PASSWORD)
ALICE = ("alice", PASSWORD)
WRONG = ("admin", "not-the-password")
SECRET = "secret-internal-detail-1234"
PROBLEM_BASE = "http://localhost/problems/"
MAX_BODY = 64 * 1024


@pytest.fixture(params=["app", "production_app"])
def any_app(request, database_url):
    """The app as the other tests see it, and as deployed (PROPAGATE_EXCEPTIONS off).

    ``database_url`` is named here so pytest parametrizes the backend for both."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def seeded_app(any_app):
    """An admin, a regular user, and the admin's link ``taken``; made through the services so
    no request has been served yet (a test may still add a URL rule)."""
    services = any_app.extensions["shortener"]
    admin = services.users.create(OPERATOR, username="admin", password=PASSWORD, is_admin=True)
    services.users.create(OPERATOR, username="alice", password=PASSWORD)
    services.links.create(admin, LinkFields("https://example.com/taken"), slug="taken")
    return any_app


def stored_rows(app) -> dict[str, int]:
    with app.extensions["shortener"].database.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("users", "links")
        }


def check_problem(client, response, status: int, *, field: str | None = None) -> dict:
    """A complete problem: type, title, status, detail, and a type that dereferences."""
    body = assert_problem(response, status, field=field)
    assert isinstance(body.get("detail"), str) and body["detail"], body
    problem_type = body["type"]
    if problem_type != "about:blank":
        assert problem_type.startswith(PROBLEM_BASE), problem_type
        described = client.get(urlsplit(problem_type).path)
        assert described.status_code == 200
        assert described.mimetype == "application/json"
        description = described.get_json()
        assert description["type"] == problem_type
        assert description["status"] == status
        assert description["title"] == body["title"]
    return body


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    auth: tuple[str, str] | None = ADMIN
    request: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # the /problems/<name>, or None for about:blank
    field: str | None = None  # a key expected in "errors"
    allow: frozenset[str] = frozenset()  # methods the Allow header must list

    @property
    def under_api(self) -> bool:
        return self.path.startswith("/api/")


LINKS = "/api/v1.0/links"
CASES = [
    Case(
        "malformed-json",
        "POST",
        LINKS,
        400,
        request={"data": '{"target": ', "headers": JSON_HEADERS},
        problem="malformed-body",
    ),
    Case(
        "json-duplicate-key",
        "POST",
        LINKS,
        400,
        request={
            "data": '{"target": "https://a.example/", "target": "https://b.example/"}',
            "headers": JSON_HEADERS,
        },
        problem="malformed-body",
    ),
    Case(
        "invalid-utf8",
        "POST",
        LINKS,
        400,
        request={"data": b'{"target": "\xff"}', "headers": JSON_HEADERS},
        problem="malformed-body",
    ),
    Case("limit-zero", "GET", LINKS + "?limit=0", 400, problem="invalid-parameter", field="limit"),
    Case(
        "limit-not-number",
        "GET",
        LINKS + "?limit=ten",
        400,
        problem="invalid-parameter",
        field="limit",
    ),
    Case(
        "unknown-query-parameter",
        "GET",
        LINKS + "?colour=red",
        400,
        problem="invalid-parameter",
        field="colour",
    ),
    Case("no-credentials", "GET", LINKS, 401, auth=None),
    Case("wrong-password", "GET", LINKS, 401, auth=WRONG),
    Case("no-credentials-on-post", "POST", LINKS, 401, auth=None, request={"json": {}}),
    Case("user-list-needs-admin", "GET", "/api/v1.0/users", 403, auth=ALICE, problem="forbidden"),
    Case(
        "user-create-needs-admin",
        "POST",
        "/api/v1.0/users",
        403,
        auth=ALICE,
        request={"json": {"username": "mallory", "password": "long-enough-pw"}},
        problem="forbidden",
    ),
    Case("unknown-api-path", "GET", "/api/v1.0/nothing-here", 404, auth=None),
    Case("unknown-api-version", "GET", "/api/v2/links", 404, auth=None),
    Case("unknown-api-deep-path", "GET", LINKS + "/taken/clicks", 404),
    Case("unknown-link", "GET", LINKS + "/no-such-link", 404, problem="not-found"),
    Case("another-users-link", "GET", LINKS + "/taken", 404, auth=ALICE, problem="not-found"),
    Case("unknown-slug", "GET", "/no-such-slug", 404, auth=None, problem="not-found"),
    Case(
        "method-on-collection",
        "DELETE",
        LINKS,
        405,
        allow=frozenset({"GET", "POST"}),
    ),
    Case("method-on-root", "POST", "/api/v1.0/", 405, auth=None, allow=frozenset({"GET"})),
    Case(
        "method-on-redirect",
        "PUT",
        "/taken",
        405,
        auth=None,
        allow=frozenset({"GET", "HEAD"}),
    ),
    Case(
        "method-on-unknown-slug",
        "PUT",  # POST /<slug> is the password form's (404 for an unknown slug)
        "/no-such-slug",
        405,
        auth=None,
        allow=frozenset({"GET", "HEAD"}),
    ),
    Case(
        "slug-taken",
        "POST",
        LINKS,
        409,
        request={"json": {"target": "https://example.org/", "slug": "taken"}},
        problem="slug-taken",
    ),
    Case(
        "body-too-large",
        "POST",
        LINKS,
        413,
        request={
            "data": '{"target": "https://example.org/", "title": "' + "x" * MAX_BODY + '"}',
            "headers": JSON_HEADERS,
        },
    ),
    Case(
        "body-not-json",
        "POST",
        LINKS,
        415,
        request={"data": "target=https://example.org/", "headers": {"Content-Type": "text/plain"}},
        problem="unsupported-media-type",
    ),
    Case(
        "form-body",
        "POST",
        LINKS,
        415,
        request={"data": {"target": "https://example.org/"}},
        problem="unsupported-media-type",
    ),
    Case(
        "body-without-content-type",
        "PATCH",
        LINKS + "/taken",
        415,
        request={"data": '{"title": "x"}'},
        problem="unsupported-media-type",
    ),
    Case(
        "server-owned-field",
        "POST",
        LINKS,
        422,
        request={"json": {"target": "https://example.org/", "visit_count": 9}},
        problem="invalid-input",
        field="visit_count",
    ),
    Case(
        "unknown-field",
        "POST",
        LINKS,
        422,
        request={"json": {"target": "https://example.org/", "colour": "red"}},
        problem="invalid-input",
        field="colour",
    ),
    Case(
        "wrong-type",
        "POST",
        LINKS,
        422,
        request={"json": {"target": 42}},
        problem="invalid-input",
        field="target",
    ),
    Case(
        "body-not-object",
        "POST",
        LINKS,
        422,
        request={"json": ["https://example.org/"]},
        problem="invalid-input",
    ),
]


def _params():
    """Every case as sent by a program; the API cases again as sent by a browser."""
    for case in CASES:
        yield pytest.param(case, None, id=case.id)
        if case.under_api:
            yield pytest.param(case, "text/html", id=case.id + "-browser")


@pytest.mark.parametrize(("case", "accept"), list(_params()))
def test_every_error_is_a_problem(seeded_app, case: Case, accept: str | None):
    """Same format whatever the layer that refused; nothing stored on the way."""
    client = seeded_app.test_client()
    request = dict(case.request)
    if accept is not None:
        request["headers"] = {**request.get("headers", {}), "Accept": accept}
    before = stored_rows(seeded_app)
    response = client.open(case.path, method=case.method, auth=case.auth, **request)

    body = check_problem(client, response, case.status, field=case.field)
    expected_type = PROBLEM_BASE + case.problem if case.problem else "about:blank"
    assert body["type"] == expected_type
    if case.status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="shortener"'
    if case.status == 422:
        assert body["errors"], body
    if case.allow:
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
        assert case.allow <= allowed, allowed
        assert case.method not in allowed
    assert stored_rows(seeded_app) == before


def test_browser_gets_html_for_an_unknown_slug(seeded_app):
    """Outside /api/, a browser is the one client that prefers a page to problem+json."""
    response = seeded_app.test_client().get("/no-such-slug", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "no-such-slug" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "name", ["malformed-body", "invalid-parameter", "invalid-input", "not-found", "unavailable"]
)
def test_problem_types_describe_themselves(any_app, name):
    response = any_app.test_client().get(f"/problems/{name}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["type"] == PROBLEM_BASE + name
    assert body["title"] and isinstance(body["status"], int)


def test_unknown_problem_type_is_not_found(any_app):
    client = any_app.test_client()
    check_problem(client, client.get("/problems/unknown"), 404)


def _fail(*args, **kwargs):
    raise RuntimeError(SECRET)


def _database_down(*args, **kwargs):
    raise DatabaseUnavailable(SECRET)


def _assert_hidden_and_logged(response, caplog):
    """A 500 says nothing about the failure to the client, and everything to the log."""
    body = check_problem(None, response, 500)
    assert body["type"] == "about:blank"
    text_body = response.get_data(as_text=True)
    for leak in (SECRET, "RuntimeError", "Traceback", "File "):
        assert leak not in text_body
    logged = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.exc_info
        and isinstance(record.exc_info[1], RuntimeError)
        and str(record.exc_info[1]) == SECRET
    ]
    assert logged, caplog.text


@pytest.mark.parametrize("accept", [None, "text/html"])
def test_unhandled_error_in_plain_view(seeded_app, caplog, accept):
    seeded_app.add_url_rule("/api/v1.0/boom", "boom", _fail)
    headers = {"Accept": accept} if accept else {}
    response = seeded_app.test_client().get("/api/v1.0/boom", headers=headers)
    _assert_hidden_and_logged(response, caplog)


@pytest.mark.parametrize("accept", [None, "text/html"])
def test_unhandled_error_in_resource(seeded_app, caplog, monkeypatch, accept):
    """Flask-RESTful handles Resource errors itself; they must still reach the one renderer."""
    monkeypatch.setattr(seeded_app.extensions["shortener"].links, "get", _fail)
    headers = {"Accept": accept} if accept else {}
    response = seeded_app.test_client().get(LINKS + "/taken", auth=ADMIN, headers=headers)
    _assert_hidden_and_logged(response, caplog)


def test_unhandled_error_in_redirect(seeded_app, caplog, monkeypatch):
    monkeypatch.setattr(seeded_app.extensions["shortener"].links, "resolve", _fail)
    _assert_hidden_and_logged(seeded_app.test_client().get("/taken"), caplog)


@pytest.mark.parametrize(
    ("method_name", "method", "path", "request_kwargs"),
    [
        ("get", "GET", LINKS + "/taken", {"auth": ADMIN}),
        ("list", "GET", LINKS, {"auth": ADMIN}),
        ("create", "POST", LINKS, {"auth": ADMIN, "json": {"target": "https://example.org/"}}),
        ("resolve", "GET", "/taken", {}),
        ("resolve", "HEAD", "/taken", {}),
    ],
    ids=["resource-get", "resource-list", "resource-create", "redirect", "redirect-head"],
)
def test_database_unavailable_is_retryable(
    seeded_app, monkeypatch, method_name, method, path, request_kwargs
):
    """A locked or unreachable database is the client's cue to retry, not a server bug."""
    monkeypatch.setattr(seeded_app.extensions["shortener"].links, method_name, _database_down)
    client = seeded_app.test_client()
    response = client.open(path, method=method, **request_kwargs)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    if method != "HEAD":
        body = check_problem(client, response, 503)
        assert SECRET not in response.get_data(as_text=True)
        assert body["type"] == PROBLEM_BASE + "unavailable"
