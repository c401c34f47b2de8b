"""Link history: every change of a link leaves a revision (who, how, what changed), read at
/api/v1.0/links/<slug>/history by whoever sees the link and at /api/v1.0/history by admins,
deleted links included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from support import assert_problem

from shortener.cli import main

API = "http://localhost/api/v1.0"
LINKS = "/api/v1.0/links"
HISTORY = "/api/v1.0/history"
LINK_PASSWORD = "open sesame 42"


def history(client, auth, slug: str, **query) -> list[dict]:
    answer = client.get(f"{LINKS}/{slug}/history", query_string=query, auth=auth)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["history"]


def token_of(client, auth, *scopes: str) -> tuple[str, dict]:
    """A new token of the user: its URI and the Authorization header that sends it."""
    created = client.post("/api/v1.0/tokens", json={"name": "t", "scopes": list(scopes)}, auth=auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    return body["uri"], {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture
def revision_count(app):
    engine = app.extensions["shortener"].database.engine

    def count() -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM link_revisions")).scalar_one()

    return count


def test_create_patch_put_rules_delete_each_leave_a_revision(client, alice):
    assert (
        client.post(
            LINKS, json={"slug": "h1", "target": "https://example.com/a"}, auth=alice
        ).status_code
        == 201
    )
    assert (
        client.patch(
            f"{LINKS}/h1", json={"title": "First", "crawlable": True}, auth=alice
        ).status_code
        == 200
    )
    assert (
        client.put(
            f"{LINKS}/h1",
            json={"target": "https://example.com/b", "title": "First", "redirect_status": 301},
            auth=alice,
        ).status_code
        == 200
    )
    rules = [{"conditions": [{"type": "language", "value": "de"}], "target": "https://e.de/"}]
    assert client.put(f"{LINKS}/h1/rules", json={"rules": rules}, auth=alice).status_code == 200

    revisions = history(client, alice, "h1")
    assert [revision["event"] for revision in revisions] == [
        "link.updated",
        "link.updated",
        "link.updated",
        "link.created",
    ]
    for revision in revisions:
        assert revision["by"] == f"{API}/users/alice"
        assert revision["via"] == "password"
        assert revision["slug"] == "h1"
        assert datetime.fromisoformat(revision["at"]) <= datetime.now(UTC)
    rules_change, put, patch, create = (revision["changes"] for revision in revisions)
    assert create == {
        "slug": [None, "h1"],
        "target": [None, "https://example.com/a"],
        "redirect_status": [None, 302],
    }
    assert patch == {"title": [None, "First"], "crawlable": [False, True]}
    # A PUT replaces every field: those it leaves out go back to their defaults.
    assert put == {
        "target": ["https://example.com/a", "https://example.com/b"],
        "redirect_status": [302, 301],
        "crawlable": [True, False],
    }
    assert rules_change == {"rules": [[], rules]}  # as the representation shows none
    # Newest first, each at or after the next one.
    moments = [datetime.fromisoformat(revision["at"]) for revision in revisions]
    assert moments == sorted(moments, reverse=True)


def test_a_write_that_changes_nothing_leaves_no_revision(client, alice, revision_count):
    client.post(LINKS, json={"slug": "same", "target": "https://example.com/"}, auth=alice)
    assert client.patch(f"{LINKS}/same", json={"title": None}, auth=alice).status_code == 200
    assert client.patch(f"{LINKS}/same", json={}, auth=alice).status_code == 200
    assert revision_count() == 1


def test_via_names_the_token_used(client, alice):
    token_uri, bearer = token_of(client, alice, "links:read", "links:write")
    assert (
        client.post(
            LINKS, json={"slug": "tok", "target": "https://e.com/"}, headers=bearer
        ).status_code
        == 201
    )
    client.patch(f"{LINKS}/tok", json={"title": "by password"}, auth=alice)
    by_password, by_token = history(client, alice, "tok")
    assert by_token["via"] == token_uri
    assert token_uri.startswith(f"{API}/tokens/")
    assert by_token["by"] == f"{API}/users/alice"
    assert by_password["via"] == "password"
    # The token reads the history too (links:read).
    assert client.get(f"{LINKS}/tok/history", headers=bearer).status_code == 200


def test_passwords_never_appear_only_has_password(client, alice):
    client.post(
        LINKS,
        json={"slug": "secret", "target": "https://e.com/", "password": LINK_PASSWORD},
        auth=alice,
    )
    client.patch(f"{LINKS}/secret", json={"password": "another one 43"}, auth=alice)
    client.patch(f"{LINKS}/secret", json={"password": None}, auth=alice)
    answer = client.get(f"{LINKS}/secret/history", auth=alice)
    assert LINK_PASSWORD not in answer.get_data(as_text=True)
    assert "another one" not in answer.get_data(as_text=True)
    removed, replaced, created = (revision["changes"] for revision in answer.get_json()["history"])
    assert created["has_password"] == [None, True]
    assert "password" not in created
    assert replaced == {"has_password": [True, True]}  # a new password over the old one
    assert removed == {"has_password": [True, False]}


def test_history_is_paginated_like_every_collection(client, alice):
    client.post(LINKS, json={"slug": "pages", "target": "https://e.com/"}, auth=alice)
    for number in range(4):
        client.patch(f"{LINKS}/pages", json={"title": f"t{number}"}, auth=alice)
    first = client.get(f"{LINKS}/pages/history?limit=2", auth=alice)
    body = first.get_json()
    assert body["uri"] == f"{API}/links/pages/history?limit=2"
    assert [r["changes"]["title"][1] for r in body["history"]] == ["t3", "t2"]
    assert first.headers["Link"] == f'<{body["next"]}>; rel="next"'
    second = client.get(body["next"], auth=alice).get_json()
    third = client.get(second["next"], auth=alice).get_json()
    assert [r["event"] for r in second["history"]] == ["link.updated", "link.updated"]
    assert [r["event"] for r in third["history"]] == ["link.created"]
    assert third["next"] is None
    assert_problem(client.get(f"{LINKS}/pages/history?cursor=nonsense", auth=alice), 400)
    assert_problem(client.get(f"{LINKS}/pages/history?limit=0", auth=alice), 400)
    assert_problem(client.get(f"{LINKS}/pages/history?sort=at", auth=alice), 400)


def test_another_users_link_history_is_404_admins_see_it(client, alice, bob, admin):
    client.post(LINKS, json={"slug": "mine", "target": "https://e.com/"}, auth=alice)
    assert_problem(client.get(f"{LINKS}/mine/history", auth=bob), 404)
    assert_problem(client.get(f"{LINKS}/nowhere/history", auth=alice), 404)
    assert_problem(client.get(f"{LINKS}/mine/history"), 401)
    assert len(history(client, admin, "mine")) == 1
    # An admin's change of alice's link is the admin's.
    client.patch(f"{LINKS}/mine", json={"title": "fixed"}, auth=admin)
    assert history(client, alice, "mine")[0]["by"] == f"{API}/users/admin"


def test_a_token_without_links_read_cannot_read_history(client, alice):
    client.post(LINKS, json={"slug": "scoped", "target": "https://e.com/"}, auth=alice)
    _, bearer = token_of(client, alice, "stats:read")
    assert_problem(client.get(f"{LINKS}/scoped/history", headers=bearer), 403)


def test_history_survives_a_delete_for_admins(client, alice, bob, admin):
    client.post(
        LINKS, json={"slug": "gone", "target": "https://e.com/old", "title": "Old"}, auth=alice
    )
    assert client.delete(f"{LINKS}/gone", auth=alice).status_code == 204
    assert_problem(client.get(f"{LINKS}/gone/history", auth=alice), 404)
    # The slug made again (by another user) starts a history of its own.
    client.post(LINKS, json={"slug": "gone", "target": "https://e.com/new"}, auth=bob)
    assert [r["event"] for r in history(client, bob, "gone")] == ["link.created"]

    answer = client.get(f"{HISTORY}?slug=gone", auth=admin)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["uri"] == f"{API}/history?slug=gone"
    recreated, deleted, created = body["history"]
    assert recreated["event"] == "link.created" and recreated["by"] == f"{API}/users/bob"
    assert deleted["event"] == "link.deleted" and deleted["by"] == f"{API}/users/alice"
    assert deleted["changes"] == {
        "slug": ["gone", None],
        "target": ["https://e.com/old", None],
        "title": ["Old", None],
        "redirect_status": [302, None],
    }
    assert created["changes"]["target"] == [None, "https://e.com/old"]
    # Without ?slug=: every revision of every link, newest first.
    everything = client.get(HISTORY, auth=admin).get_json()["history"]
    assert [r["event"] for r in everything] == ["link.created", "link.deleted", "link.created"]
    assert client.get(f"{HISTORY}?slug=other", auth=admin).get_json()["history"] == []


def test_all_history_is_for_admins_only(client, alice, admin):
    client.post(LINKS, json={"slug": "x1", "target": "https://e.com/"}, auth=alice)
    assert_problem(client.get(f"{HISTORY}?slug=x1", auth=alice), 403)
    # An admin's token needs users:admin, as for every administrators' operation.
    _, bearer = token_of(client, admin, "links:read", "links:write")
    assert_problem(client.get(f"{HISTORY}?slug=x1", headers=bearer), 403)
    _, admin_bearer = token_of(client, admin, "users:admin")
    assert client.get(f"{HISTORY}?slug=x1", headers=admin_bearer).status_code == 200
    assert_problem(client.get(f"{HISTORY}?slug=not%20a%20slug", auth=admin), 400, field="slug")
    assert_problem(client.get(f"{HISTORY}?owner=alice", auth=admin), 400)


def test_a_refused_change_leaves_no_revision(client, alice, revision_count):
    client.post(LINKS, json={"slug": "keep", "target": "https://e.com/"}, auth=alice)
    tag = client.get(f"{LINKS}/keep", auth=alice).headers["ETag"]
    client.patch(f"{LINKS}/keep", json={"title": "moved on"}, auth=alice)
    stale = client.patch(
        f"{LINKS}/keep", json={"title": "stale"}, headers={"If-Match": tag}, auth=alice
    )
    assert_problem(stale, 412)
    assert_problem(client.patch(f"{LINKS}/keep", json={"redirect_status": 200}, auth=alice), 422)
    taken = client.post(LINKS, json={"slug": "keep", "target": "https://e.com/"}, auth=alice)
    assert_problem(taken, 409)
    assert revision_count() == 2


def test_command_line_changes_are_the_operators(app, client, alice, admin):
    """``shortener links purge-expired`` deletes through the link service: by null, via cli."""
    past = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    client.post(
        LINKS, json={"slug": "old", "target": "https://e.com/", "valid_until": past}, auth=alice
    )
    result = app.test_cli_runner().invoke(main, ["links", "purge-expired", "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    deleted, _ = client.get(f"{HISTORY}?slug=old", auth=admin).get_json()["history"]
    assert deleted["event"] == "link.deleted"
    assert deleted["by"] is None and deleted["via"] == "cli"


def test_history_is_in_the_openapi_document(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    link_history = document["paths"]["/api/v1.0/links/{slug}/history"]["get"]
    assert link_history["operationId"] == "listLinkHistory"
    all_history = document["paths"]["/api/v1.0/history"]["get"]
    assert all_history["operationId"] == "listHistory"
    assert "403" in all_history["responses"]
    revision = document["components"]["schemas"]["Revision"]["properties"]
    assert {"at", "by", "via", "changes"} <= set(revision)


def test_a_users_purge_leaves_a_deletion_for_each_link(client, alice, admin):
    for slug in ("p1", "p2"):
        client.post(LINKS, json={"slug": slug, "target": "https://e.com/"}, auth=alice)
    assert client.delete("/api/v1.0/users/alice?purge=true", auth=admin).status_code == 204
    for slug in ("p1", "p2"):
        deleted, created = client.get(f"{HISTORY}?slug={slug}", auth=admin).get_json()["history"]
        assert deleted["event"] == "link.deleted" and deleted["by"] == f"{API}/users/admin"
        assert created["by"] == f"{API}/users/alice"  # the URI of a user who no longer is


# -- changes through tags, batches and imports --------------------------------------------------
BATCH = f"{LINKS}/batch"


def test_tags_changes_show_in_history(client, alice):
    client.post(
        LINKS, json={"slug": "tagged", "target": "https://e.com/", "tags": ["News"]}, auth=alice
    )
    client.patch(f"{LINKS}/tagged", json={"tags": ["News", "sport"]}, auth=alice)
    client.patch(f"{LINKS}/tagged", json={"tags": []}, auth=alice)
    cleared, added, created = (r["changes"] for r in history(client, alice, "tagged"))
    assert created["tags"] == [None, ["News"]]
    assert added == {"tags": [["News"], ["News", "sport"]]}
    assert cleared == {"tags": [["News", "sport"], []]}


def test_renaming_or_deleting_a_tag_leaves_a_revision_on_each_link_carrying_it(client, alice):
    for slug, tags in (("t1", ["news", "b"]), ("t2", ["News"]), ("t3", ["other"])):
        client.post(
            LINKS, json={"slug": slug, "target": "https://e.com/", "tags": tags}, auth=alice
        )
    _, bearer = token_of(client, alice, "links:read", "links:write")
    renamed = client.patch("/api/v1.0/tags/news", json={"name": "Press"}, headers=bearer)
    assert renamed.status_code == 200, renamed.get_json()
    assert client.delete("/api/v1.0/tags/b", auth=alice).status_code == 204
    deleted_b, rename_1, _ = history(client, alice, "t1")
    assert rename_1["changes"] == {"tags": [["news", "b"], ["Press", "b"]]}
    assert rename_1["via"].startswith(f"{API}/tokens/")
    assert deleted_b["changes"] == {"tags": [["Press", "b"], ["Press"]]}
    assert deleted_b["via"] == "password"
    assert history(client, alice, "t2")[0]["changes"] == {"tags": [["news"], ["Press"]]}
    assert len(history(client, alice, "t3")) == 1  # not carrying it: untouched


def test_a_batch_leaves_a_revision_per_item_done_and_none_for_a_failed_one(
    client, alice, admin, revision_count
):
    links = [
        {"slug": "b1", "target": "https://e.com/1"},
        {"slug": "b2", "target": "not a url"},
        {"slug": "b3", "target": "https://e.com/3"},
    ]
    answer = client.post(BATCH, json={"links": links}, auth=alice)
    assert [item["status"] for item in answer.get_json()["results"]] == [201, 422, 201]
    assert revision_count() == 2
    dry = client.patch(
        BATCH, json={"slugs": ["b1", "b3"], "changes": {"title": "T"}, "dry_run": True}, auth=alice
    )
    assert dry.status_code == 200
    assert revision_count() == 2  # a dry run changes nothing, so it leaves nothing
    changed = client.patch(
        BATCH, json={"slugs": ["b1", "b3"], "changes": {"title": "T"}}, auth=alice
    )
    assert changed.status_code == 200
    assert history(client, alice, "b3")[0]["changes"] == {"title": [None, "T"]}
    atomic = client.post(BATCH, json={"links": links, "atomic": True}, auth=alice)
    assert atomic.status_code in (409, 422)
    assert revision_count() == 4  # all or nothing: nothing
    assert client.delete(BATCH, json={"slugs": ["b1"]}, auth=alice).status_code == 200
    deleted = client.get(f"{HISTORY}?slug=b1", auth=admin).get_json()["history"]
    assert [r["event"] for r in deleted] == ["link.deleted", "link.updated", "link.created"]


def test_an_import_leaves_revisions_via_the_command_line(app, client, alice, tmp_path):
    source = tmp_path / "links.csv"
    source.write_text("target,slug,title\nhttps://e.com/i1,imp1,Imported\n")
    result = app.test_cli_runner().invoke(
        main, ["import", str(source), "--format", "csv", "--owner", "alice"]
    )
    assert result.exit_code == 0, result.output
    (created,) = history(client, alice, "imp1")
    assert created["event"] == "link.created" and created["via"] == "cli"
    assert created["by"] == f"{API}/users/alice"  # made for alice by the command line
    assert created["changes"]["title"] == [None, "Imported"]
