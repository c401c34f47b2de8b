"""A/B splits (issue 9): the ``variants`` field and its 422s, the weighted chooser (10,000
simulated visitors with a seeded generator), stickiness through the cookie, rules before
variants, visits and stats per variant, and a live gunicorn server splitting real requests."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter

import pytest
import requests
from support import assert_problem

from shortener.services.rules import (
    VARIANT_COOKIE,
    VARIANT_COOKIE_MAX_AGE,
    Visitor,
    compile_routing,
    decide,
)

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/landing"
A, B, C = "https://a.example/", "https://b.example/", "https://c.example/"
SPLIT = [{"target": A, "weight": 50}, {"target": B, "weight": 30}, {"target": C, "weight": 20}]


# -- the chooser ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [(50, 30, 20), (1, 99), (10,) * 10, (34, 33, 33)])
def test_ten_thousand_visitors_split_within_two_points_of_the_weights(weights):
    routing = compile_routing(
        None, [{"target": f"https://{n}.example/", "weight": w} for n, w in enumerate(weights)]
    )
    rng = random.Random(20261130)
    visitors = 10_000
    counts = Counter(routing.choose_variant(rng) for _ in range(visitors))
    for index, weight in enumerate(weights):
        assert abs(counts[index] / visitors * 100 - weight) <= 2, (index, counts)


def test_a_kept_variant_is_reused_and_a_stale_cookie_is_ignored():
    routing = compile_routing(None, SPLIT)
    first = decide(routing, TARGET, Visitor(), None)
    assert first.variant is not None and first.set_cookie is not None
    again = decide(routing, TARGET, Visitor(), first.set_cookie)
    assert (again.target, again.variant, again.set_cookie) == (first.target, first.variant, None)
    # Cookies of other variants (the split changed), or not ours: a new draw.
    changed = compile_routing(None, [{"target": A, "weight": 60}, {"target": B, "weight": 40}])
    for cookie in (first.set_cookie, "9." + routing.fingerprint, "x", "", "-1.abc"):
        assert changed.kept_variant(cookie) is None
        assert decide(changed, TARGET, Visitor(), cookie).set_cookie is not None


def test_rules_are_checked_before_variants():
    routing = compile_routing(
        [{"conditions": [{"type": "query", "name": "vip", "value": None}], "target": C}],
        [{"target": A, "weight": 50}, {"target": B, "weight": 50}],
    )
    decision = decide(routing, TARGET, Visitor(query_string="vip"), None)
    assert (decision.target, decision.rule, decision.variant, decision.set_cookie) == (
        C, 0, None, None,
    )  # fmt: skip


# -- the field over HTTP ---------------------------------------------------------------


def create(client, auth, slug: str, **fields) -> dict:
    response = client.post(LINKS, json={"target": TARGET, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_variants_are_stored_shown_and_removed(app, client, alice):
    assert create(client, alice, "ab", variants=SPLIT)["variants"] == SPLIT
    assert client.get(f"{LINKS}/ab", auth=alice).get_json()["variants"] == SPLIT
    assert app.extensions["shortener"].links.resolve("ab").routing is not None
    response = client.patch(f"{LINKS}/ab", json={"variants": []}, auth=alice)
    assert response.get_json()["variants"] == []
    assert app.extensions["shortener"].links.resolve("ab").routing is None
    assert create(client, alice, "none", variants=None)["variants"] == []


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ("half", "variants"),
        ([{"target": A, "weight": 100}], "variants"),  # one is no split
        ([{"target": A, "weight": 10}] * 11, "variants"),
        ([{"target": A, "weight": 50}, {"target": B, "weight": 49}], "variants"),
        ([{"target": A, "weight": 60}, {"target": B, "weight": 60}], "variants"),
        ([{"target": A, "weight": 0}, {"target": B, "weight": 100}], "variants.0.weight"),
        ([{"target": A, "weight": 101}, {"target": B, "weight": 1}], "variants.0.weight"),
        ([{"target": A, "weight": 50.0}, {"target": B, "weight": 50}], "variants.0.weight"),
        ([{"target": A, "weight": "50"}, {"target": B, "weight": 50}], "variants.0.weight"),
        ([{"target": A, "weight": 50}, {"weight": 50}], "variants.1.target"),
        ([{"target": A, "weight": 50}, {"target": "javascript:x", "weight": 50}],
         "variants.1.target"),
        ([{"target": A, "weight": 50}, {"target": B}], "variants.1.weight"),
        ([{"target": A, "weight": 50, "name": "x"}, {"target": B, "weight": 50}],
         "variants.0.name"),
    ],
)  # fmt: skip
def test_invalid_variants_are_422_naming_the_field_and_store_nothing(
    client, alice, row_counts, variants, field
):
    before = row_counts()
    response = client.post(LINKS, json={"target": TARGET, "variants": variants}, auth=alice)
    assert_problem(response, 422, field=field)
    assert row_counts() == before


def test_a_patch_to_a_bad_split_changes_nothing(client, alice):
    create(client, alice, "ab", variants=SPLIT)
    bad = client.patch(f"{LINKS}/ab", json={"variants": SPLIT[:2]}, auth=alice)  # sums to 80
    assert_problem(bad, 422, field="variants")
    assert client.get(f"{LINKS}/ab", auth=alice).get_json()["variants"] == SPLIT


def test_visitors_are_split_and_keep_their_variant(app, client, alice):
    create(client, alice, "ab", variants=SPLIT)
    seen = Counter()
    for _ in range(300):  # each a new visitor: a client without cookies
        visitor = app.test_client()
        response = visitor.get("/ab")
        assert response.status_code == 302
        assert response.headers["Cache-Control"] == "no-store"
        location = response.headers["Location"]
        seen[location] += 1
        cookie = visitor.get_cookie(VARIANT_COOKIE, path="/ab")
        assert cookie is not None and cookie.path == "/ab"
        for _ in range(3):  # the same visitor again: the same variant, no new cookie
            again = visitor.get("/ab")
            assert again.headers["Location"] == location
            assert "Set-Cookie" not in again.headers
    assert set(seen) == {A, B, C}
    # 300 draws: each share within 10 points of its weight (about 3.5 standard deviations)
    for target, weight in ((A, 50), (B, 30), (C, 20)):
        assert abs(seen[target] / 300 * 100 - weight) <= 10, seen


def test_the_cookie_is_scoped_to_the_link_and_secure_over_https(app, client, alice):
    create(client, alice, "ab", variants=SPLIT)
    header = client.get("/ab").headers["Set-Cookie"]
    parts = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"path", "httponly", "samesite", "max-age", "expires"} <= parts
    assert "Path=/ab" in header and "SameSite=Lax" in header and "Secure" not in header
    assert f"Max-Age={VARIANT_COOKIE_MAX_AGE}" in header  # 30 days
    secure = app.test_client().get("/ab", base_url="https://localhost").headers["Set-Cookie"]
    assert "Secure" in secure


def test_visits_and_stats_per_variant(app, client, alice):
    create(client, alice, "ab", variants=[{"target": A, "weight": 50},
                                          {"target": B, "weight": 50}])  # fmt: skip
    sent = Counter()
    for _ in range(40):
        sent[app.test_client().get("/ab").headers["Location"]] += 1
    app.extensions["shortener"].recorder.flush()
    visits = client.get(f"{LINKS}/ab/visits", query_string={"limit": 100}, auth=alice)
    recorded = Counter(
        (v["target_used"], v["variant"], v["rule"]) for v in visits.get_json()["visits"]
    )
    assert recorded == {(A, 0, None): sent[A], (B, 1, None): sent[B]}
    stats = client.get(f"{LINKS}/ab/stats", auth=alice).get_json()
    assert sorted((v["index"], v["visits"]) for v in stats["variants"]) == sorted(
        (index, sent[target]) for index, target in enumerate((A, B)) if sent[target]
    )
    assert sorted((t["target"], t["visits"]) for t in stats["targets"]) == sorted(sent.items())
    assert stats["rules"] == []


# -- a live server -------------------------------------------------------------------------


def test_a_live_server_splits_visitors_and_keeps_them(shared_live_server):
    server = shared_live_server
    user = server.create_user("ab-split")
    slug = f"ab-{secrets.token_hex(4)}"
    response = requests.post(
        server.url + LINKS,
        json={"target": TARGET, "slug": slug,
              "variants": [{"target": A, "weight": 70}, {"target": B, "weight": 30}]},
        auth=user,
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    visitors = 300
    seen = Counter()
    for _ in range(visitors):  # a new visitor each time: no cookie
        answer = requests.get(server.url + f"/{slug}", allow_redirects=False, timeout=30)
        assert answer.status_code == 302
        assert f"Path=/{slug}" in answer.headers["Set-Cookie"]
        seen[answer.headers["Location"]] += 1
    assert abs(seen[A] / visitors * 100 - 70) <= 10, seen  # ~3.8 standard deviations
    with requests.Session() as session:
        first = session.get(server.url + f"/{slug}", allow_redirects=False, timeout=30)
        kept = {
            session.get(server.url + f"/{slug}", allow_redirects=False, timeout=30).headers[
                "Location"
            ]
            for _ in range(20)
        }
        assert kept == {first.headers["Location"]}
    # The visits are written by the visit writer: polled until all are counted.
    expected = visitors + 21
    deadline = time.monotonic() + 30
    while True:
        stats = requests.get(server.url + f"{LINKS}/{slug}/stats", auth=user, timeout=30).json()
        if stats["total"] >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stats["total"] == expected
    per_variant = {v["index"]: v["visits"] for v in stats["variants"]}
    assert sum(per_variant.values()) == expected and set(per_variant) <= {0, 1}


def test_a_patch_sends_whole_variants(client, alice):
    create(client, alice, "ab", variants=SPLIT)
    partial = [{"target": A}, {"weight": 50}]
    response = client.patch(f"{LINKS}/ab", json={"variants": partial}, auth=alice)
    problem = assert_problem(response, 422, field="variants.0.weight")
    assert "variants.1.target" in problem["errors"]
    assert client.get(f"{LINKS}/ab", auth=alice).get_json()["variants"] == SPLIT


def test_a_routed_visit_crosses_the_hand_over_whole():
    """Workers hand visits to the visit writer as JSON lines (services/visit_handover.py): a
    plain visit's line is as before; a routed one carries its target, rule and variant."""
    from datetime import UTC, datetime

    from shortener.services.visit_handover import decode, encode
    from shortener.services.visits import RawVisit

    moment = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    plain = RawVisit(7, moment, None, "curl/8", "192.0.2.1")
    routed = RawVisit(7, moment, "https://r.example/", "curl/8", "192.0.2.1", None, B, None, 1)
    assert len(json.loads(encode(plain, "u1"))) == 6
    assert decode(encode(plain, "u1")) == RawVisit(7, moment, None, "curl/8", "192.0.2.1", "u1")
    assert decode(encode(routed, "u2")) == RawVisit(
        7, moment, "https://r.example/", "curl/8", "192.0.2.1", "u2", B, None, 1
    )
    for bad in (
        b'["u", 7, 0, null, null, null, 5, null, 1]',  # target_used not a string
        b'["u", 7, 0, null, null, null, "https://x/", "0", null]',  # an index not a number
        b'["u", 7, 0, null, null, null, "https://x/", null]',  # eight fields
    ):
        with pytest.raises((ValueError, TypeError)):
            decode(bad)
