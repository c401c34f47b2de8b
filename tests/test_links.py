"""The links API under /api/v1.0/links, through HTTP as a client sees it (issue 2)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import PASSWORD, make_app
from support import JSON_HEADERS, assert_problem

from shortener.services.actors import OPERATOR

LINKS = "/api/v1.0/links"
BASE = "http://localhost"
EXAMPLE = "https://example.com/"
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
SLUG_CHARS = re.compile(r"[A-Za-z0-9_-]+")
REPRESENTATION_FIELDS = {
    "uri",
    "slug",
    "short_url",
    "target",
    "title",
    "redirect_status",
    "visit_count",
    "owner",
    "visits",
    "stats",
    "qr",
    "history",
    "crawlable",
    "created_at",
    "updated_at",
    # lifetime and visit cap (tests/test_link_lifetime.py)
    "valid_since",
    "valid_until",
    "max_visits",
    "expired_target",
    "status",
    # query forwarding, UTM and passwords (tests/test_link_forwarding.py, test_link_passwords.py)
    "forward_query",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "has_password",
    # redirect rules and A/B splits (tests/test_link_rules.py, tests/test_link_variants.py)
    "rules",
    "variants",
    # tags (tests/test_tags.py)
    "tags",
}


def link_path(slug: str) -> str:
    return f"{LINKS}/{slug}"


def create(client, auth, target: str = EXAMPLE, **fields) -> dict:
    response = client.post(LINKS, json={"target": target, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def fetch(client, auth, slug: str) -> dict:
    response = client.get(link_path(slug), auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def parse_time(value: str) -> datetime:
    assert RFC3339_UTC.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def post_all_then_put_and_patch(cases: dict, *names: str) -> list:
    """(method, value) params: every case on POST, and the named ones on PUT and PATCH too.

    The three methods share one body parser, so a few cases prove PUT and PATCH use it.
    """
    params = [pytest.param("post", value, id=f"post-{name}") for name, value in cases.items()]
    for method in ("put", "patch"):
        params += [pytest.param(method, cases[name], id=f"{method}-{name}") for name in names]
    return params


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


# -- POST /api/v1.0/links -----------------------------------------------------------------


def test_create_answers_201_with_location_and_full_representation(client, alice):
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = client.post(
        LINKS,
        json={"target": "https://example.com/docs?q=1#top", "slug": "docs", "title": "Docs"},
        auth=alice,
    )
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == REPRESENTATION_FIELDS
    assert response.headers["Location"] == body["uri"] == f"{BASE}/api/v1.0/links/docs"
    assert body["slug"] == "docs"
    assert body["short_url"] == f"{BASE}/docs"
    assert body["target"] == "https://example.com/docs?q=1#top"
    assert body["title"] == "Docs"
    assert body["redirect_status"] == 302 and type(body["redirect_status"]) is int
    assert body["visit_count"] == 0 and type(body["visit_count"]) is int
    assert body["owner"] == f"{BASE}/api/v1.0/users/alice"
    created_at, updated_at = parse_time(body["created_at"]), parse_time(body["updated_at"])
    assert created_at == updated_at
    assert before <= created_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_created_link_and_its_owner_can_be_fetched_by_following_uris(client, alice):
    body = create(client, alice, slug="follow-me")
    assert client.get(body["uri"], auth=alice).get_json() == body
    owner = client.get(body["owner"], auth=alice)
    assert owner.status_code == 200
    assert owner.get_json()["username"] == "alice"


def test_optional_fields_default_to_null_title_and_302(client, alice):
    body = create(client, alice)
    assert body["title"] is None
    assert body["redirect_status"] == 302


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_accepted(client, alice, status):
    assert create(client, alice, redirect_status=status)["redirect_status"] == status


def test_generated_slug_has_default_length_and_url_safe_alphabet(client, alice):
    slugs = {create(client, alice)["slug"] for _ in range(5)}
    assert len(slugs) == 5, "generated slugs must not repeat"
    for slug in slugs:
        assert len(slug) == 7 and SLUG_CHARS.fullmatch(slug), slug


def test_generated_slug_length_follows_configuration(configured):
    client, carol = configured(SLUG_LENGTH=12)
    for _ in range(3):
        body = create(client, carol)
        assert len(body["slug"]) == 12 and SLUG_CHARS.fullmatch(body["slug"])
        assert body["uri"] == f"{BASE}/api/v1.0/links/{body['slug']}"


def test_public_url_sets_short_url_and_refuses_targets_on_it(configured):
    client, carol = configured(PUBLIC_URL="https://sho.rt")
    body = create(client, carol, slug="pub")
    assert body["short_url"] == "https://sho.rt/pub"
    assert body["uri"] == f"{BASE}/api/v1.0/links/pub", "API URIs stay on the API's host"
    for target in ("https://sho.rt/pub", "http://SHO.RT/other"):
        response = client.post(LINKS, json={"target": target}, auth=carol)
        assert_problem(response, 422, field="target")


def test_custom_slug_of_64_characters_is_accepted(client, alice):
    slug = "a" * 32 + "Z9-_" * 8
    body = create(client, alice, slug=slug)
    assert body["slug"] == slug and len(slug) == 64


def test_taken_slug_is_409_and_stores_nothing(client, alice, bob, row_counts):
    create(client, alice, slug="taken", target="https://alice.example/")
    before = row_counts()
    for who in (alice, bob):
        response = client.post(
            LINKS, json={"target": "https://other.example/", "slug": "taken"}, auth=who
        )
        assert_problem(response, 409)
    assert row_counts() == before
    assert fetch(client, alice, "taken")["target"] == "https://alice.example/"


def test_slugs_are_case_sensitive(client, alice):
    upper = create(client, alice, slug="Ab", target="https://upper.example/")
    lower = create(client, alice, slug="ab", target="https://lower.example/")
    assert upper["uri"] != lower["uri"]
    assert fetch(client, alice, "Ab")["target"] == "https://upper.example/"
    assert fetch(client, alice, "ab")["target"] == "https://lower.example/"
    assert_problem(client.get(link_path("AB"), auth=alice), 404)


# -- target validation --------------------------------------------------------------------

BAD_TARGETS = {
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "ftp": "ftp://example.com/file",
    "mailto": "mailto:someone@example.com",
    "scheme-relative": "//example.com/",
    "no-scheme": "example.com",
    "no-scheme-path": "example.com/page",
    "one-slash": "http:/example.com",
    "no-host": "http://",
    "no-host-path": "https:///path",
    "userinfo": "https://user:secret@example.com/",
    "user-only": "https://user@example.com/",
    "space-in-path": "https://example.com/a b",
    "space-in-host": "https://exa mple.com/",
    "leading-space": " https://example.com/",
    "trailing-space": "https://example.com/ ",
    "tab": "https://example.com/\ta",
    "crlf": "https://example.com/\r\nSet-Cookie: a=b",
    "lf": "https://example.com/\nx",
    "cr": "https://example.com/\rx",
    "nul": "https://example.com/\x00",
    "zero-width-space": "https://example.com/\u200b",
    "zero-width-joiner": "https://example.com/a\u200db",
    "zero-width-in-host": "https://exam\u200bple.com/",
    "bom": "\ufeffhttps://example.com/",
    "rtl-override": "https://example.com/\u202egpj.exe",
    "line-separator": "https://example.com/\u2028",
    "bad-port": "https://example.com:99999/",
    "empty": "",
    "own-host": "http://localhost/x",
    "own-host-upper": "HTTP://LOCALHOST/x",
    "own-host-trailing-dot": "http://localhost./x",
    "own-host-other-port": "https://localhost:8443/",
    "number": 5,
    "list": ["https://example.com/"],
    "null": None,
    "object": {"url": "https://example.com/"},
    "boolean": True,
}


@pytest.mark.parametrize("target", BAD_TARGETS.values(), ids=BAD_TARGETS.keys())
def test_bad_target_is_422_and_stores_nothing(client, alice, row_counts, target):
    before = row_counts()
    response = client.post(LINKS, json={"target": target}, auth=alice)
    body = assert_problem(response, 422, field="target")
    assert body["errors"]["target"] and all(isinstance(m, str) for m in body["errors"]["target"])
    assert row_counts() == before


def test_missing_target_is_422(client, alice, row_counts):
    before = row_counts()
    assert_problem(client.post(LINKS, json={"slug": "x"}, auth=alice), 422, field="target")
    assert row_counts() == before


def test_target_longer_than_configured_maximum_is_422(configured):
    client, carol = configured(MAX_TARGET_LENGTH=40)
    at_limit = EXAMPLE + "a" * (40 - len(EXAMPLE))
    assert create(client, carol, at_limit)["target"] == at_limit
    response = client.post(LINKS, json={"target": at_limit + "a"}, auth=carol)
    assert_problem(response, 422, field="target")
    listing = client.get(LINKS, auth=carol).get_json()
    assert [link["target"] for link in listing["links"]] == [at_limit]


def test_target_over_default_maximum_is_422(client, alice, row_counts):
    before = row_counts()
    response = client.post(LINKS, json={"target": EXAMPLE + "a" * 4096}, auth=alice)
    assert_problem(response, 422, field="target")
    assert row_counts() == before


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("https://BÜCHER.de/seite", "https://xn--bcher-kva.de/seite"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://example.com/?q=straße", "https://example.com/?q=stra%C3%9Fe"),
        ("https://example.com/a%0d%0aSet-Cookie:x", "https://example.com/a%0d%0aSet-Cookie:x"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://[2001:db8::1]/x", "https://[2001:db8::1]/x"),
    ],
)
def test_target_is_stored_in_ascii_form(client, alice, given, stored):
    body = create(client, alice, given, slug="t")
    assert body["target"] == stored
    assert fetch(client, alice, "t")["target"] == stored


# -- slug, title and redirect_status validation ------------------------------------------

BAD_SLUGS = {
    "empty": "",
    "too-long": "a" * 65,
    "space": "a b",
    "slash": "a/b",
    "dot": "a.b",
    "percent": "a%20b",
    "unicode": "café",
    "emoji": "🙂",
    "api": "api",
    "API": "API",
    "Api": "Api",
    "static": "static",
    "health": "health",
    "problems": "problems",
    "favicon": "favicon.ico",
    "robots": "robots.txt",
    "number": 5,
    "null": None,
    "list": ["abc"],
}


@pytest.mark.parametrize("slug", BAD_SLUGS.values(), ids=BAD_SLUGS.keys())
def test_bad_slug_is_422_and_stores_nothing(client, alice, row_counts, slug):
    before = row_counts()
    response = client.post(LINKS, json={"target": EXAMPLE, "slug": slug}, auth=alice)
    assert_problem(response, 422, field="slug")
    assert row_counts() == before


@pytest.mark.parametrize(
    "title", ["x" * 256, 5, ["a"], {"a": 1}], ids=["256", "int", "list", "obj"]
)
def test_bad_title_is_422_and_stores_nothing(client, alice, row_counts, title):
    before = row_counts()
    response = client.post(LINKS, json={"target": EXAMPLE, "title": title}, auth=alice)
    assert_problem(response, 422, field="title")
    assert row_counts() == before


CONTROL_TITLES = {
    "nul": "a\x00b",
    "lf": "a\nb",
    "crlf": "a\r\nb",
    "tab": "a\tb",
    "escape": "\x1b[31mred",
    "del": "a\x7fb",
    "c1-next-line": "a\x85b",
}


@pytest.mark.parametrize(
    ("method", "title"), post_all_then_put_and_patch(CONTROL_TITLES, "nul", "lf")
)
def test_title_with_control_characters_is_422(client, alice, row_counts, method, title):
    """PostgreSQL cannot store NUL at all; no control character belongs in a one-line label."""
    create(client, alice, slug="x", title="Keep")
    before = row_counts()
    url = LINKS if method == "post" else link_path("x")
    body = {"title": title} if method == "patch" else {"target": EXAMPLE, "title": title}
    response = getattr(client, method)(url, json=body, auth=alice)
    assert_problem(response, 422, field="title")
    assert row_counts() == before
    assert fetch(client, alice, "x")["title"] == "Keep"


def test_title_of_255_characters_and_unicode_is_kept(client, alice):
    title = "é" * 254 + "🙂"
    assert create(client, alice, title=title)["title"] == title


@pytest.mark.parametrize(
    "status", [200, 300, 304, 305, 306, 404, 0, -302, "302", 302.0, None, True]
)
def test_bad_redirect_status_is_422_and_stores_nothing(client, alice, row_counts, status):
    before = row_counts()
    response = client.post(LINKS, json={"target": EXAMPLE, "redirect_status": status}, auth=alice)
    assert_problem(response, 422, field="redirect_status")
    assert row_counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("visit_count", 100),
        ("owner", "http://localhost/api/v1.0/users/bob"),
        ("uri", "http://localhost/api/v1.0/links/x"),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("updated_at", "2020-01-01T00:00:00Z"),
        ("short_url", "http://localhost/x"),
        ("id", 1),
        ("colour", "blue"),
    ],
)
def test_unknown_and_server_owned_fields_are_422_naming_the_field(
    client, alice, row_counts, field, value
):
    before = row_counts()
    response = client.post(LINKS, json={"target": EXAMPLE, field: value}, auth=alice)
    assert_problem(response, 422, field=field)
    assert row_counts() == before


def test_every_invalid_field_is_reported_at_once(client, alice, row_counts):
    before = row_counts()
    response = client.post(
        LINKS,
        json={"target": "ftp://x", "slug": "a.b", "title": "x" * 300, "redirect_status": 200},
        auth=alice,
    )
    body = assert_problem(response, 422)
    assert {"target", "slug", "title", "redirect_status"} <= set(body["errors"])
    assert row_counts() == before


# -- GET /api/v1.0/links/<slug> -----------------------------------------------------------


def test_get_returns_the_representation(client, alice):
    created = create(client, alice, slug="mine", title="Mine", redirect_status=308)
    response = client.get(link_path("mine"), auth=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == created


def test_another_users_link_is_404_like_a_missing_one(client, alice, bob):
    create(client, alice, slug="private", target="https://secret.example/")
    hidden = client.get(link_path("private"), auth=bob)
    missing = client.get(link_path("nothing"), auth=bob)
    hidden_body = assert_problem(hidden, 404)
    missing_body = assert_problem(missing, 404)
    assert hidden_body["type"] == missing_body["type"]
    assert hidden_body["title"] == missing_body["title"]
    assert "secret.example" not in hidden.get_data(as_text=True)


def test_admin_sees_any_link(client, alice, admin):
    created = create(client, alice, slug="alices")
    assert fetch(client, admin, "alices") == created


@pytest.mark.parametrize("slug", ["a.b", "a" * 65, "caf%C3%A9", "%00", "a%00b", "%20"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_malformed_slug_in_the_path_is_404(client, alice, row_counts, method, slug):
    """Never reaches the database with a value it would choke on (NUL on PostgreSQL)."""
    create(client, alice)
    before = row_counts()
    response = getattr(client, method)(link_path(slug), json={"title": "x"}, auth=alice)
    assert_problem(response, 404)
    assert row_counts() == before


# -- PUT ------------------------------------------------------------------------------------


def test_put_replaces_every_mutable_field_and_resets_omitted_ones(client, alice):
    created = create(
        client, alice, slug="p", target="https://old.example/", title="Old", redirect_status=301
    )
    response = client.put(link_path("p"), json={"target": "https://new.example/"}, auth=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["target"] == "https://new.example/"
    assert body["title"] is None
    assert body["redirect_status"] == 302
    assert body["uri"] == created["uri"] and body["slug"] == "p"
    assert body["created_at"] == created["created_at"]
    assert parse_time(body["updated_at"]) >= parse_time(created["updated_at"])
    assert fetch(client, alice, "p") == body


def test_put_sets_every_given_field(client, alice):
    create(client, alice, slug="p")
    response = client.put(
        link_path("p"),
        json={"target": "https://new.example/", "title": "New", "redirect_status": 307},
        auth=alice,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["target"], body["title"], body["redirect_status"]) == (
        "https://new.example/",
        "New",
        307,
    )


def test_put_on_a_free_slug_creates_it_and_rerunning_is_safe(client, alice, row_counts):
    request = {"target": "https://example.com/put", "title": "Put", "redirect_status": 301}
    first = client.put(link_path("fresh"), json=request, auth=alice)
    assert first.status_code == 201
    body = first.get_json()
    assert first.headers["Location"] == body["uri"] == f"{BASE}/api/v1.0/links/fresh"
    assert set(body) == REPRESENTATION_FIELDS
    assert body["owner"] == f"{BASE}/api/v1.0/users/alice"
    assert row_counts()["links"] == 1

    again = client.put(link_path("fresh"), json=request, auth=alice)
    assert again.status_code == 200
    assert "Location" not in again.headers
    second = again.get_json()
    assert {k: v for k, v in second.items() if k != "updated_at"} == {
        k: v for k, v in body.items() if k != "updated_at"
    }
    assert row_counts()["links"] == 1


def test_put_with_the_same_slug_in_the_body_is_accepted(client, alice):
    response = client.put(link_path("same"), json={"target": EXAMPLE, "slug": "same"}, auth=alice)
    assert response.status_code == 201


def test_put_on_another_users_slug_is_409_without_revealing_it(client, alice, bob):
    create(client, alice, slug="hers", target="https://secret.example/path", title="Hers")
    response = client.put(link_path("hers"), json={"target": "https://bob.example/"}, auth=bob)
    assert_problem(response, 409)
    text = response.get_data(as_text=True)
    assert "secret.example" not in text and "Hers" not in text
    unchanged = fetch(client, alice, "hers")
    assert unchanged["target"] == "https://secret.example/path"
    assert unchanged["title"] == "Hers"


def test_admin_put_replaces_fields_but_keeps_the_owner(client, alice, admin):
    create(client, alice, slug="hers")
    response = client.put(link_path("hers"), json={"target": "https://admin.example/"}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["owner"] == f"{BASE}/api/v1.0/users/alice"


def test_put_with_a_different_slug_in_the_body_is_422(client, alice, row_counts):
    create(client, alice, slug="fixed")
    before = row_counts()
    response = client.put(
        link_path("fixed"), json={"target": "https://new.example/", "slug": "other"}, auth=alice
    )
    assert_problem(response, 422, field="slug")
    assert row_counts() == before
    assert fetch(client, alice, "fixed")["target"] == EXAMPLE
    assert_problem(client.get(link_path("other"), auth=alice), 404)


@pytest.mark.parametrize(
    "slug",
    ["a.b", "a" * 65, "a%20b", "caf%C3%A9", "%00", "api", "API", "static", "health", "problems"],
)
def test_put_with_an_invalid_or_reserved_slug_in_the_path_is_422(client, alice, row_counts, slug):
    before = row_counts()
    response = client.put(link_path(slug), json={"target": EXAMPLE}, auth=alice)
    assert_problem(response, 422, field="slug")
    assert row_counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "no target"},
        {"target": "ftp://example.com/"},
        {"target": EXAMPLE, "redirect_status": 200},
        {"target": EXAMPLE, "title": "x" * 256},
        {"target": EXAMPLE, "visit_count": 5},
    ],
    ids=["empty", "no-target", "bad-target", "bad-status", "long-title", "server-field"],
)
def test_put_with_bad_fields_is_422_and_changes_nothing(client, alice, row_counts, body):
    created = create(client, alice, slug="keep", title="Keep")
    before = row_counts()
    assert_problem(client.put(link_path("keep"), json=body, auth=alice), 422)
    assert_problem(client.put(link_path("new"), json=body, auth=alice), 422)
    assert row_counts() == before
    assert fetch(client, alice, "keep") == created


# -- PATCH ----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_given(client, alice):
    created = create(
        client, alice, slug="pt", target="https://old.example/", title="Old", redirect_status=301
    )
    response = client.patch(link_path("pt"), json={"redirect_status": 308}, auth=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["redirect_status"] == 308
    assert body["target"] == "https://old.example/" and body["title"] == "Old"
    assert body["created_at"] == created["created_at"]
    assert parse_time(body["updated_at"]) >= parse_time(created["updated_at"])

    body = client.patch(link_path("pt"), json={"target": "https://new.example/"}, auth=alice)
    body = body.get_json()
    assert body["target"] == "https://new.example/"
    assert body["title"] == "Old" and body["redirect_status"] == 308

    body = client.patch(link_path("pt"), json={"title": "New"}, auth=alice).get_json()
    assert (body["target"], body["title"], body["redirect_status"]) == (
        "https://new.example/",
        "New",
        308,
    )
    assert body["created_at"] == created["created_at"]
    assert fetch(client, alice, "pt") == body


def test_patch_null_title_clears_it(client, alice):
    create(client, alice, slug="t", title="Something")
    response = client.patch(link_path("t"), json={"title": None}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["title"] is None
    assert fetch(client, alice, "t")["title"] is None


def test_patch_normalizes_the_new_target(client, alice):
    create(client, alice, slug="t")
    body = client.patch(link_path("t"), json={"target": "https://bücher.de/"}, auth=alice)
    assert body.get_json()["target"] == "https://xn--bcher-kva.de/"


def test_patch_timestamps_never_go_back(client, alice):
    created = create(client, alice, slug="t")
    previous = parse_time(created["updated_at"])
    for number in range(3):
        body = client.patch(link_path("t"), json={"title": f"v{number}"}, auth=alice).get_json()
        assert body["created_at"] == created["created_at"]
        current = parse_time(body["updated_at"])
        assert current >= previous
        previous = current


def test_patch_with_the_same_slug_is_accepted(client, alice):
    create(client, alice, slug="same")
    response = client.patch(link_path("same"), json={"slug": "same", "title": "T"}, auth=alice)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "renamed"},
        {"target": "javascript:alert(1)"},
        {"target": "http://localhost/loop"},
        {"target": None},
        {"target": 5},
        {"title": "x" * 256},
        {"title": 5},
        {"redirect_status": 200},
        {"redirect_status": "302"},
        {"redirect_status": None},
        {"visit_count": 0},
        {"owner": "http://localhost/api/v1.0/users/bob"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"colour": "blue"},
        {"title": "fine", "redirect_status": 999},
    ],
)
def test_patch_with_bad_fields_is_422_and_changes_nothing(client, alice, row_counts, body):
    created = create(client, alice, slug="keep", title="Keep", redirect_status=307)
    before = row_counts()
    response = client.patch(link_path("keep"), json=body, auth=alice)
    problem = assert_problem(response, 422)
    bad_fields = set(body) - {"title"} if "redirect_status" in body else set(body)
    assert bad_fields <= set(problem["errors"]), problem
    assert row_counts() == before
    assert fetch(client, alice, "keep") == created
    assert_problem(client.get(link_path("renamed"), auth=alice), 404)


def test_patch_of_another_users_link_is_404_and_changes_nothing(client, alice, bob):
    created = create(client, alice, slug="hers")
    response = client.patch(link_path("hers"), json={"title": "Bob was here"}, auth=bob)
    assert_problem(response, 404)
    assert fetch(client, alice, "hers") == created


def test_patch_of_a_missing_link_is_404(client, alice, row_counts):
    before = row_counts()
    assert_problem(client.patch(link_path("nothing"), json={"title": "x"}, auth=alice), 404)
    assert row_counts() == before


def test_admin_patch_keeps_the_owner(client, alice, admin):
    create(client, alice, slug="hers")
    response = client.patch(link_path("hers"), json={"title": "Moderated"}, auth=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert body["title"] == "Moderated"
    assert body["owner"] == f"{BASE}/api/v1.0/users/alice"


# -- DELETE ---------------------------------------------------------------------------------


def test_delete_is_204_with_an_empty_body_then_everything_is_404(client, alice, row_counts):
    create(client, alice, slug="gone")
    response = client.delete(link_path("gone"), auth=alice)
    assert response.status_code == 204
    assert response.data == b""
    assert row_counts()["links"] == 0
    assert_problem(client.get(link_path("gone"), auth=alice), 404)
    assert_problem(client.get("/gone"), 404)
    assert_problem(client.delete(link_path("gone"), auth=alice), 404)


def test_delete_of_another_users_link_is_404_and_keeps_it(client, alice, bob):
    created = create(client, alice, slug="hers")
    assert_problem(client.delete(link_path("hers"), auth=bob), 404)
    assert fetch(client, alice, "hers") == created
    assert client.get("/hers").status_code == 302


def test_deleted_slug_can_be_created_again(client, alice):
    create(client, alice, slug="again", target="https://one.example/")
    assert client.delete(link_path("again"), auth=alice).status_code == 204
    assert create(client, alice, slug="again", target="https://two.example/")["visit_count"] == 0


# -- GET /api/v1.0/links --------------------------------------------------------------------


def test_list_envelope_is_newest_first(client, alice):
    slugs = [create(client, alice, slug=f"s{number}")["slug"] for number in range(4)]
    response = client.get(LINKS, auth=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"uri", "links", "next"}
    assert body["uri"] == f"{BASE}/api/v1.0/links"
    assert body["next"] is None
    assert "Link" not in response.headers
    assert [link["slug"] for link in body["links"]] == slugs[::-1]
    assert body["links"][0] == fetch(client, alice, "s3")


def test_list_is_empty_for_a_user_without_links(client, alice):
    body = client.get(LINKS, auth=alice).get_json()
    assert body == {"uri": f"{BASE}/api/v1.0/links", "links": [], "next": None}


def test_list_limit_defaults_to_50(client, alice):
    for _ in range(51):
        create(client, alice)
    first = client.get(LINKS, auth=alice).get_json()
    assert len(first["links"]) == 50 and first["next"]
    rest = client.get(first["next"], auth=alice).get_json()
    assert len(rest["links"]) == 1 and rest["next"] is None


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_list_limit_bounds_are_accepted(client, alice, limit):
    create(client, alice)
    response = client.get(f"{LINKS}?limit={limit}", auth=alice)
    assert response.status_code == 200
    assert len(response.get_json()["links"]) == 1


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "", "1e2", " 5", "٣"])
def test_list_bad_limit_is_400_naming_limit(client, alice, limit):
    response = client.get(LINKS, query_string={"limit": limit}, auth=alice)
    assert_problem(response, 400, field="limit")


@pytest.mark.parametrize("query", ["page=2", "offset=10", "order=slug", "limit=5&foo=bar"])
def test_list_unknown_parameter_is_400(client, alice, query):
    response = client.get(f"{LINKS}?{query}", auth=alice)
    body = assert_problem(response, 400)
    assert query.split("&")[-1].split("=")[0] in body["errors"]


def test_list_repeated_parameter_is_400(client, alice):
    assert_problem(client.get(f"{LINKS}?limit=1&limit=2", auth=alice), 400, field="limit")


def test_list_pages_through_every_link_exactly_once(client, alice, bob):
    created = [create(client, alice)["slug"] for _ in range(7)]
    create(client, bob)  # someone else's link never shows up in alice's pages
    seen, pages = [], 0
    url = f"{LINKS}?limit=3"
    while url is not None:
        response = client.get(url, auth=alice)
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {"uri", "links", "next"}
        assert body["uri"].startswith(f"{BASE}/api/v1.0/links?") and "limit=3" in body["uri"]
        pages += 1
        seen += [link["slug"] for link in body["links"]]
        if body["next"] is None:
            assert "Link" not in response.headers
        else:
            assert body["next"].startswith(f"{BASE}/api/v1.0/links?")
            assert "limit=3" in body["next"] and "cursor=" in body["next"]
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        url = body["next"]
    assert pages == 3
    assert seen == created[::-1]


def test_exactly_full_last_page_has_no_next(client, alice):
    for _ in range(4):
        create(client, alice)
    first = client.get(f"{LINKS}?limit=2", auth=alice).get_json()
    second = client.get(first["next"], auth=alice)
    assert len(second.get_json()["links"]) == 2
    assert second.get_json()["next"] is None, "no next link may lead to an empty page"
    assert "Link" not in second.headers


def test_pagination_survives_deletes_and_inserts_between_pages(client, alice):
    for number in range(6):
        create(client, alice, slug=f"k{number}")
    first = client.get(f"{LINKS}?limit=2", auth=alice).get_json()
    assert [link["slug"] for link in first["links"]] == ["k5", "k4"]
    create(client, alice, slug="newer")
    client.delete(link_path("k3"), auth=alice)
    rest = []
    url = first["next"]
    while url:
        body = client.get(url, auth=alice).get_json()
        rest += [link["slug"] for link in body["links"]]
        url = body["next"]
    assert rest == ["k2", "k1", "k0"]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "djE6MA", "djE6LTE", "djE6YWJj", "v1:5", "MTIz", "djE6NQ==", "%%%", "djE6NQ!"],
)
def test_list_forged_cursor_is_400_naming_cursor(client, alice, cursor):
    create(client, alice)
    response = client.get(LINKS, query_string={"cursor": cursor}, auth=alice)
    assert_problem(response, 400, field="cursor")


def test_regular_user_sees_only_their_links(client, alice, bob):
    create(client, alice, slug="a1")
    create(client, bob, slug="b1")
    create(client, alice, slug="a2")
    alice_slugs = [link["slug"] for link in client.get(LINKS, auth=alice).get_json()["links"]]
    bob_slugs = [link["slug"] for link in client.get(LINKS, auth=bob).get_json()["links"]]
    assert alice_slugs == ["a2", "a1"]
    assert bob_slugs == ["b1"]


def test_admin_sees_all_links_and_filters_by_owner(client, alice, bob, admin):
    create(client, alice, slug="a1")
    create(client, bob, slug="b1")
    create(client, admin, slug="x1")
    everything = client.get(LINKS, auth=admin).get_json()
    assert [link["slug"] for link in everything["links"]] == ["x1", "b1", "a1"]

    response = client.get(f"{LINKS}?owner=alice", auth=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert [link["slug"] for link in body["links"]] == ["a1"]
    assert body["uri"] == f"{BASE}/api/v1.0/links?owner=alice"

    nobody = client.get(f"{LINKS}?owner=nobody", auth=admin).get_json()
    assert nobody["links"] == [] and nobody["next"] is None


def test_admin_owner_filter_is_kept_across_pages(client, alice, bob, admin):
    for _ in range(3):
        create(client, alice)
        create(client, bob)
    first = client.get(f"{LINKS}?owner=bob&limit=2", auth=admin).get_json()
    assert "owner=bob" in first["next"]
    second = client.get(first["next"], auth=admin).get_json()
    owners = {link["owner"] for link in first["links"] + second["links"]}
    assert owners == {f"{BASE}/api/v1.0/users/bob"}
    assert len(first["links"] + second["links"]) == 3


def test_non_admin_owner_filter_never_shows_others_links(client, alice, bob):
    create(client, bob, slug="bobs")
    create(client, alice, slug="alices")
    response = client.get(f"{LINKS}?owner=bob", auth=alice)
    assert response.status_code == 200
    assert response.get_json()["links"] == []
    own = client.get(f"{LINKS}?owner=alice", auth=alice).get_json()
    assert [link["slug"] for link in own["links"]] == ["alices"]


@pytest.mark.parametrize("owner", ["%00", "a%00b", "", "-alice", "a%20b", "x" * 65])
def test_owner_filter_that_no_user_can_have_is_400(client, alice, admin, owner):
    """A name that cannot exist is a bad parameter, not a query that might fail on PostgreSQL."""
    create(client, alice)
    assert_problem(client.get(f"{LINKS}?owner={owner}", auth=admin), 400, field="owner")


def test_users_links_uri_lists_their_links(client, alice, admin):
    create(client, alice, slug="a1")
    create(client, admin, slug="x1")
    links_uri = client.get(f"{BASE}/api/v1.0/users/alice", auth=admin).get_json()["links"]
    body = client.get(links_uri, auth=admin).get_json()
    assert [link["slug"] for link in body["links"]] == ["a1"]


# -- request bodies -------------------------------------------------------------------------

GOOD_BODY = json.dumps({"target": EXAMPLE})


WRONG_CONTENT_TYPES = {
    "none": {},
    "text": {"Content-Type": "text/plain"},
    "form": {"Content-Type": "application/x-www-form-urlencoded"},
    "multipart": {"Content-Type": "multipart/form-data; boundary=x"},
    "xml": {"Content-Type": "application/xml"},
}


@pytest.mark.parametrize(
    ("method", "headers"), post_all_then_put_and_patch(WRONG_CONTENT_TYPES, "none", "text")
)
def test_wrong_content_type_is_415(client, alice, row_counts, method, headers):
    create(client, alice, slug="x")
    before = row_counts()
    url = LINKS if method == "post" else link_path("x")
    response = getattr(client, method)(url, data=GOOD_BODY, headers=headers, auth=alice)
    assert_problem(response, 415)
    assert row_counts() == before


def test_json_with_charset_is_accepted(client, alice):
    response = client.post(
        LINKS,
        data=GOOD_BODY,
        headers={"Content-Type": "application/json; charset=utf-8"},
        auth=alice,
    )
    assert response.status_code == 201


MALFORMED = {
    "truncated": b'{"target": "https://example.com/"',
    "empty": b"",
    "duplicate-keys": b'{"target": "https://a.example/", "target": "https://b.example/"}',
    "trailing-garbage": b'{"target": "https://example.com/"} x',
    "two-documents": b'{"target": "https://example.com/"}{}',
    "nan": b'{"target": "https://example.com/", "redirect_status": NaN}',
    "infinity": b'{"target": "https://example.com/", "redirect_status": Infinity}',
    "single-quotes": b"{'target': 'https://example.com/'}",
    "invalid-utf8": b'{"target": "https://example.com/\xff"}',
    "trailing-comma": b'{"target": "https://example.com/",}',
    "lone-surrogate-in-title": b'{"target": "https://example.com/", "title": "a\\ud800b"}',
    "lone-surrogate-in-target": b'{"target": "https://example.com/\\udfff"}',
    "lone-surrogate-in-key": b'{"target": "https://example.com/", "\\ud800": 1}',
}


@pytest.mark.parametrize(
    ("method", "raw"),
    post_all_then_put_and_patch(
        MALFORMED, "truncated", "duplicate-keys", "nan", "lone-surrogate-in-title"
    ),
)
def test_malformed_json_is_400(client, alice, row_counts, method, raw):
    create(client, alice, slug="x", title="Keep")
    before = row_counts()
    url = LINKS if method == "post" else link_path("x")
    response = getattr(client, method)(url, data=raw, headers=JSON_HEADERS, auth=alice)
    assert_problem(response, 400)
    assert row_counts() == before
    assert fetch(client, alice, "x")["title"] == "Keep"


NOT_OBJECTS = {
    "array": b"[]",
    "string": b'"x"',
    "null": b"null",
    "number": b"5",
    "boolean": b"true",
    "array-of-object": b'[{"target": "https://example.com/"}]',
}


@pytest.mark.parametrize(
    ("method", "raw"), post_all_then_put_and_patch(NOT_OBJECTS, "array", "null")
)
def test_json_that_is_not_an_object_is_422(client, alice, row_counts, method, raw):
    create(client, alice, slug="x", title="Keep")
    before = row_counts()
    url = LINKS if method == "post" else link_path("x")
    response = getattr(client, method)(url, data=raw, headers=JSON_HEADERS, auth=alice)
    assert_problem(response, 422)
    assert row_counts() == before
    assert fetch(client, alice, "x")["title"] == "Keep"


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_body_over_64_kib_is_413(client, alice, row_counts, method):
    create(client, alice, slug="x", title="Keep")
    before = row_counts()
    raw = json.dumps({"target": EXAMPLE, "title": "x" * (64 * 1024)})
    url = LINKS if method == "post" else link_path("x")
    response = getattr(client, method)(url, data=raw, headers=JSON_HEADERS, auth=alice)
    assert_problem(response, 413)
    assert row_counts() == before
    assert fetch(client, alice, "x")["title"] == "Keep"


@pytest.mark.parametrize("if_match", ['""', '"0.0", ""', 'W/"x", ""'])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_if_match_with_the_empty_entity_tag_is_412_not_500(client, alice, method, if_match):
    """``""`` is a valid entity tag that matches nothing (found by schemathesis: a 500)."""
    create(client, alice, slug="tagged")
    body = {"target": EXAMPLE} if method != "delete" else None
    response = getattr(client, method)(
        link_path("tagged"), json=body, auth=alice, headers={"If-Match": if_match}
    )
    assert_problem(response, 412)
    assert fetch(client, alice, "tagged")["target"] == EXAMPLE
