"""Password-protected links (issue 9): the write-only password and has_password, the form page
for browsers (POST /<slug>), HTTP Basic for programs, the failed-attempt limit, visits only
after the right password, and the cache of verified passwords."""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_app
from sqlalchemy import select
from support import assert_problem

from shortener.link_passwords import CONTENT_SECURITY_POLICY, form_page
from shortener.services.actors import OPERATOR
from shortener.services.passwords import PASSWORD_MAX_LENGTH
from shortener.storage.tables import links

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/secret?a=1"
SECRET = "open sesame 1"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def create(client, auth, slug: str = "locked", **fields) -> dict:
    body = {"target": TARGET, "slug": slug, "password": SECRET, **fields}
    response = client.post(LINKS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def visit_count(client, auth, slug: str = "locked") -> int:
    client.application.extensions["shortener"].recorder.flush()
    return client.get(f"{LINKS}/{slug}", auth=auth).get_json()["visit_count"]


def stored_hash(app, slug: str = "locked") -> str | None:
    with app.extensions["shortener"].database.read() as connection:
        return connection.execute(
            select(links.c.password_hash).where(links.c.slug == slug)
        ).scalar_one()


def unique_client(app):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = (
        f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    )
    return client


# -- the field -------------------------------------------------------------------------------
def test_password_is_write_only_and_stored_hashed(app, client, alice):
    body = create(client, alice)
    assert body["has_password"] is True and "password" not in body
    assert "password" not in client.get(f"{LINKS}/locked", auth=alice).get_json()
    stored = stored_hash(app)
    assert stored and SECRET not in stored
    assert app.extensions["shortener"].users.hasher.verify(stored, SECRET)
    plain = client.post(LINKS, json={"target": TARGET, "slug": "open"}, auth=alice).get_json()
    assert plain["has_password"] is False
    assert stored_hash(app, "open") is None


def test_patch_sets_changes_and_removes_it(app, client, alice):
    create(client, alice)
    old = stored_hash(app)
    body = client.patch(f"{LINKS}/locked", json={"password": "another one"}, auth=alice).get_json()
    assert body["has_password"] is True and stored_hash(app) != old
    assert client.get("/locked", auth=("", SECRET)).status_code == 401
    assert client.get("/locked", auth=("", "another one")).status_code == 302
    body = client.patch(f"{LINKS}/locked", json={"title": "t"}, auth=alice).get_json()
    assert body["has_password"] is True
    body = client.patch(f"{LINKS}/locked", json={"password": None}, auth=alice).get_json()
    assert body["has_password"] is False and stored_hash(app) is None
    assert client.get("/locked").headers["Location"] == TARGET


def test_put_without_a_password_keeps_it_and_null_removes_it(client, alice):
    create(client, alice)
    put = client.put(f"{LINKS}/locked", json={"target": TARGET}, auth=alice)
    assert put.status_code == 200 and put.get_json()["has_password"] is True
    put = client.put(f"{LINKS}/locked", json={"target": TARGET, "password": None}, auth=alice)
    assert put.get_json()["has_password"] is False
    put = client.put(f"{LINKS}/new", json={"target": TARGET, "password": SECRET}, auth=alice)
    assert put.status_code == 201 and put.get_json()["has_password"] is True


@pytest.mark.parametrize(
    "value", ["short", "x" * (PASSWORD_MAX_LENGTH + 1), 12345678, ["a" * 8], ""]
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_invalid_passwords_are_422_and_store_nothing(app, client, alice, row_counts, value, method):
    create(client, alice)
    before, old = row_counts(), stored_hash(app)
    if method == "PATCH":
        response = client.patch(f"{LINKS}/locked", json={"password": value}, auth=alice)
    else:
        url = LINKS if method == "POST" else f"{LINKS}/fresh"
        response = client.open(
            url, method=method, json={"target": TARGET, "password": value}, auth=alice
        )
    assert_problem(response, 422, field="password")
    assert row_counts() == before and stored_hash(app) == old


# -- programs: HTTP Basic --------------------------------------------------------------------
def test_a_program_without_the_password_gets_a_basic_challenge(client, alice):
    create(client, alice)
    for method in ("GET", "HEAD"):
        response = client.open("/locked", method=method)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="locked", charset="UTF-8"'
        assert response.headers["Cache-Control"] == "no-store"
        assert "Location" not in response.headers
    assert_problem(client.get("/locked", headers={"Accept": "application/json"}), 401)
    assert visit_count(client, alice) == 0


def test_basic_credentials_with_any_name_follow_it(client, alice):
    create(client, alice)
    assert_problem(client.get("/locked", auth=("someone", "wrong password")), 401)
    for name in ("", "anyone", "ünïcode"):
        response = client.get("/locked", auth=(name, SECRET))
        assert response.status_code == 302
        assert response.headers["Location"] == TARGET
        assert response.headers["Cache-Control"] == "no-store"
    assert visit_count(client, alice) == 3
    head = client.head("/locked", auth=("x", SECRET))
    assert head.status_code == 302 and visit_count(client, alice) == 3


# -- browsers: the form ----------------------------------------------------------------------
def test_a_browser_gets_the_form_page(client, alice):
    create(client, alice)
    response = client.get("/locked", headers=HTML)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "WWW-Authenticate" not in response.headers  # no browser dialog
    page = response.get_data(as_text=True)
    assert '<form method="post">' in page and 'name="password"' in page
    for external in ("<script", "src=", "href=", "http://", "https://", "@import", "url("):
        assert external not in page
    assert TARGET not in page
    assert visit_count(client, alice) == 0


def test_the_form_page_escapes_what_it_shows():
    page = form_page('<b>"x"&', wrong=True).get_data(as_text=True)
    assert "&lt;b&gt;&quot;x&quot;&amp;" in page and "<b>" not in page


def test_wrong_password_shows_the_form_again_with_401_and_right_one_redirects(client, alice):
    create(client, alice)
    wrong = client.post("/locked", data={"password": "not it at all"}, headers=HTML)
    assert wrong.status_code == 401
    assert "Wrong password" in wrong.get_data(as_text=True)
    assert wrong.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert wrong.headers["Cache-Control"] == "no-store"
    assert not wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert visit_count(client, alice) == 0
    right = client.post("/locked", data={"password": SECRET}, headers=HTML)
    assert right.status_code == 303
    assert right.headers["Location"] == TARGET
    assert right.headers["Cache-Control"] == "no-store"
    assert visit_count(client, alice) == 1


def test_form_with_forwarding_and_utm(client, alice):
    create(client, alice, forward_query=True, utm_source="s")
    response = client.post("/locked?a=9&b=2", data={"password": SECRET})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{TARGET}&utm_source=s&b=2"


def test_a_program_may_post_basic_credentials_or_the_field(client, alice):
    create(client, alice)
    assert client.post("/locked", auth=("x", SECRET)).status_code == 303
    no_password = client.post("/locked")
    assert_problem(no_password, 401)
    assert no_password.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_site_post_is_refused(client, alice, headers):
    create(client, alice)
    response = client.post("/locked", data={"password": SECRET}, headers=headers)
    assert_problem(response, 403)
    assert visit_count(client, alice) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},
    ],
)
def test_a_same_origin_post_is_accepted(client, alice, headers):
    create(client, alice)
    response = client.post("/locked", data={"password": SECRET}, headers=headers)
    assert response.status_code == 303


def test_post_to_a_link_without_a_password_just_redirects(client, alice):
    client.post(LINKS, json={"target": TARGET, "slug": "open"}, auth=alice)
    response = client.post("/open", data={"password": "whatever it is"})
    assert response.status_code == 303 and response.headers["Location"] == TARGET
    assert_problem(client.post("/missing", data={"password": SECRET}), 404)


# -- the failed-attempt limit ----------------------------------------------------------------
def test_wrong_passwords_count_against_the_failed_attempt_limit(database_url):
    app = make_app(database_url, AUTH_FAIL_LIMIT="3/minute", RATELIMIT_STORAGE_URI="memory://")
    try:
        owner = ("owner", "owner password")
        app.extensions["shortener"].users.create(OPERATOR, username="owner", password=owner[1])
        client = unique_client(app)
        create(client, owner)
        assert (
            client.post("/locked", data={"password": "wrong one"}, headers=HTML).status_code == 401
        )
        assert client.get("/locked", auth=("x", "wrong two")).status_code == 401
        assert client.get("/locked").status_code == 401  # no password: not counted
        assert client.get(f"{LINKS}", auth=("owner", "wrong three")).status_code == 401
        # The limit is used up: the right password is refused before it is checked.
        refused = client.get("/locked", auth=("x", SECRET))
        assert_problem(refused, 429)
        assert int(refused.headers["Retry-After"]) >= 1
        assert client.post("/locked", data={"password": SECRET}).status_code == 429
        assert client.get(LINKS, auth=owner).status_code == 429  # API logins too
        # Another address is not limited.
        assert unique_client(app).get("/locked", auth=("x", SECRET)).status_code == 302
    finally:
        app.extensions["shortener"].close()


# -- the cache of verified passwords ---------------------------------------------------------
def test_a_verified_password_is_hashed_once(app, client, alice, monkeypatch):
    create(client, alice)
    service = app.extensions["shortener"].links
    calls = []
    verify = service.hasher.verify

    def counting(stored, password):
        calls.append(password)
        return verify(stored, password)

    monkeypatch.setattr(service.hasher, "verify", counting)
    for _ in range(3):
        assert client.get("/locked", auth=("x", SECRET)).status_code == 302
    assert calls == [SECRET]
    assert client.get("/locked", auth=("x", "wrong password")).status_code == 401
    assert client.get("/locked", auth=("x", "wrong password")).status_code == 401
    assert calls == [SECRET, "wrong password", "wrong password"]  # wrong ones are not cached
    client.patch(f"{LINKS}/locked", json={"password": "the new one"}, auth=alice)
    assert client.get("/locked", auth=("x", SECRET)).status_code == 401  # the old one is gone


def test_post_to_unknown_slugs_counts_against_the_not_found_limit(database_url):
    app = make_app(database_url, NOT_FOUND_LIMIT="2/minute", RATELIMIT_STORAGE_URI="memory://")
    try:
        client = unique_client(app)
        for _ in range(2):
            assert_problem(client.post("/nothing-here", data={"password": SECRET}), 404)
        assert_problem(client.post("/nothing-here", data={"password": SECRET}), 429)
        assert_problem(client.get("/nothing-here"), 429)
    finally:
        app.extensions["shortener"].close()


def test_concurrent_visits_with_the_same_password_share_one_hash(app, client, alice, monkeypatch):
    """Single flight: threads presenting the same password at once wait for one verify."""
    create(client, alice)
    service = app.extensions["shortener"].links
    found = service.resolve("locked")
    verify = service.hasher.verify
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow(stored, password):
        calls.append(password)
        started.set()
        release.wait(10)
        return verify(stored, password)

    looked = []
    hit = service.passwords.hit

    def counted_hit(*args):
        looked.append(1)
        return hit(*args)

    monkeypatch.setattr(service.hasher, "verify", slow)
    monkeypatch.setattr(service.passwords, "hit", counted_hit)
    with ThreadPoolExecutor(8) as pool:
        results = [pool.submit(service.unlocks, found, SECRET) for _ in range(8)]
        assert started.wait(10)
        deadline = time.monotonic() + 10
        while len(looked) < 8 and time.monotonic() < deadline:  # all missed the cache
            time.sleep(0.001)
        release.set()
        assert all(result.result(timeout=10) for result in results)
    assert calls == [SECRET]
