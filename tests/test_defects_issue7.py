"""Defects found by black-box clients (issue 7, section 9), each on SQLite and PostgreSQL.

The live-server defects (413 on a kept-alive connection, gunicorn's own errors) are in
tests/integration/test_gunicorn_errors.py; the migration that stops id reuse is also tested
in tests/test_migrations.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, insert, select
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.errors import InvalidParameter
from shortener.storage.tables import api_tokens, links, users, visits

LINKS = "/api/v1.0/links"
TOKENS = "/api/v1.0/tokens"
USERS = "/api/v1.0/users"
ALL_STATS = "/api/v1.0/stats"
BASE = "http://localhost"


def path_of(uri: str) -> str:
    return uri.removeprefix(BASE)


def create_link(client, auth, target: str = "https://example.com/", **fields) -> dict:
    response = client.post(LINKS, json={"target": target, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# -- ids are never reused ------------------------------------------------------------------------


def test_a_revoked_tokens_uri_never_names_a_newer_token(client, alice, bob):
    """Create, revoke, create again: a new id, and a retried DELETE of the old URI is a 404
    that leaves the newer token (here another user's) working."""
    first = client.post(TOKENS, json={"name": "first"}, auth=alice).get_json()
    assert client.delete(path_of(first["uri"]), auth=alice).status_code == 204
    second = client.post(TOKENS, json={"name": "second"}, auth=bob).get_json()
    assert second["uri"] != first["uri"]
    assert_problem(client.delete(path_of(first["uri"]), auth=alice), 404)
    assert_problem(client.get(path_of(first["uri"]), auth=alice), 404)
    bearer = {"Authorization": f"Bearer {second['token']}"}
    assert client.get(LINKS, headers=bearer).status_code == 200


def test_a_revoked_tokens_uri_stays_404_for_an_admin(client, admin):
    """An admin may address every token: the old URI must not reach the new one even so."""
    first = client.post(TOKENS, json={"name": "first"}, auth=admin).get_json()
    assert client.delete(path_of(first["uri"]), auth=admin).status_code == 204
    second = client.post(TOKENS, json={"name": "second"}, auth=admin).get_json()
    assert second["uri"] != first["uri"]
    assert_problem(client.delete(path_of(first["uri"]), auth=admin), 404)
    assert client.get(path_of(second["uri"]), auth=admin).status_code == 200


def _row_values(app, table) -> dict:
    """Values for one new row of ``table`` (its parents are the first user and link)."""
    now = datetime.now(UTC)
    database = app.extensions["shortener"].database
    with database.read() as connection:
        user_id = connection.execute(select(func.min(users.c.id))).scalar_one()
        link_id = connection.execute(select(func.min(links.c.id))).scalar_one()
    if table is users:
        return {"username": "someone", "password_hash": "x", "is_admin": False, "created_at": now}
    if table is links:
        return {
            "slug": "newest",
            "target": "https://example.com/",
            "redirect_status": 302,
            "visit_count": 0,
            "owner_id": user_id,
            "created_at": now,
            "updated_at": now,
        }
    if table is visits:
        return {"link_id": link_id, "visited_at": now, "is_bot": False}
    assert table is api_tokens
    return {
        "user_id": user_id,
        "name": "newest",
        "digest": "f" * 64,
        "scopes": "links:read",
        "created_at": now,
    }


@pytest.mark.parametrize("table", [users, links, visits, api_tokens], ids=lambda t: t.name)
def test_deleting_the_newest_row_never_frees_its_id(app, client, alice, table):
    """Create and delete the newest row of each table, create again: the id is new."""
    create_link(client, alice, slug="parent")
    database = app.extensions["shortener"].database
    seen = []
    for _ in range(3):
        with database.write() as connection:
            row_id = connection.execute(
                insert(table).values(**_row_values(app, table)).returning(table.c.id)
            ).scalar_one()
        with database.write() as connection:
            connection.execute(delete(table).where(table.c.id == row_id))
        seen.append(row_id)
    assert len(set(seen)) == 3 and seen == sorted(seen), seen


def test_a_deleted_links_id_is_not_given_to_the_next_link(app, client, alice):
    """Through the API: a new link with the deleted one's slug is a new row."""
    database = app.extensions["shortener"].database

    def link_id(slug: str) -> int:
        with database.read() as connection:
            return connection.execute(select(links.c.id).where(links.c.slug == slug)).scalar_one()

    create_link(client, alice, slug="again")
    first = link_id("again")
    assert client.delete(f"{LINKS}/again", auth=alice).status_code == 204
    create_link(client, alice, slug="again")
    assert link_id("again") > first


# -- NUL in a name or slug: 404, never a 500 -----------------------------------------------------

NUL_NAME = "a%00b"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_user_name_with_nul_is_404(production_app, method):
    client = production_app.test_client()
    production_app.extensions["shortener"].users.create(
        OPERATOR, username="admin", password="correct horse battery", is_admin=True
    )
    auth = ("admin", "correct horse battery")
    kwargs = {"json": {"is_admin": False}} if method == "PATCH" else {}
    response = client.open(f"{USERS}/{NUL_NAME}", method=method, auth=auth, **kwargs)
    assert_problem(response, 404)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"{LINKS}/{NUL_NAME}"),
        ("PUT", f"{LINKS}/{NUL_NAME}"),
        ("PATCH", f"{LINKS}/{NUL_NAME}"),
        ("DELETE", f"{LINKS}/{NUL_NAME}"),
        ("GET", f"{LINKS}/{NUL_NAME}/visits"),
        ("GET", f"{LINKS}/{NUL_NAME}/stats"),
        ("GET", f"/{NUL_NAME}"),
        ("HEAD", f"/{NUL_NAME}"),
    ],
)
def test_a_slug_with_nul_is_404_or_refused(production_app, method, path):
    """Reads answer 404; a PUT that would create it is refused with 422 naming the slug."""
    client = production_app.test_client()
    production_app.extensions["shortener"].users.create(
        OPERATOR, username="alice", password="correct horse battery"
    )
    auth = ("alice", "correct horse battery")
    body = {"json": {"target": "https://example.com/"}} if method in ("PUT", "PATCH") else {}
    response = client.open(path, method=method, auth=auth, **body)
    if method == "PUT":
        assert_problem(response, 422, field="slug")
    elif method == "HEAD":
        assert response.status_code == 404
    else:
        assert_problem(response, 404)


@pytest.mark.parametrize(
    "path",
    [
        f"{TOKENS}/{NUL_NAME}",
        f"{TOKENS}?user={NUL_NAME}",
        f"{LINKS}?owner={NUL_NAME}",
    ],
)
def test_tokens_and_owners_with_nul_find_nothing(production_app, path):
    """A token id or a user name holding NUL names nothing: 404, an empty page, or a 400 for
    a query parameter that could never hold it."""
    client = production_app.test_client()
    production_app.extensions["shortener"].users.create(
        OPERATOR, username="admin", password="correct horse battery", is_admin=True
    )
    auth = ("admin", "correct horse battery")
    response = client.get(path, auth=auth)
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)
    if response.status_code == 200:
        body = response.get_json()
        assert body[path.split("?")[0].rsplit("/", 1)[1]] == []
    else:
        assert_problem(response, response.status_code)
    assert_problem(client.delete(f"{TOKENS}/{NUL_NAME}", auth=auth), 404)


def test_basic_credentials_with_nul_are_refused_not_a_500(production_app):
    client = production_app.test_client()
    response = client.get(LINKS, auth=("a\x00b", "correct horse battery"))
    assert_problem(response, 401)


# -- stats: every year from 0001 to 9999 gives 200 or 400 ----------------------------------------

EDGE_MOMENTS = [
    "0001-01-01",
    "0001-01-02",
    "0002-01-01",
    "0999-12-31",
    "1000-01-01",
    "1969-12-31",
    "1970-01-01",
    "2038-01-19",
    "9998-12-31",
    "9999-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T23:59:59+23:59",
    "0001-01-01T00:00:00-23:59",
    "0001-01-08T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2038-01-19T03:14:08Z",
    "9998-12-31T23:59:59Z",
    "9998-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999+23:59",
    "9999-12-31T23:59:59-23:59",
]


@pytest.fixture
def stats_client(production_app):
    """As deployed (a 500 is a 500, not a raised exception), with one link and one visit."""
    services = production_app.extensions["shortener"]
    services.users.create(
        OPERATOR, username="admin", password="correct horse battery", is_admin=True
    )
    client = production_app.test_client()
    auth = ("admin", "correct horse battery")
    create_link(client, auth, slug="edge")
    assert client.get("/edge").status_code == 302
    services.recorder.flush()
    return client, auth


@pytest.mark.parametrize("path", [ALL_STATS, f"{LINKS}/edge/stats", f"{LINKS}/edge/visits"])
@pytest.mark.parametrize("parameter", ["since", "until"])
def test_every_year_gives_200_or_400(stats_client, path, parameter):
    client, auth = stats_client
    intervals = ("hour", "day", "week", "month") if "stats" in path else (None,)
    for moment in EDGE_MOMENTS:
        for interval in intervals:
            query = {parameter: moment, "interval": interval} if interval else {parameter: moment}
            response = client.get(path, query_string=query, auth=auth)
            assert response.status_code in (200, 400), (query, response.get_data(as_text=True))
            if response.status_code == 400:
                assert_problem(response, 400)


EDGE_WINDOWS = [
    ("0001-01-01", "0001-01-02"),
    ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
    ("0001-01-01", "1000-01-01"),
    ("9998-12-01", "9998-12-31T23:59:59Z"),
    ("0001-01-01", "9998-12-31"),
]


def test_windows_at_the_edges_give_200_or_400(stats_client):
    client, auth = stats_client
    for since, until in EDGE_WINDOWS:
        for interval in ("hour", "day", "week", "month"):
            for path in (ALL_STATS, f"{LINKS}/edge/stats"):
                query = {"since": since, "until": until, "interval": interval}
                response = client.get(path, query_string=query, auth=auth)
                assert response.status_code in (200, 400), (query, response.get_data(as_text=True))


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_a_window_ending_in_the_last_bucket_of_9999_is_a_400_not_an_overflow(app, interval):
    """Whatever the query field lets through, the service never overflows past 9999."""
    services = app.extensions["shortener"]
    services.users.create(
        OPERATOR, username="root", password="correct horse battery", is_admin=True
    )
    admin = services.users.get(OPERATOR, "root")
    late = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)
    with pytest.raises(InvalidParameter) as raised:
        services.visits.all_stats(admin, since=late, until=late, interval=interval, bots="include")
    assert "until" in raised.value.errors
    earliest = datetime(1, 1, 1, tzinfo=UTC)
    stats = services.visits.all_stats(
        admin, since=None, until=earliest, interval=interval, bots="include"
    )
    assert stats.since == earliest


# -- targets: hosts -------------------------------------------------------------------------------

BAD_HOSTS = {
    "empty-label": "http://a..b/",
    "empty-first-label": "http://.example.com/",
    "two-final-dots": "http://example.com../",
    "only-a-dot": "http://./",
    "label-of-64": "http://" + "a" * 64 + ".com/",
    "last-label-of-64": "https://example." + "b" * 64 + "/",
    "host-of-254": "https://" + ".".join(["a" * 62] * 4) + ".ab/",
    "empty-label-with-port": "http://a..b:8080/",
    "idn-with-empty-label": "http://ä..b/",
    "bracket-in-host": "http://a]b/",
    "ipv6-zone": "http://[fe80::1%25eth0]/",
    "ipv-future": "http://[v1.x]/",
    "quote-in-host": "http://a'b.com/",
}


@pytest.mark.parametrize("name", BAD_HOSTS)
def test_bad_hosts_are_refused_with_422_and_nothing_stored(production_app, row_counts, name):
    client = production_app.test_client()
    production_app.extensions["shortener"].users.create(
        OPERATOR, username="alice", password="correct horse battery"
    )
    auth = ("alice", "correct horse battery")
    before = row_counts()
    for method, path in (("POST", LINKS), ("PUT", f"{LINKS}/fresh")):
        response = client.open(path, method=method, json={"target": BAD_HOSTS[name]}, auth=auth)
        body = assert_problem(response, 422, field="target")
        assert "target" in body["errors"]
    assert row_counts() == before


@pytest.mark.parametrize(
    "target",
    [
        "http://a./",  # one final dot: the DNS root, a valid host
        "http://" + "a" * 63 + ".com/",
        "https://" + ".".join(["a" * 63] * 3) + "." + "b" * 61 + "/",  # 253 characters
        # (loopback would point at this test server itself: refused, see test_self_targets)
        "http://[2001:db8::1]:8080/x",
        "http://192.0.2.1/",
        "https://xn--exmple-cua.com/",
    ],
)
def test_edge_hosts_that_are_valid_are_accepted_and_redirect(client, alice, target):
    created = create_link(client, alice, target)
    response = client.get("/" + created["slug"])
    assert response.status_code == 302
    assert response.headers["Location"] == created["target"] == target


# -- targets: always a valid RFC 3986 URI ---------------------------------------------------------

# RFC 3986, section 3 and appendix A, for an absolute URI (no IPvFuture: never produced).
_UNRESERVED = r"[A-Za-z0-9\-._~]"
_PCT = r"%[0-9A-Fa-f]{2}"
_SUB = r"[!$&'()*+,;=]"
_PCHAR = rf"(?:{_UNRESERVED}|{_PCT}|{_SUB}|[:@])"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    ]
)
_HOST = rf"(?:\[(?:{_IPV6})\]|{_IPV4}|(?:{_UNRESERVED}|{_PCT}|{_SUB})*)"
_AUTHORITY = rf"(?:(?:{_UNRESERVED}|{_PCT}|{_SUB}|:)*@)?{_HOST}(?::[0-9]*)?"
RFC3986_URI = re.compile(
    rf"[A-Za-z][A-Za-z0-9+\-.]*:"
    rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*"
    rf"|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?"
    rf"|{_PCHAR}+(?:/{_PCHAR}*)*"
    rf"|)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)


def test_the_rfc3986_pattern_tells_valid_from_invalid():
    valid = [
        "https://example.com/a%25?q=%5B1%5D#f?/",
        "http://[::1]:80/",
        "http://[2001:db8::7]/c=GB?objectClass?one",
        "http://192.0.2.16:80/",
        "https://example.com",
    ]
    invalid = [
        "https://example.com/a%",
        "https://example.com/[x]",
        "https://example.com/a#b#c",
        "https://example.com/a b",
        "https://example.com/ü",
        "http://[::1::2]/",
    ]
    assert all(RFC3986_URI.fullmatch(uri) for uri in valid)
    assert not any(RFC3986_URI.fullmatch(uri) for uri in invalid)


# Every printable ASCII character, escapes good and broken, and letters from beyond ASCII.
AWKWARD = [chr(code) for code in range(0x21, 0x7F)] + [
    "%",
    "%4",
    "%zz",
    "%41",
    "%%41",
    "%2",
    "[]",
    "##",
    "??",
    "/..",
    "é",
    "\u00a0x"[1:],
    "\u4e2d",
    "\U0001f600",
    "\ufffd",
]


@pytest.mark.parametrize("where", ["path", "query", "fragment", "everywhere"])
def test_every_accepted_target_is_rfc3986_and_is_the_location(client, alice, where):
    """Each awkward piece in the path, query or fragment: refused with 422, or stored as a
    valid RFC 3986 URI that the redirect sends exactly."""
    for number, piece in enumerate(AWKWARD):
        path, query, fragment = "/p", "q=1", "f"
        if where in ("path", "everywhere"):
            path = f"/a{piece}b/{piece}"
        if where in ("query", "everywhere"):
            query = f"x={piece}&{piece}"
        if where in ("fragment", "everywhere"):
            fragment = f"s{piece}e{piece}"
        target = f"https://example.com{path}?{query}#{fragment}"
        slug = f"{where}-{number}"
        response = client.post(LINKS, json={"target": target, "slug": slug}, auth=alice)
        if response.status_code == 422:
            assert_problem(response, 422, field="target")
            continue
        assert response.status_code == 201, (target, response.get_data(as_text=True))
        stored = response.get_json()["target"]
        assert RFC3986_URI.fullmatch(stored), (target, stored)
        assert stored.isascii()
        redirect = client.get(f"/{slug}")
        assert redirect.status_code == 302
        assert redirect.headers["Location"] == stored, (target, stored)
        # Normalizing again changes nothing: a stored target is already what it should be.
        again = client.patch(f"{LINKS}/{slug}", json={"target": stored}, auth=alice)
        assert again.get_json()["target"] == stored


@pytest.mark.parametrize(
    "target, stored",
    [
        ("https://example.com/a%", "https://example.com/a%25"),
        ("https://example.com/100%zz", "https://example.com/100%25zz"),
        ("https://example.com/%41%4", "https://example.com/%41%254"),
        ("https://example.com/[x]?a[]=1", "https://example.com/%5Bx%5D?a%5B%5D=1"),
        ("https://example.com/a#b#c", "https://example.com/a#b%23c"),
        ("https://example.com/a?b?c#d?e/f", "https://example.com/a?b?c#d?e/f"),
        ("https://example.com/{x}|^`\\", "https://example.com/%7Bx%7D%7C%5E%60%5C"),
        ("https://example.com/~user/it's(1)*+,;=:@!$&", None),
    ],
)
def test_characters_that_do_not_belong_are_percent_encoded(client, alice, target, stored):
    """Encoded, not refused: a valid URI is kept as it is, and the rest means what it meant."""
    created = create_link(client, alice, target)
    assert created["target"] == (stored or target)
    response = client.get("/" + created["slug"])
    assert response.headers["Location"] == created["target"]
