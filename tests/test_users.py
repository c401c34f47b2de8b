"""/api/v1.0/users and /api/v1.0/users/<name>: accounts, roles and who may touch them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import JSON_HEADERS, assert_problem

USERS = "/api/v1.0/users"
NEW_PASSWORD = "a brand new passphrase"
USER_FIELDS = {"uri", "username", "is_admin", "links", "created_at"}


def user_path(name: str) -> str:
    return f"{USERS}/{name}"


def user_uri(name: str) -> str:
    return f"http://localhost{USERS}/{name}"


def create_link(client, auth, slug: str) -> None:
    response = client.post(
        "/api/v1.0/links", json={"target": f"https://example.com/{slug}", "slug": slug}, auth=auth
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def assert_no_password(response, password: str) -> None:
    """Neither the field nor the value may ever appear in a response."""
    text = response.get_data(as_text=True)
    assert "password" not in text
    assert password not in text


# -- who may list and create -----------------------------------------------------------------------
def test_admin_lists_users(client, admin, alice):
    response = client.get(USERS, auth=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"uri", "users", "next"}
    assert body["uri"] == "http://localhost/api/v1.0/users"
    assert body["next"] is None
    assert [user["username"] for user in body["users"]] == ["alice", "admin"]
    assert "Link" not in response.headers


def test_list_never_shows_passwords(client, admin, make_user):
    make_user("carol", password="carol's secret words")
    response = client.get(USERS, auth=admin)
    assert_no_password(response, "carol's secret words")
    assert all(set(user) == USER_FIELDS for user in response.get_json()["users"])


def test_non_admin_cannot_list_users(client, admin, alice):
    assert_problem(client.get(USERS, auth=alice), 403)


def test_non_admin_cannot_create_users(client, admin, alice, row_counts):
    before = row_counts()
    response = client.post(
        USERS, json={"username": "mallory", "password": NEW_PASSWORD}, auth=alice
    )
    assert_problem(response, 403)
    assert row_counts() == before


def test_non_admin_learns_nothing_from_an_invalid_create(client, admin, alice):
    """The role is checked before the body, so a non-admin cannot probe the rules."""
    response = client.post(USERS, json={"username": "no good", "password": "x"}, auth=alice)
    assert_problem(response, 403)


def test_non_admin_cannot_create_an_admin(client, admin, alice, row_counts):
    before = row_counts()
    body = {"username": "mallory", "password": NEW_PASSWORD, "is_admin": True}
    assert_problem(client.post(USERS, json=body, auth=alice), 403)
    assert row_counts() == before
    assert client.get(USERS, auth=("mallory", NEW_PASSWORD)).status_code == 401


# -- create ----------------------------------------------------------------------------------------
def test_create_user(client, admin):
    before = datetime.now(UTC)
    response = client.post(USERS, json={"username": "carol", "password": NEW_PASSWORD}, auth=admin)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["uri"] == user_uri("carol")
    assert response.headers["Location"] == body["uri"]
    assert body["username"] == "carol"
    assert body["is_admin"] is False
    assert body["links"] == "http://localhost/api/v1.0/links?owner=carol"
    assert body["created_at"].endswith("Z")
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert_no_password(response, NEW_PASSWORD)


def test_created_user_is_what_get_returns(client, admin):
    created = client.post(USERS, json={"username": "carol", "password": NEW_PASSWORD}, auth=admin)
    fetched = client.get(created.headers["Location"], auth=admin)
    assert fetched.status_code == 200
    assert fetched.get_json() == created.get_json()


def test_created_user_can_sign_in(client, admin):
    client.post(USERS, json={"username": "carol", "password": NEW_PASSWORD}, auth=admin)
    assert client.get(user_path("carol"), auth=("carol", NEW_PASSWORD)).status_code == 200
    assert client.get(user_path("carol"), auth=("carol", "not the password")).status_code == 401


def test_create_admin(client, admin):
    body = {"username": "root2", "password": NEW_PASSWORD, "is_admin": True}
    response = client.post(USERS, json=body, auth=admin)
    assert response.status_code == 201
    assert response.get_json()["is_admin"] is True
    assert client.get(USERS, auth=("root2", NEW_PASSWORD)).status_code == 200


def test_create_with_is_admin_false(client, admin):
    body = {"username": "carol", "password": NEW_PASSWORD, "is_admin": False}
    response = client.post(USERS, json=body, auth=admin)
    assert response.status_code == 201
    assert response.get_json()["is_admin"] is False
    assert_problem(client.get(USERS, auth=("carol", NEW_PASSWORD)), 403)


@pytest.mark.parametrize("username", ["a", "a" * 64, "Carol_2.x-y", "0day"])
def test_valid_usernames_are_accepted(client, admin, username):
    response = client.post(USERS, json={"username": username, "password": NEW_PASSWORD}, auth=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["username"] == username
    assert client.get(response.headers["Location"], auth=admin).status_code == 200


@pytest.mark.parametrize("password", ["p" * 8, "p" * 1024, "pässwörd ünicode"])
def test_valid_passwords_are_accepted_and_work(client, admin, password):
    response = client.post(USERS, json={"username": "carol", "password": password}, auth=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert client.get(user_path("carol"), auth=("carol", password)).status_code == 200


def test_username_taken(client, admin, alice, row_counts):
    before = row_counts()
    response = client.post(USERS, json={"username": "alice", "password": NEW_PASSWORD}, auth=admin)
    assert_problem(response, 409)
    assert row_counts() == before
    # The existing account is untouched: its password still works, the new one does not.
    assert client.get(user_path("alice"), auth=alice).status_code == 200
    assert client.get(user_path("alice"), auth=("alice", NEW_PASSWORD)).status_code == 401


@pytest.mark.parametrize(
    "username",
    [
        "",
        "a" * 65,
        "has space",
        "alice ",
        "a/b",
        "a:b",
        "über",
        "alice\n",
        ".hidden",
        None,
        42,
        ["alice"],
    ],
)
def test_invalid_username(client, admin, row_counts, username):
    before = row_counts()
    response = client.post(USERS, json={"username": username, "password": NEW_PASSWORD}, auth=admin)
    assert_problem(response, 422, field="username")
    assert row_counts() == before


@pytest.mark.parametrize("password", ["", "p" * 7, "p" * 1025, None, 12345678, ["password1"]])
def test_invalid_password(client, admin, row_counts, password):
    before = row_counts()
    response = client.post(USERS, json={"username": "carol", "password": password}, auth=admin)
    assert_problem(response, 422, field="password")
    assert row_counts() == before


@pytest.mark.parametrize("missing", ["username", "password"])
def test_required_fields(client, admin, row_counts, missing):
    body = {"username": "carol", "password": NEW_PASSWORD}
    del body[missing]
    before = row_counts()
    assert_problem(client.post(USERS, json=body, auth=admin), 422, field=missing)
    assert row_counts() == before


def test_every_invalid_field_is_named_at_once(client, admin, row_counts):
    before = row_counts()
    body = {"username": "no good", "password": "short", "is_admin": "yes"}
    problem = assert_problem(client.post(USERS, json=body, auth=admin), 422)
    assert {"username", "password", "is_admin"} <= set(problem["errors"])
    assert row_counts() == before


@pytest.mark.parametrize("is_admin", ["yes", "true", 1, None])
def test_is_admin_must_be_a_json_boolean(client, admin, row_counts, is_admin):
    before = row_counts()
    body = {"username": "carol", "password": NEW_PASSWORD, "is_admin": is_admin}
    assert_problem(client.post(USERS, json=body, auth=admin), 422, field="is_admin")
    assert row_counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uri", "http://localhost/api/v1.0/users/carol"),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("links", "http://localhost/api/v1.0/links?owner=carol"),
        ("id", 1),
        ("password_hash", "scrypt:32768:8:1$x$y"),
        ("nickname", "caz"),
    ],
)
def test_unknown_or_server_owned_fields(client, admin, row_counts, field, value):
    before = row_counts()
    body = {"username": "carol", "password": NEW_PASSWORD, field: value}
    assert_problem(client.post(USERS, json=body, auth=admin), 422, field=field)
    assert row_counts() == before


@pytest.mark.parametrize("raw", ["[]", '"carol"', "1", "null"])
def test_create_body_must_be_an_object(client, admin, row_counts, raw):
    before = row_counts()
    response = client.post(USERS, data=raw, headers=JSON_HEADERS, auth=admin)
    assert_problem(response, 422, field="body")
    assert row_counts() == before


def test_create_refuses_malformed_json(client, admin, row_counts):
    before = row_counts()
    response = client.post(USERS, data='{"username": "carol",', headers=JSON_HEADERS, auth=admin)
    assert_problem(response, 400)
    assert row_counts() == before


def test_create_refuses_non_json(client, admin, row_counts):
    before = row_counts()
    response = client.post(USERS, data={"username": "carol", "password": NEW_PASSWORD}, auth=admin)
    assert_problem(response, 415)
    assert row_counts() == before


# -- the links of a user ---------------------------------------------------------------------------
def test_user_links_uri_lists_only_their_links(client, admin, alice, bob):
    create_link(client, alice, "alice-1")
    create_link(client, bob, "bob-1")
    create_link(client, alice, "alice-2")
    links_uri = client.get(user_path("alice"), auth=alice).get_json()["links"]

    for auth in (alice, admin):
        response = client.get(links_uri, auth=auth)
        assert response.status_code == 200
        body = response.get_json()
        assert [link["slug"] for link in body["links"]] == ["alice-2", "alice-1"]
        assert {link["owner"] for link in body["links"]} == {user_uri("alice")}


def test_user_links_uri_of_a_new_user_is_an_empty_collection(client, admin):
    created = client.post(USERS, json={"username": "carol", "password": NEW_PASSWORD}, auth=admin)
    response = client.get(created.get_json()["links"], auth=("carol", NEW_PASSWORD))
    assert response.status_code == 200
    assert response.get_json()["links"] == []


# -- read one --------------------------------------------------------------------------------------
def test_admin_reads_any_user(client, admin, alice):
    response = client.get(user_path("alice"), auth=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["uri"] == user_uri("alice")
    assert body["username"] == "alice"
    assert body["is_admin"] is False
    assert_no_password(response, alice[1])


def test_user_reads_themself(client, alice):
    response = client.get(user_path("alice"), auth=alice)
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"
    assert_no_password(response, alice[1])


def test_user_cannot_read_another_user(client, alice, bob):
    assert_problem(client.get(user_path("bob"), auth=alice), 403)


def test_non_admin_cannot_probe_which_users_exist(client, alice, bob):
    """A missing user and someone else's account answer alike for a non-admin."""
    missing = assert_problem(client.get(user_path("ghost"), auth=alice), 403)
    existing = assert_problem(client.get(user_path("bob"), auth=alice), 403)
    assert missing == existing


def test_unknown_user_is_404_for_admin(client, admin):
    assert_problem(client.get(user_path("ghost"), auth=admin), 404)


def test_usernames_are_matched_exactly(client, admin, alice):
    assert_problem(client.get(user_path("ALICE"), auth=admin), 404)
    assert_problem(client.get(user_path("alice%20"), auth=admin), 404)


# -- change ----------------------------------------------------------------------------------------
def test_user_changes_own_password(client, alice):
    assert client.get(user_path("alice"), auth=alice).status_code == 200  # warms any cache
    response = client.patch(user_path("alice"), json={"password": NEW_PASSWORD}, auth=alice)
    assert response.status_code == 200
    assert set(response.get_json()) == USER_FIELDS
    assert_no_password(response, NEW_PASSWORD)
    assert_problem(client.get(user_path("alice"), auth=alice), 401)
    assert client.get(user_path("alice"), auth=("alice", NEW_PASSWORD)).status_code == 200


def test_admin_sets_another_users_password(client, admin, alice):
    assert client.get(user_path("alice"), auth=alice).status_code == 200
    response = client.patch(user_path("alice"), json={"password": NEW_PASSWORD}, auth=admin)
    assert response.status_code == 200
    assert_problem(client.get(user_path("alice"), auth=alice), 401)
    assert client.get(user_path("alice"), auth=("alice", NEW_PASSWORD)).status_code == 200


def test_user_cannot_change_another_users_password(client, alice, bob):
    response = client.patch(user_path("bob"), json={"password": NEW_PASSWORD}, auth=alice)
    assert_problem(response, 403)
    assert client.get(user_path("bob"), auth=bob).status_code == 200
    assert client.get(user_path("bob"), auth=("bob", NEW_PASSWORD)).status_code == 401


@pytest.mark.parametrize("is_admin", [True, False])
def test_non_admin_cannot_set_is_admin(client, admin, alice, is_admin):
    response = client.patch(user_path("alice"), json={"is_admin": is_admin}, auth=alice)
    assert_problem(response, 403)
    assert client.get(user_path("alice"), auth=admin).get_json()["is_admin"] is False
    assert_problem(client.get(USERS, auth=alice), 403)


def test_non_admin_cannot_sneak_is_admin_in_with_a_password(client, admin, alice):
    """A refused PATCH changes nothing, not even the part that alone would be allowed."""
    body = {"password": NEW_PASSWORD, "is_admin": True}
    assert_problem(client.patch(user_path("alice"), json=body, auth=alice), 403)
    assert client.get(user_path("alice"), auth=alice).get_json()["is_admin"] is False
    assert client.get(user_path("alice"), auth=("alice", NEW_PASSWORD)).status_code == 401


def test_admin_promotes_and_demotes(client, admin, alice):
    response = client.patch(user_path("alice"), json={"is_admin": True}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["is_admin"] is True
    assert client.get(USERS, auth=alice).status_code == 200  # the new role applies at once

    response = client.patch(user_path("alice"), json={"is_admin": False}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["is_admin"] is False
    assert_problem(client.get(USERS, auth=alice), 403)  # and so does losing it


def test_admin_may_drop_own_role_while_another_admin_remains(client, admin, make_user):
    make_user("root2", admin=True)
    response = client.patch(user_path("admin"), json={"is_admin": False}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["is_admin"] is False
    assert_problem(client.get(USERS, auth=admin), 403)


def test_last_admin_cannot_be_demoted(client, admin, alice):
    response = client.patch(user_path("admin"), json={"is_admin": False}, auth=admin)
    assert_problem(response, 409)
    assert client.get(user_path("admin"), auth=admin).get_json()["is_admin"] is True


def test_second_to_last_admin_can_go_then_the_last_stays(client, admin, make_user):
    root2 = make_user("root2", admin=True)
    assert client.patch(user_path("root2"), json={"is_admin": False}, auth=admin).status_code == 200
    assert_problem(client.patch(user_path("admin"), json={"is_admin": False}, auth=admin), 409)
    assert_problem(client.get(USERS, auth=root2), 403)


def test_setting_is_admin_to_its_current_value_is_fine(client, admin):
    """Re-sending the role the last admin already has is not a demotion."""
    response = client.patch(user_path("admin"), json={"is_admin": True}, auth=admin)
    assert response.status_code == 200
    assert response.get_json()["is_admin"] is True


@pytest.mark.parametrize("auth_name", ["alice", "admin"])
def test_username_cannot_be_changed(client, admin, alice, row_counts, auth_name):
    auth = {"alice": alice, "admin": admin}[auth_name]
    before = client.get(user_path("alice"), auth=admin).get_json()
    response = client.patch(user_path("alice"), json={"username": "alicia"}, auth=auth)
    assert_problem(response, 422, field="username")
    assert client.get(user_path("alice"), auth=admin).get_json() == before
    assert_problem(client.get(user_path("alicia"), auth=admin), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": 12345678}, "password"),
        ({"password": None}, "password"),
        ({"is_admin": "yes"}, "is_admin"),
        ({"is_admin": 1}, "is_admin"),
        ({"uri": "http://localhost/api/v1.0/users/x"}, "uri"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"links": "http://localhost/api/v1.0/links"}, "links"),
        ({"nickname": "al"}, "nickname"),
    ],
)
def test_invalid_patch_changes_nothing(client, admin, alice, body, field):
    before = client.get(user_path("alice"), auth=admin).get_json()
    assert_problem(client.patch(user_path("alice"), json=body, auth=admin), 422, field=field)
    assert client.get(user_path("alice"), auth=admin).get_json() == before
    assert client.get(user_path("alice"), auth=alice).status_code == 200


def test_patch_body_must_be_an_object(client, admin, alice):
    assert_problem(client.patch(user_path("alice"), json=["password"], auth=admin), 422)


def test_patch_unknown_user_is_404_for_admin(client, admin):
    response = client.patch(user_path("ghost"), json={"password": NEW_PASSWORD}, auth=admin)
    assert_problem(response, 404)


def test_patch_of_a_missing_user_is_403_for_non_admin(client, alice):
    response = client.patch(user_path("ghost"), json={"password": NEW_PASSWORD}, auth=alice)
    assert_problem(response, 403)


def test_users_cannot_be_replaced_with_put(client, admin, alice):
    body = {"username": "alice", "password": NEW_PASSWORD}
    response = client.put(user_path("alice"), json=body, auth=admin)
    assert_problem(response, 405)
    assert "PATCH" in response.headers["Allow"]


# -- delete ----------------------------------------------------------------------------------------
def test_admin_deletes_user(client, admin, alice, row_counts):
    assert client.get(user_path("alice"), auth=alice).status_code == 200  # warms any cache
    response = client.delete(user_path("alice"), auth=admin)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert row_counts()["users"] == 1
    assert_problem(client.get(user_path("alice"), auth=admin), 404)
    assert_problem(client.get(user_path("alice"), auth=alice), 401)


def test_deleted_name_can_be_reused(client, admin, alice):
    assert client.delete(user_path("alice"), auth=admin).status_code == 204
    body = {"username": "alice", "password": NEW_PASSWORD}
    assert client.post(USERS, json=body, auth=admin).status_code == 201
    assert_problem(client.get(user_path("alice"), auth=alice), 401)
    assert client.get(user_path("alice"), auth=("alice", NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize("target", ["bob", "alice"])
def test_non_admin_cannot_delete_users(client, admin, alice, bob, row_counts, target):
    before = row_counts()
    assert_problem(client.delete(user_path(target), auth=alice), 403)
    assert row_counts() == before


def test_delete_unknown_user(client, admin):
    assert_problem(client.delete(user_path("ghost"), auth=admin), 404)


def test_last_admin_cannot_be_deleted(client, admin, alice, row_counts):
    before = row_counts()
    assert_problem(client.delete(user_path("admin"), auth=admin), 409)
    assert row_counts() == before
    assert client.get(USERS, auth=admin).status_code == 200


def test_an_admin_can_be_deleted_while_another_remains(client, admin, make_user):
    root2 = make_user("root2", admin=True)
    assert client.delete(user_path("root2"), auth=admin).status_code == 204
    assert_problem(client.get(USERS, auth=root2), 401)


def test_delete_user_who_owns_links_is_refused(client, admin, alice, row_counts):
    create_link(client, alice, "keep-me")
    before = row_counts()
    problem = assert_problem(client.delete(user_path("alice"), auth=admin), 409)
    assert "purge" in problem["detail"]
    assert row_counts() == before
    assert client.get("/keep-me").status_code == 302
    assert client.get(user_path("alice"), auth=alice).status_code == 200


def test_delete_with_purge_false_is_still_refused(client, admin, alice, row_counts):
    create_link(client, alice, "keep-me")
    before = row_counts()
    assert_problem(client.delete(user_path("alice") + "?purge=false", auth=admin), 409)
    assert row_counts() == before


def test_delete_with_purge_removes_user_and_links(client, admin, alice, bob, row_counts):
    create_link(client, alice, "gone-1")
    create_link(client, alice, "gone-2")
    create_link(client, bob, "stays")
    response = client.delete(user_path("alice") + "?purge=true", auth=admin)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert row_counts() == {"users": 2, "links": 1}
    for slug in ("gone-1", "gone-2"):
        assert_problem(client.get(f"/{slug}"), 404)
        assert_problem(client.get(f"/api/v1.0/links/{slug}", auth=admin), 404)
    assert client.get("/stays").status_code == 302
    assert_problem(client.get(user_path("alice"), auth=alice), 401)


def test_purge_of_a_user_without_links(client, admin, alice):
    assert client.delete(user_path("alice") + "?purge=true", auth=admin).status_code == 204


@pytest.mark.parametrize("query", ["purge=maybe", "purge=", "purge=yes", "purge=true&purge=true"])
def test_bad_purge_parameter(client, admin, alice, row_counts, query):
    create_link(client, alice, "keep-me")
    before = row_counts()
    response = client.delete(f"{user_path('alice')}?{query}", auth=admin)
    assert_problem(response, 400, field="purge")
    assert row_counts() == before


def test_unknown_delete_parameter(client, admin, alice, row_counts):
    before = row_counts()
    assert_problem(
        client.delete(user_path("alice") + "?force=true", auth=admin), 400, field="force"
    )
    assert row_counts() == before


# -- pagination ------------------------------------------------------------------------------------
@pytest.fixture
def seven_users(make_user, admin):
    """admin plus six more, so the newest-first order is admin last."""
    names = [f"user{number}" for number in range(6)]
    for name in names:
        make_user(name)
    return ["admin", *names]


def test_users_are_paginated_with_next_and_link_header(client, admin, seven_users):
    seen: list[str] = []
    uri = "http://localhost/api/v1.0/users?limit=3"
    pages = 0
    while uri is not None:
        response = client.get(uri, auth=admin)
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {"uri", "users", "next"}
        assert body["uri"] == uri
        assert len(body["users"]) <= 3
        seen.extend(user["username"] for user in body["users"])
        if body["next"] is None:
            assert "Link" not in response.headers
        else:
            assert body["next"].startswith("http://localhost/api/v1.0/users?")
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        uri = body["next"]
        pages += 1
    assert pages == 3
    assert seen == list(reversed(seven_users))


def test_next_link_keeps_the_limit(client, admin, seven_users):
    body = client.get(USERS + "?limit=2", auth=admin).get_json()
    assert "limit=2" in body["next"] and "cursor=" in body["next"]
    assert len(client.get(body["next"], auth=admin).get_json()["users"]) == 2


def test_exact_page_has_no_next(client, admin, seven_users):
    body = client.get(USERS + "?limit=7", auth=admin).get_json()
    assert len(body["users"]) == 7
    assert body["next"] is None


def test_default_page_size_is_50(client, admin, make_user):
    for number in range(50):
        make_user(f"user{number:02}")
    response = client.get(USERS, auth=admin)
    body = response.get_json()
    assert len(body["users"]) == 50
    assert body["next"] is not None
    rest = client.get(body["next"], auth=admin).get_json()
    assert [user["username"] for user in rest["users"]] == ["admin"]
    assert rest["next"] is None


def test_limit_bounds_are_accepted(client, admin, seven_users):
    assert len(client.get(USERS + "?limit=1", auth=admin).get_json()["users"]) == 1
    assert len(client.get(USERS + "?limit=1000", auth=admin).get_json()["users"]) == 7


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "１"])
def test_bad_limit(client, admin, limit):
    assert_problem(client.get(f"{USERS}?limit={limit}", auth=admin), 400, field="limit")


@pytest.mark.parametrize("cursor", ["garbage", "", "djE6MA"])
def test_bad_cursor(client, admin, cursor):
    assert_problem(client.get(f"{USERS}?cursor={cursor}", auth=admin), 400, field="cursor")


def test_unknown_list_parameter(client, admin):
    assert_problem(client.get(USERS + "?page=2", auth=admin), 400, field="page")


def test_page_after_its_cursor_user_was_deleted(client, admin, seven_users):
    """A cursor stays valid when the row it points past is gone (keyset, not offset)."""
    first = client.get(USERS + "?limit=2", auth=admin).get_json()
    last_seen = first["users"][-1]["username"]
    assert client.delete(user_path(last_seen), auth=admin).status_code == 204
    second = client.get(first["next"], auth=admin).get_json()
    expected = list(reversed(seven_users))[2:4]
    assert [user["username"] for user in second["users"]] == expected
