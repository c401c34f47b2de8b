"""Query forwarding and UTM fields (issue 9): forward_query merges the visitor's query into the
target's on the raw text (the target's own parameters win, repeats kept in order, encodings
and empty values as sent); utm_* fields are appended to the target unless it has its own."""

from __future__ import annotations

import pytest
from support import assert_problem

from shortener.services.forwarding import clean_query, forward, with_utm

LINKS = "/api/v1.0/links"
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def create(client, auth, slug: str, target: str = "https://example.com/p?a=1", **fields):
    response = client.post(LINKS, json={"target": target, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def location(client, path: str, **kwargs) -> str:
    response = client.get(path, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def visit_count(client, auth, slug: str) -> int:
    client.application.extensions["shortener"].recorder.flush()
    return client.get(f"{LINKS}/{slug}", auth=auth).get_json()["visit_count"]


# -- the merge rules, on their own -----------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "visitor", "expected"),
    [
        # the target's own parameter wins; the visitor's others follow, in order
        ("https://e.com/?a=1", "a=2&b=3", "https://e.com/?a=1&b=3"),
        # repeated names kept, in order, the target's repeats too
        ("https://e.com/?a=1&a=2", "b=1&b=2&a=3&b=3", "https://e.com/?a=1&a=2&b=1&b=2&b=3"),
        # encodings as sent: %20 and + are not rewritten, %2B stays
        (
            "https://e.com/?q=a%20b",
            "r=c+d&s=e%20f&t=%2B",
            "https://e.com/?q=a%20b&r=c+d&s=e%20f&t=%2B",
        ),
        # empty values and bare names kept as they are
        ("https://e.com/", "a=&b&c=1", "https://e.com/?a=&b&c=1"),
        # empty pairs (&&) dropped from the visitor's query; the target's query untouched
        ("https://e.com/?x=1&&y=2", "&&z=3&", "https://e.com/?x=1&&y=2&z=3"),
        # names compared decoded: a%5Fb is a_b, and + in a name is a space
        (
            "https://e.com/?a_b=1&c d=1",
            "a%5Fb=2&c+d=2&c%2Bd=3",
            "https://e.com/?a_b=1&c d=1&c%2Bd=3",
        ),
        # the fragment stays at the end; a target ending in ? or & gets no doubled separator
        ("https://e.com/p#top", "a=1", "https://e.com/p?a=1#top"),
        ("https://e.com/p?", "a=1", "https://e.com/p?a=1"),
        ("https://e.com/p?x=1&", "a=1", "https://e.com/p?x=1&a=1"),
        # nothing to forward: the target as it is
        ("https://e.com/p?x=1", "", "https://e.com/p?x=1"),
        ("https://e.com/p?x=1", "&", "https://e.com/p?x=1"),
    ],
)
def test_merge_rules(target, visitor, expected):
    assert forward(target, visitor) == expected


def test_utm_fields_are_appended_encoded_unless_the_target_has_its_own():
    utm = {"utm_source": "news letter", "utm_medium": "café&co", "utm_term": None}
    assert with_utm("https://e.com/p", utm) == (
        "https://e.com/p?utm_source=news%20letter&utm_medium=caf%C3%A9%26co"
    )
    assert with_utm("https://e.com/p?utm_source=x#f", utm) == (
        "https://e.com/p?utm_source=x&utm_medium=caf%C3%A9%26co#f"
    )
    assert with_utm("https://e.com/p", dict.fromkeys(UTM)) == "https://e.com/p"


def test_raw_query_bytes_that_cannot_be_in_a_uri_are_percent_encoded():
    assert clean_query(b"a=%20b+c&d=/?:@!$'()*,;") == "a=%20b+c&d=/?:@!$'()*,;"
    assert clean_query('q=café x"<>'.encode()) == "q=caf%C3%A9%20x%22%3C%3E"


# -- the fields ------------------------------------------------------------------------------
def test_defaults_and_round_trip(client, alice):
    body = create(client, alice, "plain")
    assert body["forward_query"] is False
    assert all(body[name] is None for name in UTM)
    values = {name: f"{name} value" for name in UTM}
    body = create(client, alice, "tagged", forward_query=True, **values)
    assert body["forward_query"] is True
    assert {name: body[name] for name in UTM} == values
    assert client.get(f"{LINKS}/tagged", auth=alice).get_json() == body


def test_patch_and_put_change_and_clear_them(client, alice):
    create(client, alice, "tagged", utm_source="a", utm_medium="b")
    body = client.patch(
        f"{LINKS}/tagged", json={"utm_source": None, "forward_query": True}, auth=alice
    ).get_json()
    assert body["utm_source"] is None and body["utm_medium"] == "b" and body["forward_query"]
    assert location(client, "/tagged?z=1") == "https://example.com/p?a=1&utm_medium=b&z=1"
    put = client.put(f"{LINKS}/tagged", json={"target": "https://example.com/q"}, auth=alice)
    assert put.status_code == 200
    body = put.get_json()
    assert body["forward_query"] is False and all(body[name] is None for name in UTM)
    assert location(client, "/tagged?z=1") == "https://example.com/q"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("forward_query", "yes"),
        ("forward_query", 1),
        ("forward_query", None),
        ("utm_source", ""),
        ("utm_medium", "x" * 256),
        ("utm_campaign", "line\nbreak"),
        ("utm_term", "nul\x00"),
        ("utm_content", 5),
        ("utm_source", ["a"]),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_invalid_values_are_422_and_store_nothing(client, alice, row_counts, field, value, method):
    create(client, alice, "kept", utm_source="kept")
    before = row_counts()
    body = {"target": "https://example.com/", field: value}
    url = {"POST": LINKS, "PUT": f"{LINKS}/fresh", "PATCH": f"{LINKS}/kept"}[method]
    if method == "PATCH":
        body = {field: value}
    problem = assert_problem(
        client.open(url, method=method, json=body, auth=alice), 422, field=field
    )
    assert problem["errors"][field]
    assert row_counts() == before
    assert client.get(f"{LINKS}/kept", auth=alice).get_json()["utm_source"] == "kept"


def test_every_invalid_field_is_named_at_once(client, alice):
    body = {
        "target": "https://example.com/",
        "forward_query": "no",
        **{name: "" for name in UTM},
    }
    problem = assert_problem(client.post(LINKS, json=body, auth=alice), 422)
    assert set(problem["errors"]) == {"forward_query", *UTM}


# -- the redirect ----------------------------------------------------------------------------
def test_without_forward_query_the_visitors_query_is_not_passed_on(client, alice):
    create(client, alice, "plain")
    assert location(client, "/plain?a=2&b=3") == "https://example.com/p?a=1"


def test_forwarding_merges_the_visitors_query(client, alice):
    create(client, alice, "fw", "https://example.com/p?a=1&b=x%20y#frag", forward_query=True)
    got = location(client, "/fw?a=2&c=%20s&c=+t&c=&d&b=9")
    assert got == "https://example.com/p?a=1&b=x%20y&c=%20s&c=+t&c=&d#frag"
    assert location(client, "/fw") == "https://example.com/p?a=1&b=x%20y#frag"


def test_forwarding_non_ascii_query_bytes(client, alice):
    create(client, alice, "fw", forward_query=True)
    # The query as a WSGI server hands it on: bytes as sent, latin-1 decoded.
    raw = "q=café".encode().decode("latin-1")
    got = location(client, "/fw", environ_overrides={"QUERY_STRING": raw})
    assert got == "https://example.com/p?a=1&q=caf%C3%A9"


def test_utm_fields_on_the_redirect(client, alice):
    create(
        client,
        alice,
        "tagged",
        "https://example.com/p?utm_source=own",
        utm_source="ignored",
        utm_medium="e mail",
        utm_campaign="winter/2026",
        forward_query=True,
    )
    expected = "https://example.com/p?utm_source=own&utm_medium=e%20mail&utm_campaign=winter%2F2026"
    assert location(client, "/tagged") == expected
    # The link's own parameters (UTM fields included) win over the visitor's.
    got = location(client, "/tagged?utm_medium=spoof&utm_term=t&x=1")
    assert got == expected + "&utm_term=t&x=1"


def test_head_forwards_too_and_records_nothing(client, alice):
    create(client, alice, "fw", forward_query=True, utm_source="s")
    response = client.head("/fw?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/p?a=1&utm_source=s&x=1"
    assert visit_count(client, alice, "fw") == 0
    location(client, "/fw?x=1")
    assert visit_count(client, alice, "fw") == 1


def test_only_a_query_to_forward_leaves_the_fast_path(app, client, alice):
    """UTM-only links and forwarding links without a query are answered before Flask."""
    create(client, alice, "utm", utm_source="s")
    create(client, alice, "fw", forward_query=True)
    view = app.view_functions["redirects.follow"]
    calls = []

    def counting(slug):
        calls.append(slug)
        return view(slug)

    app.view_functions["redirects.follow"] = counting
    assert location(client, "/utm?x=1") == "https://example.com/p?a=1&utm_source=s"
    assert location(client, "/fw") == "https://example.com/p?a=1"
    assert calls == []
    assert location(client, "/fw?x=1") == "https://example.com/p?a=1&x=1"
    assert calls == ["fw"]


def test_a_change_shows_on_the_next_redirect(client, alice):
    create(client, alice, "fw")
    assert location(client, "/fw?x=1") == "https://example.com/p?a=1"
    client.patch(f"{LINKS}/fw", json={"forward_query": True, "utm_term": "t"}, auth=alice)
    assert location(client, "/fw?x=1") == "https://example.com/p?a=1&utm_term=t&x=1"
