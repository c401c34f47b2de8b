"""GET /api/v1.0/links/<slug>/stats and GET /api/v1.0/stats (issue 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_app
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.visitors import referrer_host
from shortener.storage import visit_queries
from shortener.storage.visit_queries import NewVisit

BASE = "http://localhost"
LINKS = "/api/v1.0/links"
ALL_STATS = "/api/v1.0/stats"
STATS_FIELDS = {
    "uri",
    "link",
    "since",
    "until",
    "interval",
    "total",
    "bots",
    "series",
    "referrers",
    "browsers",
    "operating_systems",
    # where visitors were sent, why, from where (tests/test_link_rules.py)
    "targets",
    "rules",
    "variants",
    "countries",
}
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# Visits for the series tests: Monday 2 March 2026 is the start of a week.
SERIES_VISITS = [
    datetime(2026, 2, 27, 12, 0, tzinfo=UTC),  # Friday
    datetime(2026, 3, 2, 10, 15, tzinfo=UTC),  # Monday
    datetime(2026, 3, 2, 10, 45, tzinfo=UTC),
    datetime(2026, 3, 2, 12, 5, tzinfo=UTC),
    datetime(2026, 3, 4, 8, 0, tzinfo=UTC),  # Wednesday
    datetime(2026, 3, 8, 23, 30, tzinfo=UTC),  # Sunday: still the week of 2 March
    datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC),  # Tuesday of the next week
    datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
]


@pytest.fixture
def app(database_url):
    """Visits land only when a test flushes: the background writer would wait a minute."""
    app = make_app(database_url, VISIT_FLUSH_INTERVAL=60)
    yield app
    app.extensions["shortener"].close()


def create(client, auth, slug: str) -> dict:
    response = client.post(LINKS, json={"target": "https://example.com/", "slug": slug}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def follow(client, slug: str, **headers) -> None:
    assert client.get(f"/{slug}", headers=headers).status_code == 302


def record_at(
    app, slug: str, *moments: datetime, is_bot: bool = False, referrer: str | None = None
) -> None:
    """Visits at chosen times, through the recorder's own write path (visits and rollups)."""
    link_id = app.extensions["shortener"].links.get(OPERATOR, slug).id
    batch = [
        NewVisit(
            link_id=link_id,
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


def stats_of(client, auth, url: str, **query) -> dict:
    response = client.get(url, query_string=query, auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def series(body: dict) -> list[tuple[str, int]]:
    return [(bucket["start"], bucket["visits"]) for bucket in body["series"]]


# -- shape --------------------------------------------------------------------------------


def test_link_stats_have_the_documented_shape(app, client, alice):
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": FIREFOX_LINUX, "Referer": "https://news.example/x"})
    app.extensions["shortener"].recorder.flush()
    body = stats_of(client, alice, f"{LINKS}/go/stats")
    assert set(body) == STATS_FIELDS
    assert body["uri"] == f"{BASE}{LINKS}/go/stats"
    assert body["link"] == f"{BASE}{LINKS}/go"
    assert body["interval"] == "day"
    assert (body["total"], body["bots"]) == (1, 0)
    assert all(set(bucket) == {"start", "visits"} for bucket in body["series"])
    assert body["referrers"] == [{"host": "news.example", "visits": 1}]
    assert body["browsers"] == [{"family": "Firefox", "visits": 1}]
    assert body["operating_systems"] == [{"family": "Linux", "visits": 1}]
    for moment in [body["since"], body["until"]] + [b["start"] for b in body["series"]]:
        assert moment.endswith(".000Z"), moment


def test_stats_uri_is_the_request_with_its_query(client, alice):
    create(client, alice, "go")
    body = stats_of(client, alice, f"{LINKS}/go/stats", interval="week", bots="exclude")
    assert body["uri"].startswith(f"{BASE}{LINKS}/go/stats?")
    assert "interval=week" in body["uri"] and "bots=exclude" in body["uri"]


# -- series ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "since", "until", "expected"),
    [
        (
            {"interval": "hour", "since": "2026-03-02T10:30:00Z", "until": "2026-03-02T13:10:00Z"},
            "2026-03-02T10:00:00.000Z",
            "2026-03-02T14:00:00.000Z",
            [
                ("2026-03-02T10", 2),
                ("2026-03-02T11", 0),
                ("2026-03-02T12", 1),
                ("2026-03-02T13", 0),
            ],
        ),
        (
            {"interval": "day", "since": "2026-03-02", "until": "2026-03-05"},
            "2026-03-02T00:00:00.000Z",
            "2026-03-05T00:00:00.000Z",
            [("2026-03-02T00", 3), ("2026-03-03T00", 0), ("2026-03-04T00", 1)],
        ),
        (
            {"interval": "week", "since": "2026-03-04T12:00:00Z", "until": "2026-03-12"},
            "2026-03-02T00:00:00.000Z",
            "2026-03-16T00:00:00.000Z",
            [("2026-03-02T00", 5), ("2026-03-09T00", 1)],
        ),
        (
            {"interval": "month", "since": "2026-02-15", "until": "2026-04-02"},
            "2026-02-01T00:00:00.000Z",
            "2026-05-01T00:00:00.000Z",
            [("2026-02-01T00", 1), ("2026-03-01T00", 6), ("2026-04-01T00", 1)],
        ),
    ],
    ids=["hour", "day", "week", "month"],
)
def test_series_is_zero_filled_in_whole_aligned_buckets(
    app, client, alice, query, since, until, expected
):
    create(client, alice, "go")
    record_at(app, "go", *SERIES_VISITS)
    body = stats_of(client, alice, f"{LINKS}/go/stats", **query)
    assert (body["since"], body["until"], body["interval"]) == (since, until, query["interval"])
    assert series(body) == [(f"{start}:00:00.000Z", n) for start, n in expected]
    assert body["total"] == sum(n for _, n in expected)
    assert body["bots"] == 0


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_buckets_follow_each_other_without_gaps(app, client, alice, interval):
    create(client, alice, "go")
    record_at(app, "go", *SERIES_VISITS)
    body = stats_of(
        client,
        alice,
        f"{LINKS}/go/stats",
        interval=interval,
        since="2026-02-20",
        until="2026-04-03",
    )
    starts = [parse(bucket["start"]) for bucket in body["series"]]
    assert iso(starts[0]) == body["since"]
    for start, following in zip(starts, starts[1:] + [parse(body["until"])], strict=True):
        assert start < following
        assert start.minute == start.second == start.microsecond == 0
        if interval != "hour":
            assert start.hour == 0
        if interval == "week":
            assert start.weekday() == 0
        if interval == "month":
            assert start.day == 1
    assert sum(bucket["visits"] for bucket in body["series"]) == body["total"] == len(SERIES_VISITS)


def test_week_starts_monday_across_a_new_year(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", datetime(2026, 1, 1, 5, tzinfo=UTC))  # a Thursday
    body = stats_of(
        client, alice, f"{LINKS}/go/stats", interval="week", since="2026-01-01", until="2026-01-02"
    )
    assert (body["since"], body["until"]) == (
        "2025-12-29T00:00:00.000Z",
        "2026-01-05T00:00:00.000Z",
    )
    assert series(body) == [("2025-12-29T00:00:00.000Z", 1)]


def test_months_roll_over_the_year(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    body = stats_of(
        client, alice, f"{LINKS}/go/stats", interval="month", since="2025-12-15", until="2026-01-15"
    )
    assert series(body) == [("2025-12-01T00:00:00.000Z", 1), ("2026-01-01T00:00:00.000Z", 1)]
    assert body["until"] == "2026-02-01T00:00:00.000Z"


def test_since_equal_to_until_is_one_bucket(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", datetime(2026, 3, 2, 10, 15, tzinfo=UTC))
    body = stats_of(client, alice, f"{LINKS}/go/stats", since="2026-03-02", until="2026-03-02")
    assert series(body) == [("2026-03-02T00:00:00.000Z", 1)]


def test_until_is_exclusive_at_a_bucket_boundary(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", datetime(2026, 3, 2, 23, 59, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    body = stats_of(client, alice, f"{LINKS}/go/stats", since="2026-03-02", until="2026-03-03")
    assert series(body) == [("2026-03-02T00:00:00.000Z", 1)]
    assert body["total"] == 1


def test_default_since_is_the_first_visit_and_default_interval_day(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", *SERIES_VISITS[1:5])
    body = stats_of(client, alice, f"{LINKS}/go/stats", until="2026-03-05")
    assert body["interval"] == "day"
    assert body["since"] == "2026-03-02T00:00:00.000Z"
    assert series(body) == [
        ("2026-03-02T00:00:00.000Z", 3),
        ("2026-03-03T00:00:00.000Z", 0),
        ("2026-03-04T00:00:00.000Z", 1),
    ]


@pytest.mark.parametrize(
    ("query", "since", "until"),
    [
        ({"until": "2026-03-01"}, "2026-03-01T00:00:00.000Z", "2026-03-02T00:00:00.000Z"),
        (
            {"until": "2026-03-02T05:00:00Z", "interval": "hour"},
            "2026-03-02T05:00:00.000Z",
            "2026-03-02T06:00:00.000Z",
        ),
    ],
)
def test_until_before_the_first_visit_gives_an_empty_window_not_an_inverted_one(
    app, client, alice, query, since, until
):
    """Without since, the first visit would start the window after its end, and its bucket
    would show zero visits although it has some."""
    create(client, alice, "go")
    record_at(app, "go", datetime(2026, 3, 2, 10, 15, tzinfo=UTC))
    body = stats_of(client, alice, f"{LINKS}/go/stats", **query)
    assert (body["since"], body["until"]) == (since, until)
    assert series(body) == [(since, 0)]
    assert body["total"] == 0


def test_default_until_is_now(app, client, alice):
    create(client, alice, "go")
    now = datetime.now(UTC)
    record_at(app, "go", now - timedelta(hours=3))
    body = stats_of(client, alice, f"{LINKS}/go/stats", interval="hour")
    assert parse(body["since"]) == (now - timedelta(hours=3)).replace(
        minute=0, second=0, microsecond=0
    )
    after = datetime.now(UTC)
    last = parse(body["series"][-1]["start"])
    assert now < parse(body["until"]) == last + timedelta(hours=1)
    assert last <= after
    assert body["total"] == 1 and len(body["series"]) in (4, 5)  # 5 if an hour turned meanwhile


def test_a_link_without_visits_has_one_empty_bucket_holding_now(client, alice):
    create(client, alice, "quiet")
    before = datetime.now(UTC)
    body = stats_of(client, alice, f"{LINKS}/quiet/stats")
    after = datetime.now(UTC)
    assert (body["total"], body["bots"]) == (0, 0)
    assert body["referrers"] == body["browsers"] == body["operating_systems"] == []
    [bucket] = body["series"]
    assert bucket["visits"] == 0
    assert parse(bucket["start"]) <= after and before < parse(body["until"])
    assert parse(body["until"]) == parse(bucket["start"]) + timedelta(days=1)


def test_exactly_ten_thousand_buckets_are_allowed(app, client, alice):
    create(client, alice, "go")
    since = datetime(2025, 1, 1, tzinfo=UTC)
    until = since + timedelta(hours=10_000)
    record_at(app, "go", since, until - timedelta(minutes=1))
    body = stats_of(
        client, alice, f"{LINKS}/go/stats", interval="hour", since=iso(since), until=iso(until)
    )
    assert len(body["series"]) == 10_000
    assert body["series"][0]["visits"] == body["series"][-1]["visits"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {"interval": "hour", "since": "2025-01-01T00:00:00Z", "until": "2026-02-21T17:00:00Z"},
        {"interval": "hour", "since": "2020-01-01"},
        {"interval": "day", "since": "2000-01-01", "until": "2030-01-01"},
    ],
)
def test_more_than_ten_thousand_buckets_is_400_naming_interval(client, alice, query):
    create(client, alice, "go")
    assert_problem(
        client.get(f"{LINKS}/go/stats", query_string=query, auth=alice), 400, field="interval"
    )
    # the same window in bigger buckets is fine
    query = {**query, "interval": "month"}
    assert client.get(f"{LINKS}/go/stats", query_string=query, auth=alice).status_code == 200


# -- bots, referrers, browsers and operating systems ----------------------------------------


@pytest.mark.parametrize(
    ("bots", "total", "bot_visits"), [("include", 5, 2), ("exclude", 3, 0), ("only", 2, 2)]
)
def test_bots_are_counted_and_filtered(app, client, alice, bots, total, bot_visits):
    create(client, alice, "go")
    day = datetime(2026, 3, 2, 9, tzinfo=UTC)
    record_at(app, "go", day, day + timedelta(hours=1), day + timedelta(hours=2))
    record_at(app, "go", day, day + timedelta(hours=5), is_bot=True)
    body = stats_of(
        client, alice, f"{LINKS}/go/stats", since="2026-03-02", until="2026-03-03", bots=bots
    )
    assert (body["total"], body["bots"]) == (total, bot_visits)
    assert series(body) == [("2026-03-02T00:00:00.000Z", total)]


def test_referrers_by_host_with_null_for_none_most_visits_first(app, client, alice):
    create(client, alice, "go")
    for referrer in [
        "https://news.example/a",
        "https://NEWS.example:8443/b?c=d",
        "http://news.example/",
        None,
        None,
        "https://blog.example.org/post",
    ]:
        follow(client, "go", **({"Referer": referrer} if referrer else {}))
    app.extensions["shortener"].recorder.flush()
    body = stats_of(client, alice, f"{LINKS}/go/stats")
    assert body["referrers"] == [
        {"host": "news.example", "visits": 3},
        {"host": None, "visits": 2},
        {"host": "blog.example.org", "visits": 1},
    ]


def test_browsers_and_operating_systems_most_visits_first(app, client, alice):
    create(client, alice, "go")
    client.environ_base.pop("HTTP_USER_AGENT", None)  # the test client sends one by default
    for user_agent in [FIREFOX_LINUX] * 3 + [CHROME_WINDOWS] * 2 + [None]:
        follow(client, "go", **({"User-Agent": user_agent} if user_agent else {}))
    app.extensions["shortener"].recorder.flush()
    body = stats_of(client, alice, f"{LINKS}/go/stats")
    assert body["browsers"] == [
        {"family": "Firefox", "visits": 3},
        {"family": "Chrome", "visits": 2},
        {"family": None, "visits": 1},
    ]
    assert body["operating_systems"] == [
        {"family": "Linux", "visits": 3},
        {"family": "Windows", "visits": 2},
        {"family": None, "visits": 1},
    ]


def test_breakdowns_follow_the_bots_filter(app, client, alice):
    create(client, alice, "go")
    follow(client, "go", **{"User-Agent": GOOGLEBOT, "Referer": "https://crawl.example/"})
    follow(client, "go", **{"User-Agent": FIREFOX_LINUX, "Referer": "https://news.example/"})
    app.extensions["shortener"].recorder.flush()
    humans = stats_of(client, alice, f"{LINKS}/go/stats", bots="exclude")
    assert humans["browsers"] == [{"family": "Firefox", "visits": 1}]
    assert humans["referrers"] == [{"host": "news.example", "visits": 1}]
    bots = stats_of(client, alice, f"{LINKS}/go/stats", bots="only")
    assert bots["browsers"] == [{"family": "Googlebot", "visits": 1}]
    assert (bots["total"], bots["bots"]) == (1, 1)


def test_breakdowns_follow_the_window(app, client, alice):
    create(client, alice, "go")
    record_at(app, "go", datetime(2026, 3, 1, tzinfo=UTC), referrer="https://old.example/")
    record_at(app, "go", datetime(2026, 3, 5, tzinfo=UTC), referrer="https://new.example/")
    body = stats_of(client, alice, f"{LINKS}/go/stats", since="2026-03-04", until="2026-03-06")
    assert body["referrers"] == [{"host": "new.example", "visits": 1}]


def test_only_the_top_twenty_referrers_are_listed(app, client, alice):
    create(client, alice, "go")
    moment = datetime(2026, 3, 2, tzinfo=UTC)
    for n in range(25):
        record_at(app, "go", *[moment] * (n + 1), referrer=f"https://r{n:02}.example/")
    body = stats_of(client, alice, f"{LINKS}/go/stats", since="2026-03-02", until="2026-03-03")
    assert [r["host"] for r in body["referrers"]] == [f"r{n:02}.example" for n in range(24, 4, -1)]
    assert body["total"] == sum(range(1, 26))


def test_stats_agree_with_the_visit_rows(app, client, alice):
    create(client, alice, "go")
    for user_agent in (FIREFOX_LINUX, GOOGLEBOT, CHROME_WINDOWS, GOOGLEBOT, FIREFOX_LINUX):
        follow(client, "go", **{"User-Agent": user_agent})
    app.extensions["shortener"].recorder.flush()
    body = stats_of(client, alice, f"{LINKS}/go/stats")
    visits = client.get(f"{LINKS}/go/visits", auth=alice).get_json()["visits"]
    assert body["total"] == len(visits) == 5
    assert body["bots"] == sum(v["is_bot"] for v in visits) == 2
    assert client.get(f"{LINKS}/go", auth=alice).get_json()["visit_count"] == 5


# -- bad parameters and visibility --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"interval": "year"}, "interval"),
        ({"interval": "Day"}, "interval"),
        ({"interval": ""}, "interval"),
        ({"bots": "maybe"}, "bots"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-01T00:00:00"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "since"),
        ({"since": "2099-01-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ({"since": "9999-12-01", "until": "9999-12-31"}, "since"),  # no room for the last bucket
        ({"limit": "10"}, "limit"),  # a visits-list parameter, unknown here
        ({"color": "red"}, "color"),
    ],
)
def test_bad_stats_parameters_are_400_naming_them(client, alice, admin, query, parameter):
    create(client, alice, "go")
    for url, auth in ((f"{LINKS}/go/stats", alice), (ALL_STATS, admin)):
        body = assert_problem(client.get(url, query_string=query, auth=auth), 400, field=parameter)
        assert body["type"].endswith("/problems/invalid-parameter")


def test_a_repeated_stats_parameter_is_400(client, alice):
    create(client, alice, "go")
    response = client.get(f"{LINKS}/go/stats?interval=day&interval=hour", auth=alice)
    assert_problem(response, 400, field="interval")


def test_another_users_link_stats_are_404(client, alice, bob):
    create(client, alice, "mine")
    assert_problem(client.get(f"{LINKS}/mine/stats", auth=bob), 404)
    assert_problem(client.get(f"{LINKS}/nosuch/stats", auth=bob), 404)


def test_admin_reads_anyones_link_stats(app, client, alice, admin):
    create(client, alice, "mine")
    follow(client, "mine")
    app.extensions["shortener"].recorder.flush()
    assert stats_of(client, admin, f"{LINKS}/mine/stats")["total"] == 1


def test_stats_need_credentials(client, alice):
    create(client, alice, "mine")
    for url in (f"{LINKS}/mine/stats", ALL_STATS):
        for auth in (None, ("alice", "wrong password")):
            response = client.get(url, auth=auth)
            assert_problem(response, 401)
            assert "WWW-Authenticate" in response.headers


# -- GET /api/v1.0/stats --------------------------------------------------------------------


def test_all_stats_sum_every_link_for_an_admin(app, client, alice, bob, admin):
    create(client, alice, "hers")
    create(client, bob, "his")
    visits = [("hers", "news"), ("hers", "news"), ("his", "news"), ("his", "blog"), ("his", "blog")]
    for slug, referrer in visits:
        follow(
            client, slug, **{"User-Agent": FIREFOX_LINUX, "Referer": f"https://{referrer}.example/"}
        )
    follow(client, "his", **{"User-Agent": GOOGLEBOT})
    app.extensions["shortener"].recorder.flush()
    body = stats_of(client, admin, ALL_STATS)
    assert set(body) == STATS_FIELDS - {"link"}
    assert body["uri"] == f"{BASE}{ALL_STATS}"
    assert (body["total"], body["bots"]) == (6, 1)
    assert sum(bucket["visits"] for bucket in body["series"]) == 6
    assert body["referrers"] == [
        {"host": "news.example", "visits": 3},
        {"host": "blog.example", "visits": 2},
        {"host": None, "visits": 1},
    ]
    assert body["browsers"] == [
        {"family": "Firefox", "visits": 5},
        {"family": "Googlebot", "visits": 1},
    ]


def test_all_stats_take_the_same_window_and_interval(app, client, alice, bob, admin):
    create(client, alice, "hers")
    create(client, bob, "his")
    record_at(app, "hers", *SERIES_VISITS)
    record_at(app, "his", *SERIES_VISITS[:4], is_bot=True)
    body = stats_of(
        client, admin, ALL_STATS, interval="week", since="2026-03-04T12:00:00Z", until="2026-03-12"
    )
    assert series(body) == [("2026-03-02T00:00:00.000Z", 8), ("2026-03-09T00:00:00.000Z", 1)]
    assert (body["total"], body["bots"]) == (9, 3)
    humans = stats_of(
        client, admin, ALL_STATS, since="2026-02-01", until="2026-05-01", bots="exclude"
    )
    assert humans["total"] == len(SERIES_VISITS)


def test_all_stats_drop_a_deleted_links_visits(app, client, alice, admin):
    create(client, alice, "gone")
    create(client, alice, "kept")
    for slug in ("gone", "gone", "kept"):
        follow(client, slug)
    app.extensions["shortener"].recorder.flush()
    assert stats_of(client, admin, ALL_STATS)["total"] == 3
    assert client.delete(f"{LINKS}/gone", auth=alice).status_code == 204
    assert stats_of(client, admin, ALL_STATS)["total"] == 1


def test_all_stats_are_for_admins_only(client, alice):
    create(client, alice, "mine")
    assert_problem(client.get(ALL_STATS, auth=alice), 403)


def test_all_stats_with_no_visits_anywhere(client, admin):
    body = stats_of(client, admin, ALL_STATS)
    assert (body["total"], body["bots"], len(body["series"])) == (0, 0, 1)


def test_without_since_a_long_history_is_cut_to_the_last_ten_thousand_buckets(app, client, alice):
    """A link visited 500 days ago asked for hourly stats: 10,000 hours, not a 400."""
    create(client, alice, "old")
    now = datetime.now(UTC)
    record_at(app, "old", now - timedelta(days=500), now - timedelta(hours=1))
    body = stats_of(client, alice, f"{LINKS}/old/stats", interval="hour")
    assert len(body["series"]) == 10_000
    assert body["total"] == 1  # the visit 500 days ago is outside the window
    assert body["series"][-1]["start"] == iso(now.replace(minute=0, second=0, microsecond=0))
