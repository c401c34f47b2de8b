"""Conditional requests (RFC 9110 section 13): ETag, If-None-Match, If-Match (issue 7).

Every case runs on SQLite and, with SHORTENER_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import re
import threading

import pytest
from conftest import make_app
from sqlalchemy import text
from support import assert_problem

from shortener.storage import link_queries

LINKS = "/api/v1.0/links"
USERS = "/api/v1.0/users"
TOKENS = "/api/v1.0/tokens"
EXAMPLE = "https://example.com/"
STRONG = re.compile(r'"[!#-~]+"')
WEAK = re.compile(r'W/"[!#-~]+"')
# Long enough for the other thread to reach the same point; only a deadline, never a timing.
BARRIER_SECONDS = 10


def etag_of(response) -> str:
    tag = response.headers.get("ETag")
    assert tag is not None and STRONG.fullmatch(tag), (response.status_code, tag)
    return tag


def make_link(client, auth, slug: str = "docs") -> str:
    response = client.post(LINKS, json={"target": EXAMPLE, "slug": slug}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return etag_of(response)


def rows(app, table: str) -> list[dict]:
    """Every row of ``table``: proof that a refused request changed nothing."""
    with app.extensions["shortener"].database.engine.connect() as connection:
        result = connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
        return [dict(row._mapping) for row in result]


def visit(app, client, slug: str) -> None:
    assert client.get(f"/{slug}").status_code in (301, 302, 303, 307, 308)
    app.extensions["shortener"].recorder.flush()


# -- ETag on every representation -----------------------------------------------------------


def test_links_carry_a_strong_etag_on_every_representation(client, admin):
    created = make_link(client, admin)
    fetched = client.get(f"{LINKS}/docs", auth=admin)
    assert etag_of(fetched) == created
    put_created = client.put(f"{LINKS}/new", json={"target": EXAMPLE}, auth=admin)
    assert put_created.status_code == 201
    etag_of(put_created)
    replaced = client.put(f"{LINKS}/docs", json={"target": EXAMPLE + "v2"}, auth=admin)
    assert replaced.status_code == 200
    patched = client.patch(f"{LINKS}/docs", json={"title": "Docs"}, auth=admin)
    assert patched.status_code == 200
    tags = {created, etag_of(replaced), etag_of(patched)}
    assert len(tags) == 3, "every change gives a new tag"
    assert etag_of(client.get(f"{LINKS}/docs", auth=admin)) == etag_of(patched)


def test_users_carry_a_strong_etag(client, admin):
    created = client.post(USERS, json={"username": "carol", "password": "a long one"}, auth=admin)
    assert created.status_code == 201
    first = etag_of(created)
    assert etag_of(client.get(f"{USERS}/carol", auth=admin)) == first
    patched = client.patch(f"{USERS}/carol", json={"is_admin": True}, auth=admin)
    assert patched.status_code == 200
    assert etag_of(patched) != first
    assert etag_of(client.get(f"{USERS}/carol", auth=admin)) == etag_of(patched)


def test_tokens_carry_a_strong_etag(client, alice):
    created = client.post(TOKENS, json={"name": "ci"}, auth=alice)
    assert created.status_code == 201
    tag = etag_of(created)
    fetched = client.get(created.headers["Location"], auth=alice)
    assert etag_of(fetched) == tag


def test_a_visit_changes_the_tag(app, client, admin):
    before = make_link(client, admin)
    visit(app, client, "docs")
    after = client.get(f"{LINKS}/docs", auth=admin)
    assert after.get_json()["visit_count"] == 1
    assert etag_of(after) != before


# -- If-None-Match on GET -------------------------------------------------------------------


def test_if_none_match_answers_304_without_a_body(client, admin):
    tag = make_link(client, admin)
    response = client.get(f"{LINKS}/docs", auth=admin, headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == tag


@pytest.mark.parametrize("header", ["W/{tag}", '"other", {tag}', "*"])
def test_if_none_match_compares_weakly_and_takes_lists(client, admin, header):
    tag = make_link(client, admin)
    headers = {"If-None-Match": header.format(tag=tag)}
    assert client.get(f"{LINKS}/docs", auth=admin, headers=headers).status_code == 304


def test_if_none_match_with_an_old_tag_answers_200(app, client, admin):
    tag = make_link(client, admin)
    visit(app, client, "docs")
    response = client.get(f"{LINKS}/docs", auth=admin, headers={"If-None-Match": tag})
    assert response.status_code == 200
    assert response.get_json()["visit_count"] == 1


def test_if_none_match_on_users_and_tokens(client, admin):
    user_tag = etag_of(client.get(f"{USERS}/admin", auth=admin))
    response = client.get(f"{USERS}/admin", auth=admin, headers={"If-None-Match": user_tag})
    assert response.status_code == 304 and response.get_data() == b""
    token = client.post(TOKENS, json={"name": "ci"}, auth=admin)
    uri = token.headers["Location"]
    response = client.get(uri, auth=admin, headers={"If-None-Match": etag_of(token)})
    assert response.status_code == 304 and response.get_data() == b""


def test_a_304_still_needs_credentials(client, admin, alice):
    tag = make_link(client, admin)
    assert client.get(f"{LINKS}/docs", headers={"If-None-Match": tag}).status_code == 401
    response = client.get(f"{LINKS}/docs", auth=alice, headers={"If-None-Match": tag})
    assert_problem(response, 404)


# -- If-Match on PUT, PATCH and DELETE ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("put", {"target": EXAMPLE + "v2"}), ("patch", {"title": "x"}), ("delete", None)],
)
def test_a_stale_if_match_is_412_and_changes_nothing(app, client, admin, method, body):
    stale = make_link(client, admin)
    client.patch(f"{LINKS}/docs", json={"title": "changed"}, auth=admin)
    before = rows(app, "links")
    response = getattr(client, method)(
        f"{LINKS}/docs", json=body, auth=admin, headers={"If-Match": stale}
    )
    assert_problem(response, 412)
    assert response.get_json()["type"].endswith("/problems/precondition-failed")
    assert rows(app, "links") == before


@pytest.mark.parametrize(
    ("method", "body", "status"),
    [
        ("put", {"target": EXAMPLE + "v2"}, 200),
        ("patch", {"title": "x"}, 200),
        ("delete", None, 204),
    ],
)
def test_a_current_if_match_succeeds(client, admin, method, body, status):
    tag = make_link(client, admin)
    response = getattr(client, method)(
        f"{LINKS}/docs", json=body, auth=admin, headers={"If-Match": f'"nope", {tag}'}
    )
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 200:
        assert etag_of(response) != tag


def test_a_visit_never_makes_if_match_fail(app, client, admin):
    tag = make_link(client, admin)
    visit(app, client, "docs")
    response = client.patch(
        f"{LINKS}/docs", json={"title": "x"}, auth=admin, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_weak_tag_never_matches_if_match(app, client, admin):
    tag = make_link(client, admin)
    before = rows(app, "links")
    response = client.patch(
        f"{LINKS}/docs", json={"title": "x"}, auth=admin, headers={"If-Match": f"W/{tag}"}
    )
    assert_problem(response, 412)
    assert rows(app, "links") == before


def test_if_match_star_needs_the_link_to_exist(app, client, admin):
    make_link(client, admin)
    star = {"If-Match": "*"}
    response = client.patch(f"{LINKS}/docs", json={"title": "x"}, auth=admin, headers=star)
    assert response.status_code == 200
    response = client.put(f"{LINKS}/missing", json={"target": EXAMPLE}, auth=admin, headers=star)
    assert_problem(response, 412)
    assert [row["slug"] for row in rows(app, "links")] == ["docs"]


def test_if_match_on_a_put_that_would_create_is_412(app, client, admin):
    response = client.put(
        f"{LINKS}/fresh", json={"target": EXAMPLE}, auth=admin, headers={"If-Match": '"1.1"'}
    )
    assert_problem(response, 412)
    assert rows(app, "links") == []


def test_a_deleted_and_recreated_link_does_not_match_the_old_tag(app, client, admin):
    old = make_link(client, admin)
    assert client.delete(f"{LINKS}/docs", auth=admin).status_code == 204
    new = make_link(client, admin)
    assert new != old
    response = client.patch(
        f"{LINKS}/docs", json={"title": "x"}, auth=admin, headers={"If-Match": old}
    )
    assert_problem(response, 412)


def test_users_if_match(app, client, admin, alice):
    tag = etag_of(client.get(f"{USERS}/alice", auth=admin))
    client.patch(f"{USERS}/alice", json={"password": "another long one"}, auth=admin)
    before = rows(app, "users")
    for method, body in (("patch", {"is_admin": True}), ("delete", None)):
        response = getattr(client, method)(
            f"{USERS}/alice", json=body, auth=admin, headers={"If-Match": tag}
        )
        assert_problem(response, 412)
    assert rows(app, "users") == before
    current = etag_of(client.get(f"{USERS}/alice", auth=admin))
    response = client.delete(f"{USERS}/alice", auth=admin, headers={"If-Match": current})
    assert response.status_code == 204


def test_tokens_if_match(app, client, alice):
    created = client.post(TOKENS, json={"name": "ci"}, auth=alice)
    uri = created.headers["Location"]
    response = client.delete(uri, auth=alice, headers={"If-Match": '"999999"'})
    assert_problem(response, 412)
    assert len(rows(app, "api_tokens")) == 1
    response = client.delete(uri, auth=alice, headers={"If-Match": etag_of(created)})
    assert response.status_code == 204
    assert rows(app, "api_tokens") == []


# -- SHORTENER_REQUIRE_IF_MATCH -------------------------------------------------------------


@pytest.fixture
def strict_app(database_url):
    app = make_app(database_url, REQUIRE_IF_MATCH=True)
    yield app
    app.extensions["shortener"].close()


def test_required_if_match_is_428_without_it(strict_app):
    from shortener.services.actors import OPERATOR

    strict_app.extensions["shortener"].users.create(
        OPERATOR, username="admin", password="a long passphrase", is_admin=True
    )
    admin = ("admin", "a long passphrase")
    client = strict_app.test_client()
    # Creating with PUT needs no If-Match: there is nothing to match yet.
    created = client.put(f"{LINKS}/docs", json={"target": EXAMPLE}, auth=admin)
    assert created.status_code == 201
    before = rows(strict_app, "links")
    for method, body in (("put", {"target": EXAMPLE}), ("patch", {"title": "x"}), ("delete", None)):
        response = getattr(client, method)(f"{LINKS}/docs", json=body, auth=admin)
        problem = assert_problem(response, 428)
        assert problem["type"].endswith("/problems/precondition-required")
    for method, body in (("patch", {"is_admin": True}), ("delete", None)):
        assert_problem(getattr(client, method)(f"{USERS}/admin", json=body, auth=admin), 428)
    token = client.post(TOKENS, json={"name": "ci"}, auth=admin)
    assert_problem(client.delete(token.headers["Location"], auth=admin), 428)
    assert rows(strict_app, "links") == before
    response = client.patch(
        f"{LINKS}/docs", json={"title": "x"}, auth=admin, headers={"If-Match": etag_of(created)}
    )
    assert response.status_code == 200
    response = client.delete(f"{LINKS}/docs", auth=admin, headers={"If-Match": "*"})
    assert response.status_code == 204


def test_require_if_match_is_validated(database_url):
    from shortener.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="SHORTENER_REQUIRE_IF_MATCH"):
        make_app(database_url, REQUIRE_IF_MATCH="sometimes")


# -- collections ----------------------------------------------------------------------------


@pytest.mark.parametrize("collection", [LINKS, USERS, TOKENS])
def test_collections_carry_a_weak_etag_and_answer_304(client, admin, collection):
    make_link(client, admin)
    client.post(TOKENS, json={"name": "ci"}, auth=admin)
    first = client.get(collection, auth=admin)
    tag = first.headers.get("ETag")
    assert tag is not None and WEAK.fullmatch(tag), tag
    again = client.get(collection, auth=admin, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == tag


def test_a_changed_collection_answers_200_with_a_new_tag(client, admin):
    make_link(client, admin)
    tag = client.get(LINKS, auth=admin).headers["ETag"]
    make_link(client, admin, "other")
    response = client.get(LINKS, auth=admin, headers={"If-None-Match": tag})
    assert response.status_code == 200
    assert response.headers["ETag"] != tag


# -- concurrency ----------------------------------------------------------------------------


def test_two_patches_with_the_same_if_match_one_wins(app, admin, monkeypatch):
    """Both requests read the link before either writes (forced on PostgreSQL, where both
    transactions can read the old version; SQLite's write lock serializes them anyway): the
    version-guarded UPDATE lets exactly one through."""
    client = app.test_client()
    tag = make_link(client, admin)
    if not app.extensions["shortener"].database.is_sqlite:
        both_read = threading.Barrier(2, timeout=BARRIER_SECONDS)
        original = link_queries.update_link

        def update_after_both_read(*args, **kwargs):
            both_read.wait()
            return original(*args, **kwargs)

        monkeypatch.setattr(link_queries, "update_link", update_after_both_read)
    statuses: list[int] = []

    def patch(title: str) -> None:
        response = app.test_client().patch(
            f"{LINKS}/docs", json={"title": title}, auth=admin, headers={"If-Match": tag}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=patch, args=(title,)) for title in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 412]
    link = rows(app, "links")[0]
    assert link["version"] == 2
    assert link["title"] in ("one", "two")


# -- the OpenAPI document and CORS ----------------------------------------------------------


def test_the_document_declares_conditions_and_keys(client):
    paths = client.get("/api/v1.0/openapi.json").get_json()["paths"]

    def header_parameters(operation: dict) -> set[str]:
        return {p["name"] for p in operation["parameters"] if p.get("in") == "header"}

    link = paths["/api/v1.0/links/{slug}"]
    assert header_parameters(link["get"]) == {"If-None-Match"}
    assert "304" in link["get"]["responses"]
    assert "ETag" in link["get"]["responses"]["200"]["headers"]
    for method in ("put", "patch", "delete"):
        assert header_parameters(link[method]) == {"If-Match"}
        assert {"412", "428"} <= set(link[method]["responses"])
    for path in ("/api/v1.0/links", "/api/v1.0/users", "/api/v1.0/tokens"):
        create = paths[path]["post"]
        assert header_parameters(create) == {"Idempotency-Key"}
        assert {"400", "409", "422"} <= set(create["responses"])
        assert {"ETag", "Idempotency-Replayed", "Location"} <= set(
            create["responses"]["201"]["headers"]
        )
        assert "304" in paths[path]["get"]["responses"]


def test_cors_lets_scripts_send_conditions_and_read_tags(database_url):
    app = make_app(database_url, CORS_ORIGINS="https://app.example")
    try:
        client = app.test_client()
        preflight = client.options(
            f"{LINKS}/docs",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "if-match",
            },
        )
        allowed = preflight.headers["Access-Control-Allow-Headers"]
        for header in ("If-Match", "If-None-Match", "Idempotency-Key"):
            assert header in allowed
        answer = client.get("/api/v1.0/", headers={"Origin": "https://app.example"})
        exposed = answer.headers["Access-Control-Expose-Headers"]
        assert "ETag" in exposed and "Idempotency-Replayed" in exposed
    finally:
        app.extensions["shortener"].close()
