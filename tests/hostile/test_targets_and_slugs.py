"""Cases 1 and 2: targets that would run script, leave the web, loop, or smuggle a header, and
slugs that would climb out of their path or hide characters; existing links keep working."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from .conftest import LINKS, assert_no_stack_trace, assert_problem, cast_of

pytestmark = pytest.mark.integration

# Named after this module: other modules share the server.
CAST = cast_of(__name__)

GOOD_TARGET = "https://example.com/fine"
OWN_HOST = "{own}"  # replaced by the server's own scheme://host:port

BAD_TARGETS = {
    "javascript": "javascript:alert(1)",
    "javascript-mixed-case": "JaVaScRiPt:alert(document.cookie)",
    "javascript-upper-case": "JAVASCRIPT:alert(1)",
    "javascript-with-tab": "java\tscript:alert(1)",
    "javascript-with-newline": "java\nscript:alert(1)",
    "javascript-with-nul": "java\x00script:alert(1)",
    "javascript-leading-space": " javascript:alert(1)",
    "javascript-leading-control": "\x01javascript:alert(1)",
    "javascript-with-slashes": "javascript://example.com/%0Aalert(1)",
    "data": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data-upper-case": "DATA:text/html,<script>alert(1)</script>",
    "vbscript": "vbscript:msgbox(1)",
    "file": "file:///etc/passwd",
    "file-with-host": "file://localhost/etc/passwd",
    "ftp": "ftp://example.com/file",
    "protocol-relative": "//evil.example/",
    "bare-host": "evil.example.com",
    "bare-host-with-path": "evil.example.com/login",
    "one-slash": "http:/x",
    "no-slash": "http:evil.example",
    "three-slashes": "http:///evil.example",
    "backslashes": "https:\\\\evil.example\\",
    "scheme-only": "https://",
    "empty": "",
    "userinfo": "https://user:password@example.com/",
    "userinfo-name-only": "https://example.com@evil.example/",
    "userinfo-empty": "https://@example.com/",
    "encoded-at-in-host": "https://example.com%40evil.example/",
    "crlf": "https://example.com/\r\nSet-Cookie: evil=1",
    "lf": "https://example.com/\nLocation: https://evil.example/",
    "cr": "https://example.com/\rX-Injected: 1",
    "nul": "https://example.com/\x00",
    "nul-in-host": "https://example.com\x00.evil.example/",
    "space": "https://example.com/a b",
    "trailing-space": "https://example.com/ ",
    "zero-width-space-in-host": "https://exa\u200bmple.com/",
    "bidi-override": "https://example.com/\u202egnp.exe",
    "line-separator": "https://example.com/\u2028",
    "port-out-of-range": "https://example.com:99999/",
    "port-not-a-number": "https://example.com:http/",
    "unbalanced-ipv6": "https://[::1/",
    "own-host": OWN_HOST + "/api/v1.0/",
    "own-host-redirect": OWN_HOST + "/" + CAST.alices_link,
    "own-host-other-port": "http://127.0.0.1/x",
    "own-host-https": "https://127.0.0.1/",
    "own-host-upper-case-scheme": "HTTP://127.0.0.1/x",
    "too-long": "https://example.com/" + "a" * 4096,
    "too-long-once-percent-encoded": "https://example.com/" + "\u00e9" * 1400,
}


def bad_target(battery, name: str) -> str:
    return BAD_TARGETS[name].replace(OWN_HOST, battery.url)


@pytest.mark.parametrize("name", BAD_TARGETS)
def test_bad_target_is_refused_by_every_method(battery, name):
    """POST, PUT (creating) and PATCH all answer 422 naming the target; nothing is stored."""
    target = bad_target(battery, name)
    with battery.storage.unchanged():
        created = battery.call("POST", LINKS, auth=battery.alice, json={"target": target})
        assert_problem(created, 422, field="target")
        put = battery.call(
            "PUT", f"{LINKS}/never-made", auth=battery.alice, json={"target": target}
        )
        assert_problem(put, 422, field="target")
        patched = battery.call(
            "PATCH", f"{LINKS}/{CAST.alices_link}", auth=battery.alice, json={"target": target}
        )
        assert_problem(patched, 422, field="target")


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"target": "https://example.com/\r\nSet-Cookie: evil=1"}',
        b'{"target": "https://example.com/\nX: y"}',
        b'{"target": "https://example.com/\x00"}',
        b'{"target": "https://example.com/\x7f\x00\x1b[2J"}',
    ],
    ids=["raw-crlf", "raw-lf", "raw-nul", "raw-escape-sequence"],
)
def test_raw_control_bytes_in_a_target_are_malformed_json(battery, raw_body):
    """JSON forbids unescaped control characters in strings: 400 before any rule is asked."""
    with battery.storage.unchanged():
        response = battery.raw(
            "POST",
            LINKS,
            [battery.basic(battery.alice), ("Content-Type", "application/json")],
            raw_body,
        )
        assert_problem(response, 400)


# Every header a redirect may carry: anything else came from the target.
REDIRECT_HEADERS = frozenset(
    "server date connection content-type content-length location cache-control "
    "x-content-type-options vary".split()
)


@pytest.mark.parametrize(
    "target, expected_location",
    [
        (
            "https://example.com/a%0d%0aSet-Cookie:%20evil=1%0D%0A%0D%0A<b>x</b>",
            "https://example.com/a%0d%0aSet-Cookie:%20evil=1%0D%0A%0D%0A%3Cb%3Ex%3C/b%3E",
        ),
        ("https://exämple.com/ü?q=ü#ü", "https://xn--exmple-cua.com/%C3%BC?q=%C3%BC#%C3%BC"),
        ("https://example.com/%00%0a", "https://example.com/%00%0a"),
    ],
    ids=["encoded-crlf", "unicode", "encoded-nul-and-lf"],
)
def test_encoded_crlf_is_accepted_and_cannot_inject_a_header(battery, target, expected_location):
    """The link is created, and its redirect sends exactly one ASCII Location and nothing else
    that the target spelled out."""
    before = battery.storage.snapshot()
    created = battery.create_link(battery.alice, target=target)
    assert created["target"] == expected_location
    response = battery.raw("GET", "/" + created["slug"], [("User-Agent", "hostile-battery")])
    assert response.status_code == 302
    assert response.headers_named("Location") == [expected_location]
    assert response.headers_named("Set-Cookie") == []
    assert expected_location.isascii()
    header_names = {name.lower() for name, _ in response.header_list}
    assert header_names <= REDIRECT_HEADERS, header_names
    # Storage: this one link was added, and it received this one visit.
    assert battery.storage.wait_for_visit_count(created["slug"], 1) == 1
    after = battery.storage.snapshot()
    added = [row for key, row in after["links"].items() if key not in before["links"]]
    assert [row["slug"] for row in added] == [created["slug"]]
    assert added[0]["target"] == expected_location


BAD_SLUGS = {
    "dot-dot-slash-api": "../api",
    "dot-dot": "..",
    "dot": ".",
    "percent-encoded-dot-dot-slash": "%2e%2e%2f",
    "slash": "/",
    "inner-slash": "a/b",
    "backslash": "a\\b",
    "empty": "",
    "space": " ",
    "inner-space": "a b",
    "leading-space": " a",
    "tab": "a\t",
    "zero-width-space": "a\u200bb",
    "zero-width-joiner": "\u200d",
    "bidi-override": "a\u202eb",
    "bidi-isolate": "\u2066a\u2069",
    "byte-order-mark": "\ufeffa",
    "crlf": "a\r\nb",
    "nul": "a\x00",
    "question-mark": "a?b",
    "hash": "a#b",
    "percent": "a%20b",
    "non-ascii-letter": "\u00e9t\u00e9",
    "fullwidth-letters": "\uff41\uff42",
    "65-characters": "a" * 65,
    "reserved-api": "api",
    "reserved-api-upper-case": "API",
    "reserved-static": "static",
    "reserved-health": "health",
    "reserved-problems": "problems",
    "reserved-favicon": "favicon.ico",
    "reserved-robots": "robots.txt",
}


@pytest.mark.parametrize("name", BAD_SLUGS)
def test_bad_slug_is_refused(battery, name):
    """A bad slug in a POST body, a PUT path or a PATCH body: 422 naming the slug, or 404 when
    the path cannot even name one link; nothing is stored or changed."""
    slug = BAD_SLUGS[name]
    with battery.storage.unchanged():
        created = battery.call(
            "POST", LINKS, auth=battery.alice, json={"target": GOOD_TARGET, "slug": slug}
        )
        assert_problem(created, 422, field="slug")

        patched = battery.call(
            "PATCH", f"{LINKS}/{CAST.alices_link}", auth=battery.alice, json={"slug": slug}
        )
        assert_problem(patched, 422, field="slug")

        # Written byte for byte: requests would resolve the dot segments itself.
        put = battery.raw(
            "PUT",
            f"{LINKS}/{quote(slug, safe='')}",
            [battery.basic(battery.alice), ("Content-Type", "application/json")],
            b'{"target": "https://example.com/fine"}',
        )
        unroutable = slug == "" or "/" in slug
        if unroutable:
            assert_problem(put, 404)
        else:
            assert_problem(put, 422, field="slug")


@pytest.mark.parametrize("slug", [1, 1.5, True, None, [], {}, ["a"]], ids=repr)
def test_slug_of_the_wrong_type_is_refused(battery, slug):
    with battery.storage.unchanged():
        response = battery.call(
            "POST", LINKS, auth=battery.alice, json={"target": GOOD_TARGET, "slug": slug}
        )
        assert_problem(response, 422, field="slug")


HOSTILE_REDIRECT_PATHS = [
    "/../api",
    "/..%2fapi",
    "/%2e%2e%2fapi",
    "/%2e%2e/api/v1.0/users",
    "/.",
    "/%00",
    "/a%00b",
    "/a%0d%0aSet-Cookie:%20evil=1",
    f"/%E2%80%AE{CAST.alices_link}",
    f"/{CAST.alices_link}%E2%80%8B",
    "/%ff%fe",
    "/%3Cscript%3Ealert(1)%3C/script%3E",
    f"/{CAST.alices_link}%20",
    "/ALICES-LINK",
    "/" + "a" * 65,
    "/" + "a" * 4000,
]


@pytest.mark.parametrize("path", HOSTILE_REDIRECT_PATHS)
def test_hostile_redirect_paths_are_404(battery, path):
    """GET and HEAD: a problem, never a redirect, never a 500; nothing recorded."""
    with battery.storage.unchanged():
        for method in ("GET", "HEAD"):
            response = battery.raw(method, path, [("Accept", "application/json")])
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.headers_named("Location") == []
            assert response.headers_named("Set-Cookie") == []
            if method == "GET":
                assert_problem(response, 404)


@pytest.mark.parametrize(
    "request_target",
    [
        f"/{CAST.alices_link}\r\nX-Injected: 1".encode(),
        f"/{CAST.alices_link}\x00".encode(),
        b"/alices\x7flink",
        b"/\xff\xfe",
    ],
    ids=["raw-crlf", "raw-nul", "raw-del", "raw-non-utf8"],
)
def test_raw_bytes_in_the_request_line_never_get_a_500(battery, request_target):
    """gunicorn may refuse these itself (400); whatever answers, no redirect and no 5xx."""
    with battery.storage.unchanged():
        try:
            response = battery.raw("GET", request_target)
        except ConnectionError:  # the server may just close the connection
            return
        assert 400 <= response.status_code < 500, response.status_code
        assert response.headers_named("X-Injected") == []
        assert response.headers_named("Location") == []
        assert_no_stack_trace(response)


def test_existing_links_keep_redirecting_afterwards(battery):
    """After every refused target and slug above, both owners' links still redirect, once each,
    to exactly their targets."""
    with battery.storage.unchanged(visits={CAST.alices_link: 1, CAST.bobs_link: 1}):
        for owner in ("alice", "bob"):
            link = battery.links[owner]
            response = battery.call("GET", "/" + link["slug"])
            assert response.status_code == 302
            assert response.headers["Location"] == link["target"]
            assert urlsplit(response.headers["Location"]).hostname in ("example.com", "example.org")
