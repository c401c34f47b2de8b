"""max_visits is exact under concurrency: 100 parallel GETs of a link capped at 10, served by
``shortener serve`` with 2 workers, send exactly 10 visitors to the target and the rest to
410 (or to expired_target), on SQLite and PostgreSQL (the shared live server of each)."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/capped"
FALLBACK = "https://example.org/sold-out"
CAP = 10
VISITORS = 100
TIMEOUT = 30


def parallel_gets(url: str, count: int) -> list[tuple[int, str | None]]:
    """``count`` GETs released at once, each on its own connection (either worker may take
    it): their (status, Location)."""
    start = threading.Barrier(count)

    def visit(_: int) -> tuple[int, str | None]:
        with requests.Session() as session:
            start.wait(timeout=TIMEOUT)
            response = session.get(
                url, allow_redirects=False, timeout=TIMEOUT, headers={"Connection": "close"}
            )
            return response.status_code, response.headers.get("Location")

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(visit, range(count)))


@pytest.fixture(scope="module")
def owner(shared_live_server):
    return shared_live_server.create_user("cap-owner")


def capped_link(server, owner, **fields) -> str:
    slug = f"cap-{secrets.token_hex(4)}"
    response = requests.post(
        server.url + LINKS,
        json={"target": TARGET, "slug": slug, "max_visits": CAP, **fields},
        auth=owner,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return slug


def link_status(server, owner, slug: str) -> str:
    response = requests.get(f"{server.url}{LINKS}/{slug}", auth=owner, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["status"]


def test_exactly_max_visits_reach_the_target_then_410(shared_live_server, owner):
    server = shared_live_server
    slug = capped_link(server, owner)
    answers = Counter(parallel_gets(f"{server.url}/{slug}", VISITORS))
    assert answers == {(302, TARGET): CAP, (410, None): VISITORS - CAP}, answers
    assert len(server.workers_that_served(f"/{slug}")) == 2  # both workers counted
    assert link_status(server, owner, slug) == "exhausted"


def test_exactly_max_visits_reach_the_target_then_the_expired_target(shared_live_server, owner):
    server = shared_live_server
    slug = capped_link(server, owner, expired_target=FALLBACK)
    answers = Counter(parallel_gets(f"{server.url}/{slug}", VISITORS))
    assert answers == {(302, TARGET): CAP, (302, FALLBACK): VISITORS - CAP}, answers
    assert len(server.workers_that_served(f"/{slug}")) == 2
