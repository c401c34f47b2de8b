"""GET /api/v1.0/: the public entry point a client starts from."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

ROOT = "/api/v1.0/"


def test_root_is_public_and_names_every_collection(client):
    """A client without credentials must be able to discover where to go next."""
    response = client.get(ROOT)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "uri": "http://localhost/api/v1.0/",
        "links": "http://localhost/api/v1.0/links",
        "users": "http://localhost/api/v1.0/users",
        "stats": "http://localhost/api/v1.0/stats",
        "history": "http://localhost/api/v1.0/history",
        "tokens": "http://localhost/api/v1.0/tokens",
        "webhooks": "http://localhost/api/v1.0/webhooks",
        "openapi": "http://localhost/api/v1.0/openapi.json",
        "docs": "http://localhost/api/v1.0/docs",
        "link": "http://localhost/api/v1.0/links/{slug}",
        "user": "http://localhost/api/v1.0/users/{username}",
    }


def test_root_with_credentials_names_the_caller_as_me(client, alice):
    body = client.get(ROOT, auth=alice).get_json()
    assert body["me"] == "http://localhost/api/v1.0/users/alice"
    assert client.get(body["me"], auth=alice).get_json()["username"] == "alice"


def test_root_with_a_token_of_any_scope_names_me(client, alice):
    token = client.post(
        "/api/v1.0/tokens", json={"name": "t", "scopes": ["stats:read"]}, auth=alice
    ).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get(ROOT, headers=headers).get_json()["me"]
    assert client.get(me, headers=headers).status_code == 200


def test_root_with_bad_credentials_has_no_me(client):
    response = client.get(ROOT, auth=("nobody", "wrong password"))
    assert response.status_code == 200
    assert "me" not in response.get_json()


def test_root_templates_expand_to_the_resources(client, alice):
    client.post(
        "/api/v1.0/links", json={"target": "https://example.com/", "slug": "x1"}, auth=alice
    )
    template = client.get(ROOT).get_json()["link"]
    assert client.get(template.replace("{slug}", "x1"), auth=alice).status_code == 200
    user = client.get(ROOT).get_json()["user"].replace("{username}", "alice")
    assert client.get(user, auth=alice).status_code == 200


def test_root_uris_are_absolute(client):
    """Every URI-valued field is absolute, so a client never joins paths itself."""
    for uri in client.get(ROOT).get_json().values():
        parts = urlsplit(uri)
        assert parts.scheme == "http" and parts.netloc == "localhost", uri


def test_root_uris_follow_the_request_host(client):
    """Without SHORTENER_PUBLIC_URL the URIs use the host the client asked."""
    body = client.get(ROOT, base_url="https://api.example.org:8443").get_json()
    assert body["uri"] == "https://api.example.org:8443/api/v1.0/"
    assert body["links"] == "https://api.example.org:8443/api/v1.0/links"
    assert body["users"] == "https://api.example.org:8443/api/v1.0/users"


def test_root_uri_is_itself(client):
    body = client.get(ROOT).get_json()
    again = client.get(body["uri"])
    assert again.status_code == 200
    assert again.get_json() == body


def test_root_stats_resolve_for_an_admin(client, admin):
    uri = client.get(ROOT).get_json()["stats"]
    response = client.get(uri, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["uri"] == uri


@pytest.mark.parametrize("name", ["links", "users", "tokens"])
def test_root_links_resolve_with_credentials(client, admin, name):
    """Following a root link with credentials lands on that collection."""
    uri = client.get(ROOT).get_json()[name]
    response = client.get(uri, auth=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert body["uri"] == uri
    assert isinstance(body[name], list)


@pytest.mark.parametrize("name", ["links", "users", "stats", "tokens"])
def test_root_links_need_credentials(client, name):
    """Only the root is public: what it points to asks for Basic auth or a Bearer token."""
    uri = client.get(ROOT).get_json()[name]
    response = client.get(uri)
    assert response.status_code == 401
    assert response.headers.getlist("WWW-Authenticate") == [
        'Basic realm="shortener"',
        'Bearer realm="shortener"',
    ]


def test_root_ignores_credentials(client, alice):
    """Credentials on the public root are harmless (and wrong ones do not lock it)."""
    assert client.get(ROOT, auth=alice).status_code == 200
    assert client.get(ROOT, auth=("alice", "wrong password")).status_code == 200


def test_root_without_trailing_slash_reaches_the_root(client):
    """``/api/v1.0`` is what a person types; it must not be a dead end."""
    response = client.get("/api/v1.0", follow_redirects=True)
    assert response.status_code == 200
    assert response.get_json()["uri"] == "http://localhost/api/v1.0/"


def test_bare_host_points_at_the_api_root(client):
    """By its absolute URI, as the document's ``format: uri`` says (schemathesis found a
    relative one)."""
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "http://localhost" + ROOT
