"""HTTP Basic authentication, password hashing and the cache of verified credentials."""

from __future__ import annotations

import base64
import time

import pytest
from conftest import PASSWORD, make_app
from support import JSON_HEADERS, assert_problem
from werkzeug.security import check_password_hash

from shortener import create_app
from shortener.services import passwords
from shortener.services.actors import OPERATOR
from shortener.services.passwords import CredentialCache, PasswordHasher
from shortener.storage import migrations, user_queries

CHALLENGE = 'Basic realm="shortener"'
NEW_PASSWORD = "a brand new passphrase"
FAST_HASH = "pbkdf2:sha256:1000"

# Every authenticated route and method (the root is the only public resource).
PROTECTED = [
    ("GET", "/api/v1.0/links"),
    ("POST", "/api/v1.0/links"),
    ("GET", "/api/v1.0/links/some-slug"),
    ("PUT", "/api/v1.0/links/some-slug"),
    ("PATCH", "/api/v1.0/links/some-slug"),
    ("DELETE", "/api/v1.0/links/some-slug"),
    ("GET", "/api/v1.0/users"),
    ("POST", "/api/v1.0/users"),
    ("GET", "/api/v1.0/users/alice"),
    ("PATCH", "/api/v1.0/users/alice"),
    ("DELETE", "/api/v1.0/users/alice"),
]
BODIES = {
    "/api/v1.0/links": {"target": "https://example.com/"},
    "/api/v1.0/links/some-slug": {"target": "https://example.com/"},
    "/api/v1.0/users": {"username": "mallory", "password": NEW_PASSWORD, "is_admin": True},
    "/api/v1.0/users/alice": {"password": NEW_PASSWORD},
}


def basic(raw: bytes) -> dict[str, str]:
    """An Authorization header carrying exactly these bytes, base64-encoded."""
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def assert_challenge(response) -> dict:
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    return body


def users_service(app):
    return app.extensions["shortener"].users


def stored_hash(app, username: str) -> str:
    with app.extensions["shortener"].database.read() as connection:
        return user_queries.find_by_name(connection, username).password_hash


# -- who needs credentials -------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_api_route_needs_credentials(client, admin, alice, row_counts, method, path):
    """Checked before anything else: no body is parsed, nothing is stored or deleted."""
    before = row_counts()
    response = client.open(path, method=method, json=BODIES.get(path))
    assert_challenge(response)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("method", "path"), [route for route in PROTECTED if route[0] in ("POST", "DELETE")]
)
def test_wrong_password_is_refused_everywhere(client, admin, alice, row_counts, method, path):
    before = row_counts()
    response = client.open(path, method=method, json=BODIES.get(path), auth=("admin", "nope nope"))
    assert_challenge(response)
    assert row_counts() == before


def test_credentials_are_checked_before_the_body(client, admin, row_counts):
    """A client without credentials learns nothing from how its body would have been judged."""
    before = row_counts()
    response = client.post(
        "/api/v1.0/links", data="not json", headers={"Content-Type": "text/plain"}
    )
    assert_challenge(response)
    response = client.post("/api/v1.0/users", data="{", headers=JSON_HEADERS)
    assert_challenge(response)
    assert row_counts() == before


def test_root_is_the_only_public_api_resource(client):
    assert client.get("/api/v1.0/").status_code == 200


def test_valid_credentials_are_accepted(client, alice):
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200


# -- what counts as bad credentials ----------------------------------------------------------------
@pytest.mark.parametrize(
    "auth",
    [
        ("alice", "wrong password"),
        ("alice", ""),
        ("ghost", PASSWORD),
        ("", PASSWORD),
        ("", ""),
        ("ALICE", PASSWORD),
        ("alice", PASSWORD + " "),
        ("no such/name", PASSWORD),
    ],
)
def test_bad_credentials(client, alice, auth):
    assert_challenge(client.get("/api/v1.0/links", auth=auth))


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",
        "Basic",
        "Basic ",
        "Basic a",
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic " + base64.b64encode(b"\xff\xfe:\xff\xfe\xfd").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"alice:\xff" + PASSWORD.encode()).decode(),
        "Basic " + base64.b64encode(b"\xffalice:" + PASSWORD.encode()).decode(),
        "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode() + "!!",
        "Bearer " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        'Digest username="alice"',
        "alice:" + PASSWORD,
        "",
    ],
)
def test_malformed_authorization_header(client, alice, header):
    assert_challenge(client.get("/api/v1.0/links", headers={"Authorization": header}))


def test_non_latin1_header_bytes(client, alice):
    """Raw non-UTF-8 bytes in the header itself (WSGI hands them over as latin-1)."""
    header = b"Basic \xff\xfe\xfd".decode("latin-1")
    assert_challenge(client.get("/api/v1.0/links", headers={"Authorization": header}))


def test_latin1_credentials_are_refused(client, make_user):
    """Credentials are UTF-8 (RFC 7617); the same text in latin-1 bytes is not accepted."""
    make_user("carol", password="pässwörd")
    assert_challenge(
        client.get("/api/v1.0/links", headers=basic("carol:pässwörd".encode("latin-1")))
    )
    assert (
        client.get("/api/v1.0/links", headers=basic("carol:pässwörd".encode())).status_code == 200
    )


def test_scheme_is_case_insensitive(client, alice):
    """RFC 9110: the auth scheme name is case-insensitive."""
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = client.get("/api/v1.0/links", headers={"Authorization": "basic " + token})
    assert response.status_code == 200


def test_password_may_contain_colons(client, make_user):
    """Only the first colon separates name and password."""
    make_user("carol", password="pa:ss:wo:rd")
    assert client.get("/api/v1.0/links", headers=basic(b"carol:pa:ss:wo:rd")).status_code == 200


def test_utf8_passwords_work(client, make_user):
    make_user("carol", password="pässwörd ✓ 密码")
    assert (
        client.get("/api/v1.0/links", headers=basic("carol:pässwörd ✓ 密码".encode())).status_code
        == 200
    )


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + "A" * 8192,
        "Basic " + base64.b64encode(b"alice:" + b"p" * 6000).decode(),
        "Basic " + base64.b64encode(b"a" * 6000 + b":" + PASSWORD.encode()).decode(),
    ],
)
def test_huge_authorization_header_is_refused_cleanly(production_app, header):
    """8 KiB of junk is a plain 401 even with exceptions not propagated, never a 500."""
    users_service(production_app).create(
        OPERATOR, username="alice", password=PASSWORD, is_admin=False
    )
    response = production_app.test_client().get(
        "/api/v1.0/links", headers={"Authorization": header}
    )
    assert_challenge(response)


def test_failed_sign_in_does_not_reveal_whether_the_user_exists(client, alice):
    wrong_password = client.get("/api/v1.0/links", auth=("alice", "wrong password"))
    unknown_user = client.get("/api/v1.0/links", auth=("ghost", "wrong password"))
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json() == unknown_user.get_json()
    assert wrong_password.headers["WWW-Authenticate"] == unknown_user.headers["WWW-Authenticate"]


def test_forbidden_is_not_a_challenge(client, admin, alice):
    """403 means 'you, but not this': no WWW-Authenticate that would prompt for a new login."""
    response = client.get("/api/v1.0/users", auth=alice)
    assert_problem(response, 403)
    assert "WWW-Authenticate" not in response.headers


# -- hashing ---------------------------------------------------------------------------------------
def test_default_hash_method_is_scrypt(database_url, monkeypatch):
    """Nothing configured: passwords are stored with scrypt, a current memory-hard hash."""
    monkeypatch.delenv("SHORTENER_PASSWORD_HASH_METHOD", raising=False)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    try:
        migrations.upgrade(app.extensions["shortener"].database)
        users_service(app).create(OPERATOR, username="admin", password=PASSWORD, is_admin=True)
        password_hash = stored_hash(app, "admin")
        assert password_hash.startswith("scrypt:")
        assert PASSWORD not in password_hash
        assert app.test_client().get("/api/v1.0/users", auth=("admin", PASSWORD)).status_code == 200
    finally:
        app.extensions["shortener"].close()


def test_api_created_users_are_stored_as_scrypt_hashes(database_url):
    app = make_app(database_url, PASSWORD_HASH_METHOD="scrypt")
    try:
        users_service(app).create(OPERATOR, username="admin", password=PASSWORD, is_admin=True)
        client = app.test_client()
        body = {"username": "carol", "password": NEW_PASSWORD}
        assert (
            client.post("/api/v1.0/users", json=body, auth=("admin", PASSWORD)).status_code == 201
        )
        password_hash = stored_hash(app, "carol")
        assert password_hash.startswith("scrypt:")
        assert check_password_hash(password_hash, NEW_PASSWORD)
        assert not check_password_hash(password_hash, PASSWORD)
    finally:
        app.extensions["shortener"].close()


def test_same_password_gives_different_hashes(app, make_user):
    """Hashes are salted: equal passwords cannot be spotted in the table."""
    make_user("carol", password=PASSWORD)
    make_user("dave", password=PASSWORD)
    assert stored_hash(app, "carol") != stored_hash(app, "dave")


def test_password_hasher_round_trip():
    hasher = PasswordHasher(FAST_HASH)
    password_hash = hasher.hash(PASSWORD)
    assert password_hash.startswith("pbkdf2:sha256:1000$")
    assert hasher.verify(password_hash, PASSWORD)
    assert not hasher.verify(password_hash, PASSWORD + "x")
    assert not hasher.verify(password_hash, "")


def test_password_hasher_verifies_unknown_users_against_a_decoy(monkeypatch):
    """No stored hash still costs one real verification, so unknown names are not faster."""
    hasher = PasswordHasher(FAST_HASH)
    calls: list[tuple[str, str]] = []

    def spy(password_hash: str, password: str) -> bool:
        calls.append((password_hash, password))
        return check_password_hash(password_hash, password)

    monkeypatch.setattr(passwords, "check_password_hash", spy)
    assert hasher.verify(None, PASSWORD) is False
    assert len(calls) == 1
    decoy, password = calls[0]
    assert password == PASSWORD
    assert decoy.startswith("pbkdf2:sha256:1000$")  # same method, so the same cost


def test_decoy_never_matches(monkeypatch):
    """Even if someone guessed the decoy's password, an unknown user stays unknown."""
    monkeypatch.setattr(passwords, "check_password_hash", lambda stored, given: True)
    assert PasswordHasher(FAST_HASH).verify(None, PASSWORD) is False


@pytest.mark.parametrize("username", ["ghost", "not a valid name", "x" * 500, ""])
def test_unknown_users_cost_a_full_verification(app, alice, monkeypatch, username):
    """Unknown or impossible names go through the same hash check as a wrong password."""
    hasher = users_service(app).hasher
    verified: list[str | None] = []
    original = hasher.verify

    def spy(stored: str | None, password: str) -> bool:
        verified.append(stored)
        return original(stored, password)

    monkeypatch.setattr(hasher, "verify", spy)
    client = app.test_client()
    assert_challenge(client.get("/api/v1.0/links", auth=(username, "some password")))
    assert verified == [None]
    assert_challenge(client.get("/api/v1.0/links", auth=("alice", "some password")))
    assert verified == [None, stored_hash(app, "alice")]


# -- the credential cache --------------------------------------------------------------------------
def test_repeated_requests_verify_the_hash_once(app, alice, monkeypatch):
    """The expensive hash is checked once; the same credentials then hit the cache."""
    hasher = users_service(app).hasher
    calls = []
    original = hasher.verify
    monkeypatch.setattr(hasher, "verify", lambda *args: calls.append(args) or original(*args))
    client = app.test_client()
    for _ in range(5):
        assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    assert len(calls) == 1


def test_a_wrong_password_is_never_cached(app, alice):
    client = app.test_client()
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    for _ in range(3):
        assert_challenge(client.get("/api/v1.0/links", auth=("alice", "wrong password")))
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200


def test_password_change_through_the_api_drops_the_old_password_at_once(client, alice):
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200  # now cached
    response = client.patch("/api/v1.0/users/alice", json={"password": NEW_PASSWORD}, auth=alice)
    assert response.status_code == 200
    assert_challenge(client.get("/api/v1.0/links", auth=alice))
    assert client.get("/api/v1.0/links", auth=("alice", NEW_PASSWORD)).status_code == 200


def test_password_change_through_the_service_drops_the_old_password_at_once(app, client, alice):
    """What `shortener users set-password` does: the running server notices on the next request."""
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    users_service(app).update(OPERATOR, "alice", password=NEW_PASSWORD)
    assert_challenge(client.get("/api/v1.0/links", auth=alice))
    assert client.get("/api/v1.0/links", auth=("alice", NEW_PASSWORD)).status_code == 200


def test_password_change_in_another_worker_is_seen_at_once(app, database_url, client, alice):
    """A second app on the same database stands for another worker or the CLI process."""
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    other = make_app(database_url)
    try:
        users_service(other).update(OPERATOR, "alice", password=NEW_PASSWORD)
    finally:
        other.extensions["shortener"].close()
    assert_challenge(client.get("/api/v1.0/links", auth=alice))
    assert client.get("/api/v1.0/links", auth=("alice", NEW_PASSWORD)).status_code == 200


def test_setting_the_same_password_again_keeps_it_working(client, alice):
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    assert (
        client.patch("/api/v1.0/users/alice", json={"password": alice[1]}, auth=alice).status_code
        == 200
    )
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200


def test_deleted_user_is_refused_at_once(client, admin, alice):
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    assert client.delete("/api/v1.0/users/alice", auth=admin).status_code == 204
    assert_challenge(client.get("/api/v1.0/links", auth=alice))


def test_deleted_and_recreated_user_needs_the_new_password(app, client, admin, alice):
    """Same name, new account: the cached pair from the old account must not carry over."""
    assert client.get("/api/v1.0/links", auth=alice).status_code == 200
    assert client.delete("/api/v1.0/users/alice", auth=admin).status_code == 204
    users_service(app).create(OPERATOR, username="alice", password=NEW_PASSWORD)
    assert_challenge(client.get("/api/v1.0/links", auth=alice))
    assert client.get("/api/v1.0/links", auth=("alice", NEW_PASSWORD)).status_code == 200


def test_role_change_applies_on_the_next_request_despite_the_cache(client, admin, alice):
    assert_problem(client.get("/api/v1.0/users", auth=alice), 403)
    assert (
        client.patch("/api/v1.0/users/alice", json={"is_admin": True}, auth=admin).status_code
        == 200
    )
    assert client.get("/api/v1.0/users", auth=alice).status_code == 200


def test_cache_hit_needs_the_same_stored_hash():
    cache = CredentialCache()
    cache.remember("alice", PASSWORD, "hash-1")
    assert cache.hit("alice", PASSWORD, "hash-1")
    assert not cache.hit("alice", PASSWORD, "hash-2")


def test_cache_forgets_a_pair_whose_hash_changed():
    """After a mismatch the entry is gone, so even the old hash no longer hits."""
    cache = CredentialCache()
    cache.remember("alice", PASSWORD, "hash-1")
    assert not cache.hit("alice", PASSWORD, "hash-2")
    assert not cache.hit("alice", PASSWORD, "hash-1")


def test_cache_misses_other_names_and_passwords():
    cache = CredentialCache()
    cache.remember("alice", PASSWORD, "hash")
    assert not cache.hit("alice", PASSWORD + "x", "hash")
    assert not cache.hit("alicia", PASSWORD, "hash")
    assert not cache.hit("bob", PASSWORD, "hash")


def test_cache_keeps_name_and_password_apart():
    """("ab", "c") and ("a", "bc") are different credentials."""
    cache = CredentialCache()
    cache.remember("ab", "cdefghij", "hash")
    assert not cache.hit("a", "bcdefghij", "hash")
    assert not cache.hit("abc", "defghij", "hash")


def test_cache_entries_expire():
    cache = CredentialCache(ttl_seconds=0.05)
    cache.remember("alice", PASSWORD, "hash")
    assert cache.hit("alice", PASSWORD, "hash")
    time.sleep(0.06)
    assert not cache.hit("alice", PASSWORD, "hash")


def test_cache_with_zero_ttl_never_hits():
    cache = CredentialCache(ttl_seconds=0)
    cache.remember("alice", PASSWORD, "hash")
    assert not cache.hit("alice", PASSWORD, "hash")


def test_cache_is_bounded():
    cache = CredentialCache(max_entries=2)
    cache.remember("alice", PASSWORD, "hash-a")
    cache.remember("bob", PASSWORD, "hash-b")
    cache.remember("carol", PASSWORD, "hash-c")
    assert not cache.hit("alice", PASSWORD, "hash-a")  # the oldest went
    assert cache.hit("bob", PASSWORD, "hash-b")
    assert cache.hit("carol", PASSWORD, "hash-c")


def test_cache_forget_and_clear():
    cache = CredentialCache()
    cache.remember("alice", PASSWORD, "hash-a")
    cache.remember("bob", PASSWORD, "hash-b")
    cache.forget("alice", PASSWORD)
    assert not cache.hit("alice", PASSWORD, "hash-a")
    assert cache.hit("bob", PASSWORD, "hash-b")
    cache.clear()
    assert not cache.hit("bob", PASSWORD, "hash-b")


def test_cache_keys_are_per_process_secrets():
    """Two caches (two processes) do not share keys, and no key holds the password."""
    first, second = CredentialCache(), CredentialCache()
    first.remember("alice", PASSWORD, "hash")
    second.remember("alice", PASSWORD, "hash")
    (first_key,) = first._entries
    (second_key,) = second._entries
    assert first_key != second_key
    assert PASSWORD.encode() not in first_key and b"alice" not in first_key


def test_cache_survives_odd_unicode():
    """Lone surrogates (possible from a decoded header) must not crash the digest."""
    cache = CredentialCache()
    cache.remember("alice", "pass\udcffword", "hash")
    assert cache.hit("alice", "pass\udcffword", "hash")
