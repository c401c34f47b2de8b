"""The link cache of a live ``shortener serve`` (2 workers): a change made through the API or
the command line is seen by the very next redirect, whichever worker answers it; a second
server on the same database with a host counter of its own (another host) sees it within a
poll of the database's counter."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from live import launch, stop

LINKS = "/api/v1.0/links"
TIMEOUT = 30
REPEATS = 20  # enough requests that both workers answer some
DEADLINE_SECONDS = 5.0


@pytest.fixture(scope="module")
def server(shared_live_server):
    return shared_live_server


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user("cache")


@pytest.fixture(scope="module")
def other_host(server, tmp_path_factory):
    """A second server on the same database, with its own host counter file."""
    directory = tmp_path_factory.mktemp("other-host")
    env = {**server.env, "SHORTENER_LINK_CHANGES_FILE": str(directory / "link-changes")}
    second = launch(env, server.admin, directory / "server.log")
    yield second
    stop(second)


def new_link(server, owner, target: str = "https://example.com/first") -> str:
    slug = f"cache-{secrets.token_hex(4)}"
    response = requests.post(
        server.url + LINKS, json={"target": target, "slug": slug}, auth=owner, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    return slug


def location(url: str, slug: str) -> str | None:
    response = requests.get(f"{url}/{slug}", allow_redirects=False, timeout=TIMEOUT)
    if response.status_code == 404:
        return None
    assert 300 <= response.status_code < 400, response.text
    return response.headers["Location"]


def warm(url: str, slug: str) -> None:
    """Every worker caches the link (a fresh connection per request spreads them)."""
    for _ in range(REPEATS):
        location(url, slug)


def test_a_patch_is_seen_by_the_very_next_redirect_in_every_worker(server, owner):
    slug = new_link(server, owner)
    warm(server.url, slug)
    for n in range(REPEATS):
        target = f"https://example.com/{n}"
        response = requests.patch(
            f"{server.url}{LINKS}/{slug}", json={"target": target}, auth=owner, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        assert location(server.url, slug) == target
    assert len(server.workers_that_served(f"/{slug}")) == 2


def test_a_delete_is_seen_by_the_very_next_redirect(server, owner):
    for _ in range(4):
        slug = new_link(server, owner)
        warm(server.url, slug)
        response = requests.delete(f"{server.url}{LINKS}/{slug}", auth=owner, timeout=TIMEOUT)
        assert response.status_code == 204
        assert [location(server.url, slug) for _ in range(REPEATS)] == [None] * REPEATS


def test_a_change_from_the_command_line_is_seen_by_the_next_redirect(server):
    doomed = server.create_user("doomed")
    slug = new_link(server, doomed)
    warm(server.url, slug)
    completed = server.cli("users", "delete", doomed[0], "--purge")
    assert completed.returncode == 0, completed.stderr
    assert [location(server.url, slug) for _ in range(REPEATS)] == [None] * REPEATS


def test_another_host_sees_a_change_within_a_poll(server, other_host, owner):
    slug = new_link(server, owner)
    warm(other_host.url, slug)
    target = "https://example.com/moved"
    response = requests.patch(
        f"{server.url}{LINKS}/{slug}", json={"target": target}, auth=owner, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert location(server.url, slug) == target  # this host: at once
    # Each worker of the other host polls on its own clock: every one of them must answer
    # with the new target within the deadline (a round of REPEATS reaches both workers).
    deadline = time.monotonic() + DEADLINE_SECONDS
    seen = {location(other_host.url, slug) for _ in range(REPEATS)}
    while seen != {target} and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = {location(other_host.url, slug) for _ in range(REPEATS)}
    assert seen == {target}, seen
