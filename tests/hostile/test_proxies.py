"""Case 8: with SHORTENER_TRUSTED_PROXIES=0 (the default, said out loud here), forwarding headers
are the client's word and count for nothing: not in generated URIs, not in recorded visits,
not in the keys of the rate limits.

Clients come from other loopback addresses (127.x.y.z all reach a server on 127.0.0.1), so the
address the server sees is known and differs from every spoofed one."""

from __future__ import annotations

from collections import Counter

import pytest

from shortener.cli import GUNICORN_THREADS

from .conftest import API, LINKS, assert_problem

pytestmark = pytest.mark.integration

SERVER_SETTINGS = {
    "SHORTENER_TRUSTED_PROXIES": "0",
    # Small enough to reach; per worker, since the storage is memory:// (2 workers).
    "SHORTENER_NOT_FOUND_LIMIT": "5/minute",
    "SHORTENER_AUTH_FAIL_LIMIT": "5/minute",
}
LIMIT = 5
WORKERS = 2

SPOOFED = [
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Port", "8443"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Real-IP", "203.0.113.9"),
    ("Forwarded", 'for=203.0.113.9;proto=https;host="evil.example"'),
]


def assert_ours(battery, uri: str) -> None:
    assert uri.startswith(battery.url + "/"), uri


@pytest.mark.parametrize("client", ["127.0.0.1", "127.1.2.3"])
def test_spoofed_forwarding_headers_do_not_change_generated_uris(battery, client):
    """Not even from 127.0.0.1, which gunicorn would trust with X-Forwarded-Proto by default:
    as if a local proxy passed the headers on."""

    def raw(method, path, headers, body=b""):
        return battery.raw(method, path, headers, body, source_address=(client, 0))

    headers = [battery.basic(battery.alice), ("Content-Type", "application/json"), *SPOOFED]
    created = raw("POST", LINKS, headers, b'{"target": "https://example.com/proxied"}')
    assert created.status_code == 201, created.text
    body = created.json()
    for uri in (created.headers["Location"], body["uri"], body["short_url"], body["owner"]):
        assert_ours(battery, uri)
    assert body["short_url"] == f"{battery.url}/{body['slug']}"

    root = raw("GET", f"{API}/", SPOOFED).json()
    for uri in root.values():
        assert_ours(battery, uri)

    page = raw("GET", f"{LINKS}?limit=1", headers)
    assert page.status_code == 200
    assert_ours(battery, page.json()["next"])
    assert page.headers["Link"].startswith(f"<{battery.url}/")

    problem = assert_problem(raw("POST", LINKS, headers, b'{"target": "x"}'), 422)
    assert_ours(battery, problem["type"])

    home = raw("GET", "/", SPOOFED)
    assert home.status_code == 302
    location = home.headers["Location"]
    assert location.startswith("/") or location.startswith(battery.url + "/"), location
    assert "evil" not in location


@pytest.mark.parametrize(
    "forwarded_for", ["203.0.113.9", "203.0.113.9, 198.51.100.7", "::1", "127.0.0.1", "garbage"]
)
def test_spoofed_forwarded_for_does_not_change_recorded_visits(battery, forwarded_for):
    """The visit records the peer's network (127.1.2.0 for 127.1.2.3), never the header's."""
    link = battery.create_link(battery.alice, target="https://example.com/visited")
    headers = [
        (name, forwarded_for if name in ("X-Forwarded-For", "X-Real-IP") else value)
        for name, value in SPOOFED
    ]
    response = battery.raw("GET", "/" + link["slug"], headers, source_address=("127.1.2.3", 0))
    assert response.status_code == 302
    assert battery.storage.wait_for_visit_count(link["slug"], 1) == 1
    stored = battery.storage.visits_of(battery.storage.link(link["slug"])["id"])
    assert [visit["ip"] for visit in stored] == ["127.1.2.0"]
    listed = battery.call("GET", f"{LINKS}/{link['slug']}/visits", auth=battery.alice).json()
    assert [visit["ip"] for visit in listed["visits"]] == ["127.1.2.0"]


def spoofing(number_from: str):
    """Headers with a new X-Forwarded-For for each target (its number is in the target)."""

    def headers(target: str) -> list[tuple[str, str]]:
        number = sum(map(ord, target)) % 250
        return [("X-Forwarded-For", f"198.51.100.{number}"), *number_from]

    return headers


def assert_each_worker_allowed_at_most_the_limit(battery, marker: str, allowed: int) -> None:
    """Failed sign-ins are counted once answered, so requests already in flight in a worker's
    other threads may pass too: at most the limit plus those."""
    per_worker = Counter(pid for pid, status in battery.answers(marker) if status == allowed)
    assert len(battery.server.workers_that_served(marker)) == WORKERS
    bound = LIMIT + GUNICORN_THREADS - 1
    assert all(count <= bound for count in per_worker.values()), per_worker


def test_spoofed_forwarded_for_does_not_change_the_not_found_limit_key(battery):
    """A prober that sends a new X-Forwarded-For each time is still one address, and naming
    another address does not spend that address's allowance."""
    prober, bystander = ("127.0.0.3", 0), ("127.0.0.4", 0)
    accept_json = [("Accept", "application/json")]
    with battery.storage.unchanged():
        # Until every worker (each counts in its own memory) has refused the prober.
        responses = battery.raw_until_every_worker(
            "GET", "/no-such-link-", spoofing(accept_json), status=429, source_address=prober
        )
        for response in responses:
            if response.status_code == 429:
                assert_problem(response, 429)
                assert int(response.headers["Retry-After"]) >= 1
            else:
                assert_problem(response, 404)
        assert_each_worker_allowed_at_most_the_limit(battery, "/no-such-link-", 404)

        # The prober cannot shed its count by naming another address, in any worker...
        for number in range(2 * WORKERS):
            still = battery.raw(
                "GET",
                f"/no-such-link-again-{number}",
                [("X-Forwarded-For", "127.0.0.4"), *accept_json],
                source_address=prober,
            )
            assert_problem(still, 429)
        # ...and the address it pretends to be is not limited by what it did.
        innocent = battery.raw(
            "GET",
            "/no-such-link-innocent",
            [("X-Forwarded-For", "127.0.0.3"), *accept_json],
            source_address=bystander,
        )
        assert_problem(innocent, 404)


def test_spoofed_forwarded_for_does_not_change_the_failed_authentication_key(battery):
    """Guessing passwords under ever new X-Forwarded-For values is still one address; a user
    elsewhere signs in as usual."""
    guesser, user = ("127.0.0.5", 0), ("127.0.0.6", 0)
    wrong = battery.basic((battery.alice[0], "not the password"))
    marker = f"{LINKS}?guess="
    with battery.storage.unchanged():
        responses = battery.raw_until_every_worker(
            "GET", marker, spoofing([wrong]), status=429, source_address=guesser
        )
        for response in responses:
            assert_problem(response, {401, 429})
        assert_each_worker_allowed_at_most_the_limit(battery, marker, 401)

        for number in range(2 * WORKERS):
            blocked = battery.raw(
                "GET",
                LINKS,
                [battery.basic(battery.alice), ("X-Forwarded-For", f"127.0.0.{number}")],
                source_address=guesser,
            )
            assert_problem(blocked, 429)
        for forwarded_for in ("127.0.0.5", "198.51.100.1"):
            signed_in = battery.raw(
                "GET",
                LINKS,
                [battery.basic(battery.alice), ("X-Forwarded-For", forwarded_for)],
                source_address=user,
            )
            assert signed_in.status_code == 200, signed_in.text
