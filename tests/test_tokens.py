"""API tokens (issue 4): /api/v1.0/tokens, Bearer authentication, expiry, revocation, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_app
from sqlalchemy import func, select
from support import JSON_HEADERS, assert_problem

from shortener.cli import main
from shortener.services.actors import OPERATOR
from shortener.storage import token_queries
from shortener.storage.tables import api_tokens

BASE = "http://localhost"
TOKENS = "/api/v1.0/tokens"
LINKS = "/api/v1.0/links"
CHALLENGES = ['Basic realm="shortener"', 'Bearer realm="shortener"']
REPRESENTATION = {
    "uri",
    "name",
    "scopes",
    "owner",
    "created_at",
    "expires_at",
    "last_used_at",
}
DEFAULT_SCOPES = ["links:read", "links:write", "stats:read", "webhooks:read", "webhooks:write"]
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
SECRET = re.compile(r"shr_[A-Za-z0-9_-]{43}\Z")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create_token(client, auth, **body) -> dict:
    body.setdefault("name", "script")
    response = client.post(TOKENS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def token_count(app) -> int:
    with app.extensions["shortener"].database.read() as connection:
        return connection.execute(select(func.count()).select_from(api_tokens)).scalar_one()


def stored_rows(app) -> list[dict]:
    with app.extensions["shortener"].database.read() as connection:
        return [dict(row._mapping) for row in connection.execute(select(api_tokens))]


def token_id(token: dict) -> int:
    return int(token["uri"].rsplit("/", 1)[1])


def set_expires_at(app, token: dict, moment: datetime | None) -> None:
    with app.extensions["shortener"].database.write() as connection:
        token_queries.set_expires_at(connection, token_id(token), moment)


def path_of(uri: str) -> str:
    return uri.removeprefix(BASE)


def assert_challenges(response) -> None:
    assert_problem(response, 401)
    assert response.headers.getlist("WWW-Authenticate") == CHALLENGES


def signs_in(client, secret: str) -> bool:
    return client.get(LINKS, headers=bearer(secret)).status_code == 200


# -- create and read -------------------------------------------------------------------------------
def test_create_answers_201_with_the_secret_once(client, alice):
    response = client.post(TOKENS, json={"name": "deploy script"}, auth=alice)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == REPRESENTATION | {"token"}
    assert response.headers["Location"] == body["uri"]
    assert re.fullmatch(rf"{BASE}{TOKENS}/\d+", body["uri"])
    assert body["name"] == "deploy script"
    assert body["scopes"] == DEFAULT_SCOPES
    assert body["owner"] == f"{BASE}/api/v1.0/users/alice"
    assert RFC3339_UTC.match(body["created_at"])
    assert body["expires_at"] is None
    assert body["last_used_at"] is None
    assert SECRET.match(body["token"])


def test_the_secret_is_never_sent_again(client, alice):
    created = create_token(client, alice)
    secret = created.pop("token")
    again = client.get(path_of(created["uri"]), auth=alice)
    assert again.status_code == 200
    assert again.get_json() == created
    listing = client.get(TOKENS, auth=alice)
    assert listing.get_json()["tokens"] == [created]
    for response in (again, listing):
        assert secret not in response.get_data(as_text=True)


def test_the_uri_does_not_carry_the_secret(client, alice):
    created = create_token(client, alice)
    secret = created["token"]
    assert secret not in created["uri"]
    assert secret.removeprefix("shr_") not in created["uri"]


def test_tokens_have_256_random_bits_and_differ(client, alice):
    secrets = {create_token(client, alice)["token"] for _ in range(5)}
    assert len(secrets) == 5
    for secret in secrets:
        raw = base64.urlsafe_b64decode(secret.removeprefix("shr_") + "=")
        assert len(raw) == 32


def test_only_a_sha256_digest_is_stored(app, client, alice):
    secret = create_token(client, alice)["token"]
    [row] = stored_rows(app)
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    for value in row.values():
        assert secret.removeprefix("shr_") not in str(value)


def test_created_token_authenticates_as_its_owner(client, alice):
    secret = create_token(client, alice)["token"]
    response = client.post(LINKS, json={"target": "https://example.com/"}, headers=bearer(secret))
    assert response.status_code == 201
    assert response.get_json()["owner"] == f"{BASE}/api/v1.0/users/alice"
    [link] = client.get(LINKS, headers=bearer(secret)).get_json()["links"]
    assert link["owner"] == f"{BASE}/api/v1.0/users/alice"


def test_bearer_scheme_is_case_insensitive(client, alice):
    secret = create_token(client, alice)["token"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = client.get(LINKS, headers={"Authorization": f"{scheme} {secret}"})
        assert response.status_code == 200, scheme


def test_explicit_scopes_are_kept_in_canonical_order(client, alice):
    body = create_token(client, alice, scopes=["stats:read", "links:read", "stats:read"])
    assert body["scopes"] == ["links:read", "stats:read"]


def test_expires_at_is_returned_in_utc(client, alice):
    body = create_token(client, alice, expires_at="2031-05-06T07:08:09+02:00")
    assert body["expires_at"] == "2031-05-06T05:08:09.000Z"
    assert signs_in(client, body["token"])


def test_admin_may_create_a_users_admin_token(client, admin):
    body = create_token(client, admin, scopes=["users:admin"])
    assert body["scopes"] == ["users:admin"]
    assert client.get("/api/v1.0/users", headers=bearer(body["token"])).status_code == 200


# -- bad input: problem+json, the right status, nothing stored -------------------------------------
FUTURE = "2099-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "nul\x00"}, "name"),
        ({"name": 7}, "name"),
        ({"name": None}, "name"),
        ({"name": "ci", "scopes": "links:read"}, "scopes"),
        ({"name": "ci", "scopes": None}, "scopes"),
        ({"name": "ci", "scopes": []}, "scopes"),
        ({"name": "ci", "scopes": ["links:delete"]}, "scopes"),
        ({"name": "ci", "scopes": ["LINKS:READ"]}, "scopes"),
        ({"name": "ci", "scopes": ["links:read", "everything"]}, "scopes"),
        ({"name": "ci", "scopes": [1]}, "scopes"),
        ({"name": "ci", "scopes": ["users:admin"]}, "scopes"),
        ({"name": "ci", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "ci", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"name": "ci", "expires_at": "2099-01-01"}, "expires_at"),
        ({"name": "ci", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "ci", "expires_at": 4102444800}, "expires_at"),
        ({"name": "ci", "expires_at": "9999-12-31T23:59:59Z"}, "expires_at"),
        ({"name": "ci", "token": "shr_" + "a" * 43}, "token"),
        ({"name": "ci", "uri": f"{BASE}{TOKENS}/1"}, "uri"),
        ({"name": "ci", "owner": f"{BASE}/api/v1.0/users/admin"}, "owner"),
        ({"name": "ci", "created_at": FUTURE}, "created_at"),
        ({"name": "ci", "last_used_at": FUTURE}, "last_used_at"),
        ({"name": "ci", "id": 1}, "id"),
        ({"name": "ci", "user": "admin"}, "user"),
        ([], "body"),
        ("ci", "body"),
        (None, "body"),
    ],
)
def test_invalid_create_is_422_and_stores_nothing(app, client, admin, alice, body, field):
    before = token_count(app)
    response = client.post(TOKENS, data=json.dumps(body), headers=JSON_HEADERS, auth=alice)
    assert_problem(response, 422, field=field)
    assert token_count(app) == before


def test_every_invalid_field_is_named_at_once(app, client, alice):
    body = {"name": "", "scopes": ["nope"], "expires_at": "2001-01-01T00:00:00Z"}
    problem = assert_problem(client.post(TOKENS, json=body, auth=alice), 422)
    assert set(problem["errors"]) == {"name", "scopes", "expires_at"}
    assert token_count(app) == 0


def test_an_expiry_a_moment_ago_is_refused(app, client, alice):
    moment = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = client.post(TOKENS, json={"name": "ci", "expires_at": moment}, auth=alice)
    assert_problem(response, 422, field="expires_at")
    assert token_count(app) == 0


def test_users_admin_for_a_non_admin_names_scopes(app, client, alice):
    response = client.post(TOKENS, json={"name": "ci", "scopes": ["users:admin"]}, auth=alice)
    problem = assert_problem(response, 422, field="scopes")
    assert "users:admin" in problem["errors"]["scopes"][0]
    assert token_count(app) == 0


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        ("{", JSON_HEADERS, 400),
        ('{"name": "a", "name": "b"}', JSON_HEADERS, 400),
        ('{"name": "a"} trailing', JSON_HEADERS, 400),
        ('{"name": "a"}', {"Content-Type": "text/plain"}, 415),
        ('{"name": "a"}', {}, 415),
    ],
)
def test_malformed_bodies(app, client, alice, data, headers, status):
    assert_problem(client.post(TOKENS, data=data, headers=headers, auth=alice), status)
    assert token_count(app) == 0


@pytest.mark.parametrize(
    "query",
    ["user=no%20such/name", "user=a&user=b", "color=red", "limit=5"],
)
def test_bad_query_on_create_is_400(app, client, admin, query):
    response = client.post(f"{TOKENS}?{query}", json={"name": "ci"}, auth=admin)
    assert_problem(response, 400)
    assert token_count(app) == 0


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_tokens_cannot_be_changed(app, client, alice, method):
    token = create_token(client, alice)
    response = client.open(path_of(token["uri"]), method=method, json={"name": "x"}, auth=alice)
    assert_problem(response, 405)
    assert "Allow" in response.headers
    assert client.get(path_of(token["uri"]), auth=alice).get_json()["name"] == "script"


def test_no_credentials_no_token(app, client):
    assert_challenges(client.post(TOKENS, json={"name": "ci"}))
    assert token_count(app) == 0


# -- Bearer authentication -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer shr_" + "A" * 43,
        "Bearer shr_",
        "Bearer not-a-token",
        "Bearer " + "shr_" + "x" * 8192,
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        "Token shr_" + "A" * 43,
    ],
)
def test_unknown_or_malformed_tokens_get_both_challenges(client, alice, header):
    assert_challenges(client.get(LINKS, headers={"Authorization": header}))


def test_a_token_with_extra_characters_is_refused(client, alice):
    secret = create_token(client, alice)["token"]
    for wrong in (secret + "x", secret[:-1], secret.upper(), " " + secret + "\t!"):
        assert_challenges(client.get(LINKS, headers={"Authorization": f"Bearer {wrong}"}))


def test_non_latin1_bearer_bytes(client, alice):
    header = b"Bearer shr_\xff\xfe\xfd".decode("latin-1")
    assert_challenges(client.get(LINKS, headers={"Authorization": header}))


@pytest.mark.parametrize("name", ["access_token", "token", "bearer", "api_key"])
def test_a_token_in_the_query_string_is_ignored(client, alice, name):
    secret = create_token(client, alice)["token"]
    assert_challenges(client.get(f"{LINKS}?{name}={secret}"))


@pytest.mark.parametrize("header", ["X-API-Key", "X-Auth-Token", "Token"])
def test_a_token_in_another_header_is_ignored(client, alice, header):
    secret = create_token(client, alice)["token"]
    assert_challenges(client.get(LINKS, headers={header: secret}))
    assert_challenges(client.get(LINKS, headers={header: f"Bearer {secret}"}))


def test_a_token_is_not_a_basic_password(client, alice):
    secret = create_token(client, alice)["token"]
    assert_challenges(client.get(LINKS, auth=("alice", secret)))


def test_every_401_carries_both_challenges(client, alice):
    """Missing, wrong Basic and wrong Bearer credentials all name both schemes."""
    for headers in ({}, {"Authorization": "Basic !!!"}, bearer("shr_nope")):
        assert_challenges(client.get(LINKS, headers=headers))
    assert_challenges(client.get(LINKS, auth=("alice", "wrong password")))


# -- expiry ----------------------------------------------------------------------------------------
def test_an_expired_token_is_refused(app, client, alice):
    token = create_token(client, alice, expires_at=FUTURE)
    assert signs_in(client, token["token"])
    set_expires_at(app, token, datetime.now(UTC) - timedelta(seconds=1))
    assert_challenges(client.get(LINKS, headers=bearer(token["token"])))
    # It is still listed (with its expiry) until it is revoked.
    listed = client.get(TOKENS, auth=alice).get_json()["tokens"]
    assert [path_of(item["uri"]) for item in listed] == [path_of(token["uri"])]
    assert RFC3339_UTC.match(listed[0]["expires_at"])


def test_a_token_expiring_later_still_works(app, client, alice):
    token = create_token(client, alice)
    set_expires_at(app, token, datetime.now(UTC) + timedelta(minutes=5))
    assert signs_in(client, token["token"])


# -- revocation ------------------------------------------------------------------------------------
def test_revoked_token_is_refused_on_the_next_request(app, client, alice):
    token = create_token(client, alice)
    path = path_of(token["uri"])
    assert signs_in(client, token["token"])
    response = client.delete(path, auth=alice)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_challenges(client.get(LINKS, headers=bearer(token["token"])))
    assert_problem(client.get(path, auth=alice), 404)
    assert_problem(client.delete(path, auth=alice), 404)
    assert token_count(app) == 0


def test_a_token_can_revoke_itself(client, alice):
    secret = create_token(client, alice)["token"]
    uri = client.get(TOKENS, headers=bearer(secret)).get_json()["tokens"][0]["uri"]
    assert client.delete(path_of(uri), headers=bearer(secret)).status_code == 204
    assert_challenges(client.get(TOKENS, headers=bearer(secret)))


def test_revocation_reaches_every_worker(app, database_url, client, alice):
    """Another process on the same database refuses the token on its next request."""
    other = make_app(database_url)
    try:
        other_client = other.test_client()
        token = create_token(client, alice)
        assert signs_in(other_client, token["token"])
        assert client.delete(path_of(token["uri"]), auth=alice).status_code == 204
        assert_challenges(other_client.get(LINKS, headers=bearer(token["token"])))
    finally:
        other.extensions["shortener"].close()


def test_revoking_one_token_keeps_the_others(client, alice):
    first, second = create_token(client, alice), create_token(client, alice)
    assert client.delete(path_of(first["uri"]), auth=alice).status_code == 204
    assert signs_in(client, second["token"])


def test_deleting_a_user_deletes_their_tokens(app, client, admin, alice):
    secret = create_token(client, alice)["token"]
    assert client.delete("/api/v1.0/users/alice", auth=admin).status_code == 204
    assert_challenges(client.get(LINKS, headers=bearer(secret)))
    assert token_count(app) == 0


# -- last_used_at ----------------------------------------------------------------------------------
def test_last_used_at_is_set_on_use_but_not_written_on_every_request(app, client, alice):
    token = create_token(client, alice)
    path = path_of(token["uri"])
    assert client.get(path, auth=alice).get_json()["last_used_at"] is None
    assert signs_in(client, token["token"])
    first = client.get(path, auth=alice).get_json()["last_used_at"]
    assert RFC3339_UTC.match(first)
    for _ in range(3):
        assert signs_in(client, token["token"])
    assert client.get(path, auth=alice).get_json()["last_used_at"] == first


def test_last_used_at_moves_on_after_the_interval(app, client, alice):
    app.extensions["shortener"].tokens.last_used_interval = 0.0
    token = create_token(client, alice)
    path = path_of(token["uri"])
    assert signs_in(client, token["token"])
    first = client.get(path, auth=alice).get_json()["last_used_at"]
    assert signs_in(client, token["token"])
    assert client.get(path, auth=alice).get_json()["last_used_at"] > first


def test_a_failed_request_does_not_touch_last_used_at(client, alice):
    token = create_token(client, alice)
    client.get(LINKS, headers=bearer(token["token"] + "x"))
    assert client.get(path_of(token["uri"]), auth=alice).get_json()["last_used_at"] is None


# -- who sees which tokens -------------------------------------------------------------------------
def test_users_see_only_their_own_tokens(client, alice, bob):
    mine = create_token(client, alice, name="alice's")
    create_token(client, bob, name="bob's")
    listed = client.get(TOKENS, auth=alice).get_json()
    assert listed["uri"] == f"{BASE}{TOKENS}"
    assert [item["name"] for item in listed["tokens"]] == ["alice's"]
    assert listed["tokens"][0]["uri"] == mine["uri"]


def test_another_users_token_is_404_and_keeps_working(client, alice, bob):
    token = create_token(client, alice)
    path = path_of(token["uri"])
    assert_problem(client.get(path, auth=bob), 404)
    assert_problem(client.delete(path, auth=bob), 404)
    assert signs_in(client, token["token"])
    assert client.get(path, auth=alice).status_code == 200


def test_missing_and_foreign_tokens_look_the_same(client, alice, bob):
    token = create_token(client, alice)
    foreign = client.get(path_of(token["uri"]), auth=bob)
    missing = client.get(f"{TOKENS}/{token_id(token) + 1000}", auth=bob)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json()["title"] == missing.get_json()["title"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_non_admin_cannot_name_another_user(app, client, alice, bob, method):
    create_token(client, bob)
    before = token_count(app)
    response = client.open(f"{TOKENS}?user=bob", method=method, json={"name": "x"}, auth=alice)
    assert_problem(response, 403)
    assert token_count(app) == before


def test_a_user_may_name_themself(client, alice):
    create_token(client, alice)
    response = client.get(f"{TOKENS}?user=alice", auth=alice)
    assert response.status_code == 200
    assert response.get_json()["uri"] == f"{BASE}{TOKENS}?user=alice"
    assert len(response.get_json()["tokens"]) == 1


def test_admin_lists_own_tokens_by_default_and_another_users_with_user(client, admin, alice):
    create_token(client, admin, name="admin's")
    create_token(client, alice, name="alice's")
    assert [t["name"] for t in client.get(TOKENS, auth=admin).get_json()["tokens"]] == ["admin's"]
    listed = client.get(f"{TOKENS}?user=alice", auth=admin).get_json()
    assert [t["name"] for t in listed["tokens"]] == ["alice's"]
    assert listed["tokens"][0]["owner"] == f"{BASE}/api/v1.0/users/alice"


def test_admin_reads_and_revokes_any_token(client, admin, alice):
    token = create_token(client, alice)
    path = path_of(token["uri"])
    assert client.get(path, auth=admin).get_json()["owner"].endswith("/users/alice")
    assert client.delete(path, auth=admin).status_code == 204
    assert_challenges(client.get(LINKS, headers=bearer(token["token"])))


def test_admin_creates_a_token_for_another_user(client, admin, alice):
    response = client.post(f"{TOKENS}?user=alice", json={"name": "for alice"}, auth=admin)
    assert response.status_code == 201
    token = response.get_json()
    assert token["owner"] == f"{BASE}/api/v1.0/users/alice"
    created = client.post(
        LINKS, json={"target": "https://example.com/"}, headers=bearer(token["token"])
    )
    assert created.get_json()["owner"] == f"{BASE}/api/v1.0/users/alice"


def test_admin_cannot_give_a_non_admin_users_admin(app, client, admin, alice):
    response = client.post(
        f"{TOKENS}?user=alice", json={"name": "x", "scopes": ["users:admin"]}, auth=admin
    )
    assert_problem(response, 422, field="scopes")
    assert token_count(app) == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_admin_naming_an_unknown_user_is_404(app, client, admin, method):
    response = client.open(f"{TOKENS}?user=ghost", method=method, json={"name": "x"}, auth=admin)
    assert_problem(response, 404)
    assert token_count(app) == 0


@pytest.mark.parametrize(
    "token_path", ["abc", "0", "007", "-1", "1.0", "99999999999999999999999", "shr_x", "%20"]
)
def test_ids_that_name_no_token_are_404(client, alice, token_path):
    create_token(client, alice)
    assert_problem(client.get(f"{TOKENS}/{token_path}", auth=alice), 404)
    assert_problem(client.delete(f"{TOKENS}/{token_path}", auth=alice), 404)


def test_the_token_secret_does_not_address_it(client, alice):
    secret = create_token(client, alice)["token"]
    assert_problem(client.get(f"{TOKENS}/{secret}", auth=alice), 404)


# -- the collection --------------------------------------------------------------------------------
def test_tokens_are_paged_newest_first_with_a_link_header(client, alice):
    names = [create_token(client, alice, name=f"t{n}")["name"] for n in range(5)]
    first = client.get(f"{TOKENS}?limit=2", auth=alice)
    body = first.get_json()
    assert [t["name"] for t in body["tokens"]] == ["t4", "t3"]
    assert first.headers["Link"] == f'<{body["next"]}>; rel="next"'
    seen = [t["name"] for t in body["tokens"]]
    while body["next"]:
        body = client.get(path_of(body["next"]), auth=alice).get_json()
        seen += [t["name"] for t in body["tokens"]]
    assert seen == names[::-1]
    assert "Link" not in client.get(TOKENS, auth=alice).headers


def test_admin_paging_keeps_the_user_parameter(client, admin, alice):
    for n in range(3):
        create_token(client, alice, name=f"a{n}")
    body = client.get(f"{TOKENS}?user=alice&limit=2", auth=admin).get_json()
    assert "user=alice" in body["next"]
    rest = client.get(path_of(body["next"]), auth=admin).get_json()
    assert [t["name"] for t in rest["tokens"]] == ["a0"]


def test_an_empty_collection(client, alice):
    assert client.get(TOKENS, auth=alice).get_json() == {
        "uri": f"{BASE}{TOKENS}",
        "tokens": [],
        "next": None,
    }


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=x",
        "cursor=forged",
        "user=",
        "x=1",
        "limit=1&limit=2",
    ],
)
def test_bad_list_parameters_are_400(client, alice, query):
    assert_problem(client.get(f"{TOKENS}?{query}", auth=alice), 400)


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(main, list(args))

    return invoke


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def assert_clean_failure(result, *words: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def test_cli_create_prints_the_secret_once_on_the_last_line(run, client, alice):
    result = run("tokens", "create", "alice", "--name", "backup job")
    assert result.exit_code == 0, result.output
    secret = last_line(result.output)
    assert SECRET.match(secret)
    assert result.output.count(secret) == 1
    listed = client.get(TOKENS, headers=bearer(secret)).get_json()["tokens"]
    assert [(t["name"], t["scopes"], t["expires_at"]) for t in listed] == [
        ("backup job", DEFAULT_SCOPES, None)
    ]


def test_cli_create_with_scopes_and_expiry(run, client, alice):
    result = run(
        "tokens", "create", "alice", "--name", "ci", "--scope", "links:write",
        "--scope", "stats:read", "--expires-in", "30",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = last_line(result.output)
    assert_problem(client.get(LINKS, headers=bearer(secret)), 403)
    created = client.post(LINKS, json={"target": "https://example.com/"}, headers=bearer(secret))
    assert created.status_code == 201
    [token] = client.get(TOKENS, auth=alice).get_json()["tokens"]
    assert token["scopes"] == ["links:write", "stats:read"]
    expires_at = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=29, hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=30)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ghost", "--name", "x"], ["ghost"]),
        (["alice", "--name", ""], ["name"]),
        (["alice", "--name", "x", "--scope", "links:delete"], ["links:delete"]),
        (["alice", "--name", "x", "--scope", "users:admin"], ["users:admin"]),
        (["alice", "--name", "x", "--expires-in", "0"], ["expires-in"]),
        (["alice", "--name", "x", "--expires-in", "soon"], ["expires-in"]),
        (["alice"], ["--name"]),
    ],
)
def test_cli_create_refuses_bad_input(app, run, alice, args, words):
    assert_clean_failure(run("tokens", "create", *args), *words)
    assert token_count(app) == 0


def test_cli_create_users_admin_for_an_admin(run, client, admin):
    result = run("tokens", "create", "admin", "--name", "ops", "--scope", "users:admin")
    assert result.exit_code == 0, result.output
    users = client.get("/api/v1.0/users", headers=bearer(last_line(result.output)))
    assert users.status_code == 200


def test_cli_list_shows_tokens_without_secrets(run, client, alice, bob):
    alice_secret = create_token(client, alice, name="alice-token")["token"]
    bob_secret = create_token(client, bob, name="bob-token")["token"]
    everyone = run("tokens", "list")
    assert everyone.exit_code == 0, everyone.output
    assert "alice-token" in everyone.output and "bob-token" in everyone.output
    only_alice = run("tokens", "list", "alice")
    assert only_alice.exit_code == 0, only_alice.output
    assert "alice-token" in only_alice.output and "bob-token" not in only_alice.output
    for output in (everyone.output, only_alice.output):
        assert alice_secret not in output and bob_secret not in output
        assert alice_secret.removeprefix("shr_")[:12] not in output


def test_cli_list_of_an_unknown_user_fails(run):
    assert_clean_failure(run("tokens", "list", "ghost"), "ghost")


def test_cli_revoke(app, run, client, alice):
    token = create_token(client, alice)
    result = run("tokens", "revoke", str(token_id(token)))
    assert result.exit_code == 0, result.output
    assert str(token_id(token)) in result.output
    assert_challenges(client.get(LINKS, headers=bearer(token["token"])))
    assert token_count(app) == 0


@pytest.mark.parametrize("token_ref", ["999", "abc", "0"])
def test_cli_revoke_of_an_unknown_token_fails(app, run, client, alice, token_ref):
    create_token(client, alice)
    assert_clean_failure(run("tokens", "revoke", token_ref), token_ref)
    assert token_count(app) == 1


def test_cli_and_api_share_the_service(app, client, alice):
    """A token made through the service (as the CLI does) is what the API lists."""
    created = app.extensions["shortener"].tokens.create(OPERATOR, owner="alice", name="svc")
    [listed] = client.get(TOKENS, auth=alice).get_json()["tokens"]
    assert listed["name"] == "svc"
    assert signs_in(client, created.secret)
