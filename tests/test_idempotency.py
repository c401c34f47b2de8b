"""Idempotency-Key on POST /links, /users and /tokens (issue 7, IETF httpapi draft).

Every case runs on SQLite and, with SHORTENER_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from support import JSON_HEADERS, assert_problem

from shortener.services.actors import utcnow
from shortener.services.idempotency import ABANDONED_AFTER, REPLAY_WINDOW, fingerprint

LINKS = "/api/v1.0/links"
USERS = "/api/v1.0/users"
TOKENS = "/api/v1.0/tokens"
LINK_BODY = {"target": "https://example.com/", "title": "Docs"}


def post(client, path: str, body: dict, auth, key: str | None = "key-1", **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(path, data=json.dumps(body), auth=auth, headers={**JSON_HEADERS, **headers})


def count(app, table: str) -> int:
    with app.extensions["shortener"].database.engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def stored_keys(app) -> list[dict]:
    with app.extensions["shortener"].database.engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM idempotency_keys ORDER BY id"))
        return [dict(row._mapping) for row in result]


def user_id(app, username: str) -> int:
    with app.extensions["shortener"].database.engine.connect() as connection:
        query = text("SELECT id FROM users WHERE username = :name")
        return connection.execute(query, {"name": username}).scalar_one()


def move_clock(app, monkeypatch, by: timedelta) -> None:
    service = app.extensions["shortener"].idempotency
    monkeypatch.setattr(service, "clock", lambda: utcnow() + by)


# -- replay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "table"),
    [
        (LINKS, LINK_BODY, "links"),
        (USERS, {"username": "carol", "password": "a long passphrase"}, "users"),
    ],
)
def test_a_repeat_replays_the_first_answer_and_creates_nothing(
    app, client, admin, path, body, table
):
    first = post(client, path, body, admin)
    assert first.status_code == 201
    assert "Idempotency-Replayed" not in first.headers
    rows_after_first = count(app, table)
    again = post(client, path, body, admin)
    assert again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.get_json() == first.get_json()
    assert count(app, table) == rows_after_first


def test_a_replay_does_not_run_the_request_again(app, client, admin):
    first = post(client, LINKS, LINK_BODY, admin)
    assert client.delete(first.headers["Location"], auth=admin).status_code == 204
    again = post(client, LINKS, LINK_BODY, admin)
    assert again.status_code == 201 and again.headers["Idempotency-Replayed"] == "true"
    assert count(app, "links") == 0


def test_without_a_key_every_post_creates(app, client, admin):
    post(client, LINKS, LINK_BODY, admin, key=None)
    post(client, LINKS, LINK_BODY, admin, key=None)
    assert count(app, "links") == 2
    assert stored_keys(app) == []


def test_the_same_key_with_another_body_is_422(app, client, admin):
    post(client, LINKS, LINK_BODY, admin)
    response = post(client, LINKS, {**LINK_BODY, "title": "Other"}, admin)
    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/problems/idempotency-key-reused")
    assert count(app, "links") == 1


def test_the_same_key_on_another_uri_is_422(app, client, admin):
    post(client, LINKS, LINK_BODY, admin)
    response = post(client, TOKENS, {"name": "ci"}, admin)
    assert_problem(response, 422)
    assert count(app, "api_tokens") == 0


def test_keys_belong_to_their_credential(app, client, alice, bob):
    first = post(client, LINKS, LINK_BODY, alice)
    other = post(client, LINKS, LINK_BODY, bob)
    assert first.status_code == other.status_code == 201
    assert "Idempotency-Replayed" not in other.headers
    assert first.headers["Location"] != other.headers["Location"]
    assert count(app, "links") == 2


def test_a_token_and_its_users_password_are_different_credentials(app, client, alice):
    secret = post(client, TOKENS, {"name": "ci"}, alice, key=None).get_json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    by_password = post(client, LINKS, LINK_BODY, alice)
    by_token = client.post(LINKS, json=LINK_BODY, headers={**bearer, "Idempotency-Key": "key-1"})
    assert by_password.status_code == by_token.status_code == 201
    assert "Idempotency-Replayed" not in by_token.headers
    assert count(app, "links") == 2


# -- in progress, errors, abandoned claims --------------------------------------------------


def claim_first(app, username: str, body: dict):
    """Holds the key as a first request still running would."""
    return app.extensions["shortener"].idempotency.claim(
        user_id=user_id(app, username),
        token_id=None,
        key="key-1",
        fingerprint=fingerprint("POST", LINKS, json.dumps(body).encode()),
    )


def test_a_repeat_while_the_first_runs_is_409(app, client, admin):
    claim_first(app, "admin", LINK_BODY)
    response = post(client, LINKS, LINK_BODY, admin)
    problem = assert_problem(response, 409)
    assert problem["type"].endswith("/problems/idempotency-key-in-use")
    assert response.headers["Retry-After"] == "1"
    assert count(app, "links") == 0


def test_an_abandoned_claim_is_taken_over(app, client, admin, monkeypatch):
    claim_first(app, "admin", LINK_BODY)
    move_clock(app, monkeypatch, ABANDONED_AFTER + timedelta(seconds=1))
    response = post(client, LINKS, LINK_BODY, admin)
    assert response.status_code == 201
    assert "Idempotency-Replayed" not in response.headers
    assert count(app, "links") == 1
    assert post(client, LINKS, LINK_BODY, admin).headers["Idempotency-Replayed"] == "true"


def test_a_refused_request_releases_its_key(app, client, admin):
    bad = post(client, LINKS, {"target": "javascript:alert(1)"}, admin)
    assert_problem(bad, 422)
    assert stored_keys(app) == []
    good = post(client, LINKS, LINK_BODY, admin)
    assert good.status_code == 201 and "Idempotency-Replayed" not in good.headers


def test_a_conflict_is_not_kept_either(app, client, admin):
    post(client, LINKS, {**LINK_BODY, "slug": "docs"}, admin, key=None)
    taken = post(client, LINKS, {**LINK_BODY, "slug": "docs"}, admin)
    assert_problem(taken, 409)
    assert stored_keys(app) == []


# -- tokens ---------------------------------------------------------------------------------


def test_a_repeated_token_creation_is_409_and_the_secret_is_never_stored(app, client, alice):
    first = post(client, TOKENS, {"name": "ci"}, alice)
    assert first.status_code == 201
    secret = first.get_json()["token"]
    again = post(client, TOKENS, {"name": "ci"}, alice)
    problem = assert_problem(again, 409)
    assert problem["type"].endswith("/problems/idempotency-replay-unavailable")
    assert first.headers["Location"] in problem["detail"]
    assert secret not in again.get_data(as_text=True)
    assert count(app, "api_tokens") == 1
    [stored] = stored_keys(app)
    assert stored["response_body"] is None
    assert not any(secret in str(value) for value in stored.values())


# -- expiry and purge -----------------------------------------------------------------------


def test_a_key_older_than_24_hours_is_new_again(app, client, admin, monkeypatch):
    post(client, LINKS, LINK_BODY, admin)
    move_clock(app, monkeypatch, REPLAY_WINDOW + timedelta(seconds=1))
    again = post(client, LINKS, LINK_BODY, admin)
    assert again.status_code == 201 and "Idempotency-Replayed" not in again.headers
    assert count(app, "links") == 2


def test_expired_keys_are_purged(app, client, admin, alice, monkeypatch):
    post(client, LINKS, LINK_BODY, admin)
    move_clock(app, monkeypatch, timedelta(hours=23))
    post(client, LINKS, LINK_BODY, alice)
    service = app.extensions["shortener"].idempotency
    move_clock(app, monkeypatch, REPLAY_WINDOW + timedelta(seconds=1))
    assert service.purge() == 1  # admin's; alice's is 23 hours younger
    assert [row["user_id"] for row in stored_keys(app)] == [user_id(app, "alice")]


def test_claiming_purges_now_and_then(app, client, admin, alice, monkeypatch):
    post(client, LINKS, LINK_BODY, admin)
    service = app.extensions["shortener"].idempotency
    monkeypatch.setattr(service, "_next_purge", 0.0)  # as in a fresh process
    move_clock(app, monkeypatch, REPLAY_WINDOW + timedelta(seconds=1))
    post(client, LINKS, LINK_BODY, alice)
    assert [row["user_id"] for row in stored_keys(app)] == [user_id(app, "alice")]


# -- bad keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", " key", "key "])
def test_a_bad_key_is_400_and_creates_nothing(app, client, admin, key):
    response = post(client, LINKS, LINK_BODY, admin, key=key)
    problem = assert_problem(response, 400)
    assert problem["type"].endswith("/problems/invalid-idempotency-key")
    assert count(app, "links") == 0
    assert stored_keys(app) == []


def test_the_longest_key_is_fine(client, admin):
    response = post(client, LINKS, LINK_BODY, admin, key="k" * 255)
    assert response.status_code == 201


def test_a_key_needs_credentials_first(app, client):
    response = post(client, LINKS, LINK_BODY, None)
    assert response.status_code == 401
    assert stored_keys(app) == []


def test_the_purge_command(app, client, admin, monkeypatch):
    from shortener.cli import main

    post(client, LINKS, LINK_BODY, admin)
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["idempotency", "purge"])
    assert result.exit_code == 0 and result.output == "purged 0 idempotency keys\n"
    move_clock(app, monkeypatch, REPLAY_WINDOW + timedelta(seconds=1))
    result = runner.invoke(main, ["idempotency", "purge"])
    assert result.exit_code == 0 and result.output == "purged 1 idempotency key\n"
    assert stored_keys(app) == []
