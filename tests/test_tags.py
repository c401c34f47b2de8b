"""Tags on links, GET /api/v1.0/tags, renaming and deleting tags, statistics by tag (issue 10),
through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from conftest import make_app
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.visits import NewVisit
from shortener.storage import visit_queries

LINKS = "/api/v1.0/links"
TAGS = "/api/v1.0/tags"
STATS = "/api/v1.0/stats"
BASE = "http://localhost"


@pytest.fixture
def app(database_url):
    """Visits land only when a test writes them (the background writer would wait)."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    yield app
    app.extensions["shortener"].close()


def create(client, auth, slug: str, tags=None, **fields) -> dict:
    body = {"target": f"https://example.com/{slug}", "slug": slug, **fields}
    if tags is not None:
        body["tags"] = tags
    response = client.post(LINKS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def tags_of(client, auth, slug: str) -> list[str]:
    response = client.get(f"{LINKS}/{slug}", auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["tags"]


def all_tags(client, auth, **query) -> list[dict]:
    response = client.get(TAGS, query_string=query, auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["tags"]


def slugs(client, auth, url: str) -> list[str]:
    response = client.get(url, auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(link["slug"] for link in response.get_json()["links"])


def tag_uri(name: str) -> str:
    return f"{TAGS}/{quote(name)}"


# -- the tags field ------------------------------------------------------------------------


def test_a_link_has_no_tags_unless_given(client, alice):
    assert create(client, alice, "plain")["tags"] == []


def test_tags_are_shown_in_the_order_given_each_once(client, alice):
    link = create(client, alice, "go", tags=["zeta", "Alpha", "ALPHA", "a b:c.d_e-f"])
    assert link["tags"] == ["zeta", "Alpha", "a b:c.d_e-f"]
    assert tags_of(client, alice, "go") == ["zeta", "Alpha", "a b:c.d_e-f"]


def test_a_tag_keeps_the_spelling_first_given(client, alice):
    create(client, alice, "one", tags=["News"])
    assert create(client, alice, "two", tags=["NEWS", "news"])["tags"] == ["News"]
    assert [tag["name"] for tag in all_tags(client, alice)] == ["News"]


def test_tags_of_different_owners_are_their_own(client, alice, bob):
    create(client, alice, "hers", tags=["News"])
    assert create(client, bob, "his", tags=["news"])["tags"] == ["news"]
    assert [tag["name"] for tag in all_tags(client, bob)] == ["news"]


def test_letters_and_digits_of_any_script_are_allowed(client, alice):
    assert create(client, alice, "intl", tags=["Bücher", "日本", "٣"])["tags"] == [
        "Bücher",
        "日本",
        "٣",
    ]
    # Case-insensitive beyond ASCII too.
    assert create(client, alice, "intl2", tags=["BÜCHER"])["tags"] == ["Bücher"]


def test_fifty_tags_of_sixty_four_characters_are_allowed(client, alice):
    names = [f"{index:02d}" + "x" * 62 for index in range(50)]
    assert create(client, alice, "full", tags=names)["tags"] == names


@pytest.mark.parametrize(
    "tags",
    [
        [f"t{index}" for index in range(51)],
        [""],
        ["x" * 65],
        ["slash/no"],
        ["comma,no"],
        ["tab\tno"],
        ["emoji🎉"],
        [7],
        [None],
        "news",
        {"name": "news"},
    ],
)
def test_bad_tags_are_422_and_nothing_is_stored(client, alice, row_counts, tags):
    before = row_counts()
    response = client.post(LINKS, json={"target": "https://example.com/", "tags": tags}, auth=alice)
    assert_problem(response, 422, field="tags")
    assert row_counts() == before
    assert all_tags(client, alice) == []


def test_put_replaces_the_tags_and_without_them_clears_them(client, alice):
    create(client, alice, "go", tags=["a", "b"])
    body = {"target": "https://example.com/", "tags": ["c", "A"]}  # "a" is spelt "a"
    assert client.put(f"{LINKS}/go", json=body, auth=alice).get_json()["tags"] == ["c", "a"]
    response = client.put(f"{LINKS}/go", json={"target": "https://example.com/"}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["tags"] == []


def test_put_creating_a_link_sets_its_tags(client, alice):
    response = client.put(
        f"{LINKS}/new", json={"target": "https://example.com/", "tags": ["x"]}, auth=alice
    )
    assert response.status_code == 201
    assert tags_of(client, alice, "new") == ["x"]


def test_patch_replaces_the_list_or_leaves_it(client, alice):
    create(client, alice, "go", tags=["a", "b"])
    assert client.patch(f"{LINKS}/go", json={"title": "T"}, auth=alice).get_json()["tags"] == [
        "a",
        "b",
    ]
    response = client.patch(f"{LINKS}/go", json={"tags": ["b", "c"]}, auth=alice)
    assert response.get_json()["tags"] == ["b", "c"]
    assert client.patch(f"{LINKS}/go", json={"tags": None}, auth=alice).get_json()["tags"] == []


def test_a_bad_patch_of_tags_changes_nothing(client, alice):
    create(client, alice, "go", tags=["a"])
    etag = client.get(f"{LINKS}/go", auth=alice).headers["ETag"]
    response = client.patch(f"{LINKS}/go", json={"tags": ["ok", "not/ok"]}, auth=alice)
    body = assert_problem(response, 422, field="tags")
    assert body["errors"]["tags"] == {"1": [body["errors"]["tags"]["1"][0]]}
    assert client.get(f"{LINKS}/go", auth=alice).headers["ETag"] == etag
    assert tags_of(client, alice, "go") == ["a"]


def test_changing_tags_changes_the_etag(client, alice):
    create(client, alice, "go", tags=["a"])
    before = client.get(f"{LINKS}/go", auth=alice).headers["ETag"]
    client.patch(f"{LINKS}/go", json={"tags": ["b"]}, auth=alice)
    assert client.get(f"{LINKS}/go", auth=alice).headers["ETag"] != before


def test_an_admin_tagging_a_users_link_uses_that_users_tags(client, alice, admin):
    create(client, alice, "hers", tags=["News"])
    response = client.patch(f"{LINKS}/hers", json={"tags": ["news", "more"]}, auth=admin)
    assert response.get_json()["tags"] == ["News", "more"]
    assert [tag["name"] for tag in all_tags(client, alice)] == ["more", "News"]
    assert all_tags(client, admin) == []


def test_tags_do_not_change_the_redirect(client, alice):
    create(client, alice, "go", tags=["a"])
    response = client.get("/go")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/go"


# -- GET /api/v1.0/tags ----------------------------------------------------------------------


def test_the_tag_list_shows_uri_name_links_and_link_count(client, alice, bob):
    create(client, alice, "one", tags=["news", "Sale"])
    create(client, alice, "two", tags=["NEWS"])
    create(client, bob, "his", tags=["news", "bobs"])
    response = client.get(TAGS, auth=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["uri"] == f"{BASE}{TAGS}"
    assert body["next"] is None
    assert body["tags"] == [
        {
            "uri": f"{BASE}{TAGS}/news",
            "name": "news",
            "links": f"{BASE}{LINKS}?tag=news",
            "link_count": 2,
        },
        {
            "uri": f"{BASE}{TAGS}/Sale",
            "name": "Sale",
            "links": f"{BASE}{LINKS}?tag=Sale",
            "link_count": 1,
        },
    ]
    assert slugs(client, alice, body["tags"][0]["links"]) == ["one", "two"]
    assert client.get(body["tags"][0]["uri"], auth=alice).status_code == 405  # PATCH, DELETE


def test_a_tag_no_link_carries_is_not_listed(client, alice):
    create(client, alice, "go", tags=["gone"])
    client.patch(f"{LINKS}/go", json={"tags": []}, auth=alice)
    assert all_tags(client, alice) == []
    assert_problem(client.delete(f"{TAGS}/gone", auth=alice), 404)
    # Given again, it takes the new spelling.
    assert client.patch(f"{LINKS}/go", json={"tags": ["GONE"]}, auth=alice).get_json()["tags"] == [
        "GONE"
    ]


def test_deleting_a_link_takes_it_out_of_the_counts(client, alice):
    create(client, alice, "one", tags=["t"])
    create(client, alice, "two", tags=["t"])
    assert client.delete(f"{LINKS}/one", auth=alice).status_code == 204
    assert [(tag["name"], tag["link_count"]) for tag in all_tags(client, alice)] == [("t", 1)]


def test_the_tag_list_is_paginated_by_name_case_insensitively(client, alice):
    names = ["delta", "Alpha", "charlie", "Bravo", "echo"]
    for index, name in enumerate(names):
        create(client, alice, f"l{index}", tags=[name])
    seen, url = [], f"{TAGS}?limit=2"
    while url:
        response = client.get(url, auth=alice)
        assert response.status_code == 200
        body = response.get_json()
        assert len(body["tags"]) <= 2
        seen += [tag["name"] for tag in body["tags"]]
        url = body["next"]
        if url:
            assert response.headers["Link"] == f'<{url}>; rel="next"'
    assert seen == ["Alpha", "Bravo", "charlie", "delta", "echo"]


def test_an_admin_reads_a_users_tags_with_owner(client, alice, admin, bob):
    create(client, alice, "hers", tags=["news"])
    tags = all_tags(client, admin, owner="alice")
    assert tags == [
        {
            "uri": f"{BASE}{TAGS}/news?owner=alice",
            "name": "news",
            "links": f"{BASE}{LINKS}?tag=news&owner=alice",
            "link_count": 1,
        }
    ]
    assert slugs(client, admin, tags[0]["links"]) == ["hers"]
    assert all_tags(client, bob, owner="alice") == []  # not an admin: nothing to see
    assert all_tags(client, admin, owner="nobody") == []


@pytest.mark.parametrize(
    "query,field",
    [("limit=0", "limit"), ("cursor=bad", "cursor"), ("owner=%20", "owner"), ("x=1", "x")],
)
def test_bad_tag_list_parameters_are_400(client, alice, query, field):
    assert_problem(client.get(f"{TAGS}?{query}", auth=alice), 400, field=field)


def test_a_cursor_of_the_link_list_is_refused_by_the_tag_list(client, alice):
    for index in range(3):
        create(client, alice, f"l{index}", tags=[f"t{index}"])
    cursor = client.get(f"{LINKS}?limit=1", auth=alice).get_json()["next"].split("cursor=")[1]
    assert_problem(client.get(f"{TAGS}?cursor={cursor}", auth=alice), 400, field="cursor")


def test_the_tag_list_needs_credentials(client):
    assert_problem(client.get(TAGS), 401)


# -- PATCH /api/v1.0/tags/<name> -------------------------------------------------------------


def test_renaming_a_tag_renames_it_on_every_link(client, alice, bob):
    create(client, alice, "one", tags=["old", "other"])
    create(client, alice, "two", tags=["Old"])
    create(client, bob, "his", tags=["old"])
    response = client.patch(f"{TAGS}/OLD", json={"name": "New name"}, auth=alice)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "uri": f"{BASE}{TAGS}/New%20name",
        "name": "New name",
        "links": f"{BASE}{LINKS}?tag=New+name",
        "link_count": 2,
    }
    assert tags_of(client, alice, "one") == ["New name", "other"]
    assert tags_of(client, alice, "two") == ["New name"]
    assert tags_of(client, bob, "his") == ["old"]
    assert slugs(client, alice, f"{LINKS}?tag=new%20NAME") == ["one", "two"]
    assert slugs(client, alice, f"{LINKS}?tag=old") == []


def test_a_rename_changes_the_etag_of_each_link_carrying_the_tag(client, alice):
    create(client, alice, "tagged", tags=["old"])
    create(client, alice, "untagged", tags=["keep"])
    tagged = client.get(f"{LINKS}/tagged", auth=alice).headers["ETag"]
    untagged = client.get(f"{LINKS}/untagged", auth=alice).headers["ETag"]
    client.patch(f"{TAGS}/old", json={"name": "new"}, auth=alice)
    response = client.get(f"{LINKS}/tagged", headers={"If-None-Match": tagged}, auth=alice)
    assert response.status_code == 200
    assert response.headers["ETag"] != tagged
    stale = client.patch(
        f"{LINKS}/tagged", json={"title": "x"}, headers={"If-Match": tagged}, auth=alice
    )
    assert_problem(stale, 412)
    assert client.get(f"{LINKS}/untagged", auth=alice).headers["ETag"] == untagged


def test_a_new_spelling_of_the_same_name_respells_it(client, alice):
    create(client, alice, "go", tags=["news"])
    response = client.patch(f"{TAGS}/news", json={"name": "News"}, auth=alice)
    assert response.get_json()["name"] == "News"
    assert tags_of(client, alice, "go") == ["News"]


def test_renaming_onto_an_existing_tag_merges_them(client, alice):
    create(client, alice, "both", tags=["b", "x", "a"])
    create(client, alice, "only_a", tags=["a"])
    create(client, alice, "only_b", tags=["B"])
    response = client.patch(f"{TAGS}/a", json={"name": "B"}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["link_count"] == 3
    assert response.get_json()["name"] == "B"
    assert tags_of(client, alice, "both") == ["B", "x"]
    assert tags_of(client, alice, "only_a") == ["B"]
    assert tags_of(client, alice, "only_b") == ["B"]
    assert [(tag["name"], tag["link_count"]) for tag in all_tags(client, alice)] == [
        ("B", 3),
        ("x", 1),
    ]


def test_a_merge_keeps_the_earlier_position(client, alice):
    create(client, alice, "go", tags=["first", "second", "third"])
    client.patch(f"{TAGS}/first", json={"name": "third"}, auth=alice)
    assert tags_of(client, alice, "go") == ["third", "second"]


def test_an_admin_renames_a_users_tag_with_owner(client, alice, admin):
    create(client, alice, "hers", tags=["old"])
    assert_problem(client.patch(f"{TAGS}/old", json={"name": "new"}, auth=admin), 404)
    response = client.patch(f"{TAGS}/old?owner=alice", json={"name": "new"}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["uri"] == f"{BASE}{TAGS}/new?owner=alice"
    assert tags_of(client, alice, "hers") == ["new"]


def test_renaming_someone_elses_or_an_unknown_tag_is_404(client, alice, bob):
    create(client, alice, "hers", tags=["hers"])
    assert_problem(client.patch(f"{TAGS}/hers", json={"name": "x"}, auth=bob), 404)
    assert_problem(client.patch(f"{TAGS}/hers?owner=alice", json={"name": "x"}, auth=bob), 404)
    assert_problem(client.patch(f"{TAGS}/nothing", json={"name": "x"}, auth=alice), 404)
    assert_problem(client.patch(f"{TAGS}/not%2Fa%2Ftag", json={"name": "x"}, auth=alice), 404)
    assert tags_of(client, alice, "hers") == ["hers"]


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "a/b"}, {"name": "x" * 65}, {}, {"name": "ok", "x": 1}]
)
def test_a_bad_rename_is_422_and_changes_nothing(client, alice, body):
    create(client, alice, "go", tags=["keep"])
    assert_problem(client.patch(f"{TAGS}/keep", json=body, auth=alice), 422)
    assert tags_of(client, alice, "go") == ["keep"]


def test_a_tag_name_with_spaces_and_colons_works_in_the_path(client, alice):
    create(client, alice, "go", tags=["team: a.b"])
    uri = all_tags(client, alice)[0]["uri"]
    assert client.patch(uri, json={"name": "team b"}, auth=alice).status_code == 200
    assert tags_of(client, alice, "go") == ["team b"]


# -- DELETE /api/v1.0/tags/<name> ------------------------------------------------------------


def test_deleting_a_tag_removes_it_from_every_link(client, alice, bob):
    create(client, alice, "one", tags=["gone", "kept"])
    create(client, alice, "two", tags=["GONE"])
    create(client, bob, "his", tags=["gone"])
    etag = client.get(f"{LINKS}/two", auth=alice).headers["ETag"]
    response = client.delete(f"{TAGS}/Gone", auth=alice)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert tags_of(client, alice, "one") == ["kept"]
    assert tags_of(client, alice, "two") == []
    assert client.get(f"{LINKS}/two", auth=alice).headers["ETag"] != etag
    assert tags_of(client, bob, "his") == ["gone"]
    assert [tag["name"] for tag in all_tags(client, alice)] == ["kept"]
    assert_problem(client.delete(f"{TAGS}/gone", auth=alice), 404)


def test_an_admin_deletes_a_users_tag_with_owner(client, alice, admin):
    create(client, alice, "hers", tags=["t"])
    assert client.delete(f"{TAGS}/t?owner=alice", auth=admin).status_code == 204
    assert tags_of(client, alice, "hers") == []


def test_tag_writes_need_the_links_write_scope(client, alice):
    create(client, alice, "go", tags=["t"])
    response = client.post(
        "/api/v1.0/tokens", json={"name": "ro", "scopes": ["links:read"]}, auth=alice
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
    assert client.get(TAGS, headers=headers).status_code == 200
    assert_problem(client.delete(f"{TAGS}/t", headers=headers), 403)
    assert_problem(client.patch(f"{TAGS}/t", json={"name": "u"}, headers=headers), 403)
    assert tags_of(client, alice, "go") == ["t"]


# -- statistics by tag -----------------------------------------------------------------------


def record(app, slug: str, count: int) -> None:
    link_id = app.extensions["shortener"].links.get(OPERATOR, slug).id
    moment = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    batch = [
        NewVisit(
            link_id=link_id,
            visited_at=moment,
            referrer=None,
            user_agent=None,
            browser=None,
            os=None,
            is_bot=False,
            ip=None,
            referrer_host=None,
        )
        for _ in range(count)
    ]
    with app.extensions["shortener"].database.write() as connection:
        visit_queries.record(connection, batch)


def test_stats_by_tag_count_the_callers_links_with_the_tag(app, client, alice, bob, admin):
    create(client, alice, "a1", tags=["promo"])
    create(client, alice, "a2", tags=["promo", "x"])
    create(client, alice, "a3", tags=["other"])
    create(client, bob, "b1", tags=["promo"])
    for slug, count in (("a1", 1), ("a2", 2), ("a3", 4), ("b1", 8)):
        record(app, slug, count)
    window = {"since": "2026-11-02", "until": "2026-11-03"}

    def total(auth, **query) -> int:
        response = client.get(STATS, query_string={**window, **query}, auth=auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["total"]

    assert total(alice, tag="PROMO") == 3
    assert total(alice, tag=["promo", "x"]) == 2
    assert total(alice, tag="none") == 0
    assert total(bob, tag="promo") == 8
    assert total(admin, tag="promo") == 11  # an admin's: everyone's links with the tag
    assert total(admin) == 15
    assert_problem(client.get(STATS, query_string=window, auth=alice), 403)
    assert_problem(client.get(STATS, query_string={"tag": "a/b"}, auth=alice), 400, field="tag")
