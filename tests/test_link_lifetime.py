"""Link lifetime and visit caps (issue 9): valid_since, valid_until, max_visits,
expired_target, the status they give a link, the redirect's 404/410/fallback, the collection's
status filter and ``shortener links purge-expired``. Time is the link service's clock, moved by
the tests (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import assert_problem

from shortener.cli import main
from shortener.services.lifetime import parse_age, status_of
from shortener.storage.records import LinkRecord

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/landing"
FALLBACK = "https://example.org/sorry"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Clock:
    """The link service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app) -> Clock:
    clock = Clock(NOW)
    app.extensions["shortener"].links.clock = clock
    return clock


def create(client, auth, slug: str, **fields) -> dict:
    response = client.post(LINKS, json={"target": TARGET, "slug": slug, **fields}, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def representation(client, auth, slug: str) -> dict:
    response = client.get(f"{LINKS}/{slug}", auth=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def follow(client, slug: str, method: str = "GET", **headers):
    return client.open(f"/{slug}", method=method, headers=headers)


def assert_redirect(response, location: str) -> None:
    assert response.status_code in (301, 302, 303, 307, 308), response.get_data(as_text=True)
    assert response.headers["Location"] == location


# -- the fields ----------------------------------------------------------------------------
def test_fields_are_null_by_default_and_a_plain_link_is_active(client, alice, clock):
    body = create(client, alice, "plain")
    assert body["valid_since"] is None and body["valid_until"] is None
    assert body["max_visits"] is None and body["expired_target"] is None
    assert body["status"] == "active"


def test_fields_round_trip_in_utc(client, alice, clock):
    body = create(
        client,
        alice,
        "windowed",
        valid_since="2026-06-01T13:00:00+02:00",
        valid_until="2026-07-01T00:00:00Z",
        max_visits=5,
        expired_target=FALLBACK,
    )
    assert body["valid_since"] == "2026-06-01T11:00:00.000Z"
    assert body["valid_until"] == "2026-07-01T00:00:00.000Z"
    assert body["max_visits"] == 5 and type(body["max_visits"]) is int
    assert body["expired_target"] == FALLBACK
    assert body["status"] == "active"
    assert representation(client, alice, "windowed") == body


INVALID = {
    "valid_since": [
        "tomorrow",
        "2026-06-01",
        "2026-06-01T10:00:00",  # no offset
        "9999-12-31T00:00:00Z",
        123,
        True,
    ],
    "valid_until": ["2026-13-01T00:00:00Z", "", {"at": "now"}],
    "max_visits": [0, -1, "10", 1.5, True, 10**12],
    "expired_target": [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "/relative",
        "not a url",
        5,
        "http://localhost/self",
    ],
}
INVALID_CASES = [
    pytest.param(field, value, id=f"{field}-{value!r}")
    for field, values in INVALID.items()
    for value in values
]


@pytest.mark.parametrize(("field", "value"), INVALID_CASES)
def test_post_refuses_each_invalid_value_and_stores_nothing(
    client, alice, row_counts, field, value
):
    before = row_counts()
    response = client.post(
        LINKS, json={"target": TARGET, "slug": "refused", field: value}, auth=alice
    )
    body = assert_problem(response, 422, field=field)
    assert body["errors"][field] and all(isinstance(m, str) for m in body["errors"][field])
    assert row_counts() == before


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("field", "value"),
    [("valid_since", "2026-06-01"), ("max_visits", 0), ("expired_target", "ftp://x.example")],
)
def test_put_and_patch_refuse_invalid_values_and_change_nothing(
    client, alice, clock, method, field, value
):
    create(client, alice, "kept", max_visits=3)
    before = representation(client, alice, "kept")
    body = {"target": TARGET, field: value} if method == "put" else {field: value}
    response = getattr(client, method)(f"{LINKS}/kept", json=body, auth=alice)
    assert_problem(response, 422, field=field)
    assert representation(client, alice, "kept") == before


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize("until", ["2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"])
def test_valid_until_must_be_after_valid_since(client, alice, row_counts, method, until):
    before = row_counts()
    body = {"target": TARGET, "valid_since": "2026-06-02T00:00:00Z", "valid_until": until}
    if method == "post":
        response = client.post(LINKS, json={**body, "slug": "backwards"}, auth=alice)
    else:
        response = client.put(f"{LINKS}/backwards", json=body, auth=alice)
    problem = assert_problem(response, 422, field="valid_until")
    assert problem["errors"]["valid_until"] == ["Must be after valid_since."]
    assert row_counts() == before


def test_patch_checks_the_window_against_the_stored_other_end(client, alice, clock):
    create(client, alice, "half", valid_since=at(NOW + timedelta(days=1)))
    before = representation(client, alice, "half")
    response = client.patch(f"{LINKS}/half", json={"valid_until": at(NOW)}, auth=alice)
    assert_problem(response, 422, field="valid_until")
    assert representation(client, alice, "half") == before
    response = client.patch(
        f"{LINKS}/half", json={"valid_until": at(NOW + timedelta(days=2))}, auth=alice
    )
    assert response.status_code == 200
    assert response.get_json()["valid_until"] == "2026-06-03T12:00:00.000Z"


def test_patch_with_null_removes_a_limit(client, alice, clock):
    create(client, alice, "unlimit", valid_until=at(NOW - timedelta(hours=1)), max_visits=1)
    assert representation(client, alice, "unlimit")["status"] == "expired"
    response = client.patch(
        f"{LINKS}/unlimit", json={"valid_until": None, "max_visits": None}, auth=alice
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "active"
    assert_redirect(follow(client, "unlimit"), TARGET)


# -- the redirect --------------------------------------------------------------------------
def test_scheduled_link_is_404_until_valid_since_but_the_owner_sees_it(client, alice, clock):
    create(client, alice, "soon", valid_since=at(NOW + timedelta(minutes=5)))
    assert_problem(follow(client, "soon"), 404)
    assert follow(client, "soon", "HEAD").status_code == 404
    assert representation(client, alice, "soon")["status"] == "scheduled"
    listed = client.get(f"{LINKS}?status=scheduled", auth=alice).get_json()["links"]
    assert [link["slug"] for link in listed] == ["soon"]
    clock.move(minutes=5)  # valid_since is inclusive
    assert_redirect(follow(client, "soon"), TARGET)
    assert representation(client, alice, "soon")["status"] == "active"


def test_expired_link_answers_410_problem_json(client, alice, clock):
    create(client, alice, "over", valid_until=at(NOW + timedelta(minutes=1)))
    assert_redirect(follow(client, "over"), TARGET)  # cached by the worker now
    clock.move(minutes=1)  # valid_until is exclusive; no change event: the cache still holds it
    response = follow(client, "over")
    body = assert_problem(response, 410)
    assert body["title"] == "Link gone" and "expired" in body["detail"]
    assert body["type"].endswith("/problems/link-gone")
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get(body["type"].replace("http://localhost", "")).status_code == 200
    head = follow(client, "over", "HEAD")
    assert head.status_code == 410 and head.get_data() == b""
    assert representation(client, alice, "over")["status"] == "expired"


def test_expired_link_answers_a_short_html_page_to_browsers(client, alice, clock):
    create(client, alice, "over-html", valid_until=at(NOW))
    response = follow(client, "over-html", Accept="text/html,application/xhtml+xml;q=0.9")
    assert response.status_code == 410
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>Link gone</h1>" in page and "expired" in page
    assert "<script" not in page


def test_expired_link_with_expired_target_redirects_there(client, alice, clock):
    create(
        client,
        alice,
        "fallback",
        redirect_status=301,
        valid_until=at(NOW + timedelta(seconds=1)),
        expired_target=FALLBACK,
    )
    response = follow(client, "fallback")
    assert response.status_code == 301 and response.headers["Location"] == TARGET
    assert response.headers["Cache-Control"] == "no-store"  # never cached past valid_until
    clock.move(seconds=1)
    response = follow(client, "fallback")
    assert response.status_code == 302  # always temporary
    assert response.headers["Location"] == FALLBACK
    assert follow(client, "fallback", "HEAD").headers["Location"] == FALLBACK


def test_capped_link_redirects_exactly_max_visits_times(client, alice, clock, app):
    create(client, alice, "capped", max_visits=3)
    for _ in range(2):  # HEAD asks, and uses nothing up
        assert_redirect(follow(client, "capped", "HEAD"), TARGET)
    for _ in range(3):
        assert_redirect(follow(client, "capped"), TARGET)
    assert representation(client, alice, "capped")["status"] == "exhausted"
    body = assert_problem(follow(client, "capped"), 410)
    assert "visit limit" in body["detail"]
    assert follow(client, "capped", "HEAD").status_code == 410
    assert follow(client, "capped", Accept="text/html").mimetype == "text/html"


def test_exhausted_link_with_expired_target_redirects_there(client, alice, clock):
    create(client, alice, "once", max_visits=1, expired_target=FALLBACK)
    assert_redirect(follow(client, "once"), TARGET)
    for _ in range(3):
        assert_redirect(follow(client, "once"), FALLBACK)


def test_raising_the_cap_lets_more_visits_through_and_lowering_exhausts(client, alice, clock):
    create(client, alice, "raise", max_visits=1)
    assert_redirect(follow(client, "raise"), TARGET)
    assert follow(client, "raise").status_code == 410
    response = client.patch(f"{LINKS}/raise", json={"max_visits": 2}, auth=alice)
    assert response.get_json()["status"] == "active"
    assert_redirect(follow(client, "raise"), TARGET)  # the change is seen at once
    assert follow(client, "raise").status_code == 410
    response = client.put(f"{LINKS}/raise", json={"target": TARGET, "max_visits": 1}, auth=alice)
    assert response.status_code == 200 and response.get_json()["status"] == "exhausted"


def test_a_change_is_seen_by_the_next_redirect(client, alice, clock):
    create(client, alice, "changing")
    assert_redirect(follow(client, "changing"), TARGET)  # cached as a plain link
    response = client.patch(
        f"{LINKS}/changing", json={"valid_until": at(NOW - timedelta(days=1))}, auth=alice
    )
    assert response.status_code == 200
    assert follow(client, "changing").status_code == 410
    client.patch(f"{LINKS}/changing", json={"expired_target": FALLBACK}, auth=alice)
    assert_redirect(follow(client, "changing"), FALLBACK)
    client.patch(f"{LINKS}/changing", json={"valid_until": None}, auth=alice)
    assert_redirect(follow(client, "changing"), TARGET)


def test_a_plain_link_keeps_the_fast_path(app, client, alice, clock):
    create(client, alice, "fast")
    found = app.extensions["shortener"].links.resolve("fast")
    assert found.limited is False
    response = follow(client, "fast")
    assert response.headers["Cache-Control"] == "private, max-age=90"
    create(client, alice, "slow", max_visits=10)
    assert app.extensions["shortener"].links.resolve("slow").limited is True


def test_the_etag_changes_with_the_status(client, alice, clock):
    create(client, alice, "tagged", valid_until=at(NOW + timedelta(hours=1)))
    first = client.get(f"{LINKS}/tagged", auth=alice)
    clock.move(hours=1)
    again = client.get(
        f"{LINKS}/tagged", auth=alice, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200 and again.get_json()["status"] == "expired"
    # If-Match compares what the client changes: the expiry did not make it stale
    response = client.patch(
        f"{LINKS}/tagged",
        json={"valid_until": None},
        auth=alice,
        headers={"If-Match": first.headers["ETag"]},
    )
    assert response.status_code == 200


# -- status and the filter -------------------------------------------------------------------
def test_status_filter_of_the_collection(client, alice, bob, clock):
    create(client, alice, "a-active", max_visits=5, valid_until=at(NOW + timedelta(days=1)))
    create(client, alice, "a-plain")
    create(client, alice, "a-scheduled", valid_since=at(NOW + timedelta(days=1)))
    create(client, alice, "a-expired", valid_until=at(NOW - timedelta(days=1)), max_visits=1)
    create(client, alice, "a-exhausted", max_visits=1)
    follow(client, "a-exhausted")
    # scheduled wins over a cap used up; expired wins over exhausted
    create(client, alice, "a-both", valid_since=at(NOW - timedelta(days=2)), max_visits=1)
    follow(client, "a-both")
    client.patch(f"{LINKS}/a-both", json={"valid_until": at(NOW - timedelta(days=1))}, auth=alice)
    create(client, bob, "b-expired", valid_until=at(NOW - timedelta(days=1)))

    def listed(status: str) -> list[str]:
        response = client.get(f"{LINKS}?status={status}", auth=alice)
        assert response.status_code == 200, response.get_data(as_text=True)
        links = response.get_json()["links"]
        assert all(link["status"] == status for link in links)
        return sorted(link["slug"] for link in links)

    assert listed("active") == ["a-active", "a-plain"]
    assert listed("scheduled") == ["a-scheduled"]
    assert listed("expired") == ["a-both", "a-expired"]
    assert listed("exhausted") == ["a-exhausted"]
    everything = client.get(LINKS, auth=alice).get_json()["links"]
    assert len(everything) == 6


def test_status_filter_pages_keep_the_filter(client, alice, clock):
    for number in range(3):
        create(client, alice, f"gone-{number}", valid_until=at(NOW))
    create(client, alice, "alive")
    response = client.get(f"{LINKS}?status=expired&limit=2", auth=alice)
    page = response.get_json()
    assert len(page["links"]) == 2 and "status=expired" in page["next"]
    rest = client.get(page["next"].replace("http://localhost", ""), auth=alice).get_json()
    assert [link["slug"] for link in rest["links"]] == ["gone-0"]


@pytest.mark.parametrize("value", ["", "Active", "gone", "active,expired"])
def test_invalid_status_filter_is_400(client, alice, value):
    assert_problem(client.get(f"{LINKS}?status={value}", auth=alice), 400, field="status")


def test_the_document_declares_the_fields_and_the_filter(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    link = document["components"]["schemas"]["Link"]["properties"]
    assert link["valid_since"]["format"] == "date-time"
    assert link["valid_until"]["format"] == "date-time"
    assert link["max_visits"]["minimum"] == 1
    assert link["expired_target"]["format"] == "uri"
    assert link["status"]["readOnly"] is True
    assert link["status"]["enum"] == ["active", "scheduled", "expired", "exhausted"]
    listing = document["paths"]["/api/v1.0/links"]["get"]
    status = next(p for p in listing["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == ["active", "scheduled", "expired", "exhausted"]
    follow_link = document["paths"]["/{slug}"]["get"]
    assert "410" in follow_link["responses"]


def test_status_of_in_memory_matches_precedence():
    def link(**fields) -> LinkRecord:
        base = dict(
            id=1, slug="s", target=TARGET, title=None, redirect_status=302, visit_count=0,
            owner_id=1, owner_username="o", created_at=NOW, updated_at=NOW, version=1,
        )  # fmt: skip
        if "crawlable" in LinkRecord.__dataclass_fields__:
            base["crawlable"] = False
        return LinkRecord(**base, **fields)

    assert status_of(link(), NOW) == "active"
    assert status_of(link(valid_since=NOW), NOW) == "active"
    assert status_of(link(valid_since=NOW + timedelta(seconds=1)), NOW) == "scheduled"
    assert status_of(link(valid_until=NOW), NOW) == "expired"
    assert status_of(link(max_visits=2, cap_used=2), NOW) == "exhausted"
    assert status_of(link(max_visits=2, cap_used=2, valid_until=NOW), NOW) == "expired"


# -- purge-expired -----------------------------------------------------------------------------
@pytest.fixture
def run(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(main, list(args))


def test_purge_expired_dry_run_then_for_real(app, client, alice, clock, run):
    create(client, alice, "old-expired", valid_until=at(NOW - timedelta(days=40)))
    create(client, alice, "new-expired", valid_until=at(NOW - timedelta(days=10)))
    create(client, alice, "old-exhausted", max_visits=1)
    clock.move(days=-31)
    follow(client, "old-exhausted")  # exhausted 31 days before NOW
    clock.move(days=31)
    create(client, alice, "new-exhausted", max_visits=1)
    follow(client, "new-exhausted")
    create(client, alice, "active", valid_until=at(NOW + timedelta(days=1)))
    create(client, alice, "plain")
    follow(client, "old-expired")

    result = run("links", "purge-expired", "--older-than", "30d", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "would delete 2 links"
    assert {line.split()[2] for line in lines[:-1]} == {"old-expired", "old-exhausted"}
    assert "would delete old-expired (expired since 2026-04-22T12:00:00Z)" in lines
    assert "would delete old-exhausted (exhausted since 2026-05-01T12:00:00Z)" in lines
    assert len(client.get(LINKS, auth=alice).get_json()["links"]) == 6

    result = run("links", "purge-expired", "--older-than", "30d")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "deleted 2 links"
    slugs = {link["slug"] for link in client.get(LINKS, auth=alice).get_json()["links"]}
    assert slugs == {"new-expired", "new-exhausted", "active", "plain"}
    assert_problem(follow(client, "old-expired"), 404)  # the next redirect sees the deletion
    result = run("links", "purge-expired", "--older-than", "1w")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [  # new-exhausted is not a day old
        "deleted new-expired (expired since 2026-05-22T12:00:00Z)",
        "deleted 1 link",
    ]


@pytest.mark.parametrize("value", ["30", "d", "-3d", "3.5d", "30x", "thirty days", "1000000d"])
def test_purge_expired_refuses_bad_ages_with_exit_code_2(run, value):
    result = run("links", "purge-expired", "--older-than", value)
    assert result.exit_code == 2, result.output
    assert "--older-than" in result.output and "such as 30d" in result.output


def test_purge_expired_needs_older_than(run):
    result = run("links", "purge-expired")
    assert result.exit_code == 2
    assert "--older-than" in result.output


def test_parse_age():
    assert parse_age("30d") == (30, "days")
    assert parse_age("12h") == (12, "hours")
    assert parse_age("2W") == (2, "weeks")
    assert parse_age("0d") == (0, "days")
