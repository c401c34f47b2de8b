"""Redirect rules (issue 9): conditions as pure functions, the ``rules`` field and its 422s, the
redirect they decide, what visits and stats record of it, the /rules sub-resource, and country
conditions from a GeoIP database the tests build themselves (mmdb-writer)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from conftest import make_app
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.rules import (
    MAX_RULES,
    Visitor,
    accepts_language,
    compile_condition,
    compile_routing,
    decide,
    describe_agent,
    parse_accept_language,
)
from shortener.settings import ConfigurationError

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/landing"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def rule(target: str, *conditions: dict) -> dict:
    return {"conditions": list(conditions), "target": target}


def matches(condition: dict, **visitor) -> bool:
    return compile_condition(condition)(Visitor(**visitor))


# -- conditions, as pure functions -------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "kinds"),
    [
        (IPHONE, {"mobile", "ios"}),
        (IPAD, {"tablet", "ios"}),
        (ANDROID_PHONE, {"mobile", "android"}),
        (ANDROID_TABLET, {"tablet", "android"}),
        (CHROME_WINDOWS, {"desktop"}),
        (FIREFOX_LINUX, {"desktop"}),
        (GOOGLEBOT, set()),
        ("", set()),
    ],
)
def test_device_kinds(user_agent, kinds):
    assert describe_agent(user_agent)[2] == kinds
    for device in ("mobile", "tablet", "desktop", "ios", "android"):
        condition = {"type": "device", "value": device}
        assert matches(condition, user_agent=user_agent) is (device in kinds)


def test_os_and_browser_families_match_case_insensitively():
    assert matches({"type": "os", "value": "iOS"}, user_agent=IPHONE)
    assert matches({"type": "os", "value": "windows"}, user_agent=CHROME_WINDOWS)
    assert not matches({"type": "os", "value": "Linux"}, user_agent=CHROME_WINDOWS)
    assert matches({"type": "browser", "value": "Firefox"}, user_agent=FIREFOX_LINUX)
    assert matches({"type": "browser", "value": "chrome"}, user_agent=CHROME_WINDOWS)
    assert not matches({"type": "browser", "value": "Chrome"}, user_agent=FIREFOX_LINUX)
    assert not matches({"type": "browser", "value": "Chrome"})  # no User-Agent


def test_accept_language_is_parsed_with_its_q_values():
    assert parse_accept_language("de-AT, en;q=0.5, fr;q=0, *;q=0.1, x;q=bad") == (
        ("de-at", 1.0), ("en", 0.5), ("fr", 0.0), ("*", 0.1), ("x", 0.0),
    )  # fmt: skip
    assert parse_accept_language("") == ()


@pytest.mark.parametrize(
    ("header", "wanted", "accepted"),
    [
        ("de-AT,en;q=0.8", "de", True),  # "de" is met by de-AT
        ("de-AT,en;q=0.8", "de-AT", True),
        ("de-at", "DE-AT", True),
        ("de", "de-AT", False),  # an Austrian rule is not met by plain German
        ("en;q=0.9, de;q=0.1", "de", True),  # acceptable, if not preferred
        ("en, de;q=0", "de", False),  # q=0: not acceptable
        ("de-CH;q=0, en", "de", False),
        ("*", "de", False),  # a wildcard names no language
        ("deu", "de", False),  # a prefix of letters is not a subtag
        ("", "de", False),
    ],
)
def test_language_conditions(header, wanted, accepted):
    assert accepts_language(parse_accept_language(header), wanted) is accepted
    assert matches({"type": "language", "value": wanted}, accept_language=header) is accepted


def test_query_conditions_by_value_or_presence():
    present = {"type": "query", "name": "ref", "value": None}
    valued = {"type": "query", "name": "ref", "value": "mail"}
    assert matches(present, query_string="ref=")
    assert matches(present, query_string="a=1&ref=x")
    assert not matches(present, query_string="reff=1")
    assert matches(valued, query_string="ref=web&ref=mail")
    assert matches(valued, query_string="ref=m%61il")  # decoded
    assert not matches(valued, query_string="ref=Mail")
    assert not matches(valued)


def test_ip_conditions_by_network_on_both_versions():
    v4 = {"type": "ip", "value": "203.0.113.0/24"}
    v6 = {"type": "ip", "value": "2001:db8::/32"}
    assert matches(v4, remote_addr="203.0.113.9")
    assert matches(v4, remote_addr="::ffff:203.0.113.9")  # IPv4-mapped
    assert not matches(v4, remote_addr="203.0.114.1")
    assert not matches(v4, remote_addr="2001:db8::1")
    assert matches(v6, remote_addr="2001:db8::1")
    assert not matches(v6, remote_addr="203.0.113.9")
    assert not matches(v4, remote_addr=None)
    assert not matches(v4, remote_addr="not an address")


def test_before_and_after_split_time_at_the_instant():
    moment = "2026-06-01T12:00:00.000Z"
    early = datetime(2026, 6, 1, 11, 59, 59, tzinfo=UTC)
    late = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert matches({"type": "before", "value": moment}, now=early)
    assert not matches({"type": "before", "value": moment}, now=late)
    assert matches({"type": "after", "value": moment}, now=late)
    assert not matches({"type": "after", "value": moment}, now=early)


def test_country_conditions_use_the_lookup():
    condition = {"type": "country", "value": "DE"}
    lookup = {"203.0.113.9": "DE", "198.51.100.1": "FR"}.get
    assert matches(condition, remote_addr="203.0.113.9", country_of=lookup)
    assert not matches(condition, remote_addr="198.51.100.1", country_of=lookup)
    assert not matches(condition, remote_addr="203.0.113.9")  # no database: never


def test_the_first_rule_whose_conditions_all_hold_decides():
    routing = compile_routing(
        [
            rule("https://a.example/", {"type": "device", "value": "ios"},
                 {"type": "language", "value": "de"}),
            rule("https://b.example/", {"type": "device", "value": "mobile"}),
            rule("https://c.example/", {"type": "device", "value": "ios"}),
        ],
        None,
    )  # fmt: skip
    german_iphone = Visitor(user_agent=IPHONE, accept_language="de-DE")
    english_iphone = Visitor(user_agent=IPHONE, accept_language="en")
    desktop = Visitor(user_agent=CHROME_WINDOWS, accept_language="de")
    assert decide(routing, TARGET, german_iphone, None).target == "https://a.example/"
    assert decide(routing, TARGET, german_iphone, None).rule == 0
    assert decide(routing, TARGET, english_iphone, None).rule == 1  # before c, which holds too
    fallback = decide(routing, TARGET, desktop, None)
    assert (fallback.target, fallback.rule, fallback.variant) == (TARGET, None, None)


def test_conditions_are_worked_out_lazily():
    """A query rule that holds does not parse the User-Agent (nor look the country up)."""
    looked_up = []
    routing = compile_routing(
        [
            rule("https://q.example/", {"type": "query", "name": "x", "value": None}),
            rule("https://c.example/", {"type": "country", "value": "DE"}),
        ],
        None,
    )
    visitor = Visitor(query_string="x", user_agent=IPHONE, country_of=looked_up.append)
    assert decide(routing, TARGET, visitor, None).rule == 0
    assert looked_up == [] and "agent" not in visitor._cache


# -- the rules field over HTTP ------------------------------------------------------------


def create(client, auth, slug: str, **fields):
    response = client.post(LINKS, json={"target": TARGET, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def follow(client, slug: str, *, ip: str = "192.0.2.10", query: str = "", **headers):
    return client.get(
        f"/{slug}?{query}" if query else f"/{slug}",
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )


RULES = [
    rule("https://ios.example/", {"type": "device", "value": "ios"}),
    rule("https://de.example/", {"type": "language", "value": "de"}),
    rule("https://promo.example/", {"type": "query", "name": "promo", "value": "spring"}),
    rule("https://office.example/", {"type": "ip", "value": "198.51.100.0/24"}),
    rule("https://firefox.example/", {"type": "browser", "value": "Firefox"},
         {"type": "os", "value": "Linux"}),
    rule("https://future.example/", {"type": "after", "value": "2999-01-01T00:00:00Z"}),
]  # fmt: skip


def test_rules_are_stored_and_shown_as_sent(client, alice):
    body = create(client, alice, "ruled", rules=RULES)
    assert body["rules"][0] == RULES[0]
    assert body["rules"][5]["conditions"][0]["value"] == "2999-01-01T00:00:00.000Z"
    assert len(body["rules"]) == len(RULES)
    assert body["variants"] == []
    assert client.get(f"{LINKS}/ruled", auth=alice).get_json()["rules"] == body["rules"]
    assert create(client, alice, "plain")["rules"] == []


def test_rules_decide_the_redirect(client, alice):
    create(client, alice, "ruled", rules=RULES)
    cases = [
        ({"User-Agent": IPHONE, "Accept-Language": "de"}, {}, "https://ios.example/"),
        ({"User-Agent": CHROME_WINDOWS, "Accept-Language": "de-CH, en;q=0.5"}, {},
         "https://de.example/"),
        ({"User-Agent": CHROME_WINDOWS}, {"query": "promo=spring"}, "https://promo.example/"),
        ({"User-Agent": CHROME_WINDOWS}, {"query": "promo=autumn"}, TARGET),
        ({"User-Agent": CHROME_WINDOWS}, {"ip": "198.51.100.7"}, "https://office.example/"),
        ({"User-Agent": FIREFOX_LINUX}, {}, "https://firefox.example/"),
        ({"User-Agent": CHROME_WINDOWS, "Accept-Language": "en, de;q=0"}, {}, TARGET),
    ]  # fmt: skip
    for headers, where, expected in cases:
        response = follow(client, "ruled", **where, **headers)
        assert response.status_code == 302
        assert response.headers["Location"] == expected, (headers, where)
        assert response.headers["Cache-Control"] == "no-store"  # depends on the visitor
    head = client.head("/ruled", headers={"User-Agent": IPHONE})
    assert head.headers["Location"] == "https://ios.example/"


def test_a_link_without_rules_stays_on_the_fast_path(app, client, alice):
    create(client, alice, "plain", rules=[])
    create(client, alice, "ruled", rules=RULES[:1])
    links = app.extensions["shortener"].links
    assert links.resolve("plain").routing is None
    assert links.resolve("ruled").routing is not None
    response = follow(client, "plain", **{"User-Agent": IPHONE})
    assert response.headers["Location"] == TARGET
    assert response.headers["Cache-Control"] != "no-store"  # cacheable as every plain link


def test_rules_are_changed_by_patch_and_put_and_removed_by_null(app, client, alice):
    create(client, alice, "ruled", rules=RULES[:1])
    response = client.patch(f"{LINKS}/ruled", json={"rules": RULES[1:2]}, auth=alice)
    assert response.status_code == 200
    assert response.get_json()["rules"] == RULES[1:2]
    assert follow(client, "ruled", **{"Accept-Language": "de"}).headers["Location"] == (
        "https://de.example/"
    )
    response = client.put(f"{LINKS}/ruled", json={"target": TARGET}, auth=alice)
    assert response.get_json()["rules"] == []  # PUT replaces every field
    client.patch(f"{LINKS}/ruled", json={"rules": RULES[:1]}, auth=alice)
    response = client.patch(f"{LINKS}/ruled", json={"rules": None}, auth=alice)
    assert response.get_json()["rules"] == []
    assert app.extensions["shortener"].links.resolve("ruled").routing is None


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ("not a list", "rules"),
        ([{"conditions": [], "target": TARGET}], "rules.0.conditions"),
        ([{"conditions": [{"type": "device", "value": "ios"}]}], "rules.0.target"),
        ([rule("ftp://example.com/", {"type": "device", "value": "ios"})], "rules.0.target"),
        ([rule("http://localhost/x", {"type": "device", "value": "ios"})], "rules.0.target"),
        ([rule(TARGET, {"type": "device", "value": "phone"})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "weather", "value": "sunny"})], "rules.0.conditions.0.type"),
        ([rule(TARGET, {"type": "device"})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "os", "value": 7})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "os", "value": "x" * 65})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "browser", "value": " "})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "language", "value": "german!"})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "query", "value": "x"})], "rules.0.conditions.0.name"),
        ([rule(TARGET, {"type": "query", "name": "", "value": "x"})],
         "rules.0.conditions.0.name"),
        ([rule(TARGET, {"type": "query", "name": "a", "value": 3})],
         "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "device", "name": "a", "value": "ios"})],
         "rules.0.conditions.0.name"),
        ([rule(TARGET, {"type": "ip", "value": "10.0.0.1/8"})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "ip", "value": "example.com"})], "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "before", "value": "2026-01-01"})],
         "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "after", "value": "2026-01-01T00:00:00"})],
         "rules.0.conditions.0.value"),
        ([rule(TARGET, {"type": "device", "value": "ios", "extra": 1})],
         "rules.0.conditions.0.extra"),
        ([rule(TARGET, {"type": "device", "value": "ios"})] * (MAX_RULES + 1), "rules"),
        ([rule(TARGET, {"type": "device", "value": "ios"}),
          rule(TARGET, {"type": "device", "value": "ios"},
               {"type": "country", "value": "DE"})], "rules.1.conditions.1.value"),
    ],
)  # fmt: skip
def test_invalid_rules_are_422_naming_the_field_and_store_nothing(
    client, alice, row_counts, rules, field
):
    before = row_counts()
    response = client.post(LINKS, json={"target": TARGET, "slug": "bad", "rules": rules},
                           auth=alice)  # fmt: skip
    assert_problem(response, 422, field=field)
    assert row_counts() == before


def test_country_rules_without_a_database_say_why(client, alice):
    response = client.post(
        LINKS,
        json={"target": TARGET, "rules": [rule(TARGET, {"type": "country", "value": "DE"})]},
        auth=alice,
    )
    problem = assert_problem(response, 422, field="rules.0.conditions.0.value")
    assert "SHORTENER_GEOIP_DB" in problem["errors"]["rules.0.conditions.0.value"][0]


# -- visits and stats ---------------------------------------------------------------------


def test_visits_record_the_target_used_and_the_rule(app, client, alice):
    create(client, alice, "ruled", rules=RULES)
    create(client, alice, "plain")
    follow(client, "ruled", **{"User-Agent": IPHONE})
    follow(client, "ruled", **{"User-Agent": CHROME_WINDOWS, "Accept-Language": "de"})
    follow(client, "ruled", **{"User-Agent": CHROME_WINDOWS, "Accept-Language": "de"})
    follow(client, "ruled", **{"User-Agent": CHROME_WINDOWS})
    follow(client, "plain", **{"User-Agent": IPHONE})
    app.extensions["shortener"].recorder.flush()
    visits = client.get(f"{LINKS}/ruled/visits", auth=alice).get_json()["visits"]
    assert [(v["target_used"], v["rule"], v["variant"], v["country"]) for v in visits] == [
        (TARGET, None, None, None),
        ("https://de.example/", 1, None, None),
        ("https://de.example/", 1, None, None),
        ("https://ios.example/", 0, None, None),
    ]
    [plain] = client.get(f"{LINKS}/plain/visits", auth=alice).get_json()["visits"]
    assert (plain["target_used"], plain["rule"], plain["variant"]) == (TARGET, None, None)
    stats = client.get(f"{LINKS}/ruled/stats", auth=alice).get_json()
    assert sorted((t["target"], t["visits"]) for t in stats["targets"]) == [
        ("https://de.example/", 2), (TARGET, 1), ("https://ios.example/", 1),
    ]  # fmt: skip
    assert stats["targets"][0] == {"target": "https://de.example/", "visits": 2}
    assert sorted((r["index"], r["visits"]) for r in stats["rules"]) == [(0, 1), (1, 2)]
    assert stats["variants"] == [] and stats["countries"] == []


# -- the /rules sub-resource --------------------------------------------------------------


def test_rules_sub_resource_reads_and_replaces_the_list(client, alice, bob):
    link = client.post(LINKS, json={"target": TARGET, "slug": "sub"}, auth=alice)
    response = client.get(f"{LINKS}/sub/rules", auth=alice)
    assert response.status_code == 200
    assert response.get_json() == {
        "uri": f"http://localhost{LINKS}/sub/rules",
        "link": f"http://localhost{LINKS}/sub",
        "rules": [],
    }
    assert response.headers["ETag"] == link.headers["ETag"]  # the link's tag
    response = client.put(f"{LINKS}/sub/rules", json={"rules": RULES[:2]}, auth=alice,
                          headers={"If-Match": link.headers["ETag"]})  # fmt: skip
    assert response.status_code == 200
    assert response.get_json()["rules"] == RULES[:2]
    changed = client.get(f"{LINKS}/sub", auth=alice)
    assert changed.get_json()["rules"] == RULES[:2]
    assert changed.headers["ETag"] == response.headers["ETag"] != link.headers["ETag"]
    assert follow(client, "sub", **{"User-Agent": IPHONE}).headers["Location"] == (
        "https://ios.example/"
    )
    # A stale tag: 412, nothing changed.
    stale = client.put(f"{LINKS}/sub/rules", json={"rules": []}, auth=alice,
                       headers={"If-Match": link.headers["ETag"]})  # fmt: skip
    assert_problem(stale, 412)
    assert client.get(f"{LINKS}/sub/rules", auth=alice).get_json()["rules"] == RULES[:2]
    # Invalid lists: 422 per field; another user's link: 404.
    bad = client.put(f"{LINKS}/sub/rules",
                     json={"rules": [rule(TARGET, {"type": "device", "value": "tv"})]},
                     auth=alice)  # fmt: skip
    assert_problem(bad, 422, field="rules.0.conditions.0.value")
    assert_problem(client.put(f"{LINKS}/sub/rules", json={}, auth=alice), 422, field="rules")
    assert_problem(client.get(f"{LINKS}/sub/rules", auth=bob), 404)
    assert_problem(client.put(f"{LINKS}/sub/rules", json={"rules": []}, auth=bob), 404)
    assert_problem(client.get(f"{LINKS}/nope/rules", auth=alice), 404)
    response = client.put(f"{LINKS}/sub/rules", json={"rules": []}, auth=alice)
    assert response.get_json()["rules"] == []


# -- country, from a GeoIP database built here -----------------------------------------------


@pytest.fixture(scope="module")
def geoip_db(tmp_path_factory) -> str:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country",
                        languages=["en"], description="countries for tests")  # fmt: skip
    writer.insert_network(IPSet(["203.0.113.0/24"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["198.51.100.0/24", "2001:db8::/32"]),
                          {"country": {"iso_code": "FR"}})  # fmt: skip
    path = tmp_path_factory.mktemp("geoip") / "countries.mmdb"
    writer.to_db_file(str(path))
    return str(path)


@pytest.fixture
def geo_app(database_url, geoip_db):
    app = make_app(database_url, GEOIP_DB=geoip_db)
    yield app
    app.extensions["shortener"].close()


def test_country_rules_and_visits_with_a_geoip_database(geo_app):
    client = geo_app.test_client()
    geo_app.extensions["shortener"].users.create(
        OPERATOR,
        username="gina",
        password="a good long password",
        is_admin=False,
    )
    gina = ("gina", "a good long password")
    rules = [rule("https://de.example/", {"type": "country", "value": "de"})]
    body = create(client, gina, "geo", rules=rules)
    assert body["rules"][0]["conditions"][0]["value"] == "DE"  # stored upper case
    assert follow(client, "geo", ip="203.0.113.50").headers["Location"] == "https://de.example/"
    assert follow(client, "geo", ip="198.51.100.50").headers["Location"] == TARGET
    assert follow(client, "geo", ip="2001:db8::5").headers["Location"] == TARGET
    assert follow(client, "geo", ip="192.0.2.1").headers["Location"] == TARGET  # not listed
    geo_app.extensions["shortener"].recorder.flush()
    visits = client.get(f"{LINKS}/geo/visits", auth=gina).get_json()["visits"]
    assert [v["country"] for v in visits] == [None, "FR", "FR", "DE"]
    stats = client.get(f"{LINKS}/geo/stats", auth=gina).get_json()
    assert stats["countries"] == [{"country": "FR", "visits": 2}, {"country": "DE", "visits": 1}]
    country = rule(TARGET, {"type": "country", "value": "DEU"})
    invalid = client.post(LINKS, auth=gina, json={"target": TARGET, "rules": [country]})
    assert_problem(invalid, 422, field="rules.0.conditions.0.value")


def test_an_unusable_geoip_database_is_refused_at_start_up(tmp_path, database_url):
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    for path in (str(junk), str(tmp_path / "missing.mmdb")):
        with pytest.raises(ConfigurationError, match="SHORTENER_GEOIP_DB"):
            make_app(database_url, GEOIP_DB=path)


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([{"conditions": [{"type": "device"}]}], "rules.0.target"),
        ([{"target": "https://x.example/"}], "rules.0.conditions"),
        ([{"conditions": [{"value": "ios"}], "target": TARGET}], "rules.0.conditions.0.type"),
    ],
)
def test_a_patch_sends_whole_rules(app, client, alice, rules, field):
    """PATCH loads the link partially, never a rule: a rule missing a part is a 422."""
    create(client, alice, "ruled", rules=RULES[:1])
    assert_problem(client.patch(f"{LINKS}/ruled", json={"rules": rules}, auth=alice), 422,
                   field=field)  # fmt: skip
    assert client.get(f"{LINKS}/ruled", auth=alice).get_json()["rules"] == RULES[:1]
    assert follow(client, "ruled", **{"User-Agent": IPHONE}).status_code == 302


def test_an_expired_link_sends_to_expired_target_without_rules(app, client, alice):
    create(client, alice, "over", rules=RULES[:1], valid_until="2020-01-01T00:00:00Z",
           expired_target="https://example.org/sorry")  # fmt: skip
    response = follow(client, "over", **{"User-Agent": IPHONE})
    assert response.headers["Location"] == "https://example.org/sorry"
    app.extensions["shortener"].recorder.flush()
    [visit] = client.get(f"{LINKS}/over/visits", auth=alice).get_json()["visits"]
    assert (visit["target_used"], visit["rule"]) == ("https://example.org/sorry", None)


def test_a_city_database_gives_countries_too(tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    from shortener.services.geoip import country_lookup

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(
        IPSet(["203.0.113.0/24"]),
        {"city": {"names": {"en": "Wien"}}, "country": {"iso_code": "AT"}},
    )
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    country_of = country_lookup(str(tmp_path / "city.mmdb"))
    assert country_of("203.0.113.7") == "AT"
    assert country_of("192.0.2.1") is None


def test_the_document_declares_rules_variants_and_the_sub_resource(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    path = document["paths"]["/api/v1.0/links/{slug}/rules"]
    assert {path["get"]["operationId"], path["put"]["operationId"]} == {
        "getLinkRules", "replaceLinkRules",
    }  # fmt: skip
    text = str(document["components"]["schemas"])
    for name in ("rules", "variants", "conditions", "weight", "target_used", "countries"):
        assert f"'{name}'" in text, name


def test_a_live_server_records_countries_with_a_geoip_database(live_database_url, tmp_path):
    """shortener serve with SHORTENER_GEOIP_DB: the workers route by country and the visit
    writer (a process of its own) records each visit's country."""
    import requests
    from live import serving
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["127.0.0.0/8"]), {"country": {"iso_code": "DE"}})
    database = tmp_path / "loopback.mmdb"
    writer.to_db_file(str(database))
    settings = {"SHORTENER_GEOIP_DB": str(database)}
    with serving(live_database_url, tmp_path / "server.log", settings) as server:
        german = rule("https://de.example/", {"type": "country", "value": "DE"})
        body = {"target": TARGET, "slug": "geo-live", "rules": [german]}
        created = requests.post(server.url + LINKS, json=body, auth=server.admin, timeout=30)
        assert created.status_code == 201, created.text
        answer = requests.get(server.url + "/geo-live", allow_redirects=False, timeout=30)
        assert answer.headers["Location"] == "https://de.example/"
        deadline = time.monotonic() + 30
        while True:
            visits = requests.get(server.url + f"{LINKS}/geo-live/visits", auth=server.admin,
                                  timeout=30).json()["visits"]  # fmt: skip
            if visits or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [(v["country"], v["rule"], v["target_used"]) for v in visits] == [
            ("DE", 0, "https://de.example/")
        ]
