"""An encoded slash (``%2F``) is not a path separator: ``/api%2fv1.0%2flinks`` is one path
segment, and no route has a segment that may hold a slash, so it is a 404 problem, not the
links collection. A ``%2F`` in the query string is data like any other."""

from __future__ import annotations

import pytest
import requests
from support import assert_problem

LINKS = "/api/v1.0/links"
ENCODED_PATHS = [
    "/api%2fv1.0%2flinks",
    "/api%2Fv1.0%2Flinks",
    "/api/v1.0%2flinks",
    "/api/v1.0/links%2Fdocs",
    "/api/v1.0/links/docs%2fvisits",
    "/api/v1.0/users%2f",
    "/health%2fready",
    "/docs%2F",
    "/%2Fdocs",
]


@pytest.fixture
def docs_link(client, alice):
    created = client.post(
        LINKS, json={"target": "https://example.com/", "slug": "docs"}, auth=alice
    )
    assert created.status_code == 201
    return "docs"


def test_an_encoded_slash_in_the_path_is_404(client, alice, docs_link):
    for path in ENCODED_PATHS:
        for method in ("GET", "POST", "DELETE"):
            response = client.open(
                path, method=method, auth=alice, json={} if method == "POST" else None
            )
            assert_problem(response, 404)
            assert "Location" not in response.headers


def test_an_encoded_slash_in_the_query_is_fine(client, alice, docs_link):
    redirect = client.get("/docs?from=%2Fhome%2F")
    assert redirect.status_code == 302
    # An owner whose name holds a slash: looked for (and not found as a user), not a 404 route.
    listing = client.get(f"{LINKS}?owner=a%2Fb", auth=alice)
    assert listing.status_code != 404 or "owner" in listing.get_json().get("detail", "")


def test_plain_paths_still_route(client, alice, docs_link):
    assert client.get(LINKS, auth=alice).status_code == 200
    assert client.get(f"{LINKS}/docs", auth=alice).status_code == 200
    assert client.get("/docs").status_code == 302


@pytest.mark.integration
def test_the_live_server_answers_404_to_encoded_slashes(shared_live_server):
    server = shared_live_server
    user = server.create_user("encoded-slashes")
    assert requests.get(server.url + LINKS, auth=user, timeout=30).status_code == 200
    for path in ENCODED_PATHS:
        response = requests.get(server.url + path, auth=user, timeout=30, allow_redirects=False)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json")
