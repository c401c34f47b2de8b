"""Case 9, continued: with generated slugs one character long there are only 64 of them. 100
parallel creates get unique slugs while any are free, and running out answers 409 or 503 as a
problem, never a 500 and never a duplicate."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from shortener.services.slugs import SLUG_ALPHABET

from .conftest import LINKS, assert_problem

pytestmark = pytest.mark.integration

SERVER_SETTINGS = {"SHORTENER_SLUG_LENGTH": "1"}
CREATES = 100
EXHAUSTED = {409, 503}


def one_character_slugs(battery) -> set[str]:
    snapshot = battery.storage.snapshot()
    return {row["slug"] for row in snapshot["links"].values() if len(row["slug"]) == 1}


def test_hundred_parallel_generated_creates(battery):
    start = threading.Barrier(CREATES)

    def create(number: int):
        start.wait()
        return battery.call(
            "POST", LINKS, auth=battery.alice, json={"target": f"https://example.com/{number}"}
        )

    with ThreadPoolExecutor(max_workers=CREATES) as pool:
        responses = list(pool.map(create, range(CREATES)))

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201} | EXHAUSTED, statuses
    created = [response.json() for response in responses if response.status_code == 201]
    slugs = [link["slug"] for link in created]
    assert len(slugs) == len(set(slugs)), Counter(slugs).most_common(3)
    assert all(len(slug) == 1 and slug in SLUG_ALPHABET for slug in slugs)
    assert len(created) > 0
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, EXHAUSTED)
    # Each 201 is exactly one stored link, with the target that request sent.
    stored = {row["slug"]: row["target"] for row in battery.storage.snapshot()["links"].values()}
    for link in created:
        assert stored[link["slug"]] == link["target"]
    assert one_character_slugs(battery) == set(slugs)


def test_when_every_slug_is_taken_a_create_is_refused_cleanly(battery):
    """Take the rest by name, then ask for a generated one: 409 or 503, nothing stored."""
    for slug in sorted(set(SLUG_ALPHABET) - one_character_slugs(battery)):
        response = battery.call(
            "POST", LINKS, auth=battery.bob, json={"target": "https://example.org/", "slug": slug}
        )
        assert response.status_code == 201, response.text
    assert one_character_slugs(battery) == set(SLUG_ALPHABET)

    with battery.storage.unchanged():
        for _ in range(5):
            response = battery.call(
                "POST", LINKS, auth=battery.alice, json={"target": "https://example.com/late"}
            )
            problem = assert_problem(response, EXHAUSTED)
            assert problem["detail"]


def test_chosen_slugs_still_work_when_generated_ones_ran_out(battery):
    """Only generation is exhausted: a longer slug of the client's choosing is fine."""
    response = battery.call(
        "POST", LINKS, auth=battery.alice, json={"target": "https://example.com/", "slug": "long"}
    )
    assert response.status_code == 201, response.text
