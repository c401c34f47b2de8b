"""Link events (services/link_events.py): every change of a link reaches the subscribers inside
its transaction, with who made it and with which credential."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support import assert_problem

from shortener.services.actors import OPERATOR
from shortener.services.link_events import COMMAND_LINE, PASSWORD, TOKEN
from shortener.services.links import LinkFields
from shortener.storage.tables import links


@pytest.fixture
def seen(app):
    """The events published, as the subscribers receive them."""
    events = []

    def subscriber(connection, published):
        # Inside the change's transaction: the change is visible on its connection.
        for event in published:
            row = connection.execute(select(links.c.id).where(links.c.id == event.link_id))
            events.append((event, row.first() is not None))

    app.extensions["shortener"].link_events.subscribe(subscriber)
    return events


def test_create_update_delete_publish_events_with_the_credential(client, alice, seen):
    created = client.post(
        "/api/v1.0/links",
        json={"slug": "ev1", "target": "https://example.com/a", "password": "s3cret-pass"},
        auth=alice,
    )
    assert created.status_code == 201
    token = client.post(
        "/api/v1.0/tokens", json={"name": "ci", "scopes": ["links:write"]}, auth=alice
    ).get_json()
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert (
        client.patch(
            "/api/v1.0/links/ev1", json={"title": "A", "password": None}, headers=bearer
        ).status_code
        == 200
    )
    assert client.patch("/api/v1.0/links/ev1", json={"title": "A"}, auth=alice).status_code == 200
    assert client.delete("/api/v1.0/links/ev1", auth=alice).status_code == 204

    kinds = [(event.kind, exists) for event, exists in seen]
    # The unchanged PATCH published nothing; the delete ran before its event (gone already).
    assert kinds == [("link.created", True), ("link.updated", True), ("link.deleted", False)]
    create, update, delete = (event for event, _ in seen)
    assert create.changes == {
        "slug": (None, "ev1"),
        "target": (None, "https://example.com/a"),
        "redirect_status": (None, 302),
        "has_password": (None, True),
    }
    assert create.acting.channel == PASSWORD and create.acting.user.username == "alice"
    assert update.changes == {"title": (None, "A"), "has_password": (True, False)}
    assert update.acting.channel == TOKEN and update.acting.token_id is not None
    assert update.before.title is None and update.after.title == "A"
    assert delete.changes["title"] == ("A", None) and delete.after is None


def test_a_failing_subscriber_rolls_the_change_back(app, client, alice, row_counts):
    def refuse(connection, events):
        raise RuntimeError("subscriber failed")

    app.extensions["shortener"].link_events.subscribe(refuse)
    answer = client.post(
        "/api/v1.0/links", json={"slug": "ev2", "target": "https://e.com/"}, auth=alice
    )
    assert_problem(answer, 500)
    assert row_counts()["links"] == 0


def test_outside_a_request_the_change_is_the_command_lines(app, alice, seen):
    services = app.extensions["shortener"]
    owner = services.users.get(OPERATOR, "alice")
    services.links.create(owner, LinkFields("https://e.com/"), slug="ev3")
    services.links.delete(OPERATOR, "ev3")
    (create, _), (delete, _) = seen
    assert create.acting.channel == COMMAND_LINE and create.acting.user.username == "alice"
    assert delete.acting.channel == COMMAND_LINE and delete.acting.is_operator
