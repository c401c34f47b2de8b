"""POST /api/v1.0/links with "find_if_exists": true (issue 10, README "Deduplication"): the
caller's existing link with the same normalised target and the same options (200, Location),
else a new one (201); race-safe. On SQLite and, with SHORTENER_TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from support import assert_problem

from shortener.storage import link_queries

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/docs"


def find(client, auth, **body):
    return client.post(LINKS, json={"target": TARGET, "find_if_exists": True, **body}, auth=auth)


def test_the_first_creates_and_the_second_finds_it(client, alice, row_counts):
    first = find(client, alice, title="Docs")
    assert first.status_code == 201
    again = find(client, alice, title="Docs")
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.get_json()["uri"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert row_counts()["links"] == 1


def test_the_target_is_compared_as_normalised(client, alice):
    first = find(client, alice, target="https://example.com/docs")
    again = find(client, alice, target="HTTPS://EXAMPLE.com/docs")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["slug"] == first.get_json()["slug"]


def test_defaults_given_or_left_out_are_the_same_options(client, alice):
    first = find(client, alice)
    spelled_out = find(
        client,
        alice,
        title=None,
        redirect_status=302,
        crawlable=False,
        forward_query=False,
        max_visits=None,
        rules=[],
        variants=[],
        tags=[],
        password=None,
    )
    no_tags = find(client, alice, tags=None)  # null is none, as on a POST without the flag
    assert no_tags.status_code == 200
    assert (first.status_code, spelled_out.status_code) == (201, 200)


@pytest.mark.parametrize(
    "other",
    [
        {"title": "Another"},
        {"redirect_status": 301},
        {"crawlable": True},
        {"forward_query": True},
        {"utm_source": "news"},
        {"max_visits": 5},
        {"valid_until": "2099-01-01T00:00:00Z"},
        {"expired_target": "https://example.com/gone"},
        {"tags": ["news"]},
        {
            "variants": [
                {"target": "https://example.com/a", "weight": 50},
                {"target": "https://example.com/b", "weight": 50},
            ]
        },
        {"target": "https://example.com/docs/"},
    ],
    ids=lambda other: next(iter(other)),
)
def test_any_other_option_makes_a_new_link(client, alice, row_counts, other):
    assert find(client, alice).status_code == 201
    assert find(client, alice, **other).status_code == 201
    assert row_counts()["links"] == 2


def test_tags_match_in_any_order_and_case(client, alice):
    assert find(client, alice, tags=["News", "sale"]).status_code == 201
    assert find(client, alice, tags=["SALE", "news"]).status_code == 200


def test_a_password_matches_only_the_same_password(client, alice, row_counts):
    first = find(client, alice, password="open sesame")
    assert first.status_code == 201
    assert find(client, alice, password="open sesame").get_json()["uri"] == first.get_json()["uri"]
    assert find(client, alice, password="another one").status_code == 201
    assert find(client, alice).status_code == 201  # no password is another option too
    assert row_counts()["links"] == 3


def test_a_given_slug_must_match_too(client, alice, row_counts):
    assert find(client, alice, slug="docs").status_code == 201
    assert find(client, alice, slug="docs").status_code == 200
    assert find(client, alice).status_code == 200  # no slug given: any slug will do
    elsewhere = find(client, alice, slug="manual")
    assert elsewhere.status_code == 201
    assert elsewhere.get_json()["slug"] == "manual"
    assert row_counts()["links"] == 2


def test_a_slug_taken_with_other_options_is_409(client, alice, row_counts):
    assert find(client, alice, slug="docs").status_code == 201
    assert_problem(find(client, alice, slug="docs", title="Other"), 409)
    assert row_counts()["links"] == 1


def test_another_users_link_is_never_found(client, alice, bob):
    mine = find(client, alice)
    theirs = find(client, bob)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.get_json()["slug"] != theirs.get_json()["slug"]


def test_the_oldest_matching_link_is_the_one_found(client, alice):
    first = client.post(LINKS, json={"target": TARGET}, auth=alice).get_json()
    client.post(LINKS, json={"target": TARGET}, auth=alice)  # a duplicate made without the flag
    assert find(client, alice).get_json()["uri"] == first["uri"]


def test_without_the_flag_every_post_creates(client, alice, row_counts):
    for expected in (201, 201):
        assert client.post(LINKS, json={"target": TARGET}, auth=alice).status_code == expected
    assert find(client, alice, find_if_exists=False).status_code == 201
    assert row_counts()["links"] == 3


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_flag_is_a_json_boolean(client, alice, row_counts, value):
    response = find(client, alice, find_if_exists=value)
    assert_problem(response, 422, field="find_if_exists")
    assert row_counts()["links"] == 0


def test_put_and_patch_do_not_take_the_flag(client, alice):
    client.post(LINKS, json={"target": TARGET, "slug": "docs"}, auth=alice)
    body = {"target": TARGET, "find_if_exists": True}
    assert_problem(client.put(f"{LINKS}/docs", json=body, auth=alice), 422, field="find_if_exists")
    patch = client.patch(f"{LINKS}/docs", json={"find_if_exists": True}, auth=alice)
    assert_problem(patch, 422, field="find_if_exists")


def test_invalid_fields_are_422_and_store_nothing(client, alice, row_counts):
    assert_problem(find(client, alice, target="ftp://example.com/"), 422, field="target")
    assert row_counts()["links"] == 0


def test_concurrent_requests_create_one_link(app, alice, row_counts, monkeypatch):
    """Eight clients at once: one 201 and seven 200 for the same link, and no two ever looked
    for the target at the same time (the owner's target is locked before the look-up)."""
    inside, most_inside, lock = [0], [0], threading.Lock()
    look_up = link_queries.same_target

    def watched(*args, **kwargs):
        with lock:
            inside[0] += 1
            most_inside[0] = max(most_inside[0], inside[0])
        try:
            threading.Event().wait(0.02)  # a window for another request to come in
            return look_up(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(link_queries, "same_target", watched)
    start = threading.Barrier(8)
    answers: list = []

    def request() -> None:
        client = app.test_client()
        start.wait()
        answers.append(find(client, alice))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [201]
    assert len({answer.get_json()["uri"] for answer in answers}) == 1
    assert most_inside[0] == 1
    assert row_counts()["links"] == 1


def test_the_document_declares_the_flag_and_the_200(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    create = document["paths"]["/api/v1.0/links"]["post"]
    found = create["responses"]["200"]
    assert "Location" in found["headers"]
    assert "Location" in create["responses"]["201"]["headers"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][schema.rsplit("/", 1)[1]]
    assert body["properties"]["find_if_exists"]["type"] == "boolean"
