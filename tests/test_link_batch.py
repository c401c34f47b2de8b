"""POST, PATCH and DELETE /api/v1.0/links/batch (issue 10, README "Bulk operations"): up to
1,000 links in one request, each on its own (or all or nothing), through the same service
code as a single link. On SQLite and, with SHORTENER_TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import make_app
from sqlalchemy import func, select
from support import JSON_HEADERS, assert_problem

import shortener.services.batches as batches
from shortener.storage.tables import webhook_messages

LINKS = "/api/v1.0/links"
BATCH = f"{LINKS}/batch"
EXAMPLE = "https://example.com/"


def create(client, auth, links: list, **options):
    return client.post(BATCH, json={"links": links, **options}, auth=auth)


def change(client, auth, **body):
    return client.patch(BATCH, json=body, auth=auth)


def delete(client, auth, **body):
    return client.delete(BATCH, json=body, auth=auth)


def make_links(client, auth, *slugs: str, **fields) -> None:
    links = [{"target": f"{EXAMPLE}{slug}", "slug": slug, **fields} for slug in slugs]
    response = create(client, auth, links)
    assert [item["status"] for item in response.get_json()["results"]] == [201] * len(slugs)


def statuses(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["status"] for item in response.get_json()["results"]]


def titles(client, auth) -> dict[str, str | None]:
    links = client.get(f"{LINKS}?limit=1000", auth=auth).get_json()["links"]
    return {link["slug"]: link["title"] for link in links}


# -- POST: creating ---------------------------------------------------------------------------
def test_each_item_succeeds_or_fails_on_its_own_in_input_order(client, alice, row_counts):
    response = create(
        client,
        alice,
        [
            {"target": f"{EXAMPLE}a", "title": "A"},
            {"target": "ftp://example.com/"},
            {"target": f"{EXAMPLE}b", "slug": "bee"},
            {"target": f"{EXAMPLE}c", "slug": "bee"},
            "not an object",
            {
                "target": f"{EXAMPLE}d",
                "valid_since": "2030-01-01T00:00:00Z",
                "valid_until": "2029-01-01T00:00:00Z",
            },  # fmt: skip
            {"target": f"{EXAMPLE}e", "colour": "red"},
            {"target": f"{EXAMPLE}f", "slug": "api"},
        ],
    )
    assert statuses(response) == [201, 422, 201, 409, 422, 422, 422, 422]
    results = response.get_json()["results"]
    assert [item["index"] for item in results] == list(range(8))
    assert results[0]["link"]["title"] == "A"
    assert results[0]["link"]["uri"].startswith("http://localhost/api/v1.0/links/")
    assert results[2]["link"]["slug"] == "bee"
    assert "target" in results[1]["problem"]["errors"]
    assert results[3]["problem"]["type"].endswith("/problems/slug-taken")
    assert results[4]["problem"]["errors"] == {"body": ["Must be a JSON object."]}
    assert "valid_until" in json.dumps(results[5]["problem"])
    assert results[6]["problem"]["errors"] == {"colour": ["Unknown field."]}
    assert "slug" in results[7]["problem"]["errors"]
    for item in results:
        assert ("link" in item) != ("problem" in item)
        if "problem" in item:
            assert item["problem"]["status"] == item["status"]
    assert row_counts()["links"] == 2  # the failing items stored nothing


def test_created_links_are_served(client, alice):
    response = create(client, alice, [{"target": f"{EXAMPLE}x", "slug": "ex"}])
    link = response.get_json()["results"][0]["link"]
    assert client.get(link["uri"], auth=alice).get_json() == link
    redirect = client.get("/ex")
    assert (redirect.status_code, redirect.headers["Location"]) == (302, f"{EXAMPLE}x")


def test_atomic_with_an_invalid_item_is_422_and_stores_nothing(client, alice, row_counts):
    response = create(
        client,
        alice,
        [{"target": f"{EXAMPLE}a"}, {"target": "nope"}, {"target": f"{EXAMPLE}b", "slug": "a b"}],
        atomic=True,
    )
    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/problems/batch-invalid")
    assert [item["index"] for item in problem["results"]] == [1, 2]
    assert all(item["status"] == 422 for item in problem["results"])
    assert "target" in problem["results"][0]["problem"]["errors"]
    assert row_counts()["links"] == 0


def test_atomic_with_a_conflict_is_409_and_stores_nothing(client, alice, row_counts):
    make_links(client, alice, "taken")
    response = create(
        client,
        alice,
        [{"target": f"{EXAMPLE}a", "slug": "free"}, {"target": f"{EXAMPLE}b", "slug": "taken"}],
        atomic=True,
    )
    problem = assert_problem(response, 409)
    assert problem["type"].endswith("/problems/batch-failed")
    assert [(item["index"], item["status"]) for item in problem["results"]] == [(1, 409)]
    assert row_counts()["links"] == 1
    assert client.get(f"{LINKS}/free", auth=alice).status_code == 404


def test_atomic_success_stores_everything(client, alice, row_counts):
    response = create(client, alice, [{"target": f"{EXAMPLE}{n}"} for n in range(3)], atomic=True)
    assert statuses(response) == [201, 201, 201]
    assert row_counts()["links"] == 3


def test_the_same_slug_twice_in_one_batch_fails_the_second(client, alice, row_counts):
    response = create(
        client,
        alice,
        [{"target": f"{EXAMPLE}1", "slug": "s"}, {"target": f"{EXAMPLE}2", "slug": "s"}],
    )
    assert statuses(response) == [201, 409]
    assert row_counts()["links"] == 1


def test_find_if_exists_works_per_item(client, alice, row_counts):
    make_links(client, alice, "old")
    response = create(
        client,
        alice,
        [
            {"target": f"{EXAMPLE}old", "find_if_exists": True},
            {"target": f"{EXAMPLE}new", "find_if_exists": True},
            {"target": f"{EXAMPLE}new", "find_if_exists": True},
        ],
    )
    assert statuses(response) == [200, 201, 200]
    results = response.get_json()["results"]
    assert results[0]["link"]["slug"] == "old"
    assert results[1]["link"]["uri"] == results[2]["link"]["uri"]
    assert row_counts()["links"] == 2


def test_a_thousand_links_in_one_batch(client, alice, row_counts):
    links = [{"target": f"{EXAMPLE}{n}", "title": f"Link {n}"} for n in range(1000)]
    response = create(client, alice, links)
    assert statuses(response) == [201] * 1000
    assert row_counts()["links"] == 1000
    slugs = [item["link"]["slug"] for item in response.get_json()["results"]]
    assert len(set(slugs)) == 1000


def test_more_than_1000_links_are_refused_not_cut(client, alice, row_counts):
    response = create(client, alice, [{"target": EXAMPLE}] * 1001)
    problem = assert_problem(response, 422, field="links")
    assert "1,000" in problem["errors"]["links"][0]
    assert row_counts()["links"] == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"links": []}, {"links": {"target": EXAMPLE}}, {"links": [], "atomic": "yes"}, [1]],
    ids=["no links", "empty", "not a list", "atomic not boolean", "not an object"],
)
def test_a_malformed_batch_is_422(client, alice, row_counts, body):
    assert_problem(client.post(BATCH, json=body, auth=alice), 422)
    assert row_counts()["links"] == 0


def test_a_body_over_the_batch_limit_is_413(database_url, row_counts):
    app = make_app(database_url, BATCH_MAX_CONTENT_LENGTH=64 * 1024)
    try:
        from shortener.services.actors import OPERATOR

        app.extensions["shortener"].users.create(OPERATOR, username="carol", password="pw" * 8)
        client = app.test_client()
        links = [{"target": f"{EXAMPLE}{'x' * 100}{n}"} for n in range(1000)]
        response = client.post(BATCH, json={"links": links}, auth=("carol", "pw" * 8))
        assert_problem(response, 413)
        assert row_counts()["links"] == 0
    finally:
        app.extensions["shortener"].close()


def test_a_batch_body_may_be_larger_than_other_bodies(client, alice):
    """MAX_CONTENT_LENGTH (64 KiB) refuses a large single body; a batch has its own limit."""
    links = [{"target": f"{EXAMPLE}{'x' * 200}{n}"} for n in range(400)]  # ~100 KB
    assert statuses(create(client, alice, links)) == [201] * 400
    big = client.post(LINKS, json={"target": EXAMPLE, "title": "x" * 70_000}, auth=alice)
    assert_problem(big, 413)


def test_idempotency_key_replays_the_batch(client, alice, row_counts):
    body = json.dumps({"links": [{"target": f"{EXAMPLE}a"}, {"target": f"{EXAMPLE}b"}]})
    headers = {**JSON_HEADERS, "Idempotency-Key": "batch-1"}
    first = client.post(BATCH, data=body, headers=headers, auth=alice)
    again = client.post(BATCH, data=body, headers=headers, auth=alice)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert row_counts()["links"] == 2
    other = client.post(BATCH, data=body.replace("/a", "/c"), headers=headers, auth=alice)
    assert_problem(other, 422)


def test_batch_is_a_reserved_slug_and_hides_no_link(client, alice):
    assert_problem(client.post(LINKS, json={"target": EXAMPLE, "slug": "batch"}, auth=alice), 422)
    item = create(client, alice, [{"target": EXAMPLE, "slug": "Batch"}])
    assert statuses(item) == [422]
    # The link's route does not take the name either: its methods are the batch's only.
    for method in ("GET", "PUT"):
        refused = client.open(f"{LINKS}/batch", method=method, json={"target": EXAMPLE}, auth=alice)
        assert_problem(refused, 405)
        assert set(refused.headers["Allow"].split(", ")) == {"POST", "PATCH", "DELETE", "OPTIONS"}
    options = client.options(f"{LINKS}/batch", auth=alice)
    assert set(options.headers["Allow"].split(", ")) == {"POST", "PATCH", "DELETE", "OPTIONS"}
    make_links(client, alice, "batches", "batch-1")
    assert client.get(f"{LINKS}/batches", auth=alice).status_code == 200
    assert client.get(f"{LINKS}/batch-1", auth=alice).status_code == 200
    assert client.delete(f"{LINKS}/batch-1", auth=alice).status_code == 204


def test_writing_needs_the_links_write_scope(client, alice, row_counts):
    token = client.post(
        "/api/v1.0/tokens", json={"name": "r", "scopes": ["links:read"]}, auth=alice
    )
    bearer = {"Authorization": f"Bearer {token.get_json()['token']}"}
    response = client.post(BATCH, json={"links": [{"target": EXAMPLE}]}, headers=bearer)
    assert_problem(response, 403)
    assert row_counts()["links"] == 0


# -- PATCH: changing --------------------------------------------------------------------------
def test_change_by_slugs(client, alice, bob):
    make_links(client, alice, "one", "two", title="Old")
    make_links(client, bob, "bobs")
    response = change(
        client, alice, slugs=["two", "missing", "bobs", "one"], changes={"title": "New"}
    )
    assert statuses(response) == [200, 404, 404, 200]
    results = response.get_json()["results"]
    assert [item["slug"] for item in results] == ["two", "missing", "bobs", "one"]
    assert results[0]["changes"] == {"title": ["Old", "New"]}
    assert results[0]["link"]["title"] == "New"
    assert results[2]["problem"]["type"].endswith("/problems/not-found")
    assert titles(client, alice) == {"one": "New", "two": "New"}
    assert titles(client, bob) == {"bobs": None}


def test_a_change_invalid_for_one_link_fails_that_link_only(client, alice):
    make_links(client, alice, "early", valid_since="2030-01-01T00:00:00Z")
    make_links(client, alice, "plain")
    response = change(
        client, alice, slugs=["early", "plain"], changes={"valid_until": "2029-01-01T00:00:00Z"}
    )
    assert statuses(response) == [422, 200]
    link = client.get(f"{LINKS}/early", auth=alice).get_json()
    assert link["valid_until"] is None


def test_change_dry_run_changes_nothing(client, alice):
    make_links(client, alice, "one", "two", title="Old")
    response = change(client, alice, slugs=["one", "two"], changes={"title": "New"}, dry_run=True)
    assert statuses(response) == [200, 200]
    body = response.get_json()
    assert body["dry_run"] is True
    assert body["results"][0]["changes"] == {"title": ["Old", "New"]}
    assert titles(client, alice) == {"one": "Old", "two": "Old"}


def test_change_by_filter(client, alice, bob):
    make_links(client, alice, "news-1", "news-2", tags=["News"])
    make_links(client, alice, "other")
    make_links(client, bob, "bobs-news", tags=["news"])
    response = change(client, alice, filter={"tag": ["news"]}, changes={"title": "Tagged"})
    assert statuses(response) == [200, 200]
    assert {item["slug"] for item in response.get_json()["results"]} == {"news-1", "news-2"}
    assert titles(client, alice) == {"news-1": "Tagged", "news-2": "Tagged", "other": None}
    assert titles(client, bob) == {"bobs-news": None}


def test_a_filter_selecting_too_many_links_is_refused_not_cut(client, alice, monkeypatch):
    make_links(client, alice, "a", "b", "c")
    monkeypatch.setattr(batches, "MAX_BATCH_ITEMS", 2)
    response = change(client, alice, filter={}, changes={"title": "All"})
    assert_problem(response, 422, field="filter")
    assert titles(client, alice) == {"a": None, "b": None, "c": None}


def test_a_change_of_target_reaches_the_redirect_at_once(client, alice):
    make_links(client, alice, "go")
    assert client.get("/go").headers["Location"] == f"{EXAMPLE}go"  # now in the link cache
    response = change(client, alice, slugs=["go"], changes={"target": "https://example.org/"})
    assert statuses(response) == [200]
    assert client.get("/go").headers["Location"] == "https://example.org/"


def test_atomic_change_with_a_missing_link_changes_nothing(client, alice):
    make_links(client, alice, "one")
    response = change(
        client, alice, slugs=["one", "missing"], changes={"title": "New"}, atomic=True
    )
    problem = assert_problem(response, 409)
    assert [(item["slug"], item["status"]) for item in problem["results"]] == [("missing", 404)]
    assert titles(client, alice) == {"one": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slugs": ["one"], "changes": {"title": 5}}, "changes.title"),
        ({"slugs": ["one"], "changes": {"slug": "other"}}, "changes.slug"),
        ({"slugs": ["one"], "changes": {}}, "changes"),
        ({"slugs": ["one"]}, "changes"),
        ({"changes": {"title": "x"}}, "body"),
        ({"slugs": ["one"], "filter": {}, "changes": {"title": "x"}}, "body"),
        ({"slugs": ["one", "one"], "changes": {"title": "x"}}, "slugs"),
        ({"slugs": [], "changes": {"title": "x"}}, "slugs"),
        ({"filter": {"colour": "red"}, "changes": {"title": "x"}}, "filter.colour"),
        ({"slugs": ["one"], "changes": {"title": "x"}, "dry_run": "yes"}, "dry_run"),
    ],
)
def test_a_bad_change_request_is_422_and_changes_nothing(client, alice, body, field):
    make_links(client, alice, "one", title="Old")
    assert_problem(client.patch(BATCH, json=body, auth=alice), 422, field=field)
    assert titles(client, alice) == {"one": "Old"}


def test_more_than_1000_slugs_are_refused(client, alice):
    slugs = [f"s{n}" for n in range(1001)]
    assert_problem(change(client, alice, slugs=slugs, changes={"title": "x"}), 422, field="slugs")


# -- DELETE ------------------------------------------------------------------------------------
def test_delete_by_slugs(client, alice, row_counts):
    make_links(client, alice, "one", "two", "three")
    response = delete(client, alice, slugs=["one", "missing", "three"])
    assert statuses(response) == [204, 404, 204]
    assert response.get_json()["results"][0]["link"]["slug"] == "one"  # as it was
    assert set(titles(client, alice)) == {"two"}
    assert client.get("/one").status_code == 404


def test_delete_dry_run_deletes_nothing(client, alice, row_counts):
    make_links(client, alice, "one", "two")
    response = delete(client, alice, slugs=["one", "two"], dry_run=True)
    assert statuses(response) == [204, 204]
    assert response.get_json()["dry_run"] is True
    assert row_counts()["links"] == 2


def test_delete_by_filter(client, alice, row_counts):
    make_links(client, alice, "old-1", "old-2", tags=["old"])
    make_links(client, alice, "keep")
    response = delete(client, alice, filter={"tag": "old"})
    assert sorted(item["slug"] for item in response.get_json()["results"]) == ["old-1", "old-2"]
    assert set(titles(client, alice)) == {"keep"}


def test_atomic_delete_with_a_missing_link_deletes_nothing(client, alice, row_counts):
    make_links(client, alice, "one")
    assert_problem(delete(client, alice, slugs=["one", "missing"], atomic=True), 409)
    assert row_counts()["links"] == 1


def test_an_admin_filter_may_name_an_owner(client, admin, alice, bob):
    make_links(client, alice, "a1", "a2")
    make_links(client, bob, "b1")
    response = delete(client, admin, filter={"owner": "alice"}, dry_run=True)
    assert sorted(item["slug"] for item in response.get_json()["results"]) == ["a1", "a2"]


# -- the document -----------------------------------------------------------------------------
def test_the_document_declares_the_batch_operations(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    operations = document["paths"]["/api/v1.0/links/batch"]
    assert {method: operations[method]["operationId"] for method in operations} == {
        "post": "createLinks",
        "patch": "updateLinks",
        "delete": "deleteLinks",
    }
    for method in ("post", "patch", "delete"):
        responses = operations[method]["responses"]
        assert {"200", "409", "413", "422"} <= set(responses)
        assert "requestBody" in operations[method]
    assert "Idempotency-Key" in json.dumps(operations["post"]["parameters"])


def test_a_slug_taken_after_the_first_check_fails_its_item_alone(
    app, client, alice, row_counts, monkeypatch
):
    """The first pass checks given slugs in one query and writes without savepoints; a slug
    taken between that check and the INSERT (here: a check that sees nothing) undoes the pass,
    and the batch is done again with savepoints, where that item fails alone."""
    make_links(client, alice, "taken")
    links = app.extensions["shortener"].links
    monkeypatch.setattr(links, "taken_slugs", lambda connection, slugs: set())
    response = create(
        client,
        alice,
        [
            {"target": f"{EXAMPLE}1"},
            {"target": f"{EXAMPLE}2", "slug": "taken"},
            {"target": f"{EXAMPLE}3", "slug": "free"},
        ],
    )
    assert statuses(response) == [201, 409, 201]
    assert row_counts()["links"] == 3


def test_concurrent_batches_finding_the_same_targets_create_each_once(app, alice, row_counts):
    """Two batches at once ask for the same 20 targets with find_if_exists, in opposite
    orders: each target is created once, and neither waits for the other in a circle (the
    targets are locked up front, in one order)."""
    targets = [f"{EXAMPLE}{n}" for n in range(20)]
    bodies = [
        {"links": [{"target": target, "find_if_exists": True} for target in order]}
        for order in (targets, targets[::-1])
    ]
    start = threading.Barrier(len(bodies))
    answers: list = []

    def send(body: dict) -> None:
        client = app.test_client()
        start.wait()
        answers.append(client.post(BATCH, json=body, auth=alice))

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [answer.status_code for answer in answers] == [200, 200]
    found = [
        {item["link"]["target"]: item["status"] for item in answer.get_json()["results"]}
        for answer in answers
    ]
    for target in targets:
        assert sorted(answer[target] for answer in found) == [200, 201]
    assert row_counts()["links"] == 20


def test_passwords_are_hashed_once_each_and_at_most_20_different_ones(
    app, client, alice, row_counts, monkeypatch
):
    hasher = app.extensions["shortener"].links.hasher
    hashed: list[str] = []
    hash_password = hasher.hash
    monkeypatch.setattr(hasher, "hash", lambda password: hashed.append(password) or
                        hash_password(password))  # fmt: skip
    same = [{"target": f"{EXAMPLE}same{n}", "password": "one for all"} for n in range(30)]
    different = [{"target": f"{EXAMPLE}own{n}", "password": f"password {n:02}"} for n in range(20)]
    response = create(client, alice, same + different)
    expected = [201] * 30 + [201] * 19 + [422]  # "one for all" is the first of 20
    assert statuses(response) == expected
    problem = response.get_json()["results"][-1]["problem"]
    assert "20" in problem["errors"]["password"][0]
    assert sorted(hashed) == sorted({"one for all", *(f"password {n:02}" for n in range(19))})
    assert row_counts()["links"] == 49
    follow = client.get(f"/{response.get_json()['results'][0]['link']['slug']}",
                        auth=("anyone", "one for all"))  # fmt: skip
    assert follow.status_code == 302


def history_events(client, auth, slug: str) -> list[str]:
    response = client.get(f"{LINKS}/{slug}/history", auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [revision["event"] for revision in response.get_json()["history"]]


def outbox_size(app) -> int:
    with app.extensions["shortener"].database.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(webhook_messages)).scalar_one()


def test_each_item_leaves_its_revision_and_webhook_message_a_dry_run_none(database_url):
    """Items go through the link service: history and webhooks see each one, in the batch's
    transaction; a failed item and a dry run leave nothing."""
    from shortener.services.actors import OPERATOR

    app = make_app(database_url, WEBHOOK_ALLOW_PRIVATE=True)
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password="pw" * 8)
        carol = ("carol", "pw" * 8)
        client = app.test_client()
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["link.created", "link.updated"]}
        assert client.post("/api/v1.0/webhooks", json=hook, auth=carol).status_code == 201
        response = create(
            client,
            carol,
            [
                {"target": f"{EXAMPLE}1", "slug": "h1"},
                {"target": "nope"},
                {"target": f"{EXAMPLE}2", "slug": "h2"},
            ],
        )
        assert statuses(response) == [201, 422, 201]
        assert history_events(client, carol, "h1") == ["link.created"]
        assert outbox_size(app) == 2
        dry = change(client, carol, slugs=["h1", "h2"], changes={"title": "T"}, dry_run=True)
        assert statuses(dry) == [200, 200]
        assert history_events(client, carol, "h2") == ["link.created"]
        assert outbox_size(app) == 2
        assert statuses(change(client, carol, slugs=["h1", "h2"], changes={"title": "T"})) == [
            200,
            200,
        ]
        assert history_events(client, carol, "h2") == ["link.updated", "link.created"]
        assert outbox_size(app) == 4
    finally:
        app.extensions["shortener"].close()
