"""The API rate limit counts the authenticated identity, not the Authorization header: every
spelling of one token (``Bearer  T``, ``bearer T``, ``BEARER T``) shares the token's allowance,
every Basic header of one user shares the user's; a token has an allowance of its own. Failed
authentications stay counted per address."""

from __future__ import annotations

import base64
import secrets

import pytest
from conftest import PASSWORD, make_app
from support import assert_problem

from shortener.services.actors import OPERATOR

LINKS = "/api/v1.0/links"
TOKENS = "/api/v1.0/tokens"
LIMIT = 4


@pytest.fixture
def limited(database_url):
    app = make_app(database_url, API_RATE_LIMIT=f"{LIMIT}/minute", AUTH_FAIL_LIMIT="100/minute")
    yield app
    app.extensions["shortener"].close()


def user_of(app, name: str) -> tuple[str, str]:
    password = f"{PASSWORD} {secrets.token_hex(8)}"
    app.extensions["shortener"].users.create(OPERATOR, username=name, password=password)
    return (name, password)


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def assert_too_many(response) -> dict:
    body = assert_problem(response, 429)
    assert response.headers["RateLimit-Limit"] == str(LIMIT)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["Retry-After"]) >= 1
    return body


def token_of(app, credentials) -> str:
    """A token made before the limit is counted (creating it is counted for the user)."""
    response = app.test_client().post(TOKENS, json={"name": "script"}, auth=credentials)
    assert response.status_code == 201
    return response.get_json()["token"]


def test_every_spelling_of_a_token_shares_one_allowance(limited):
    alice = user_of(limited, "alice")
    token = token_of(limited, alice)
    client = client_at(limited, "198.51.100.10")
    spellings = [f"Bearer {token}", f"Bearer  {token}", f"bearer {token}", f"BEARER {token}"]
    remaining = []
    for header in spellings:
        response = client.get(LINKS, headers={"Authorization": header})
        assert response.status_code == 200, header
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["3", "2", "1", "0"]
    for header in [*spellings, f"Bearer {token} ", f"bEaReR\t{token}"]:
        response = client.get(LINKS, headers={"Authorization": header})
        if response.status_code != 401:  # a spelling the token scheme does not take at all
            body = assert_too_many(response)
            assert "credentials" in body["detail"]
    # From another address too: the count is the token's, wherever it comes from.
    assert_too_many(
        client_at(limited, "198.51.100.11").get(LINKS, headers={"Authorization": spellings[0]})
    )


def test_every_basic_header_of_a_user_shares_the_users_allowance(limited):
    alice = user_of(limited, "alice")
    encoded = base64.b64encode(f"{alice[0]}:{alice[1]}".encode()).decode()
    client = client_at(limited, "198.51.100.20")
    headers = [f"Basic {encoded}", f"basic {encoded}", f"BASIC  {encoded}", f"Basic {encoded} "]
    for header in headers:
        assert client.get(LINKS, headers={"Authorization": header}).status_code == 200, header
    for header in headers:
        assert_too_many(client.get(LINKS, headers={"Authorization": header}))
    assert_too_many(client.get(LINKS, auth=alice))


def test_a_token_and_its_users_password_are_counted_apart_and_users_apart(limited):
    alice, bob = user_of(limited, "alice"), user_of(limited, "bob")
    token = token_of(limited, alice)  # alice's first request
    client = client_at(limited, "198.51.100.30")
    for _ in range(LIMIT - 1):
        assert client.get(LINKS, auth=alice).status_code == 200
    assert_too_many(client.get(LINKS, auth=alice))
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(LINKS, headers=bearer).status_code == 200  # the token's own count
    assert client.get(LINKS, auth=bob).status_code == 200  # bob's own count


def test_refused_requests_change_nothing(limited):
    alice = user_of(limited, "alice")
    client = client_at(limited, "198.51.100.40")
    for _ in range(LIMIT):
        assert client.get(LINKS, auth=alice).status_code == 200
    assert_too_many(client.post(LINKS, json={"target": "https://example.com/"}, auth=alice))
    services = limited.extensions["shortener"]
    actor = services.users.get(OPERATOR, "alice")
    assert services.links.list(actor, cursor=None, limit=10).items == []


def test_failed_authentications_are_counted_by_address_not_identity(database_url):
    app = make_app(database_url, API_RATE_LIMIT="100/minute", AUTH_FAIL_LIMIT="3/minute")
    try:
        alice = user_of(app, "alice")
        attacker = client_at(app, "198.51.100.50")
        for header in ("Bearer nope", "bearer  nope", "BEARER nope"):
            assert_problem(attacker.get(LINKS, headers={"Authorization": header}), 401)
        assert_problem(attacker.get(LINKS, auth=alice), 429)  # the address is blocked
        assert client_at(app, "198.51.100.51").get(LINKS, auth=alice).status_code == 200
    finally:
        app.extensions["shortener"].close()


def test_without_credentials_a_public_operation_is_counted_by_address(limited):
    client = client_at(limited, "198.51.100.60")
    for _ in range(LIMIT):
        assert client.get("/api/v1.0/openapi.json").status_code == 200
    refused = client.get("/api/v1.0/openapi.json", headers={"Authorization": "Bearer whatever"})
    body = assert_too_many(refused)
    assert "address" in body["detail"]
