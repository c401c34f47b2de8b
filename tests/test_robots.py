"""GET /robots.txt and the links' ``crawlable`` field (issue 9, crawlers and privacy)."""

from __future__ import annotations

import pytest
from support import assert_problem

from shortener.storage.tables import links as links_table

LINKS = "/api/v1.0/links"
ROBOTS = "/robots.txt"
NOTHING_ALLOWED = "User-agent: *\nDisallow: /\n"


def create(client, auth, slug: str, **fields) -> dict:
    body = {"target": "https://example.com/", "slug": slug, **fields}
    response = client.post(LINKS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def robots(client) -> str:
    response = client.get(ROBOTS)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return response.get_data(as_text=True)


def allowing(*slugs: str) -> str:
    return NOTHING_ALLOWED + "".join(f"Allow: /{slug}$\n" for slug in slugs)


# -- the file ---------------------------------------------------------------------------------
def test_without_links_everything_is_disallowed(client):
    assert robots(client) == NOTHING_ALLOWED


def test_links_are_not_crawlable_unless_their_owner_says_so(client, alice):
    create(client, alice, "plain")
    create(client, alice, "off", crawlable=False)
    assert robots(client) == NOTHING_ALLOWED


def test_one_crawlable_link_is_allowed(client, alice):
    create(client, alice, "hidden")
    create(client, alice, "public", crawlable=True)
    assert robots(client) == allowing("public")


def test_several_crawlable_links_are_sorted_by_code_point(client, alice, bob):
    for slug in ("zeta", "Beta", "alpha", "_under", "9lives", "a-b"):
        create(client, alice, slug, crawlable=True)
    create(client, bob, "bobs", crawlable=True)  # every owner's links
    create(client, bob, "bobs-private")
    assert robots(client) == allowing("9lives", "Beta", "_under", "a-b", "alpha", "bobs", "zeta")


def test_an_allowed_slug_is_anchored_so_longer_slugs_stay_disallowed(client, alice):
    """robots.txt rules are prefixes: ``Allow: /abc`` would allow the link abcd too."""
    create(client, alice, "abc", crawlable=True)
    create(client, alice, "abcd")
    assert "Allow: /abc$\n" in robots(client)
    assert "abcd" not in robots(client)


def test_a_link_made_non_crawlable_disappears_on_the_next_request(client, alice):
    create(client, alice, "soon-gone", crawlable=True)
    create(client, alice, "stays", crawlable=True)
    assert robots(client) == allowing("soon-gone", "stays")
    response = client.patch(f"{LINKS}/soon-gone", json={"crawlable": False}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["crawlable"] is False
    assert robots(client) == allowing("stays")


def test_a_link_made_crawlable_appears_and_a_deleted_one_disappears(client, alice):
    create(client, alice, "later")
    assert robots(client) == NOTHING_ALLOWED
    assert client.patch(f"{LINKS}/later", json={"crawlable": True}, auth=alice).status_code == 200
    assert robots(client) == allowing("later")
    assert client.delete(f"{LINKS}/later", auth=alice).status_code == 204
    assert robots(client) == NOTHING_ALLOWED


def test_put_without_crawlable_makes_the_link_non_crawlable(client, alice):
    """PUT replaces every client-owned field: one left out takes its default."""
    create(client, alice, "replaced", crawlable=True)
    response = client.put(f"{LINKS}/replaced", json={"target": "https://example.org/"}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["crawlable"] is False
    assert robots(client) == NOTHING_ALLOWED


def test_put_can_create_a_crawlable_link(client, alice):
    body = {"target": "https://example.org/", "crawlable": True}
    response = client.put(f"{LINKS}/by-put", json=body, auth=alice)
    assert response.status_code == 201
    assert response.get_json()["crawlable"] is True
    assert robots(client) == allowing("by-put")


# -- HTTP: caching, HEAD, methods -------------------------------------------------------------
def test_cached_briefly_with_a_strong_etag_and_304_on_revalidation(client, alice):
    create(client, alice, "cached", crawlable=True)
    first = client.get(ROBOTS)
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get(ROBOTS, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    # A change gives new content under a new tag: the old tag no longer matches.
    client.patch(f"{LINKS}/cached", json={"crawlable": False}, auth=alice)
    changed = client.get(ROBOTS, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_data(as_text=True) == NOTHING_ALLOWED


def test_head_answers_the_headers_without_the_body(client, alice):
    create(client, alice, "headed", crawlable=True)
    get, head = client.get(ROBOTS), client.head(ROBOTS)
    assert head.status_code == 200
    assert head.get_data() == b""
    for header in ("Content-Type", "Content-Length", "ETag", "Cache-Control"):
        assert head.headers[header] == get.headers[header]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_405(client, method):
    response = getattr(client, method)(ROBOTS)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_robots_is_answered_by_its_view_not_taken_for_a_slug(app, client):
    assert "robots.txt" in app.extensions["shortener"].links.reserved_slugs
    assert client.get(ROBOTS).status_code == 200
    assert client.get("/ROBOTS.TXT").status_code == 404  # paths are case-sensitive


# -- robots.txt is never a slug ---------------------------------------------------------------
@pytest.mark.parametrize("slug", ["robots.txt", "ROBOTS.txt", "Robots.Txt"])
def test_robots_txt_cannot_be_created_as_a_slug(client, alice, row_counts, slug):
    before = row_counts()
    posted = client.post(LINKS, json={"target": "https://example.com/", "slug": slug}, auth=alice)
    assert_problem(posted, 422, field="slug")
    put = client.put(f"{LINKS}/{slug}", json={"target": "https://example.com/"}, auth=alice)
    assert_problem(put, 422, field="slug")
    assert row_counts() == before
    assert robots(client) == NOTHING_ALLOWED


# -- the field --------------------------------------------------------------------------------
def test_crawlable_is_in_the_representation_and_defaults_to_false(client, alice):
    assert create(client, alice, "default")["crawlable"] is False
    assert create(client, alice, "chosen", crawlable=True)["crawlable"] is True
    assert client.get(f"{LINKS}/chosen", auth=alice).get_json()["crawlable"] is True
    listed = client.get(LINKS, auth=alice).get_json()
    assert {link["slug"]: link["crawlable"] for link in listed["links"]} == {
        "default": False,
        "chosen": True,
    }


def test_patch_without_crawlable_keeps_it(client, alice):
    create(client, alice, "kept", crawlable=True)
    response = client.patch(f"{LINKS}/kept", json={"title": "Kept"}, auth=alice)
    assert response.get_json()["crawlable"] is True


INVALID = [None, "true", "false", 1, 0, "yes", [], {}, 1.0]


def stored_crawlable(app) -> dict[str, bool]:
    engine = app.extensions["shortener"].database.engine
    with engine.connect() as connection:
        rows = connection.execute(links_table.select().with_only_columns(
            links_table.c.slug, links_table.c.crawlable))  # fmt: skip
        return {slug: bool(crawlable) for slug, crawlable in rows}


@pytest.mark.parametrize("value", INVALID)
def test_post_with_a_non_boolean_crawlable_is_422(client, alice, row_counts, value):
    before = row_counts()
    body = {"target": "https://example.com/", "slug": "nope", "crawlable": value}
    problem = assert_problem(client.post(LINKS, json=body, auth=alice), 422, field="crawlable")
    assert len(problem["errors"]) == 1  # only the bad field is named
    assert row_counts() == before


@pytest.mark.parametrize("value", INVALID)
def test_put_and_patch_with_a_non_boolean_crawlable_are_422_and_change_nothing(
    app, client, alice, row_counts, value
):
    link = create(client, alice, "guarded", crawlable=True)
    before = row_counts()
    body = {"target": "https://example.org/", "crawlable": value}
    assert_problem(client.put(f"{LINKS}/guarded", json=body, auth=alice), 422, field="crawlable")
    assert_problem(client.put(f"{LINKS}/fresh", json=body, auth=alice), 422, field="crawlable")
    patch = client.patch(f"{LINKS}/guarded", json={"crawlable": value}, auth=alice)
    assert_problem(patch, 422, field="crawlable")
    assert row_counts() == before
    assert stored_crawlable(app) == {"guarded": True}
    assert client.get(f"{LINKS}/guarded", auth=alice).get_json() == link


# -- the document -----------------------------------------------------------------------------
def test_the_document_declares_robots_and_the_field(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    operations = document["paths"]["/robots.txt"]
    assert operations["get"]["operationId"] == "getRobots"
    assert operations["head"]["operationId"] == "checkRobots"
    assert "text/plain" in operations["get"]["responses"]["200"]["content"]
    assert "304" in operations["get"]["responses"]
    schemas = document["components"]["schemas"]
    link = next(schema for name, schema in schemas.items() if name.startswith("Link") and
                "crawlable" in schema.get("properties", {}))  # fmt: skip
    assert link["properties"]["crawlable"]["type"] == "boolean"
