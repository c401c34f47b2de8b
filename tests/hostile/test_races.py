"""Case 9: racing writers across 2 worker processes. One slug created 50 times at once has one
winner and 49 clean 409s; a link deleted during a storm of redirects never causes a 500 or a
redirect to the wrong place, and its visits vanish with it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import LINKS, TIMEOUT, assert_problem

pytestmark = pytest.mark.integration

RACERS = 50


def new_revisions(after: dict, before: dict) -> list[tuple[str, str]]:
    """(slug, event) of the history revisions in ``after`` and not in ``before``, oldest
    first, taken out of ``after`` so the rest of the snapshots can be compared."""
    revisions = after.get("link_revisions", {})
    added = sorted(key for key in revisions if key not in before.get("link_revisions", {}))
    return [(row["slug"], row["event"]) for row in (revisions.pop(key) for key in added)]


def test_fifty_parallel_creates_of_one_slug(battery):
    """One 201, 49 409s naming the taken slug, and exactly the winner's link stored."""
    before = battery.storage.snapshot()
    start = threading.Barrier(RACERS)

    def create(number: int):
        target = f"https://example.com/racer/{number}"
        start.wait()
        response = battery.call(
            "POST", LINKS, auth=battery.alice, json={"target": target, "slug": "raced"}
        )
        return target, response

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        results = list(pool.map(create, range(RACERS)))

    statuses = Counter(response.status_code for _, response in results)
    assert statuses == {201: 1, 409: RACERS - 1}, statuses
    for _, response in results:
        if response.status_code == 409:
            problem = assert_problem(response, 409)
            assert problem["type"].endswith("/problems/slug-taken")
    (winner,) = [target for target, response in results if response.status_code == 201]

    after = battery.storage.snapshot()
    added = [row for key, row in after["links"].items() if key not in before["links"]]
    assert [(row["slug"], row["target"]) for row in added] == [("raced", winner)]
    del after["links"][(added[0]["id"],)]
    # The one create left one revision in the link's history; the refused ones left none.
    assert new_revisions(after, before) == [("raced", "link.created")]
    assert after == before


def test_fifty_parallel_puts_of_one_free_slug(battery):
    """PUT creates when the slug is free: racing PUTs by one owner create once and replace
    otherwise; racing PUTs by another user get 409, never a 500."""
    start = threading.Barrier(RACERS)

    def put(number: int):
        owner = battery.alice if number % 2 else battery.bob
        start.wait()
        return owner, battery.call(
            "PUT",
            f"{LINKS}/put-raced",
            auth=owner,
            json={"target": f"https://example.com/put/{number}"},
        )

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        results = list(pool.map(put, range(RACERS)))

    statuses = Counter(response.status_code for _, response in results)
    assert set(statuses) <= {200, 201, 409}, statuses
    assert statuses[201] == 1, statuses
    (creator,) = [owner for owner, response in results if response.status_code == 201]
    for owner, response in results:
        if owner != creator:
            assert_problem(response, 409)
        else:
            assert response.status_code in (200, 201)
    stored = battery.storage.link("put-raced")
    assert stored["target"].startswith("https://example.com/put/")
    assert battery.call("DELETE", f"{LINKS}/put-raced", auth=creator).status_code == 204


def test_a_link_deleted_during_a_redirect_storm(battery):
    """Redirects before the delete go to the target, after it 404; nothing else, ever. Once the
    storm is over the database is as it was before the link existed."""
    before = battery.storage.snapshot()
    target = "https://example.com/storm"
    battery.create_link(battery.alice, target=target, slug="storm")
    link_id = battery.storage.link("storm")["id"]
    stop = threading.Event()
    deleted_at: list[float] = []
    results: list[tuple[float, float, int, str | None]] = []
    lock = threading.Lock()

    def storm():
        session = requests.Session()
        while not stop.is_set():
            sent = time.monotonic()
            response = session.get(f"{battery.url}/storm", allow_redirects=False, timeout=TIMEOUT)
            with lock:
                results.append(
                    (sent, time.monotonic(), response.status_code, response.headers.get("Location"))
                )
        session.close()

    threads = [threading.Thread(target=storm) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        deleted = battery.call("DELETE", f"{LINKS}/storm", auth=battery.alice)
        deleted_at.append(time.monotonic())
        assert deleted.status_code == 204
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    statuses = Counter(status for _, _, status, _ in results)
    assert set(statuses) <= {302, 404}, statuses
    assert statuses[302] > 0 and statuses[404] > 0, statuses
    for _, _, status, location in results:
        if status == 302:
            assert location == target
        else:
            assert location is None
    # Every redirect sent after the delete answered, in whichever worker, sees it gone.
    late = [status for sent, _, status, _ in results if sent > deleted_at[0]]
    assert late and set(late) == {404}, Counter(late)

    # The visits of the storm were counted against a link that is gone: none may remain.
    time.sleep(2.0)  # two flush intervals: whatever the workers buffered has been handled
    assert battery.storage.link("storm") is None
    assert battery.storage.visits_of(link_id) == []
    # Only the link's history stays (it outlives a delete): its creation and its deletion.
    after = battery.storage.snapshot()
    assert new_revisions(after, before) == [("storm", "link.created"), ("storm", "link.deleted")]
    assert after == before
