"""Cases 3, 4 and 5: server-owned fields in bodies (mass assignment), bodies that are not JSON
objects, and query parameters that look like SQL or forge a cursor. Every answer is a problem
and the database is untouched."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import API, LINKS, USERS, assert_problem, cast_of

pytestmark = pytest.mark.integration

# Named after this module: other modules share the server.
CAST = cast_of(__name__)

GOOD_TARGET = "https://example.com/fine"
NEW_PASSWORD = "a brand new password"

# -- case 3: mass assignment ------------------------------------------------------------------
LINK_SERVER_FIELDS = {
    "visit_count": 1_000_000,
    "owner": "http://127.0.0.1/api/v1.0/users/admin",
    "owner_id": 1,
    "uri": "https://evil.example/api/v1.0/links/x",
    "short_url": "https://evil.example/x",
    "visits": "https://evil.example/visits",
    "stats": "https://evil.example/stats",
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
    "id": 1,
    "is_admin": True,
}


@pytest.mark.parametrize("name", LINK_SERVER_FIELDS)
def test_server_owned_link_field_is_refused_by_every_method(battery, name):
    """POST, PUT (replacing and creating) and PATCH: 422 naming the field, record unchanged."""
    value = LINK_SERVER_FIELDS[name]
    full = {"target": GOOD_TARGET, name: value}
    attempts = [
        ("POST", LINKS, full),
        ("PUT", f"{LINKS}/{CAST.alices_link}", full),
        ("PUT", f"{LINKS}/never-made", full),
        ("PATCH", f"{LINKS}/{CAST.alices_link}", {name: value}),
        ("PATCH", f"{LINKS}/{CAST.alices_link}", {"title": "changed", name: value}),
    ]
    with battery.storage.unchanged():
        for method, path, body in attempts:
            response = battery.call(method, path, auth=battery.alice, json=body)
            assert_problem(response, 422, field=name)
    assert battery.get_link(CAST.alices_link, battery.alice) == battery.links["alice"]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"is_admin": True}, 403, None),
        ({"is_admin": True, "password": NEW_PASSWORD}, 403, None),
        ({"is_admin": "true"}, 422, "is_admin"),
        ({"is_admin": 1}, 422, "is_admin"),
        ({"username": "admin"}, 422, "username"),
        ({"uri": "https://evil.example/"}, 422, "uri"),
        ({"id": 1}, 422, "id"),
        ({"created_at": "2000-01-01T00:00:00Z"}, 422, "created_at"),
        ({"links": "https://evil.example/"}, 422, "links"),
        ({"password_hash": "plain$x"}, 422, "password_hash"),
        ({"password": NEW_PASSWORD, "is_admin": True}, 403, None),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_a_user_cannot_make_themself_admin_or_rename(battery, body, status, field):
    with battery.storage.unchanged():
        response = battery.call("PATCH", f"{USERS}/{CAST.alice}", auth=battery.alice, json=body)
        assert_problem(response, status, field=field)
    me = battery.call("GET", f"{USERS}/{CAST.alice}", auth=battery.alice).json()
    assert me["is_admin"] is False
    assert battery.call("GET", USERS, auth=battery.alice).status_code == 403


@pytest.mark.parametrize(
    "extra",
    [
        {"id": 1},
        {"uri": "https://evil.example/"},
        {"created_at": "2000-01-01T00:00:00Z"},
        {"links": "https://evil.example/"},
        {"password_hash": "plain$x"},
        {"is_admin": "yes"},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_server_owned_user_field_on_create_is_refused(battery, extra):
    body = {"username": "mallory", "password": NEW_PASSWORD, **extra}
    with battery.storage.unchanged():
        response = battery.call("POST", USERS, auth=battery.admin, json=body)
        assert_problem(response, 422, field=next(iter(extra)))


def test_a_user_cannot_create_an_admin(battery):
    body = {"username": "mallory", "password": NEW_PASSWORD, "is_admin": True}
    with battery.storage.unchanged():
        response = battery.call("POST", USERS, auth=battery.alice, json=body)
        assert_problem(response, 403)


# -- case 4: bodies ---------------------------------------------------------------------------
def body_endpoints(battery):
    """(method, path, credentials) of every request that takes a body."""
    return [
        ("POST", LINKS, battery.alice),
        ("PUT", f"{LINKS}/{CAST.alices_link}", battery.alice),
        ("PUT", f"{LINKS}/never-made", battery.alice),
        ("PATCH", f"{LINKS}/{CAST.alices_link}", battery.alice),
        ("POST", USERS, battery.admin),
        ("PATCH", f"{USERS}/{CAST.alice}", battery.alice),
    ]


VALID_JSON = json.dumps({"target": GOOD_TARGET}).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/json",
        "application/javascript",
        "application/jsonx",
        "json",
    ],
)
def test_wrong_content_type_is_415(battery, content_type):
    headers = [("Content-Type", content_type)] if content_type is not None else []
    with battery.storage.unchanged():
        for method, path, credentials in body_endpoints(battery):
            response = battery.raw(method, path, [battery.basic(credentials), *headers], VALID_JSON)
            assert_problem(response, 415)


MALFORMED_BODIES = {
    "empty": b"",
    "whitespace": b"  \n ",
    "open-brace": b"{",
    "missing-value": b'{"target": }',
    "trailing-comma": b'{"target": "https://example.com/fine",}',
    "single-quotes": b"{'target': 'https://example.com/fine'}",
    "unquoted-key": b'{target: "https://example.com/fine"}',
    "trailing-garbage": b'{"target": "https://example.com/fine"} garbage',
    "two-documents": b'{"target": "https://example.com/fine"}{}',
    "duplicate-key": b'{"target": "https://a.example/", "target": "https://b.example/"}',
    "duplicate-key-differing-values": b'{"title": "a", "target": "https://a.example/", '
    b'"title": null}',
    "duplicate-password": b'{"password": "first password", "password": "other password"}',
    "nan": b'{"target": "https://example.com/fine", "redirect_status": NaN}',
    "infinity": b'{"target": "https://example.com/fine", "redirect_status": Infinity}',
    "minus-infinity": b'{"target": "https://example.com/fine", "redirect_status": -Infinity}',
    "invalid-utf8": b'{"target": "https://example.com/\xff\xfe"}',
    "overlong-utf8": b'{"target": "https://example.com/\xc0\xaf"}',
    "lone-surrogate": b'{"target": "https://example.com/\\ud800"}',
    "bad-escape": b'{"target": "https://example.com/\\x41"}',
    "raw-newline-in-string": b'{"target": "https://example.com/\nx"}',
    "huge-integer": b'{"redirect_status": 1' + b"0" * 5000 + b"}",
    "deep-nesting": b"[" * 50_000,
    "deep-nesting-in-object": b'{"target": ' + b"[" * 30_000,
    "comment": b'{"target": "https://example.com/fine" /* hi */}',
}


@pytest.mark.parametrize("name", MALFORMED_BODIES)
def test_malformed_json_is_400(battery, name):
    body = MALFORMED_BODIES[name]
    with battery.storage.unchanged():
        for method, path, credentials in body_endpoints(battery):
            response = battery.raw(
                method,
                path,
                [battery.basic(credentials), ("Content-Type", "application/json")],
                body,
            )
            assert_problem(response, 400)


@pytest.mark.parametrize(
    "body", [[], [{"target": GOOD_TARGET}], "x", None, 1, 1.5, True, False], ids=json.dumps
)
def test_json_of_the_wrong_shape_is_422(battery, body):
    with battery.storage.unchanged():
        for method, path, credentials in body_endpoints(battery):
            response = battery.call(
                method,
                path,
                auth=credentials,
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            problem = assert_problem(response, 422)
            assert problem["errors"], problem


@pytest.mark.parametrize(
    "target", [123, None, [], {}, True, ["https://example.com/"]], ids=json.dumps
)
def test_target_of_the_wrong_type_is_422(battery, target):
    with battery.storage.unchanged():
        response = battery.call("POST", LINKS, auth=battery.alice, json={"target": target})
        assert_problem(response, 422, field="target")


MAX_BODY = 64 * 1024


def oversized_json(size: int) -> bytes:
    body = json.dumps({"target": GOOD_TARGET, "title": ""}).encode()
    return body[:-2] + b"x" * (size - len(body)) + b'"}'


def test_a_body_over_max_content_length_is_413(battery):
    body = oversized_json(MAX_BODY + 1)
    assert len(body) == MAX_BODY + 1
    with battery.storage.unchanged():
        for method, path, credentials in body_endpoints(battery):
            response = battery.raw(
                method,
                path,
                [battery.basic(credentials), ("Content-Type", "application/json")],
                body,
            )
            assert_problem(response, 413)


def test_a_huge_declared_length_is_413_without_the_body(battery):
    """The server answers from Content-Length alone, without waiting for 1 GiB to arrive."""
    with battery.storage.unchanged():
        response = battery.raw(
            "POST",
            LINKS,
            [
                battery.basic(battery.alice),
                ("Content-Type", "application/json"),
                ("Content-Length", str(1 << 30)),
            ],
            VALID_JSON,
            content_length=False,
        )
        assert_problem(response, 413)


def chunked(body: bytes) -> bytes:
    step = 8192
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    return b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces)


@pytest.mark.parametrize(
    "body",
    [
        oversized_json(MAX_BODY * 2),
        # Valid JSON that ends inside the limit, then garbage past it: cutting the body at the
        # limit would take the link and never see the rest.
        VALID_JSON + b" " * (MAX_BODY - len(VALID_JSON)) + b"garbage",
    ],
    ids=["oversized-json", "valid-json-then-garbage-past-the-limit"],
)
def test_a_chunked_body_over_max_content_length_is_413(battery, body):
    """No Content-Length to check up front: the limit holds while the body is read."""
    with battery.storage.unchanged():
        response = battery.raw(
            "POST",
            LINKS,
            [
                battery.basic(battery.alice),
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            chunked(body) + b"0\r\n\r\n",
            content_length=False,
        )
        assert_problem(response, 413)


def test_a_chunked_body_within_the_limit_is_taken(battery):
    """The check above refuses only what goes past the limit: exactly the limit is fine."""
    body = VALID_JSON + b" " * (MAX_BODY - len(VALID_JSON))
    response = battery.raw(
        "POST",
        LINKS,
        [
            battery.basic(battery.alice),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        chunked(body) + b"0\r\n\r\n",
        content_length=False,
    )
    assert response.status_code == 201, response.text
    slug = response.json()["slug"]
    assert battery.call("DELETE", f"{LINKS}/{slug}", auth=battery.alice).status_code == 204


# -- case 5: query parameters -----------------------------------------------------------------
def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def page_endpoints(battery):
    """(path, credentials) of every paged collection."""
    return [
        (LINKS, battery.alice),
        (LINKS, battery.admin),
        (USERS, battery.admin),
        (f"{LINKS}/{CAST.alices_link}/visits", battery.alice),
    ]


BAD_LIMITS = [
    "-1",
    "0",
    "1001",
    "99999999999999999999999999",
    "1e3",
    "1.5",
    " 5",
    "5 ",
    "+5",
    "0x10",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: isdigit() is true
    "\uff15",  # FULLWIDTH DIGIT FIVE
    "",
    "1;DROP TABLE links",
    "1 OR 1=1",
    "' OR '1'='1",
    "5\x00",
]

BAD_CURSORS = [
    "garbage",
    "",
    "' OR 1=1--",
    "1; DROP TABLE links",
    cursor("v1:0"),
    cursor("v1:-1"),
    cursor("v1:1 OR 1=1"),
    cursor("v1:1) OR (1=1"),
    cursor("v1:' OR '1'='1"),
    cursor("v2:5"),
    cursor("v1:\u0665"),
    cursor("v1:99999999999999999999999999"),
    cursor("v1:9223372036854775808"),
    cursor("v1:5") + "==",
    cursor("v1:05"),
    "%00",
    "\x00",
    "djE6MQ==\x00",
    "A" * 3000,
]


@pytest.mark.parametrize("value", BAD_LIMITS, ids=repr)
def test_bad_limit_is_400(battery, value):
    with battery.storage.unchanged():
        for path, credentials in page_endpoints(battery):
            response = battery.call("GET", path, auth=credentials, params={"limit": value})
            assert_problem(response, 400, field="limit")


@pytest.mark.parametrize("value", BAD_CURSORS, ids=lambda value: repr(value)[:40])
def test_forged_cursor_is_400(battery, value):
    with battery.storage.unchanged():
        for path, credentials in page_endpoints(battery):
            response = battery.call("GET", path, auth=credentials, params={"cursor": value})
            assert_problem(response, 400, field="cursor")


@pytest.mark.parametrize(
    "value",
    ["' OR '1'='1", "admin'--", "alice%", "%", "*", "alice\x00", "", "alice bob", "a" * 65],
    ids=repr,
)
def test_sql_looking_owner_is_400(battery, value):
    with battery.storage.unchanged():
        for credentials in (battery.alice, battery.admin):
            response = battery.call("GET", LINKS, auth=credentials, params={"owner": value})
            assert_problem(response, 400, field="owner")


@pytest.mark.parametrize(
    "name, value",
    [
        ("since", "2020-01-01' OR 1=1--"),
        ("since", "yesterday"),
        ("since", "0001-01-01T00:00:00+01:00"),
        ("until", "9999-12-31T23:59:59Z"),
        ("until", "2020-01-01T00:00:00"),
        ("until", "2020-13-01"),
        ("interval", "year"),
        ("interval", "day; DROP TABLE visits"),
        ("bots", "everything"),
        ("bots", "include' OR '1'='1"),
    ],
)
def test_bad_stats_parameter_is_400(battery, name, value):
    paths = [
        (f"{LINKS}/{CAST.alices_link}/stats", battery.alice),
        (f"{API}/stats", battery.admin),
        (f"{LINKS}/{CAST.alices_link}/visits", battery.alice),
    ]
    with battery.storage.unchanged():
        for path, credentials in paths:
            if name == "interval" and path.endswith("/visits"):
                continue  # visits take no interval: that would be an unknown parameter
            response = battery.call("GET", path, auth=credentials, params={name: value})
            assert_problem(response, 400, field=name)


@pytest.mark.parametrize(
    "query",
    ["foo=1", "limit=1&limit=2", "cursor=a&cursor=b", "owner=alice&owner=bob", "_method=DELETE"],
)
def test_unknown_or_repeated_parameter_is_400(battery, query):
    with battery.storage.unchanged():
        response = battery.call("GET", f"{LINKS}?{query}", auth=battery.admin)
        assert_problem(response, 400)


@pytest.mark.parametrize("value", ["maybe", "1 OR 1=1", "", "yes", "TRUE'--"])
def test_bad_purge_deletes_nobody(battery, value):
    """A purge that is not true or false refuses the whole delete: bob and his link stay."""
    with battery.storage.unchanged():
        response = battery.call(
            "DELETE", f"{USERS}/{CAST.bob}", auth=battery.admin, params={"purge": value}
        )
        assert_problem(response, 400, field="purge")
