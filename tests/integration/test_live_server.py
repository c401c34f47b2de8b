"""Against a real gunicorn with 2 workers: what only a real server can show (concurrency across
processes, every worker seeing a change, Werkzeug and gunicorn answering errors)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest
import requests

pytestmark = pytest.mark.integration

TIMEOUT = 30
LINKS = "/api/v1.0/links"
PROBLEM_JSON = "application/problem+json"
REDIRECT_CACHE_CONTROL = "private, max-age=90"
MAX_BODY = 64 * 1024
_unique = count()
_RUN = secrets.token_hex(4)


def api(server, method: str, path: str, *, auth=True, **kwargs) -> requests.Response:
    """One request on a fresh connection; as the admin unless ``auth`` says otherwise."""
    if auth is True:
        auth = server.admin
    return requests.request(
        method, server.url + path, auth=auth, timeout=TIMEOUT, allow_redirects=False, **kwargs
    )


def create_link(server, target: str, **fields) -> dict:
    response = api(server, "POST", LINKS, json={"target": target, **fields})
    assert response.status_code == 201, response.text
    return response.json()


# Visits are written by each worker's background writer once a second.
FLUSH_WAIT = 1.5


def visit_count(server, slug: str) -> int:
    return api(server, "GET", f"{LINKS}/{slug}").json()["visit_count"]


def visit_rows(server, slug: str) -> int:
    """How many visits the API lists for the link, following every page."""
    rows, uri = 0, f"{server.url}{LINKS}/{slug}/visits?limit=1000"
    while uri:
        page = requests.get(uri, auth=server.admin, timeout=TIMEOUT).json()
        rows += len(page["visits"])
        uri = page["next"]
    return rows


def eventually(probe, expected, seconds: float = 15.0):
    """``probe()`` once it equals ``expected``, or its last value after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (value := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def unique_slug(prefix: str) -> str:
    """Unique on the shared server, whatever other modules create."""
    return f"{prefix}-{_RUN}-{next(_unique)}"


def all_links(server) -> list[dict]:
    """Every link of this module's admin (other modules' links share the server)."""
    response = api(server, "GET", LINKS, params={"owner": server.admin[0], "limit": 1000})
    assert response.status_code == 200
    assert response.json()["next"] is None
    return response.json()["links"]


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].split(";")[0] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
def steady_link(live_server) -> dict:
    """A link no test changes, for the tests that only read."""
    return create_link(live_server, "https://example.com/steady", slug="steady")


def test_concurrent_redirects_are_counted_exactly(live_server):
    """200 visits spread over 2 worker processes and 32 client threads: none lost."""
    target = "https://example.com/counted"
    link = create_link(live_server, target)

    def visit(_):
        return requests.get(link["short_url"], allow_redirects=False, timeout=TIMEOUT)

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(visit, range(200)))

    assert Counter(response.status_code for response in responses) == {302: 200}
    assert {response.headers["Location"] for response in responses} == {target}
    assert eventually(lambda: visit_count(live_server, link["slug"]), 200) == 200
    assert visit_rows(live_server, link["slug"]) == 200
    time.sleep(FLUSH_WAIT)  # and nothing more arrives later
    assert visit_count(live_server, link["slug"]) == visit_rows(live_server, link["slug"]) == 200


def test_concurrent_creates_of_one_slug(live_server):
    """Exactly one of 20 racing creates wins; the others learn the slug is taken."""
    slug = unique_slug("race")

    def create(number):
        target = f"https://example.com/racer/{number}"
        return target, api(live_server, "POST", LINKS, json={"target": target, "slug": slug})

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(create, range(20)))

    statuses = Counter(response.status_code for _, response in results)
    assert statuses == {201: 1, 409: 19}, statuses
    for _, response in results:
        if response.status_code == 409:
            body = assert_problem(response, 409)
            assert body["type"].endswith("/problems/slug-taken")
    (winner,) = [target for target, response in results if response.status_code == 201]
    stored = [link for link in all_links(live_server) if link["slug"] == slug]
    assert len(stored) == 1
    assert stored[0]["target"] == winner


def test_concurrent_generated_creates_get_distinct_slugs(live_server):
    def create(number):
        return api(live_server, "POST", LINKS, json={"target": f"https://example.com/gen/{number}"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(create, range(20)))

    assert [response.status_code for response in responses] == [201] * 20
    bodies = [response.json() for response in responses]
    assert len({body["slug"] for body in bodies}) == 20
    for response, body in zip(responses, bodies, strict=True):
        assert response.headers["Location"] == body["uri"]
    stored = {link["slug"]: link["target"] for link in all_links(live_server)}
    for body in bodies:
        assert stored[body["slug"]] == body["target"]


def redirects_until_every_worker_answered(server, slug: str, phase: str):
    """Follows ``/slug`` on fresh connections, 4 at a time, until the access log shows both
    workers answered (bounded); returns every response."""
    marker = f"/{slug}?probe={phase}-"
    responses = []
    for batch in range(50):
        urls = [f"{server.url}{marker}{batch}-{number}" for number in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            responses += pool.map(
                lambda url: requests.get(url, allow_redirects=False, timeout=TIMEOUT), urls
            )
        if len(server.workers_that_served(marker)) >= 2:
            return responses
    pytest.fail(f"only workers {server.workers_that_served(marker)} answered {marker}")


def test_every_worker_follows_a_change_at_once(live_server):
    """No worker may keep serving an old target after PATCH, or a deleted link after DELETE."""
    slug = unique_slug("moving")
    create_link(live_server, "https://example.com/before", slug=slug)
    before = redirects_until_every_worker_answered(live_server, slug, "before")
    assert {(r.status_code, r.headers["Location"]) for r in before} == {
        (302, "https://example.com/before")
    }

    patched = api(
        live_server,
        "PATCH",
        f"{LINKS}/{slug}",
        json={"target": "https://example.com/after", "redirect_status": 307},
    )
    assert patched.status_code == 200, patched.text
    after = redirects_until_every_worker_answered(live_server, slug, "patched")
    assert {(r.status_code, r.headers["Location"]) for r in after} == {
        (307, "https://example.com/after")
    }

    assert api(live_server, "DELETE", f"{LINKS}/{slug}").status_code == 204
    gone = redirects_until_every_worker_answered(live_server, slug, "deleted")
    for response in gone:
        assert_problem(response, 404)
        assert "Location" not in response.headers


def test_head_answers_like_get_without_counting(live_server):
    target = "https://example.com/head"
    link = create_link(live_server, target, redirect_status=308)
    heads = [
        requests.head(link["short_url"], allow_redirects=False, timeout=TIMEOUT) for _ in range(3)
    ]
    get = requests.get(link["short_url"], allow_redirects=False, timeout=TIMEOUT)
    for head in heads:
        assert head.status_code == get.status_code == 308
        assert head.headers["Location"] == get.headers["Location"] == target
        assert head.headers["Cache-Control"] == get.headers["Cache-Control"]
        assert head.headers["Cache-Control"] == REDIRECT_CACHE_CONTROL
        assert head.content == b""
    assert eventually(lambda: visit_count(live_server, link["slug"]), 1) == 1
    time.sleep(FLUSH_WAIT)
    assert visit_count(live_server, link["slug"]) == 1


def test_unknown_slug_gets_an_html_page_in_a_browser(live_server):
    response = requests.get(
        live_server.url + "/no-such-slug",
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text


def test_unknown_slug_gets_a_problem_otherwise(live_server):
    response = requests.get(live_server.url + "/no-such-slug", timeout=TIMEOUT)
    assert_problem(response, 404)


BIG_BODY = '{"target": "https://example.com/", "title": "' + "x" * MAX_BODY + '"}'
ERROR_CASES = [
    # id, method, path, auth, request keyword arguments, status
    ("unknown-api-path", "GET", "/api/v1.0/nothing-here", False, {}, 404),
    ("unknown-api-version", "GET", "/api/v9/links", False, {}, 404),
    ("unknown-api-subpath", "GET", LINKS + "/steady/clicks", True, {}, 404),
    ("unknown-link", "GET", LINKS + "/no-such-link", True, {}, 404),
    ("no-credentials", "GET", LINKS, False, {}, 401),
    ("wrong-password", "GET", LINKS, ("admin", "wrong-password"), {}, 401),
    ("method-on-link", "POST", LINKS + "/steady", True, {"json": {}}, 405),
    ("method-on-collection", "DELETE", LINKS, True, {}, 405),
    ("body-too-large", "POST", LINKS, True, {"data": BIG_BODY, "headers": {}}, 413),
    ("body-not-json", "POST", LINKS, True, {"data": "target=x", "headers": {}}, 415),
    ("malformed-json", "POST", LINKS, True, {"data": "{", "headers": {}}, 400),
    ("bad-query", "GET", LINKS + "?limit=0", True, {}, 400),
]
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.mark.parametrize("accept", ["application/json", "text/html", None])
@pytest.mark.parametrize(
    ("method", "path", "auth", "request_kwargs", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_api_errors_are_problems_from_the_real_server(
    live_server, steady_link, method, path, auth, request_kwargs, status, accept
):
    """Whatever refuses (routing, auth, gunicorn's body limit, a Resource), and whatever the
    client accepts: problem+json, never an HTML page, nothing stored."""
    kwargs = dict(request_kwargs)
    headers = dict(kwargs.pop("headers", {}))
    if "data" in kwargs:
        headers.update(JSON_TYPE if status != 415 else {"Content-Type": "text/plain"})
    if accept:
        headers["Accept"] = accept
    before = all_links(live_server)

    response = api(live_server, method, path, auth=auth, headers=headers, **kwargs)

    assert_problem(response, status)
    if status == 401:
        # Two challenges (issue 4); requests joins repeated headers with ", ".
        assert response.headers["WWW-Authenticate"] == (
            'Basic realm="shortener", Bearer realm="shortener"'
        )
    if status == 405:
        allowed = {name.strip() for name in response.headers["Allow"].split(",")}
        assert "GET" in allowed and method not in allowed
    assert all_links(live_server) == before


# POST /<slug> is the password form's (for a link without a password: a 303 and a visit,
# tests/test_link_passwords.py).
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_on_a_short_link_are_not_allowed(live_server, steady_link, method):
    response = requests.request(
        method, steady_link["short_url"], timeout=TIMEOUT, allow_redirects=False
    )
    assert_problem(response, 405)
    assert {name.strip() for name in response.headers["Allow"].split(",")} >= {"GET", "HEAD"}
    assert method not in response.headers["Allow"]
    time.sleep(FLUSH_WAIT)
    assert visit_count(live_server, "steady") == 0


def test_command_line_shares_the_servers_database(live_server):
    """A user made with the CLI can sign in to the running server at once."""
    credentials = (unique_slug("carol"), "carol-password-long")
    created = live_server.cli(
        "users", "create", credentials[0], "--password-stdin", input=credentials[1] + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert credentials[1] not in created.stdout
    response = api(live_server, "GET", f"/api/v1.0/users/{credentials[0]}", auth=credentials)
    assert response.status_code == 200
    assert response.json()["username"] == credentials[0]
