"""Finding links: GET /api/v1.0/links filtered by tag, exclude_tag, q, target and creation
time, sorted, and keyset-paginated on every sort (issue 10), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from support import assert_problem

from shortener.storage import link_queries
from shortener.storage.link_filters import NO_FILTER
from shortener.storage.tables import links

LINKS = "/api/v1.0/links"
SORTS = ("created", "-created", "visits", "-visits", "slug", "-slug", "title", "-title")


def create(client, auth, slug: str, target: str | None = None, **fields) -> dict:
    body = {"target": target or f"https://example.com/{slug}", "slug": slug, **fields}
    response = client.post(LINKS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def found(client, auth, query: str = "", **params) -> list[str]:
    """The slugs of every page, following 'next'."""
    slugs, url = [], f"{LINKS}?{query}" if query else LINKS
    while url:
        response = client.get(url, query_string=params or None, auth=auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        slugs += [link["slug"] for link in body["links"]]
        url, params = body["next"], {}
    return slugs


def set_columns(app, slug: str, **values) -> None:
    """Server-owned columns (visit counts, creation times) set as a test needs them."""
    with app.extensions["shortener"].database.write() as connection:
        connection.execute(links.update().where(links.c.slug == slug).values(**values))


@pytest.fixture
def catalogue(app, client, alice, bob):
    """Alice's links with tags, titles, targets, visit counts and creation times; one of Bob's."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        # slug, title, tags, visits, target
        ("b-news", "Breaking News", ["news", "top"], 5, "https://news.example.com/today"),
        ("a-sale", "Summer SALE", ["promo"], 9, "https://shop.example.com/sale?x=1"),
        ("c-blog", None, ["news"], 0, "https://blog.example.org/post"),
        ("d-shop", "shop", ["promo", "top"], 9, "https://shop.example.com/"),
        ("e-100", "100% off_now", [], 1, "https://deals.example.net/"),
    ]
    for index, (slug, title, tags, visits, target) in enumerate(rows):
        create(client, alice, slug, target, title=title, tags=tags)
        set_columns(app, slug, visit_count=visits, created_at=start + timedelta(days=index))
    create(client, bob, "bobs", "https://shop.example.com/", title="shop", tags=["promo"])
    return rows


def test_default_order_is_newest_created_first(client, alice, catalogue):
    assert found(client, alice) == ["e-100", "d-shop", "c-blog", "a-sale", "b-news"]


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("created", ["b-news", "a-sale", "c-blog", "d-shop", "e-100"]),
        ("-created", ["e-100", "d-shop", "c-blog", "a-sale", "b-news"]),
        # ties (9 visits) by id, the same way
        ("visits", ["c-blog", "e-100", "b-news", "a-sale", "d-shop"]),
        ("-visits", ["d-shop", "a-sale", "b-news", "e-100", "c-blog"]),
        ("slug", ["a-sale", "b-news", "c-blog", "d-shop", "e-100"]),
        ("-slug", ["e-100", "d-shop", "c-blog", "b-news", "a-sale"]),
        # no title first (as an empty one); code point order
        ("title", ["c-blog", "e-100", "b-news", "a-sale", "d-shop"]),
        ("-title", ["d-shop", "a-sale", "b-news", "e-100", "c-blog"]),
    ],
)
def test_every_sort_orders_and_pages_through_every_link_once(
    client, alice, catalogue, sort, expected
):
    assert found(client, alice, sort=sort) == expected
    for limit in (1, 2, 3):
        assert found(client, alice, f"sort={sort}&limit={limit}") == expected


def test_keyset_pages_hold_when_links_are_added_meanwhile(app, client, alice, catalogue):
    response = client.get(f"{LINKS}?sort=slug&limit=2", auth=alice)
    first = [link["slug"] for link in response.get_json()["links"]]
    create(client, alice, "a-first")  # sorts before the page already read
    rest = found(client, alice, response.get_json()["next"].split("?", 1)[1])
    assert first + rest == ["a-sale", "b-news", "c-blog", "d-shop", "e-100"]


def test_next_keeps_the_filters_and_sort(client, alice, catalogue):
    response = client.get(f"{LINKS}?tag=promo&tag=top&sort=-visits&limit=1&q=shop", auth=alice)
    body = response.get_json()
    assert [link["slug"] for link in body["links"]] == ["d-shop"]
    assert body["next"] is None
    response = client.get(f"{LINKS}?tag=news&exclude_tag=x&sort=slug&limit=1", auth=alice)
    query = parse_qs(urlsplit(response.get_json()["next"]).query)
    assert query["tag"] == ["news"] and query["exclude_tag"] == ["x"]
    assert query["sort"] == ["slug"] and query["limit"] == ["1"]
    response = client.get(f"{LINKS}?tag=news&tag=top&limit=1", auth=alice)
    assert response.get_json()["next"] is None
    response = client.get(f"{LINKS}?tag=NEWS&limit=1", auth=alice)
    query = parse_qs(urlsplit(response.get_json()["next"]).query)
    assert query["tag"] == ["NEWS"]


def test_tags_all_must_match_case_insensitively(client, alice, catalogue):
    assert found(client, alice, tag="News") == ["c-blog", "b-news"]
    assert found(client, alice, "tag=news&tag=TOP") == ["b-news"]
    assert found(client, alice, "tag=promo&tag=top") == ["d-shop"]
    assert found(client, alice, "tag=news&tag=promo") == []
    assert found(client, alice, tag="nobody uses this") == []


def test_exclude_tag_leaves_out_links_with_any_of_them(client, alice, catalogue):
    assert found(client, alice, exclude_tag="top") == ["e-100", "c-blog", "a-sale"]
    assert found(client, alice, "exclude_tag=top&exclude_tag=PROMO") == ["e-100", "c-blog"]
    assert found(client, alice, "tag=news&exclude_tag=top") == ["c-blog"]


@pytest.mark.parametrize(
    "q,expected",
    [
        ("sale", ["a-sale"]),  # slug, title and target
        ("NEWS", ["b-news"]),  # title and target, case-insensitively
        ("shop", ["d-shop", "a-sale"]),  # title, slug, target
        ("example.org", ["c-blog"]),  # target only
        ("summer s", ["a-sale"]),  # title, with a space
        ("%", ["e-100"]),  # LIKE's wildcards are plain characters
        ("_", ["e-100"]),
        ("100%", ["e-100"]),
        ("?x=1", ["a-sale"]),
        ("nothing like it", []),
    ],
)
@pytest.mark.parametrize("window", [1000, 2], ids=["nearby", "index"])
def test_q_searches_slug_title_and_target(
    client, alice, catalogue, q, expected, window, monkeypatch
):
    """Both ways a search is answered: from the links nearest its page, and (when those do
    not fill it) through the search index."""
    monkeypatch.setattr(link_queries, "SEARCH_WINDOW", window)
    assert found(client, alice, q=q) == expected
    assert found(client, alice, f"q={quote(q)}&limit=1&sort=slug") == sorted(expected)


def test_target_matches_exactly_after_normalisation(client, alice, catalogue):
    assert found(client, alice, target="https://shop.example.com/") == ["d-shop"]
    assert found(client, alice, target="HTTPS://SHOP.Example.COM/") == ["d-shop"]
    assert found(client, alice, target="https://shop.example.com") == []  # another URL
    assert found(client, alice, target="https://shop.example.com/sale?x=1") == ["a-sale"]
    assert_problem(
        client.get(LINKS, query_string={"target": "ftp://x"}, auth=alice), 400, field="target"
    )


def test_created_since_is_inclusive_and_until_exclusive(client, alice, catalogue):
    assert found(client, alice, created_since="2026-01-03") == ["e-100", "d-shop", "c-blog"]
    assert found(client, alice, created_until="2026-01-03") == ["a-sale", "b-news"]
    assert found(
        client, alice, created_since="2026-01-02T00:00:00Z", created_until="2026-01-04T00:00:00Z"
    ) == ["c-blog", "a-sale"]


def test_filters_combine(client, alice, catalogue):
    assert found(client, alice, "tag=promo&q=shop&created_since=2026-01-04&sort=title") == [
        "d-shop"
    ]


def test_a_user_finds_only_their_own_links_and_an_admin_everyones(
    client, alice, bob, admin, catalogue
):
    assert found(client, bob, tag="promo") == ["bobs"]
    assert found(client, bob, q="news") == []
    assert found(client, admin, "tag=promo&sort=slug") == ["a-sale", "bobs", "d-shop"]
    assert found(client, admin, "tag=promo&owner=bob") == ["bobs"]
    assert found(client, bob, "tag=promo&owner=alice") == []


def test_the_lifetime_status_filter_still_works(client, alice, catalogue):
    client.patch(f"{LINKS}/c-blog", json={"valid_until": "2026-01-01T00:00:00Z"}, auth=alice)
    assert found(client, alice, status="expired") == ["c-blog"]
    assert "c-blog" not in found(client, alice, status="active")


@pytest.mark.parametrize(
    "query,field",
    [
        ("sort=newest", "sort"),
        ("sort=-", "sort"),
        ("tag=a/b", "tag"),
        ("tag=", "tag"),
        ("exclude_tag=" + "x" * 65, "exclude_tag"),
        ("q=", "q"),
        ("q=" + "x" * 201, "q"),
        ("target=not-a-url", "target"),
        ("created_since=yesterday", "created_since"),
        ("created_until=2026-02-30", "created_until"),
        ("created_since=2026-02-02&created_until=2026-02-01", "created_since"),
        ("cursor=WyJrMSJd", "cursor"),
        ("q=a&q=b", "q"),  # only tag and exclude_tag repeat
        ("sort=slug&sort=title", "sort"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, alice, query, field):
    body = assert_problem(client.get(f"{LINKS}?{query}", auth=alice), 400, field=field)
    assert body["type"].endswith("/problems/invalid-parameter")


def test_a_cursor_of_another_sort_is_400(client, alice, catalogue):
    next_uri = client.get(f"{LINKS}?sort=slug&limit=1", auth=alice).get_json()["next"]
    cursor = parse_qs(urlsplit(next_uri).query)["cursor"][0]
    assert_problem(client.get(f"{LINKS}?sort=title&cursor={cursor}", auth=alice), 400)
    assert client.get(f"{LINKS}?sort=slug&cursor={cursor}", auth=alice).status_code == 200


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_reads_an_index_range_without_sorting(app, sort):
    """A keyset page on each sort, per owner and across owners, walks its index from the
    cursor's position: no sort step, so the last page of many links costs what the first
    does. (PostgreSQL is told not to prefer a sequential scan of the empty test table.)"""
    name = sort.lstrip("-")
    key = {"created": datetime(2026, 1, 1, tzinfo=UTC), "visits": 3}.get(name, "m")
    database = app.extensions["shortener"].database
    with database.read() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            connection.exec_driver_sql("SET LOCAL enable_sort = off")
        for owner_id in (1, None):
            for after in (None, (key, 10)):
                query = link_queries.filtered_page_query(
                    NO_FILTER, owner_id=owner_id, sort=sort, after=after, limit=51
                )
                plan = explain(connection, query)
                assert not SORT_STEP.search(plan), plan


SORT_STEP = re.compile(r"temp b-tree|(^|->\s*|\|\s*)(incremental )?sort\b", re.MULTILINE)


def explain(connection, query) -> str:
    """The database's plan of ``query``'s own steps (not those of the subquery reading each
    link's tags), lowercased, one line per step."""
    compiled = query.compile(dialect=connection.dialect)
    processors = compiled._bind_processors
    values = {
        name: processors[name](value) if name in processors and value is not None else value
        for name, value in compiled.construct_params().items()
    }
    if connection.dialect.name == "sqlite":
        parameters = tuple(values[name] for name in compiled.positiontup)
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", parameters)
        return "\n".join(str(row[-1]) for row in rows if row[1] == 0).lower()
    rows = connection.exec_driver_sql(f"EXPLAIN {compiled.string}", values)
    lines = [str(row[0]).lower() for row in rows]
    return "\n".join(lines[: next((i for i, x in enumerate(lines) if "subplan" in x), None)])


def test_a_search_is_answered_by_the_trigram_index_in_the_app_s_own_schema(app):
    """On PostgreSQL the search of q reads its trigram index ix_links_search (created with
    public.gin_trgm_ops) while the connection's search_path is the tests' own schema only, as
    a schema-scoped deployment's is: the index's operator class is named with its schema and
    LIKE is pg_catalog's, so nothing is looked up in public. (The planner is told not to
    prefer scanning the empty test table.)"""
    database = app.extensions["shortener"].database
    with database.read() as connection:
        if connection.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's trigram index (SQLite searches its FTS5 table)")
        search_path = connection.exec_driver_sql("SHOW search_path").scalar_one()
        assert "public" not in search_path, search_path
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
        # Across owners: an owner's links could also be read by the owner's index in an empty
        # table (the choice of statistics, which it has none of).
        query = link_queries.filtered_page_query(
            replace(NO_FILTER, q="needle"), owner_id=None, sort="-created", after=None, limit=51
        )
        plan = explain(connection, query)
        assert "bitmap index scan on ix_links_search" in plan, plan


def test_the_search_index_follows_every_change_of_a_link(client, alice, monkeypatch):
    monkeypatch.setattr(link_queries, "SEARCH_WINDOW", 1)  # always through the index
    for slug in ("one", "two", "three"):
        create(client, alice, slug, title=f"Title {slug}")
    assert found(client, alice, q="title tw") == ["two"]
    client.patch(f"{LINKS}/two", json={"title": "Renamed"}, auth=alice)
    assert found(client, alice, q="title tw") == []
    assert found(client, alice, q="RENAMED") == ["two"]
    body = {"target": "https://elsewhere.example/path", "title": None}
    assert client.put(f"{LINKS}/one", json=body, auth=alice).status_code == 200
    assert found(client, alice, q="elsewhere") == ["one"]
    assert found(client, alice, q="title one") == []
    assert client.delete(f"{LINKS}/three", auth=alice).status_code == 204
    assert found(client, alice, q="title three") == []
    assert found(client, alice, q="wo") == ["two"]  # shorter than a trigram: every link read
