"""Case 7: bob, signed in, goes after alice's link, alice's account and the admin's routes. He
learns nothing (404, never 403, for her link; a 409 that does not show her target) and changes
nothing; method-override headers are ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from shortener.services.link_finding import encode_position

from .conftest import API, LINKS, USERS, assert_problem, cast_of

pytestmark = pytest.mark.integration

# Named after this module: other modules share the server.
CAST = cast_of(__name__)

ALICES_LINK = f"{LINKS}/{CAST.alices_link}"
ALICES_TARGET = "https://example.com/alice/secret-plan"
TOKENS = f"{API}/tokens"


def assert_reveals_nothing(response) -> None:
    """Not her target, nor who owns the link (the slug itself the client already knows)."""
    for secret in ("secret-plan", "example.com/alice", "users/alice"):
        assert secret not in response.text, response.text


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", ALICES_LINK, None),
        ("HEAD", ALICES_LINK, None),
        ("PATCH", ALICES_LINK, {"target": "https://evil.example/"}),
        ("PATCH", ALICES_LINK, {"title": "owned"}),
        ("PATCH", ALICES_LINK, {}),
        ("DELETE", ALICES_LINK, None),
        ("GET", f"{ALICES_LINK}/visits", None),
        ("GET", f"{ALICES_LINK}/stats", None),
        ("GET", f"{ALICES_LINK}/stats?interval=hour", None),
    ],
)
def test_bob_gets_404_for_alices_link(battery, method, path, body):
    with battery.storage.unchanged():
        response = battery.call(method, path, auth=battery.bob, json=body)
        if method == "HEAD":
            assert response.status_code == 404
        else:
            assert_problem(response, 404)
            assert_reveals_nothing(response)
    assert battery.get_link(CAST.alices_link, battery.alice) == battery.links["alice"]


@pytest.mark.parametrize(
    "body",
    [
        {"target": "https://evil.example/"},
        {"target": "https://evil.example/", "title": "owned", "redirect_status": 301},
    ],
)
def test_bobs_put_on_alices_slug_is_409_without_her_target(battery, body):
    with battery.storage.unchanged():
        response = battery.call("PUT", ALICES_LINK, auth=battery.bob, json=body)
        problem = assert_problem(response, 409)
        assert problem["type"].endswith("/problems/slug-taken")
        assert_reveals_nothing(response)
        assert "Location" not in response.headers


def test_bobs_post_of_alices_slug_is_409_without_her_target(battery):
    with battery.storage.unchanged():
        response = battery.call(
            "POST",
            LINKS,
            auth=battery.bob,
            json={"target": "https://x.example/", "slug": CAST.alices_link},
        )
        assert_problem(response, 409)
        assert_reveals_nothing(response)


@pytest.mark.parametrize(
    "query",
    [
        {"owner": CAST.alice},
        {"owner": "admin"},
        {"owner": CAST.alice, "limit": "1000"},
        {},
    ],
)
def test_bobs_listings_show_nothing_of_alices(battery, query):
    with battery.storage.unchanged():
        response = battery.call("GET", LINKS, auth=battery.bob, params=query)
        assert response.status_code == 200, response.text
        slugs = {link["slug"] for link in response.json()["links"]}
        assert CAST.alices_link not in slugs
        assert slugs <= {CAST.bobs_link}
        assert_reveals_nothing(response)


def test_bob_cannot_page_into_alices_links_with_a_cursor(battery):
    """A cursor past alice's newest link (of the default sort, newest first: a later time and
    a higher id than hers) still lists only bob's."""
    alices_id = battery.storage.link(CAST.alices_link)["id"]
    cursor = encode_position("-created", datetime(2100, 1, 1, tzinfo=UTC), alices_id + 1)
    with battery.storage.unchanged():
        response = battery.call("GET", LINKS, auth=battery.bob, params={"cursor": cursor})
        assert response.status_code == 200, response.text
        assert CAST.alices_link not in {link["slug"] for link in response.json()["links"]}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", USERS, None),
        ("POST", USERS, {"username": "mallory", "password": "long enough password"}),
        ("GET", f"{USERS}/{CAST.alice}", None),
        ("GET", f"{USERS}/admin", None),
        ("PATCH", f"{USERS}/{CAST.alice}", {"password": "bob knows it now"}),
        ("PATCH", f"{USERS}/admin", {"password": "bob knows it now"}),
        ("PATCH", f"{USERS}/{CAST.bob}", {"is_admin": True}),
        ("DELETE", f"{USERS}/{CAST.alice}", None),
        ("DELETE", f"{USERS}/{CAST.alice}?purge=true", None),
        ("DELETE", f"{USERS}/admin", None),
        ("GET", f"{API}/stats", None),
        ("GET", f"{TOKENS}?user={CAST.alice}", None),
        ("POST", f"{TOKENS}?user={CAST.alice}", {"name": "stolen"}),
        ("GET", f"{USERS}/nobody", None),
    ],
)
def test_non_admin_on_users_and_admin_routes_is_403(battery, method, path, body):
    with battery.storage.unchanged():
        response = battery.call(method, path, auth=battery.bob, json=body)
        assert_problem(response, 403)
        assert "alice/secret-plan" not in response.text


def test_bob_cannot_see_or_revoke_alices_token(battery):
    created = battery.call("POST", TOKENS, auth=battery.alice, json={"name": "alices"})
    assert created.status_code == 201, created.text
    path = urlsplit(created.json()["uri"]).path
    with battery.storage.unchanged():
        for method in ("GET", "DELETE"):
            response = battery.call(method, path, auth=battery.bob)
            assert_problem(response, 404)
        listing = battery.call("GET", TOKENS, auth=battery.bob)
        assert listing.status_code == 200
        assert "alices" not in listing.text
    assert battery.call("GET", path, auth=battery.alice).status_code == 200


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
@pytest.mark.parametrize("override", ["DELETE", "PUT", "PATCH"])
def test_method_override_headers_are_ignored(battery, header, override):
    """A GET stays a GET, whoever sends it; a POST to the item stays a 405."""
    with battery.storage.unchanged():
        for credentials in (battery.alice, battery.bob):
            response = battery.call(
                "GET", ALICES_LINK, auth=credentials, headers={header: override}
            )
            if credentials is battery.alice:
                assert response.status_code == 200
                assert response.json() == battery.links["alice"]
            else:
                assert_problem(response, 404)
        posted = battery.call(
            "POST",
            ALICES_LINK,
            auth=battery.bob,
            headers={header: override},
            json={"target": "https://evil.example/"},
        )
        assert_problem(posted, 405)
        query_override = battery.call(
            "GET", f"{ALICES_LINK}?_method={override}", auth=battery.alice
        )
        assert query_override.status_code == 200


def test_alices_data_is_intact_after_all_of_it(battery):
    """And her link still redirects to her target."""
    with battery.storage.unchanged(visits={CAST.alices_link: 1}):
        response = battery.call("GET", "/" + CAST.alices_link)
        assert response.status_code == 302
        assert response.headers["Location"] == ALICES_TARGET
    assert battery.get_link(CAST.alices_link, battery.alice)["target"] == ALICES_TARGET
