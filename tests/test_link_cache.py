"""The per-worker link cache (services/link_cache.py): bounded, no negative caching, and every
change of a link seen by the very next redirect of every app on the host, and within a poll
by apps with another host counter (another host)."""

from __future__ import annotations

import time

import pytest
from conftest import PASSWORD, make_app

from shortener import create_app
from shortener.services.actors import OPERATOR
from shortener.settings import ConfigurationError
from shortener.storage.engine import FILE_CHECK_SECONDS

LINKS = "/api/v1.0/links"
CAROL = ("carol", PASSWORD)
DEADLINE_SECONDS = 5.0


@pytest.fixture
def apps(database_url, tmp_path):
    """``apps(**config)``: apps on one database; the first one makes the user carol."""
    made = []

    def build(**config):
        app = make_app(database_url, **config)
        if not made:
            app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["shortener"].close()


def create(client, slug: str, target: str = "https://example.com/") -> None:
    response = client.post(LINKS, json={"target": target, "slug": slug}, auth=CAROL)
    assert response.status_code == 201, response.get_data(as_text=True)


def patch(client, slug: str, target: str) -> None:
    response = client.patch(f"{LINKS}/{slug}", json={"target": target}, auth=CAROL)
    assert response.status_code == 200, response.get_data(as_text=True)


def location(client, slug: str) -> str | None:
    response = client.get(f"/{slug}")
    return response.headers.get("Location") if response.status_code != 404 else None


def eventually(condition) -> bool:
    """Polls ``condition`` until it holds or the deadline passes (no timed assertion)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_found_link_is_served_from_the_cache(apps):
    app = apps()
    client = app.test_client()
    create(client, "go")
    assert location(client, "go") == "https://example.com/"
    assert "go" in app.extensions["shortener"].links.cache._entries


def test_unknown_slugs_are_not_cached_so_a_new_link_is_found_at_once(apps):
    app = apps()
    client = app.test_client()
    assert location(client, "soon") is None
    assert len(app.extensions["shortener"].links.cache) == 0
    create(client, "soon", "https://example.com/soon")
    assert location(client, "soon") == "https://example.com/soon"


def test_every_change_is_seen_by_the_next_redirect(apps):
    client = apps().test_client()
    create(client, "go")
    for n in range(5):
        patch(client, "go", f"https://example.com/{n}")
        assert location(client, "go") == f"https://example.com/{n}"
    response = client.put(
        f"{LINKS}/go",
        json={"target": "https://example.com/put", "redirect_status": 301},
        auth=CAROL,
    )
    assert response.status_code == 200
    answer = client.get("/go")
    assert (answer.status_code, answer.headers["Location"]) == (301, "https://example.com/put")
    assert client.delete(f"{LINKS}/go", auth=CAROL).status_code == 204
    assert location(client, "go") is None


def test_purging_a_user_is_seen_by_the_next_redirect(apps):
    app = apps()
    services = app.extensions["shortener"]
    services.users.create(OPERATOR, username="dave", password=PASSWORD)
    client = app.test_client()
    response = client.post(
        LINKS, json={"target": "https://example.com/", "slug": "dave"}, auth=("dave", PASSWORD)
    )
    assert response.status_code == 201
    assert location(client, "dave") == "https://example.com/"
    services.users.delete(OPERATOR, "dave", purge=True)
    assert location(client, "dave") is None


def test_another_worker_on_the_host_sees_the_change_at_once(apps, tmp_path):
    """Two apps sharing the host counter file: two workers of one server."""
    counter = str(tmp_path / "host.counter")
    first, second = apps(LINK_CHANGES_FILE=counter), apps(LINK_CHANGES_FILE=counter)
    one, two = first.test_client(), second.test_client()
    create(one, "go")
    assert location(two, "go") == "https://example.com/"  # cached by the second
    for n in range(5):
        patch(one, "go", f"https://example.com/{n}")
        assert location(two, "go") == f"https://example.com/{n}"
    assert one.delete(f"{LINKS}/go", auth=CAROL).status_code == 204
    assert location(two, "go") is None


def test_another_host_sees_the_change_within_a_poll(apps, tmp_path):
    """Another host counter: only the database's counter tells the second app."""
    first = apps(LINK_CHANGES_FILE=str(tmp_path / "a.counter"))
    second = apps(LINK_CHANGES_FILE=str(tmp_path / "b.counter"))
    one, two = first.test_client(), second.test_client()
    create(one, "go")
    assert location(two, "go") == "https://example.com/"
    patch(one, "go", "https://example.com/moved")
    assert eventually(lambda: location(two, "go") == "https://example.com/moved")
    assert one.delete(f"{LINKS}/go", auth=CAROL).status_code == 204
    assert eventually(lambda: location(two, "go") is None)


def test_the_cache_is_bounded_least_recently_used_first(apps):
    app = apps(LINK_CACHE_SIZE=2)
    client = app.test_client()
    for slug in ("a", "b", "c"):
        create(client, slug)
    cache = app.extensions["shortener"].links.cache
    for slug in ("a", "b", "a", "c"):
        assert location(client, slug) == "https://example.com/"
    assert list(cache._entries) == ["a", "c"]  # b was the least recently used


def test_size_zero_turns_the_cache_off(apps):
    app = apps(LINK_CACHE_SIZE=0)
    client = app.test_client()
    assert app.extensions["shortener"].links.cache is None
    create(client, "go")
    assert location(client, "go") == "https://example.com/"
    patch(client, "go", "https://example.com/new")
    assert location(client, "go") == "https://example.com/new"


@pytest.mark.parametrize("value", [-1, 10_000_001, "many", 1.5, True])
def test_link_cache_size_is_validated(tmp_path, value):
    with pytest.raises(ConfigurationError, match="SHORTENER_LINK_CACHE_SIZE"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LINK_CACHE_SIZE": value})


def test_the_counter_file_sits_next_to_a_sqlite_database(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    try:
        path = app.extensions["shortener"].links.changes.host_counter.path
        assert path == str(tmp_path / "x.db") + ".link-changes"
    finally:
        app.extensions["shortener"].close()


def test_cached_links_are_answered_while_the_database_is_unreachable(tmp_path):
    """A worker answers the links it holds without the database; others get 503 (SQLite: the
    file moved away)."""
    database = tmp_path / "shortener.db"
    app = make_app(f"sqlite:///{database}")
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        client = app.test_client()
        create(client, "go")
        assert location(client, "go") == "https://example.com/"
        database.rename(tmp_path / "away.db")
        try:
            time.sleep(FILE_CHECK_SECONDS + 0.1)  # past the redirect connection's file check
            assert location(client, "go") == "https://example.com/"
            assert client.get("/elsewhere").status_code == 503
        finally:
            (tmp_path / "away.db").rename(database)
    finally:
        app.extensions["shortener"].close()
