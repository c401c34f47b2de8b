"""The redirect's fast path (shortener/fast_redirect.py) answers found links exactly as the Flask
view does, and hands everything else to Flask unchanged (issue 8).

Two clients on the same app: ``client`` goes through the app's WSGI as served (the fast path
in front), ``view`` straight to the Flask app behind it. Flask's ``request_started`` signal
tells which of them answered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import PASSWORD, make_app
from flask import request, request_started
from support import assert_problem
from werkzeug.test import Client, TestResponse

from shortener.fast_redirect import FastRedirect
from shortener.services.actors import OPERATOR
from shortener.storage import link_queries

LINKS = "/api/v1.0/links"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def create(client, auth, slug: str, target: str = "https://example.com/", **fields) -> dict:
    response = client.post(LINKS, json={"target": target, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def view_client(app) -> Client:
    """A client of the Flask app behind the fast path (and the middleware around it): the
    view as it is, and nothing else."""
    wsgi = app.wsgi_app
    while not isinstance(wsgi, FastRedirect):
        wsgi = wsgi.application  # metrics.CountRequests, say
    return Client(wsgi.application, TestResponse)


@pytest.fixture
def view(app) -> Client:
    return view_client(app)


@pytest.fixture
def flask_ran(app):
    """The paths Flask's request machinery handled (the fast path's answers are not here)."""
    paths: list[str] = []

    def started(sender, **extra) -> None:
        paths.append(request.path)

    request_started.connect(started, app)
    yield paths
    request_started.disconnect(started, app)


def same_answer(fast, slow) -> None:
    """Status line, every header in order, and body equal."""
    assert fast.status == slow.status
    assert list(fast.headers.items()) == list(slow.headers.items())
    assert fast.get_data() == slow.get_data()


def visits_of(app, client, auth, slug: str) -> list[dict]:
    app.extensions["shortener"].recorder.flush()
    response = client.get(f"{LINKS}/{slug}/visits", auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["visits"]


# -- found links: the fast path's answer is the view's ------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_found_link_answers_exactly_as_the_view(client, view, flask_ran, alice, status, method):
    create(client, alice, "go", "https://example.com/landing?x=1#frag", redirect_status=status)
    flask_ran.clear()
    fast = client.open("/go", method=method)
    assert flask_ran == []  # answered in front of Flask
    slow = view.open("/go", method=method)
    assert flask_ran == ["/go"]
    same_answer(fast, slow)
    assert fast.status_code == status
    assert dict(fast.headers) == {
        "Location": "https://example.com/landing?x=1#frag",
        "Cache-Control": "private, max-age=90",
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": "0",
    }
    assert fast.get_data() == b""


def test_location_is_werkzeugs_form_of_the_target(client, view, alice):
    create(client, alice, "idn", "https://bücher.de/straße")
    create(client, alice, "upper", "https://EXAMPLE.com/A%20b")
    for slug in ("idn", "upper"):
        same_answer(client.get(f"/{slug}"), view.get(f"/{slug}"))
    assert client.get("/idn").headers["Location"] == "https://xn--bcher-kva.de/stra%C3%9Fe"


@pytest.mark.parametrize("max_age", [0, 3600])
def test_cache_control_follows_the_setting(database_url, max_age):
    app = make_app(database_url, REDIRECT_MAX_AGE=max_age)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        client = app.test_client()
        create(client, ("carol", PASSWORD), "go")
        same_answer(client.get("/go"), view_client(app).get("/go"))
        expected = "no-store" if max_age == 0 else f"private, max-age={max_age}"
        assert client.get("/go").headers["Cache-Control"] == expected
    finally:
        app.extensions["shortener"].close()


def test_query_string_is_ignored_as_by_the_view(client, view, flask_ran, alice):
    create(client, alice, "go")
    flask_ran.clear()
    same_answer(client.get("/go?utm_source=x&y"), view.get("/go?utm_source=x&y"))
    assert flask_ran == ["/go"]  # the view's request only


def test_get_records_the_visit_the_view_would_record(app, client, view, flask_ran, alice):
    create(client, alice, "go")
    headers = {"User-Agent": FIREFOX, "Referer": "https://news.example/a?b=c"}
    before = datetime.now(UTC).replace(microsecond=0)
    flask_ran.clear()
    client.get("/go", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    view.get("/go", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    after = datetime.now(UTC)
    assert flask_ran == ["/go"]
    slow, fast = visits_of(app, client, alice, "go")  # newest first
    for visit in (fast, slow):
        assert before <= datetime.fromisoformat(visit["visited_at"]) <= after
    ignored = {"id", "visited_at"}
    assert {k: v for k, v in fast.items() if k not in ignored} == {
        k: v for k, v in slow.items() if k not in ignored
    }
    assert (fast["referrer"], fast["user_agent"], fast["ip"]) == (
        "https://news.example/a?b=c",
        FIREFOX,
        "203.0.113.0",
    )


def test_head_records_nothing(app, client, flask_ran, alice):
    create(client, alice, "go")
    flask_ran.clear()
    assert client.head("/go").status_code == 302
    assert flask_ran == []
    assert visits_of(app, client, alice, "go") == []


def test_trusted_proxy_address_reaches_the_fast_path(database_url):
    app = make_app(database_url, TRUSTED_PROXIES=1)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        client, carol = app.test_client(), ("carol", PASSWORD)
        create(client, carol, "go")
        forwarded = {"X-Forwarded-For": "203.0.113.77"}
        client.get("/go", headers=forwarded, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        [visit] = visits_of(app, client, carol, "go")
        assert visit["ip"] == "203.0.113.0"
    finally:
        app.extensions["shortener"].close()


# -- everything else goes to Flask, unchanged ---------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("accept", [None, "application/json", BROWSER_ACCEPT])
def test_unknown_slug_is_the_views_404(client, view, flask_ran, method, accept):
    headers = {"Accept": accept} if accept else {}
    fast = client.open("/nowhere", method=method, headers=headers)
    slow = view.open("/nowhere", method=method, headers=headers)
    assert flask_ran == ["/nowhere", "/nowhere"]
    same_answer(fast, slow)
    assert fast.status_code == 404
    if method == "GET":
        if accept == BROWSER_ACCEPT:
            assert fast.mimetype == "text/html"
        else:
            assert_problem(fast, 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_go_to_flask(client, view, flask_ran, alice, method):
    create(client, alice, "go")
    flask_ran.clear()
    fast, slow = client.open("/go", method=method), view.open("/go", method=method)
    assert flask_ran == ["/go", "/go"]
    same_answer(fast, slow)
    if method == "POST":  # the password form's (tests/test_link_passwords.py): no password
        assert fast.status_code == 303
    elif method != "OPTIONS":
        assert_problem(fast, 405)


def test_reserved_paths_are_never_taken_by_the_fast_path(app, client, flask_ran):
    """Every reserved word (the app's top-level routes among them), in any case, even with a
    link stored under it (say, made before a route took the word)."""
    services = app.extensions["shortener"]
    reserved = sorted(services.links.reserved_slugs)
    assert {"api", "health", "problems", "static", "metrics"} <= set(reserved)
    owner = services.users.create(OPERATOR, username="legacy", password=PASSWORD)
    words = [*reserved, *(word.upper() for word in reserved), "Health"]
    with services.database.write() as connection:
        for word in words:
            link_queries.insert_link(
                connection,
                slug=word,
                target="https://example.com/legacy",
                title=None,
                redirect_status=302,
                owner_id=owner.id,
                now=datetime.now(UTC),
            )
    for word in words:
        flask_ran.clear()
        client.get(f"/{word}")
        assert flask_ran == [f"/{word}"]


@pytest.mark.parametrize(
    "path",
    [
        "/%67o",  # percent-encoded: "/go" to Flask
        "/go%2Fx",  # an encoded slash
        "/go/",
        "/go/x",
        "/g%C3%B6",
        "/go.html",
    ],
)
def test_unusual_paths_go_to_flask(client, view, flask_ran, alice, path):
    create(client, alice, "go")
    flask_ran.clear()
    fast, slow = client.get(path), view.get(path)
    assert len(flask_ran) == 2
    same_answer(fast, slow)


def test_a_request_with_a_body_goes_to_flask(client, view, flask_ran, alice):
    create(client, alice, "go")
    flask_ran.clear()
    fast, slow = client.get("/go", data=b"x" * 10), view.get("/go", data=b"x" * 10)
    assert flask_ran == ["/go", "/go"]
    same_answer(fast, slow)
    assert fast.status_code == 302


def test_the_not_found_limit_still_applies(database_url):
    app = make_app(database_url, NOT_FOUND_LIMIT="2/minute")
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        client = app.test_client()
        create(client, ("carol", PASSWORD), "go")
        assert [client.get("/nowhere").status_code for _ in range(3)] == [404, 404, 429]
        limited = client.get("/nowhere")
        assert_problem(limited, 429)
        assert "Retry-After" in limited.headers
        assert client.get("/go").status_code == 302  # found links are never limited
    finally:
        app.extensions["shortener"].close()
