"""Visits recorded by GET /<slug>, and GET /api/v1.0/links/<slug>/visits (issue 3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_app
from sqlalchemy import text
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.visitors import referrer_host
from shortener.storage import visit_queries
from shortener.storage.visit_queries import NewVisit

BASE = "http://localhost"
LINKS = "/api/v1.0/links"
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
VISIT_FIELDS = {"visited_at", "referrer", "user_agent", "browser", "os", "ip", "is_bot", "link"}
# Where the visitor was sent and why, and from where (tests/test_link_rules.py).
VISIT_FIELDS |= {"target_used", "rule", "variant", "country"}

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
BOTS = {
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "slack": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "twitter": "Twitterbot/1.0",
    "uptimerobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
}


@pytest.fixture
def app(database_url):
    """Visits land only when a test flushes: the background writer would wait a minute."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    yield app
    app.extensions["shortener"].close()


def create(client, auth, slug: str, target: str = "https://example.com/") -> dict:
    response = client.post(LINKS, json={"target": target, "slug": slug}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def follow(client, slug: str, *, ip: str = "203.0.113.77", **headers) -> None:
    response = client.get(f"/{slug}", headers=headers, environ_base={"REMOTE_ADDR": ip})
    assert response.status_code == 302, response.get_data(as_text=True)


def flush(app) -> int:
    return app.extensions["shortener"].recorder.flush()


def visits_of(client, auth, slug: str, **query) -> list[dict]:
    """The first page of a link's visits (newest first)."""
    response = client.get(f"{LINKS}/{slug}/visits", query_string=query, auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["visits"]


def only_visit(app, client, auth, slug: str) -> dict:
    flush(app)
    [visit] = visits_of(client, auth, slug)
    return visit


def link_id(app, slug: str) -> int:
    return app.extensions["shortener"].links.get(OPERATOR, slug).id


def rows(app, table: str, link: int | None = None) -> int:
    """Rows of ``table`` (of one link when given), counted in SQL, not through the API."""
    query = f"SELECT count(*) FROM {table}" + ("" if link is None else " WHERE link_id = :link")
    with app.extensions["shortener"].database.engine.connect() as connection:
        return connection.execute(text(query), {"link": link}).scalar_one()


def record_at(app, slug: str, *moments: datetime, is_bot: bool = False, referrer=None) -> None:
    """Visits at chosen times, through the recorder's own write path."""
    link = link_id(app, slug)
    batch = [
        NewVisit(
            link_id=link,
            visited_at=moment,
            referrer=referrer,
            user_agent=None,
            browser=None,
            os=None,
            is_bot=is_bot,
            ip=None,
            referrer_host=referrer_host(referrer),
        )
        for moment in moments
    ]
    with app.extensions["shortener"].database.write() as connection:
        visit_queries.record(connection, batch)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# -- what a redirect records --------------------------------------------------------------


def test_redirect_records_every_field_of_a_visit(app, client, alice):
    create(client, alice, "go")
    before = datetime.now(UTC).replace(microsecond=0)
    follow(client, "go", **{"User-Agent": FIREFOX_LINUX, "Referer": "https://news.example/a?b=c"})
    after = datetime.now(UTC)
    visit = only_visit(app, client, alice, "go")
    assert set(visit) == VISIT_FIELDS
    assert RFC3339_UTC.match(visit["visited_at"]), visit["visited_at"]
    assert before <= datetime.fromisoformat(visit["visited_at"]) <= after
    assert visit["referrer"] == "https://news.example/a?b=c"
    assert visit["user_agent"] == FIREFOX_LINUX
    assert (visit["browser"], visit["os"], visit["is_bot"]) == ("Firefox", "Linux", False)
    assert visit["ip"] == "203.0.113.0"
    assert visit["link"] == f"{BASE}{LINKS}/go"


@pytest.mark.parametrize(
    ("user_agent", "browser", "os"),
    [
        (FIREFOX_LINUX, "Firefox", "Linux"),
        (CHROME_WINDOWS, "Chrome", "Windows"),
        (SAFARI_IOS, "Mobile Safari", "iOS"),
    ],
)
def test_browser_and_os_families_come_from_the_user_agent(
    app, client, alice, user_agent, browser, os
):
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": user_agent})
    visit = only_visit(app, client, alice, "go")
    assert (visit["browser"], visit["os"], visit["is_bot"]) == (browser, os, False)


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_crawlers_previewers_and_monitors_are_bots(app, client, alice, user_agent):
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": user_agent})
    assert only_visit(app, client, alice, "go")["is_bot"] is True


def test_curl_is_not_a_bot(app, client, alice):
    """Someone typing curl is a person; only crawlers, previewers and monitors are bots."""
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": "curl/8.5.0"})
    assert only_visit(app, client, alice, "go")["is_bot"] is False


@pytest.mark.parametrize(
    ("peer", "anonymized"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
    ],
)
def test_ip_is_anonymized_by_default(app, client, alice, peer, anonymized):
    create(client, alice, "go")
    follow(client, "go", ip=peer)
    assert only_visit(app, client, alice, "go")["ip"] == anonymized


@pytest.mark.parametrize(
    ("peer", "stored"),
    [
        ("203.0.113.77", "203.0.113.77"),
        ("2001:db8:1234:5678::1", "2001:db8:1234:5678::1"),
        ("::ffff:203.0.113.77", "203.0.113.77"),
    ],
)
def test_anonymize_ips_false_keeps_full_addresses(alice_app, peer, stored):
    app, client, alice = alice_app(ANONYMIZE_IPS=False)
    create(client, alice, "go")
    follow(client, "go", ip=peer)
    assert only_visit(app, client, alice, "go")["ip"] == stored


@pytest.fixture
def alice_app(database_url):
    """``alice_app(**config)`` -> (app, client, alice) for an app with settings overridden."""
    apps = []

    def build(**config):
        app = make_app(database_url, VISIT_FLUSH_INTERVAL=60, **config)
        apps.append(app)
        app.extensions["shortener"].users.create(
            OPERATOR, username="alice", password="correct horse battery", is_admin=False
        )
        return app, app.test_client(), ("alice", "correct horse battery")

    yield build
    for app in apps:
        app.extensions["shortener"].close()


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(app, client, alice):
    """Anyone can send X-Forwarded-For; by default the socket peer is the visitor."""
    create(client, alice, "go")
    follow(client, "go", ip="198.51.100.9", **{"X-Forwarded-For": "203.0.113.77"})
    assert only_visit(app, client, alice, "go")["ip"] == "198.51.100.0"


def test_forwarded_for_is_used_behind_a_trusted_proxy(alice_app):
    app, client, alice = alice_app(TRUSTED_PROXIES=1)
    create(client, alice, "go")
    follow(client, "go", ip="127.0.0.1", **{"X-Forwarded-For": "203.0.113.77"})
    assert only_visit(app, client, alice, "go")["ip"] == "203.0.113.0"


def test_long_referrer_and_user_agent_are_cut(app, client, alice):
    create(client, alice, "go")
    referrer = "https://example.org/" + "r" * 2000
    user_agent = FIREFOX_LINUX + " " + "u" * 1000
    follow(client, "go", **{"Referer": referrer, "User-Agent": user_agent})
    visit = only_visit(app, client, alice, "go")
    assert visit["referrer"] == referrer[:1024]
    assert visit["user_agent"] == user_agent[:512]
    assert visit["browser"] == "Firefox"


def test_missing_headers_give_nulls(app, client, alice):
    create(client, alice, "go")
    client.environ_base.pop("HTTP_USER_AGENT", None)  # the test client sends one by default
    follow(client, "go")
    visit = only_visit(app, client, alice, "go")
    assert visit["referrer"] is None
    assert visit["user_agent"] is None
    assert visit["browser"] is None and visit["os"] is None
    assert visit["is_bot"] is False


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Mozilla\x00/5.0", "Mozilla/5.0"),  # PostgreSQL refuses NUL in text
        ("\x00", None),
        ("\xff\xfe\x01\x7f\x1b[31m", "\xff\xfe\x01\x7f\x1b[31m"),  # raw bytes, as WSGI decodes
        ("caf\u00c3\u00a9 \u20ac", "caf\u00c3\u00a9 \u20ac"),
        ("\ud800lone surrogate", "?lone surrogate"),  # no driver can encode a surrogate
    ],
    ids=["nul", "only-nul", "control-bytes", "non-ascii", "surrogate"],
)
def test_odd_header_bytes_never_break_the_write(app, client, alice, sent, stored):
    """One unstorable visit would fail its whole batch on every retry: it must be cleaned."""
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": sent, "Referer": sent})
    follow(client, "go", **{"User-Agent": FIREFOX_LINUX})
    assert flush(app) == 2
    odd = visits_of(client, alice, "go")[1]
    assert odd["user_agent"] == stored
    assert odd["referrer"] == stored


def test_head_records_nothing(app, client, alice):
    create(client, alice, "go")
    assert client.head("/go").status_code == 302
    assert flush(app) == 0
    assert rows(app, "visits") == 0
    assert client.get(f"{LINKS}/go", auth=alice).get_json()["visit_count"] == 0


def test_unknown_slug_records_nothing(app, client, alice):
    create(client, alice, "go")
    assert_problem(client.get("/nosuch"), 404)
    assert flush(app) == 0
    assert rows(app, "visits") == 0


def test_visit_count_equals_visit_rows_once_flushed(app, client, alice):
    create(client, alice, "one")
    create(client, alice, "two")
    for slug in ("one", "two", "one", "one", "two"):
        follow(client, slug)
    assert flush(app) == 5
    for slug, expected in (("one", 3), ("two", 2)):
        assert client.get(f"{LINKS}/{slug}", auth=alice).get_json()["visit_count"] == expected
        assert rows(app, "visits", link_id(app, slug)) == expected


def test_a_visit_delivered_twice_is_stored_and_counted_once(app, client, alice):
    """Every visit carries a uid: a redelivered batch, or a uid twice in one batch, inserts
    and counts only the visits not stored yet (visit_count and every rollup alike)."""
    target = create(client, alice, "twice")["target"]  # what a plain visit went to
    link = link_id(app, "twice")

    def visit(uid: str) -> NewVisit:
        return NewVisit(link_id=link, visited_at=at(2, 10), referrer="https://r.example/x",
                        user_agent=FIREFOX_LINUX, browser="Firefox", os="Linux", is_bot=False,
                        ip=None, referrer_host="r.example", uid=uid)  # fmt: skip

    database = app.extensions["shortener"].database
    with database.write() as connection:
        assert visit_queries.record(connection, [visit("a"), visit("b"), visit("a")]) == 2
    with database.write() as connection:
        assert visit_queries.record(connection, [visit("b"), visit("c")]) == 1
    with database.write() as connection:
        assert visit_queries.record(connection, [visit("a"), visit("c")]) == 0
    assert rows(app, "visits", link) == 3
    assert client.get(f"{LINKS}/twice", auth=alice).get_json()["visit_count"] == 3
    with database.engine.connect() as connection:
        rollups = connection.execute(
            text("SELECT dimension, value, visits FROM visit_rollups WHERE link_id = :link"),
            {"link": link},
        ).all()
    # The total is kept under the URL the visits were sent to (storage/visit_queries.py).
    assert sorted(map(tuple, rollups)) == [
        ("browser", "Firefox", 3), ("os", "Linux", 3), ("referrer", "r.example", 3),
        ("total", target, 3),
    ]  # fmt: skip


def test_deleting_a_link_deletes_its_visits_and_rollups(app, client, alice):
    create(client, alice, "gone")
    create(client, alice, "kept")
    for slug in ("gone", "kept", "gone"):
        follow(client, slug, **{"User-Agent": FIREFOX_LINUX, "Referer": "https://r.example/"})
    flush(app)
    gone, kept = link_id(app, "gone"), link_id(app, "kept")
    assert rows(app, "visits", gone) == 2 and rows(app, "visit_rollups", gone) > 0
    assert client.delete(f"{LINKS}/gone", auth=alice).status_code == 204
    assert rows(app, "visits", gone) == 0
    assert rows(app, "visit_rollups", gone) == 0
    assert rows(app, "visits", kept) == 1 and rows(app, "visit_rollups", kept) > 0


def test_purging_a_user_deletes_their_links_visits_and_rollups(app, client, alice, bob, admin):
    create(client, bob, "his")
    create(client, alice, "hers")
    for slug in ("his", "hers", "his"):
        follow(client, slug)
    flush(app)
    response = client.delete("/api/v1.0/users/bob", query_string={"purge": "true"}, auth=admin)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert rows(app, "visits") == 1
    assert rows(app, "visit_rollups") == rows(app, "visit_rollups", link_id(app, "hers"))


def test_buffered_visit_of_a_deleted_link_is_dropped_and_the_batch_still_lands(app, client, alice):
    create(client, alice, "gone")
    create(client, alice, "kept")
    follow(client, "gone")
    follow(client, "kept")
    follow(client, "gone")
    assert client.delete(f"{LINKS}/gone", auth=alice).status_code == 204
    assert flush(app) == 1
    assert app.extensions["shortener"].recorder.pending == 0
    assert rows(app, "visits") == 1
    assert client.get(f"{LINKS}/kept", auth=alice).get_json()["visit_count"] == 1


@pytest.mark.parametrize("new_slug", ["new", "old"])
def test_a_buffered_visit_of_a_deleted_link_never_lands_on_the_next_link(
    app, client, alice, bob, new_slug
):
    """SQLite hands a deleted newest link's id to the next link created: a visit to alice's
    deleted link, still in the buffer, must not be counted (with its visitor's address) on
    bob's new link."""
    create(client, alice, "old")
    follow(client, "old")
    assert client.delete(f"{LINKS}/old", auth=alice).status_code == 204
    create(client, bob, new_slug, "https://example.org/")
    assert flush(app) == 0
    assert rows(app, "visits") == 0 and rows(app, "visit_rollups") == 0
    assert client.get(f"{LINKS}/{new_slug}", auth=bob).get_json()["visit_count"] == 0
    assert visits_of(client, bob, new_slug) == []


def test_a_recreated_slug_does_not_inherit_visits(app, client, alice):
    """A new link under an old slug is a new link: its count starts at zero."""
    create(client, alice, "again")
    follow(client, "again")
    flush(app)
    assert client.delete(f"{LINKS}/again", auth=alice).status_code == 204
    create(client, alice, "again", "https://example.org/new")
    assert client.get(f"{LINKS}/again", auth=alice).get_json()["visit_count"] == 0
    assert visits_of(client, alice, "again") == []


# -- GET /api/v1.0/links/<slug>/visits ----------------------------------------------------


def test_visits_are_listed_newest_first_in_the_envelope(app, client, alice):
    create(client, alice, "go")
    for n in range(3):
        follow(client, "go", **{"Referer": f"https://r{n}.example/"})
    flush(app)
    response = client.get(f"{LINKS}/go/visits", auth=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"uri", "visits", "next"}
    assert body["uri"] == f"{BASE}{LINKS}/go/visits"
    assert body["next"] is None
    assert "Link" not in response.headers
    assert [v["referrer"] for v in body["visits"]] == [f"https://r{n}.example/" for n in (2, 1, 0)]
    times = [v["visited_at"] for v in body["visits"]]
    assert times == sorted(times, reverse=True)
    assert all(set(v) == VISIT_FIELDS for v in body["visits"])


def test_a_link_without_visits_lists_none(client, alice):
    create(client, alice, "quiet")
    body = client.get(f"{LINKS}/quiet/visits", auth=alice).get_json()
    assert body == {"uri": f"{BASE}{LINKS}/quiet/visits", "visits": [], "next": None}


def test_paging_through_visits_sees_each_exactly_once(app, client, alice):
    create(client, alice, "go")
    for n in range(7):
        follow(client, "go", **{"Referer": f"https://r{n}.example/"})
    flush(app)
    seen, sizes = [], []
    url = f"{LINKS}/go/visits?limit=3"
    while url:
        response = client.get(url, auth=alice)
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {"uri", "visits", "next"}
        sizes.append(len(body["visits"]))
        seen += [v["referrer"] for v in body["visits"]]
        if body["next"] is None:
            assert "Link" not in response.headers
        else:
            assert body["next"].startswith(f"{BASE}{LINKS}/go/visits?")
            assert "limit=3" in body["next"] and "cursor=" in body["next"]
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        url = body["next"]
    assert sizes == [3, 3, 1]
    assert seen == [f"https://r{n}.example/" for n in range(6, -1, -1)]


def test_an_exactly_full_last_page_has_no_next(app, client, alice):
    create(client, alice, "go")
    for _ in range(4):
        follow(client, "go")
    flush(app)
    first = client.get(f"{LINKS}/go/visits?limit=2", auth=alice).get_json()
    second = client.get(first["next"], auth=alice)
    assert len(second.get_json()["visits"]) == 2
    assert second.get_json()["next"] is None
    assert "Link" not in second.headers


def test_default_page_holds_fifty_visits(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", *(at(1) + timedelta(minutes=n) for n in range(51)))
    body = client.get(f"{LINKS}/go/visits", auth=alice).get_json()
    assert len(body["visits"]) == 50 and body["next"]


def test_since_is_inclusive_and_until_exclusive(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", at(1, 9), at(1, 10), at(1, 11), at(1, 12))
    listed = visits_of(
        client, alice, "go", since="2026-03-01T10:00:00Z", until="2026-03-01T12:00:00Z"
    )
    assert [v["visited_at"] for v in listed] == [
        "2026-03-01T11:00:00.000Z",
        "2026-03-01T10:00:00.000Z",
    ]


def test_since_and_until_accept_offsets_and_dates(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", at(1, 23), at(2, 1), at(3, 0))
    listed = visits_of(client, alice, "go", since="2026-03-02T00:30:00+01:00", until="2026-03-03")
    assert [v["visited_at"] for v in listed] == ["2026-03-02T01:00:00.000Z"]


def test_filters_are_kept_in_next_and_apply_on_every_page(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", *(at(2, n) for n in range(5)))
    record_at(app, "go", *(at(2, n, 30) for n in range(5)), is_bot=True)
    record_at(app, "go", at(1), at(4))
    query = "since=2026-03-02&until=2026-03-03&bots=exclude&limit=2"
    url, seen = f"{LINKS}/go/visits?{query}", []
    while url:
        body = client.get(url, auth=alice).get_json()
        if body["next"]:
            for part in ("since=2026-03-02", "until=2026-03-03", "bots=exclude", "limit=2"):
                assert part in body["next"]
        seen += body["visits"]
        url = body["next"]
    assert [v["visited_at"] for v in seen] == [
        f"2026-03-02T0{n}:00:00.000Z" for n in (4, 3, 2, 1, 0)
    ]
    assert not any(v["is_bot"] for v in seen)


@pytest.mark.parametrize(("bots", "expected"), [("include", 5), ("exclude", 3), ("only", 2)])
def test_bots_filter(app, client, alice, bots, expected):
    create(client, alice, "go")
    for user_agent in (FIREFOX_LINUX, BOTS["googlebot"], CHROME_WINDOWS, BOTS["slack"], None):
        follow(client, "go", **({"User-Agent": user_agent} if user_agent else {}))
    flush(app)
    listed = visits_of(client, alice, "go", bots=bots)
    assert len(listed) == expected
    if bots != "include":
        assert all(v["is_bot"] is (bots == "only") for v in listed)


def test_bots_default_is_include(app, client, alice):
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": BOTS["bingbot"]})
    follow(client, "go", **{"User-Agent": FIREFOX_LINUX})
    flush(app)
    assert len(visits_of(client, alice, "go")) == 2


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-01T00:00:00"}, "since"),
        ({"until": "2026-11-01T00:00:00"}, "until"),
        ({"since": "2026-11-01 00:00:00Z"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"since": "1700000000"}, "since"),
        ({"since": ""}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:00:00-05:00"}, "until"),  # after year 9999 in UTC
        ({"since": "2026-11-02", "until": "2026-11-01"}, "since"),
        ({"since": "2099-01-01T00:00:00Z"}, "since"),
        ({"bots": "maybe"}, "bots"),
        ({"bots": "Include"}, "bots"),
        ({"interval": "day"}, "interval"),  # a stats parameter, unknown here
        ({"color": "red"}, "color"),
    ],
)
def test_bad_visit_list_parameters_are_400_naming_them(client, alice, query, parameter):
    create(client, alice, "go")
    response = client.get(f"{LINKS}/go/visits", query_string=query, auth=alice)
    body = assert_problem(response, 400, field=parameter)
    assert body["type"].endswith("/problems/invalid-parameter")


def test_a_repeated_parameter_is_400(client, alice):
    create(client, alice, "go")
    response = client.get(f"{LINKS}/go/visits?limit=1&limit=2", auth=alice)
    assert_problem(response, 400, field="limit")


def test_another_users_link_is_404_never_403(app, client, alice, bob):
    create(client, alice, "mine")
    follow(client, "mine")
    flush(app)
    response = client.get(f"{LINKS}/mine/visits", auth=bob)
    assert_problem(response, 404)
    assert visits_of(client, alice, "mine")  # it exists; bob may not know


@pytest.mark.parametrize("slug", ["nosuch", "a" * 65, "bad.slug"])
def test_visits_of_no_such_link_are_404(client, alice, slug):
    assert_problem(client.get(f"{LINKS}/{slug}/visits", auth=alice), 404)


def test_admin_reads_anyones_visits(app, client, alice, admin):
    create(client, alice, "mine")
    follow(client, "mine", **{"User-Agent": SAFARI_IOS})
    flush(app)
    [visit] = visits_of(client, admin, "mine")
    assert visit["browser"] == "Mobile Safari"
    assert visit["link"] == f"{BASE}{LINKS}/mine"


def test_visits_need_credentials(client, alice):
    create(client, alice, "mine")
    for auth in (None, ("alice", "wrong password"), ("nobody", "correct horse battery")):
        response = client.get(f"{LINKS}/mine/visits", auth=auth)
        assert_problem(response, 401)
        assert "WWW-Authenticate" in response.headers


def test_link_representation_links_to_its_visits_and_stats(app, client, alice):
    link = create(client, alice, "go")
    assert link["visits"] == f"{BASE}{LINKS}/go/visits"
    assert link["stats"] == f"{BASE}{LINKS}/go/stats"
    follow(client, "go")
    flush(app)
    visits = client.get(link["visits"], auth=alice)
    assert visits.status_code == 200 and len(visits.get_json()["visits"]) == 1
    stats = client.get(link["stats"], auth=alice)
    assert stats.status_code == 200 and stats.get_json()["total"] == 1
    listed = client.get(LINKS, auth=alice).get_json()["links"][0]
    assert (listed["visits"], listed["stats"]) == (link["visits"], link["stats"])


def test_root_links_to_stats(client, admin):
    root = client.get("/api/v1.0/").get_json()
    assert root["stats"] == f"{BASE}/api/v1.0/stats"
    assert client.get(root["stats"], auth=admin).status_code == 200
