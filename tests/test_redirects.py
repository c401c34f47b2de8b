"""GET and HEAD /<slug>: the redirect hot path, as browsers and curl see it (issue 2)."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, make_app
from support import assert_problem

from shortener.services.actors import OPERATOR

LINKS = "/api/v1.0/links"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def create(client, auth, slug: str, target: str = "https://example.com/", **fields) -> dict:
    response = client.post(LINKS, json={"target": target, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def visit_count(client, auth, slug: str) -> int:
    """visit_count once the buffered visits have been written (the writer runs each second)."""
    client.application.extensions["shortener"].recorder.flush()
    response = client.get(f"{LINKS}/{slug}", auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["visit_count"]


@pytest.fixture
def configured(database_url):
    """``configured(**config)`` -> (client, credentials) for an app with settings overridden."""
    apps = []

    def build(**config):
        app = make_app(database_url, **config)
        apps.append(app)
        app.extensions["shortener"].users.create(
            OPERATOR, username="carol", password=PASSWORD, is_admin=False
        )
        return app.test_client(), ("carol", PASSWORD)

    yield build
    for app in apps:
        app.extensions["shortener"].close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_uses_the_links_status_location_and_cache_control(client, alice, status):
    create(client, alice, "go", "https://example.com/landing?x=1#frag", redirect_status=status)
    response = client.get("/go")
    assert response.status_code == status
    assert response.headers["Location"] == "https://example.com/landing?x=1#frag"
    assert response.headers["Cache-Control"] == "private, max-age=90"


def test_default_redirect_is_302(client, alice):
    create(client, alice, "plain")
    assert client.get("/plain").status_code == 302


def test_redirect_needs_no_credentials_and_ignores_them(client, alice, bob):
    create(client, alice, "open")
    assert client.get("/open").status_code == 302
    assert client.get("/open", auth=bob).status_code == 302
    assert client.get("/open", auth=("alice", "wrong password")).status_code == 302


def test_redirect_location_is_the_stored_ascii_form(client, alice):
    create(client, alice, "idn", "https://bücher.de/straße")
    assert client.get("/idn").headers["Location"] == "https://xn--bcher-kva.de/stra%C3%9Fe"


def test_encoded_crlf_in_a_target_stays_encoded_in_location(client, alice):
    create(client, alice, "crlf", "https://example.com/a%0d%0aSet-Cookie:x=y")
    response = client.get("/crlf")
    assert response.headers["Location"] == "https://example.com/a%0d%0aSet-Cookie:x=y"
    assert "Set-Cookie" not in response.headers


def test_max_age_zero_means_no_store(configured):
    client, carol = configured(REDIRECT_MAX_AGE=0)
    create(client, carol, "fresh")
    for response in (client.get("/fresh"), client.head("/fresh")):
        assert response.status_code == 302
        assert response.headers["Cache-Control"] == "no-store"


def test_custom_max_age_is_used(configured):
    client, carol = configured(REDIRECT_MAX_AGE=3600)
    create(client, carol, "cached")
    assert client.get("/cached").headers["Cache-Control"] == "private, max-age=3600"


def test_get_counts_each_visit(client, alice):
    create(client, alice, "count")
    assert visit_count(client, alice, "count") == 0
    for _ in range(3):
        assert client.get("/count").status_code == 302
    assert visit_count(client, alice, "count") == 3


def test_visits_are_counted_per_link(client, alice):
    create(client, alice, "one")
    create(client, alice, "two")
    client.get("/one")
    client.get("/one")
    client.get("/two")
    assert visit_count(client, alice, "one") == 2
    assert visit_count(client, alice, "two") == 1


def test_head_answers_like_get_without_counting(client, alice):
    create(client, alice, "peek", "https://example.com/p", redirect_status=307)
    head = client.head("/peek")
    assert head.status_code == 307
    assert head.headers["Location"] == "https://example.com/p"
    assert head.headers["Cache-Control"] == "private, max-age=90"
    assert head.data == b""
    assert visit_count(client, alice, "peek") == 0
    get = client.get("/peek")
    assert (get.status_code, get.headers["Location"]) == (307, "https://example.com/p")
    assert visit_count(client, alice, "peek") == 1


def test_visit_count_is_not_changed_by_updates(client, alice):
    create(client, alice, "kept")
    client.get("/kept")
    client.patch(f"{LINKS}/kept", json={"title": "New"}, auth=alice)
    client.put(f"{LINKS}/kept", json={"target": "https://new.example/"}, auth=alice)
    assert visit_count(client, alice, "kept") == 1


def test_unknown_slug_is_404_problem_json(client):
    response = client.get("/nothing-here")
    assert_problem(response, 404)
    assert "Location" not in response.headers


@pytest.mark.parametrize("accept", ["application/json", "application/problem+json", "*/*"])
def test_unknown_slug_for_programs_is_problem_json(client, accept):
    assert_problem(client.get("/nothing-here", headers={"Accept": accept}), 404)


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_unknown_slug_for_browsers_is_a_short_html_page(client, accept):
    response = client.get("/nothing-here", headers={"Accept": accept})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "404" in page and len(page) < 2000
    assert "Traceback" not in page


def test_html_page_escapes_the_slug(client):
    response = client.get("/%3Cscript%3Ealert(1)%3C%2Fscript%3E", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "<script>" not in response.get_data(as_text=True)


def test_head_of_unknown_slug_is_404(client):
    response = client.head("/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_slugs_are_case_sensitive(client, alice):
    create(client, alice, "Ab", "https://upper.example/")
    create(client, alice, "ab", "https://lower.example/")
    assert client.get("/Ab").headers["Location"] == "https://upper.example/"
    assert client.get("/ab").headers["Location"] == "https://lower.example/"
    assert_problem(client.get("/AB"), 404)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_405_with_allow(client, alice, method):
    """POST is the password form's (tests/test_link_passwords.py); nothing else changes a
    link through its short URL."""
    create(client, alice, "fixed")
    response = getattr(client, method)("/fixed", json={"target": "https://evil.example/"})
    assert_problem(response, 405)
    allowed = {name.strip() for name in response.headers["Allow"].split(",")}
    assert {"GET", "HEAD", "POST"} <= allowed
    assert not allowed & {"PUT", "PATCH", "DELETE"}
    assert client.get("/fixed").headers["Location"] == "https://example.com/"
    assert visit_count(client, alice, "fixed") == 1


def test_405_on_an_unknown_slug_is_still_405(client):
    response = client.put("/nothing-here")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_patch_takes_effect_on_the_very_next_redirect(client, alice):
    create(client, alice, "moving", "https://old.example/")
    assert client.get("/moving").headers["Location"] == "https://old.example/"
    client.patch(
        f"{LINKS}/moving",
        json={"target": "https://new.example/", "redirect_status": 301},
        auth=alice,
    )
    response = client.get("/moving")
    assert response.status_code == 301
    assert response.headers["Location"] == "https://new.example/"
    assert client.head("/moving").headers["Location"] == "https://new.example/"


def test_put_takes_effect_on_the_very_next_redirect(client, alice):
    create(client, alice, "moving", "https://old.example/", redirect_status=308)
    client.get("/moving")
    client.put(f"{LINKS}/moving", json={"target": "https://new.example/"}, auth=alice)
    response = client.get("/moving")
    assert (response.status_code, response.headers["Location"]) == (302, "https://new.example/")


def test_put_created_link_redirects_at_once(client, alice):
    response = client.put(f"{LINKS}/made", json={"target": "https://made.example/"}, auth=alice)
    assert response.status_code == 201
    assert client.get("/made").headers["Location"] == "https://made.example/"


def test_delete_takes_effect_on_the_very_next_redirect(client, alice):
    create(client, alice, "brief")
    assert client.get("/brief").status_code == 302
    assert client.delete(f"{LINKS}/brief", auth=alice).status_code == 204
    assert_problem(client.get("/brief"), 404)
    assert client.head("/brief").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/a.b",
        "/" + "a" * 65,
        "/caf%C3%A9",
        "/a%20b",
        "/%00",
        "/a%00b",
        "/%0d%0a",
        "/favicon.ico",
        "/api",
        "/static",
        "/problems",
    ],
)
@pytest.mark.parametrize("method", ["get", "head"])
def test_paths_that_cannot_be_slugs_are_404(production_app, method, path):
    """Answered without a query the database could choke on (NUL is an error on PostgreSQL)."""
    response = getattr(production_app.test_client(), method)(path)
    assert response.status_code == 404
    if method == "get":
        assert_problem(response, 404)


def test_a_64_character_slug_redirects(client, alice):
    slug = "x" * 64
    create(client, alice, slug)
    assert client.get(f"/{slug}").status_code == 302
    assert client.get(f"/{slug}x").status_code == 404


def test_trailing_slash_is_not_the_slug(client, alice):
    create(client, alice, "slash")
    assert client.get("/slash/").status_code == 404
