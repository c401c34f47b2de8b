"""Token scopes (issue 4): which scope each route needs, and what a token may grant."""

from __future__ import annotations

import pytest
from conftest import PASSWORD
from support import JSON_HEADERS, assert_problem
from test_links import REPRESENTATION_FIELDS

from shortener.services.actors import OPERATOR

BASE = "http://localhost"
TOKENS = "/api/v1.0/tokens"
LINKS = "/api/v1.0/links"
ALL_SCOPES = [
    "links:read",
    "links:write",
    "stats:read",
    "webhooks:read",
    "webhooks:write",
    "users:admin",
]
WEBHOOK = {"url": "https://example.com/hook", "events": ["link.created"]}
# Every field of the link representation, kept in one place.
LINK_FIELDS = REPRESENTATION_FIELDS
NEW_USER = {"username": "carol", "password": PASSWORD}
EXAMPLE_ORG = "https://example.org/"
CHANGED = {"title": "Changed"}

# (method, path, body, the scope it needs, the status with only that scope)
ROUTES = [
    ("GET", "/api/v1.0/links", None, "links:read", 200),
    ("POST", "/api/v1.0/links", {"target": "https://example.org/"}, "links:write", 201),
    ("POST", "/api/v1.0/links/batch", {"links": [{"target": EXAMPLE_ORG}]}, "links:write", 200),
    ("PATCH", "/api/v1.0/links/batch", {"slugs": ["docs"], "changes": CHANGED}, "links:write", 200),
    ("DELETE", "/api/v1.0/links/batch", {"slugs": ["docs"]}, "links:write", 200),
    ("GET", "/api/v1.0/links/docs", None, "links:read", 200),
    ("PUT", "/api/v1.0/links/docs", {"target": "https://example.org/"}, "links:write", 200),
    ("PATCH", "/api/v1.0/links/docs", {"title": "Changed"}, "links:write", 200),
    ("DELETE", "/api/v1.0/links/docs", None, "links:write", 204),
    ("GET", "/api/v1.0/links/docs/visits", None, "stats:read", 200),
    ("GET", "/api/v1.0/links/docs/stats", None, "stats:read", 200),
    ("GET", "/api/v1.0/links/export", None, "links:read", 200),
    ("GET", "/api/v1.0/links/docs/qr", None, "links:read", 200),
    ("GET", "/api/v1.0/links/docs/rules", None, "links:read", 200),
    ("PUT", "/api/v1.0/links/docs/rules", {"rules": []}, "links:write", 200),
    ("GET", "/api/v1.0/links/docs/history", None, "links:read", 200),
    ("GET", "/api/v1.0/history", None, "users:admin", 200),
    ("GET", "/api/v1.0/stats", None, "stats:read", 200),
    ("GET", "/api/v1.0/tags", None, "links:read", 200),
    # No tag "none": 404 shows the scope let the request through.
    ("PATCH", "/api/v1.0/tags/none", {"name": "other"}, "links:write", 404),
    ("DELETE", "/api/v1.0/tags/none", None, "links:write", 404),
    ("GET", "/api/v1.0/users", None, "users:admin", 200),
    ("POST", "/api/v1.0/users", NEW_USER, "users:admin", 201),
    ("PATCH", "/api/v1.0/users/alice", {"password": "another good password"}, "users:admin", 200),
    ("DELETE", "/api/v1.0/users/alice", None, "users:admin", 204),
    ("GET", "/api/v1.0/webhooks", None, "webhooks:read", 200),
    ("POST", "/api/v1.0/webhooks", WEBHOOK, "webhooks:write", 201),
    # No webhook 1: 404 shows the scope let the request through.
    ("GET", "/api/v1.0/webhooks/1", None, "webhooks:read", 404),
    ("PATCH", "/api/v1.0/webhooks/1", {"active": False}, "webhooks:write", 404),
    ("DELETE", "/api/v1.0/webhooks/1", None, "webhooks:write", 404),
    ("GET", "/api/v1.0/webhooks/1/deliveries", None, "webhooks:read", 404),
]
ROUTE_IDS = [f"{method} {path}" for method, path, *_ in ROUTES]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def new_token(client, auth, scopes: list[str] | None = None, **query) -> str:
    body = {"name": "test"} if scopes is None else {"name": "test", "scopes": scopes}
    response = client.post(TOKENS, json=body, auth=auth, query_string=query)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


def assert_missing_scope(response, scope: str) -> None:
    """403 problem+json naming the scope, and no challenge: the credential itself is fine."""
    body = assert_problem(response, 403)
    assert scope in body["detail"], body
    assert "WWW-Authenticate" not in response.headers


@pytest.fixture
def docs(client, admin, alice):
    """admin's link 'docs', alice as the user the /users routes act on."""
    response = client.post(
        LINKS, json={"target": "https://example.com/", "slug": "docs", "title": "Docs"}, auth=admin
    )
    assert response.status_code == 201
    return response.get_json()


def snapshot(client, admin) -> tuple:
    """Everything a refused request must leave alone."""
    return (
        client.get(f"{LINKS}?limit=1000", auth=admin).get_json()["links"],
        client.get("/api/v1.0/users?limit=1000", auth=admin).get_json()["users"],
        len(client.get(TOKENS, auth=admin).get_json()["tokens"]),
    )


# -- the scope of every route ----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body", "scope", "status"), ROUTES, ids=ROUTE_IDS)
def test_a_token_without_the_scope_gets_403_naming_it(
    client, admin, docs, method, path, body, scope, status
):
    secret = new_token(client, admin, [other for other in ALL_SCOPES if other != scope])
    before = snapshot(client, admin)
    response = client.open(path, method=method, json=body, headers=bearer(secret))
    assert_missing_scope(response, scope)
    assert snapshot(client, admin) == before


@pytest.mark.parametrize(("method", "path", "body", "scope", "status"), ROUTES, ids=ROUTE_IDS)
def test_the_one_scope_is_enough(client, admin, docs, method, path, body, scope, status):
    secret = new_token(client, admin, [scope])
    response = client.open(path, method=method, json=body, headers=bearer(secret))
    assert response.status_code == status, response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path", "body", "scope", "status"), ROUTES, ids=ROUTE_IDS)
def test_basic_auth_carries_every_scope(client, admin, docs, method, path, body, scope, status):
    response = client.open(path, method=method, json=body, auth=admin)
    assert response.status_code == status, response.get_data(as_text=True)


def test_head_needs_the_read_scope(client, alice):
    secret = new_token(client, alice, ["links:write"])
    response = client.head(LINKS, headers=bearer(secret))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert client.head(LINKS, auth=alice).status_code == 200


def test_the_scope_is_checked_before_the_body(client, alice, row_counts):
    """A read-only token learns nothing of how its body would have been judged."""
    secret = new_token(client, alice, ["links:read"])
    before = row_counts()
    for data, headers in [("not json", {"Content-Type": "text/plain"}), ("{", JSON_HEADERS)]:
        response = client.post(LINKS, data=data, headers={**headers, **bearer(secret)})
        assert_missing_scope(response, "links:write")
    response = client.post(LINKS, json={"visit_count": 9}, headers=bearer(secret))
    assert_missing_scope(response, "links:write")
    assert row_counts() == before


def test_default_scopes_do_everything_but_user_administration(client, alice):
    secret = new_token(client, alice)
    link = {"target": "https://example.com/", "slug": "mine"}
    created = client.post(LINKS, json=link, headers=bearer(secret))
    assert created.status_code == 201
    assert client.get(LINKS, headers=bearer(secret)).status_code == 200
    assert client.get(f"{LINKS}/mine/stats", headers=bearer(secret)).status_code == 200
    assert (
        client.patch(f"{LINKS}/mine", json={"title": "t"}, headers=bearer(secret)).status_code
        == 200
    )
    assert client.delete(f"{LINKS}/mine", headers=bearer(secret)).status_code == 204
    assert client.get("/api/v1.0/users/alice", headers=bearer(secret)).status_code == 200


# -- create-only and read-only tokens --------------------------------------------------------------
def test_a_create_only_token_creates_but_cannot_list(client, alice):
    secret = new_token(client, alice, ["links:write"])
    response = client.post(
        LINKS, json={"target": "https://example.com/", "slug": "made"}, headers=bearer(secret)
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == LINK_FIELDS
    assert response.headers["Location"] == body["uri"]
    assert body["owner"] == f"{BASE}/api/v1.0/users/alice"
    assert_missing_scope(client.get(LINKS, headers=bearer(secret)), "links:read")
    assert_missing_scope(client.get(f"{LINKS}/made", headers=bearer(secret)), "links:read")
    assert_missing_scope(client.get(f"{LINKS}/made/visits", headers=bearer(secret)), "stats:read")
    assert client.get(f"{LINKS}/made", auth=alice).status_code == 200


def test_a_read_only_token_changes_nothing(client, alice, row_counts):
    client.post(LINKS, json={"target": "https://example.com/", "slug": "keep"}, auth=alice)
    original = client.get(f"{LINKS}/keep", auth=alice).get_json()
    secret = new_token(client, alice, ["links:read"])
    before = row_counts()
    for method, path, body in [
        ("POST", LINKS, {"target": "https://example.org/"}),
        ("PUT", f"{LINKS}/keep", {"target": "https://example.org/"}),
        ("PUT", f"{LINKS}/fresh", {"target": "https://example.org/"}),
        ("PATCH", f"{LINKS}/keep", {"title": "changed"}),
        ("DELETE", f"{LINKS}/keep", None),
    ]:
        response = client.open(path, method=method, json=body, headers=bearer(secret))
        assert_missing_scope(response, "links:write")
    assert row_counts() == before
    assert client.get(f"{LINKS}/keep", headers=bearer(secret)).get_json() == original


# -- the admin rules still hold under scopes -------------------------------------------------------
def test_stats_read_does_not_make_a_user_an_admin(client, admin, alice):
    secret = new_token(client, alice, ["stats:read"])
    body = assert_problem(client.get("/api/v1.0/stats", headers=bearer(secret)), 403)
    assert "stats:read" not in body["detail"]


def test_any_token_reads_its_own_user_and_nothing_more(client, alice, bob):
    """A client finds out who it is ("me" in the root) with any credential; changing a user
    needs users:admin with a token, which only admins can hold."""
    secret = new_token(client, alice, ["stats:read"])
    mine = client.get("/api/v1.0/users/alice", headers=bearer(secret))
    assert mine.status_code == 200
    assert mine.get_json()["username"] == "alice"
    other = client.get("/api/v1.0/users/bob", headers=bearer(secret))
    assert other.status_code == 403
    assert other.mimetype == "application/problem+json"
    response = client.patch(
        "/api/v1.0/users/alice", json={"password": "a new good password"}, headers=bearer(secret)
    )
    assert_missing_scope(response, "users:admin")
    assert client.get("/api/v1.0/users/alice", auth=alice).status_code == 200
    assert client.get("/api/v1.0/users/alice", auth=("alice", PASSWORD)).status_code == 200


def test_an_admin_token_reads_everyones_links(client, admin, alice):
    client.post(LINKS, json={"target": "https://example.com/", "slug": "hers"}, auth=alice)
    secret = new_token(client, admin, ["links:read"])
    assert client.get(f"{LINKS}/hers", headers=bearer(secret)).status_code == 200


def test_a_demoted_admin_token_loses_users_admin(app, client, admin, make_user):
    make_user("root", admin=True)
    secret = new_token(client, ("root", PASSWORD), ["users:admin"])
    assert client.get("/api/v1.0/users", headers=bearer(secret)).status_code == 200
    app.extensions["shortener"].users.update(OPERATOR, "root", is_admin=False)
    assert_missing_scope(client.get("/api/v1.0/users", headers=bearer(secret)), "users:admin")


def test_an_admin_token_without_users_admin_manages_only_its_own_tokens(client, admin, alice):
    alices = client.post(TOKENS, json={"name": "hers"}, auth=alice).get_json()
    path = alices["uri"].removeprefix(BASE)
    secret = new_token(client, admin)
    assert client.get(TOKENS, headers=bearer(secret)).status_code == 200
    assert_problem(client.get(path, headers=bearer(secret)), 404)
    assert_problem(client.delete(path, headers=bearer(secret)), 404)
    assert_problem(client.get(f"{TOKENS}?user=alice", headers=bearer(secret)), 403)
    response = client.post(f"{TOKENS}?user=alice", json={"name": "x"}, headers=bearer(secret))
    assert_problem(response, 403)
    assert len(client.get(TOKENS, auth=alice).get_json()["tokens"]) == 1
    assert client.get(LINKS, headers=bearer(alices["token"])).status_code == 200


def test_an_admin_token_with_users_admin_manages_every_users_tokens(client, admin, alice):
    path = client.post(TOKENS, json={"name": "hers"}, auth=alice).get_json()["uri"]
    path = path.removeprefix(BASE)
    secret = new_token(client, admin, ["users:admin"])
    listed = client.get(f"{TOKENS}?user=alice", headers=bearer(secret)).get_json()["tokens"]
    assert [token["name"] for token in listed] == ["hers"]
    assert client.get(path, headers=bearer(secret)).status_code == 200
    assert client.delete(path, headers=bearer(secret)).status_code == 204


# -- what a token may grant ------------------------------------------------------------------------
def test_any_token_may_manage_its_users_tokens(client, alice):
    secret = new_token(client, alice, ["stats:read"])
    assert client.get(TOKENS, headers=bearer(secret)).status_code == 200
    body = {"name": "child", "scopes": ["stats:read"]}
    child = client.post(TOKENS, json=body, headers=bearer(secret))
    assert child.status_code == 201
    assert child.get_json()["owner"] == f"{BASE}/api/v1.0/users/alice"
    path = child.get_json()["uri"].removeprefix(BASE)
    assert client.delete(path, headers=bearer(secret)).status_code == 204


@pytest.mark.parametrize(
    ("own", "asked", "missing"),
    [
        (["links:read"], ["links:write"], ["links:write"]),
        (["links:read"], None, ["links:write", "stats:read"]),
        (["links:write"], ["links:read", "links:write"], ["links:read"]),
        (["links:read", "links:write", "stats:read"], ["users:admin"], ["users:admin"]),
    ],
)
def test_a_token_cannot_grant_scopes_it_lacks(client, admin, own, asked, missing):
    secret = new_token(client, admin, own)
    before = len(client.get(TOKENS, auth=admin).get_json()["tokens"])
    body = {"name": "child"} if asked is None else {"name": "child", "scopes": asked}
    response = client.post(TOKENS, json=body, headers=bearer(secret))
    problem = assert_problem(response, 403)
    for scope in missing:
        assert scope in problem["detail"]
    assert len(client.get(TOKENS, auth=admin).get_json()["tokens"]) == before


@pytest.mark.parametrize(
    ("own", "asked"),
    [
        (["links:read", "stats:read"], ["links:read"]),
        (["links:read", "stats:read"], ["stats:read", "links:read"]),
        (ALL_SCOPES, ["users:admin", "links:write"]),
        (["links:read", "links:write", "stats:read", "webhooks:read", "webhooks:write"], None),
    ],
)
def test_a_token_can_grant_a_subset_of_its_scopes(client, admin, own, asked):
    secret = new_token(client, admin, own)
    body = {"name": "child"} if asked is None else {"name": "child", "scopes": asked}
    response = client.post(TOKENS, json=body, headers=bearer(secret))
    assert response.status_code == 201, response.get_data(as_text=True)
    granted = response.get_json()["scopes"]
    assert set(granted) <= set(own)


def test_an_unknown_scope_is_422_even_from_a_token(client, alice):
    secret = new_token(client, alice)
    response = client.post(
        TOKENS, json={"name": "x", "scopes": ["links:admin"]}, headers=bearer(secret)
    )
    assert_problem(response, 422, field="scopes")


def test_a_non_admin_asking_for_users_admin_is_422_naming_scopes(client, alice):
    response = client.post(TOKENS, json={"name": "x", "scopes": ["users:admin"]}, auth=alice)
    problem = assert_problem(response, 422, field="scopes")
    assert "users:admin" in " ".join(problem["errors"]["scopes"])
    assert client.get(TOKENS, auth=alice).get_json()["tokens"] == []


def test_the_scope_table_covers_every_api_route(app):
    """A route added later must come with its scope, here and in its Resource."""
    covered = {(method, path.replace("docs", "<string:slug>")) for method, path, *_ in ROUTES}
    covered = {(m, p.replace("users/alice", "users/<string:username>")) for m, p in covered}
    item = "/api/v1.0/links/<string:slug>"  # the link itself: a slug but the fixed names
    covered = {(m, "/api/v1.0/links/<link_slug:slug>" if p == item else p) for m, p in covered}
    covered = {(m, p.replace("webhooks/1", "webhooks/<string:webhook_id>")) for m, p in covered}
    covered = {(m, p.replace("tags/none", "tags/<string:name>")) for m, p in covered}
    any_credential = {("GET", "/api/v1.0/tokens"), ("POST", "/api/v1.0/tokens")}
    any_credential |= {(m, "/api/v1.0/tokens/<string:token_id>") for m in ("GET", "DELETE")}
    any_credential.add(("GET", "/api/v1.0/users/<string:username>"))
    public = {"/api/v1.0/", "/api/v1.0/openapi.json"}
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1.0/")
        and rule.rule not in public
        and not rule.rule.startswith("/api/v1.0/docs")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == covered | any_credential
