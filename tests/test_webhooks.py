"""Webhooks (issue 10): /api/v1.0/webhooks, the outbox, signed deliveries, retries, disabling."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_app
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from support import WebhookReceiver, assert_problem

from shortener import webhook_sender
from shortener.services.webhooks import retry_delay
from shortener.storage.tables import webhook_messages, webhooks
from shortener.webhook_sender import Sender

WEBHOOKS = "/api/v1.0/webhooks"
LINKS = "/api/v1.0/links"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=\Z")
REPRESENTATION = {
    "uri",
    "url",
    "events",
    "tags",
    "active",
    "owner",
    "deliveries",
    "created_at",
    "updated_at",
    "consecutive_failures",
    "disabled_at",
}
ALL_EVENTS = ["link.created", "link.updated", "link.deleted", "link.visited"]


class Clock:
    """The sender's clock: the real time until a test sets ``now``."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def app(database_url):
    app = make_app(database_url, WEBHOOK_ALLOW_PRIVATE=True)
    yield app
    app.extensions["shortener"].close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sender(app, clock):
    sender = Sender(app.extensions["shortener"].database, allow_private=True, clock=clock)
    yield sender
    sender.session.close()


def create_webhook(client, auth, url, **body) -> dict:
    body = {"url": url, "events": ALL_EVENTS, **body}
    response = client.post(WEBHOOKS, json=body, auth=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def count(app, table) -> int:
    with app.extensions["shortener"].database.read() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def path_of(uri: str) -> str:
    return uri.removeprefix("http://localhost")


# -- the resource ---------------------------------------------------------------------------
def test_create_shows_the_secret_once(client, alice, receiver):
    response = client.post(
        WEBHOOKS, json={"url": receiver.url, "events": ["link.created"]}, auth=alice
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == REPRESENTATION | {"secret"}
    assert SECRET.match(body["secret"])
    assert response.headers["Location"] == body["uri"]
    assert response.headers["ETag"]
    assert body["events"] == ["link.created"]
    assert body["active"] is True and body["tags"] is None
    assert body["owner"] == "http://localhost/api/v1.0/users/alice"
    assert body["deliveries"] == body["uri"] + "/deliveries"
    again = client.get(path_of(body["uri"]), auth=alice)
    assert again.status_code == 200
    assert set(again.get_json()) == REPRESENTATION  # never the secret again
    page = client.get(WEBHOOKS, auth=alice).get_json()
    assert [item["uri"] for item in page["webhooks"]] == [body["uri"]]
    assert "secret" not in page["webhooks"][0]


def test_patch_and_delete(client, alice, receiver):
    created = create_webhook(client, alice, receiver.url)
    path = path_of(created["uri"])
    first_tag = client.get(path, auth=alice).headers["ETag"]
    response = client.patch(
        path, json={"events": ["link.deleted", "link.created"], "tags": ["News", "news"]},
        auth=alice,
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["events"] == ["link.created", "link.deleted"]
    assert body["tags"] == ["News"]
    assert body["url"] == receiver.url
    stale = client.patch(path, json={"active": False}, auth=alice, headers={"If-Match": first_tag})
    assert_problem(stale, 412)
    current = client.get(path, auth=alice).headers["ETag"]
    paused = client.patch(path, json={"active": False}, auth=alice, headers={"If-Match": current})
    assert paused.get_json()["active"] is False
    assert client.delete(path, auth=alice).status_code == 204
    assert_problem(client.get(path, auth=alice), 404)
    assert_problem(client.delete(path, auth=alice), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["link.created"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["link.created"]}, "url"),
        ({"url": "/relative", "events": ["link.created"]}, "url"),
        ({"url": "https://example.com/"}, "events"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": ["link.exploded"]}, "events"),
        ({"url": "https://example.com/", "events": ["link.created"], "tags": [""]}, "tags"),
        ({"url": "https://example.com/", "events": ["link.created"], "tags": ["a/b"]}, "tags"),
        ({"url": "https://example.com/", "events": ["link.created"], "active": "yes"}, "active"),
        ({"url": "https://example.com/", "events": ["link.created"], "secret": "x"}, "secret"),
    ],
)
def test_bad_input_is_422_and_stores_nothing(client, alice, app, body, field):
    assert_problem(client.post(WEBHOOKS, json=body, auth=alice), 422, field=field)
    assert count(app, webhooks) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_targets_are_refused(database_url, url, alice_credentials=("alice", "pw")):
    app = make_app(database_url)  # SHORTENER_WEBHOOK_ALLOW_PRIVATE unset
    try:
        client = app.test_client()
        from shortener.services.actors import OPERATOR

        app.extensions["shortener"].users.create(OPERATOR, username="alice", password="pw")
        body = {"url": url, "events": ["link.created"]}
        assert_problem(client.post(WEBHOOKS, json=body, auth=alice_credentials), 422, field="url")
        assert count(app, webhooks) == 0
        good = client.post(
            WEBHOOKS, json={"url": "https://example.com/hook", "events": ["link.created"]},
            auth=alice_credentials,
        )  # fmt: skip
        assert good.status_code == 201
        patched = client.patch(path_of(good.get_json()["uri"]), json={"url": url},
                               auth=alice_credentials)  # fmt: skip
        assert_problem(patched, 422, field="url")
    finally:
        app.extensions["shortener"].close()


def test_owners_and_admins(client, alice, bob, admin, receiver):
    mine = create_webhook(client, alice, receiver.url)
    assert_problem(client.get(path_of(mine["uri"]), auth=bob), 404)
    assert_problem(client.delete(path_of(mine["uri"]), auth=bob), 404)
    assert client.get(WEBHOOKS, auth=bob).get_json()["webhooks"] == []
    everyone = client.get(WEBHOOKS, auth=admin).get_json()["webhooks"]
    assert [item["uri"] for item in everyone] == [mine["uri"]]
    assert client.get(path_of(mine["uri"]), auth=admin).status_code == 200
    assert_problem(client.get(WEBHOOKS + "?user=alice", auth=bob), 403)
    for_bob = client.post(
        WEBHOOKS + "?user=bob", json={"url": receiver.url, "events": ["link.created"]},
        auth=admin,
    )  # fmt: skip
    assert for_bob.status_code == 201
    assert for_bob.get_json()["owner"].endswith("/users/bob")
    assert len(client.get(WEBHOOKS, auth=bob).get_json()["webhooks"]) == 1


def test_token_scopes(client, alice, receiver):
    def token(scopes):
        body = {"name": "t", "scopes": scopes}
        return client.post("/api/v1.0/tokens", json=body, auth=alice).get_json()["token"]

    reader = {"Authorization": f"Bearer {token(['webhooks:read'])}"}
    links_only = {"Authorization": f"Bearer {token(['links:read', 'links:write'])}"}
    body = {"url": receiver.url, "events": ["link.created"]}
    assert_problem(client.post(WEBHOOKS, json=body, headers=reader), 403)
    assert_problem(client.get(WEBHOOKS, headers=links_only), 403)
    assert client.get(WEBHOOKS, headers=reader).status_code == 200
    default = client.post("/api/v1.0/tokens", json={"name": "d"}, auth=alice).get_json()
    assert {"webhooks:read", "webhooks:write"} <= set(default["scopes"])


# -- deliveries ------------------------------------------------------------------------------
def test_a_link_change_is_delivered_signed(client, alice, receiver, sender, app):
    hook = create_webhook(client, alice, receiver.url)
    created = client.post(LINKS, json={"target": "https://example.com/a", "slug": "a1"}, auth=alice)
    assert created.status_code == 201
    assert receiver.received == []  # nothing is sent inside the request
    assert sender.run_once() == 1
    ((headers, body),) = receiver.received
    payload = Webhook(hook["secret"]).verify(body, headers)
    assert payload["type"] == "link.created"
    assert payload["data"]["slug"] == "a1"
    assert payload["data"]["changes"]["target"] == [None, "https://example.com/a"]
    assert payload["data"]["link"]["target"] == "https://example.com/a"
    assert headers["webhook-id"].startswith("msg_")
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]+=*", headers["webhook-signature"])
    assert headers["Content-Type"] == "application/json"
    deliveries = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"]
    (delivery,) = deliveries
    assert delivery["status"] == "succeeded"
    assert delivery["status_code"] == 204
    assert delivery["attempt"] == 1
    assert delivery["event"] == "link.created"
    assert delivery["message_id"] == headers["webhook-id"]
    assert delivery["message_status"] == "delivered"
    assert isinstance(delivery["response_time_ms"], int)
    assert delivery["next_attempt_at"] is None
    assert sender.run_once() == 0  # delivered once


def test_update_and_delete_events_follow_the_subscription(client, alice, receiver, sender):
    create_webhook(client, alice, receiver.url, events=["link.updated", "link.deleted"])
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "b1"}, auth=alice)
    client.patch(LINKS + "/b1", json={"title": "Hello"}, auth=alice)
    client.delete(LINKS + "/b1", auth=alice)
    sender.run_once()
    events = sorted(receiver.events(), key=lambda event: event["type"])
    assert [event["type"] for event in events] == ["link.deleted", "link.updated"]
    assert events[1]["data"]["changes"] == {"title": [None, "Hello"]}
    assert events[0]["data"]["slug"] == "b1"


def test_only_the_owners_links_and_active_webhooks(client, alice, bob, receiver, sender):
    create_webhook(client, bob, receiver.url)
    paused = create_webhook(client, alice, receiver.url)
    client.patch(path_of(paused["uri"]), json={"active": False}, auth=alice)
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    assert sender.run_once() == 0
    assert receiver.received == []


def test_tags_filter(client, alice, receiver, sender):
    create_webhook(client, alice, receiver.url, events=["link.created"], tags=["News"])
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "untagged"}, auth=alice)
    tagged = client.post(
        LINKS, json={"target": "https://example.com/b", "slug": "tagged", "tags": ["NEWS"]},
        auth=alice,
    )  # fmt: skip
    if tagged.status_code == 422 and "tags" in tagged.get_json().get("errors", {}):
        pytest.skip("links have no tags yet")
    sender.run_once()
    assert [event["data"]["slug"] for event in receiver.events()] == ["tagged"]


def test_failures_are_retried_with_backoff_then_given_up(client, alice, receiver, sender, clock):
    receiver.statuses = [500]
    hook = create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    start = clock.now = datetime.now(UTC)
    assert sender.run_once() == 1
    (failed,) = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"]
    assert failed["status"] == "failed" and failed["status_code"] == 500
    assert failed["message_status"] == "pending"
    retry_at = datetime.fromisoformat(failed["next_attempt_at"])
    assert abs((retry_at - start).total_seconds() - retry_delay(1)) < 1
    clock.now = start + timedelta(seconds=retry_delay(1) - 1)
    assert sender.run_once() == 0  # not yet
    clock.now = retry_at + timedelta(milliseconds=1)  # the API shows milliseconds
    assert sender.run_once() == 1
    second = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"][0]
    assert second["attempt"] == 2
    assert retry_delay(2) == 2 * retry_delay(1)
    next_at = datetime.fromisoformat(second["next_attempt_at"])
    assert abs((next_at - clock.now).total_seconds() - retry_delay(2)) < 1
    # A day after the message was queued, the next failure gives it up.
    receiver.statuses = [503]
    clock.now = start + timedelta(hours=24)
    assert sender.run_once() == 1
    last = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"][0]
    assert last["message_status"] == "failed" and last["next_attempt_at"] is None
    clock.now += timedelta(days=2)
    assert sender.run_once() == 0
    assert len(receiver.received) == 3
    # The same message every time: the same webhook-id.
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 1


def test_twenty_failures_in_a_row_disable_the_webhook(client, alice, receiver, sender, clock):
    receiver.statuses = [500]
    hook = create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    clock.now = datetime.now(UTC)
    for attempt in range(1, 21):
        assert sender.run_once() == 1, attempt
        state = client.get(path_of(hook["uri"]), auth=alice).get_json()
        assert state["consecutive_failures"] == attempt
        clock.now += timedelta(seconds=retry_delay(attempt))
    assert state["active"] is False
    assert state["disabled_at"] is not None
    assert sender.run_once() == 0  # its message is dropped, never sent again
    client.post(LINKS, json={"target": "https://example.com/b"}, auth=alice)
    assert sender.run_once() == 0
    assert len(receiver.received) == 20
    # Turned on again: the failures are forgotten, new changes are delivered.
    receiver.statuses = [200]
    again = client.patch(path_of(hook["uri"]), json={"active": True}, auth=alice).get_json()
    assert again["consecutive_failures"] == 0 and again["disabled_at"] is None
    client.post(LINKS, json={"target": "https://example.com/c"}, auth=alice)
    assert sender.run_once() == 1
    assert receiver.events()[-1]["data"]["link"]["target"] == "https://example.com/c"


def test_410_gone_disables_at_once(client, alice, receiver, sender):
    receiver.statuses = [410]
    hook = create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    sender.run_once()
    state = client.get(path_of(hook["uri"]), auth=alice).get_json()
    assert state["active"] is False
    (delivery,) = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"]
    assert delivery["status_code"] == 410 and delivery["message_status"] == "failed"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_addresses_are_checked_again_at_send_time(
    client, alice, receiver, app, clock, host
):
    """A literal address, and a name resolved at send time (localhost: 127.0.0.1 and ::1)."""
    url = receiver.url.replace("127.0.0.1", host)
    hook = create_webhook(client, alice, url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    strict = Sender(app.extensions["shortener"].database, allow_private=False, clock=clock)
    assert strict.run_once() == 1
    strict.session.close()
    assert receiver.received == []
    (delivery,) = client.get(path_of(hook["deliveries"]), auth=alice).get_json()["deliveries"]
    assert delivery["status"] == "failed" and delivery["status_code"] is None
    assert "private" in delivery["error"]


def test_visits_are_delivered_in_batches(client, alice, receiver, sender, app):
    create_webhook(client, alice, receiver.url, events=["link.visited"])
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "v1"}, auth=alice)
    for _ in range(3):
        assert (
            client.get("/v1", headers={"User-Agent": "Mozilla/5.0 Firefox/120.0"}).status_code
            == 302
        )
    app.extensions["shortener"].recorder.flush()
    assert sender.run_once() == 1
    (event,) = receiver.events()
    assert event["type"] == "link.visited"
    assert [visit["slug"] for visit in event["data"]["visits"]] == ["v1"] * 3
    assert "ip" not in event["data"]["visits"][0]


def test_visits_cost_no_message_without_a_subscriber(client, alice, receiver, app):
    create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "v2"}, auth=alice)
    before = count(app, webhook_messages)
    client.get("/v2")
    app.extensions["shortener"].recorder.flush()
    assert count(app, webhook_messages) == before


def test_the_outbox_survives_a_restart(database_url, receiver, clock):
    first = make_app(database_url, WEBHOOK_ALLOW_PRIVATE=True)
    from shortener.services.actors import OPERATOR

    first.extensions["shortener"].users.create(OPERATOR, username="alice", password="pw")
    client = first.test_client()
    create_webhook(client, ("alice", "pw"), receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=("alice", "pw"))
    first.extensions["shortener"].close()
    second = make_app(database_url, WEBHOOK_ALLOW_PRIVATE=True)
    try:
        sender = Sender(second.extensions["shortener"].database, allow_private=True, clock=clock)
        assert sender.run_once() == 1
        assert receiver.events()[0]["type"] == "link.created"
    finally:
        second.extensions["shortener"].close()


def test_a_failing_link_change_queues_nothing(client, alice, receiver, app):
    create_webhook(client, alice, receiver.url)
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "dup"}, auth=alice)
    before = count(app, webhook_messages)
    taken = client.post(LINKS, json={"target": "https://example.com/b", "slug": "dup"}, auth=alice)
    assert taken.status_code == 409
    assert count(app, webhook_messages) == before


def test_visits_follow_the_tags_filter(client, alice, receiver, sender, app):
    create_webhook(client, alice, receiver.url, events=["link.visited"], tags=["promo"])
    plain = {"target": "https://example.com/a", "slug": "plain"}
    tagged = {"target": "https://example.com/b", "slug": "tagged", "tags": ["Promo"]}
    assert client.post(LINKS, json=plain, auth=alice).status_code == 201
    response = client.post(LINKS, json=tagged, auth=alice)
    if response.status_code == 422 and "tags" in response.get_json().get("errors", {}):
        pytest.skip("links have no tags yet")
    client.get("/plain")
    client.get("/tagged")
    app.extensions["shortener"].recorder.flush()
    assert sender.run_once() == 1
    (event,) = receiver.events()
    assert [visit["slug"] for visit in event["data"]["visits"]] == ["tagged"]


def test_a_repeated_create_never_shows_the_secret_again(client, alice, receiver, app):
    headers = {"Idempotency-Key": "hook-1"}
    body = {"url": receiver.url, "events": ["link.created"]}
    first = client.post(WEBHOOKS, json=body, auth=alice, headers=headers)
    assert first.status_code == 201
    again = client.post(WEBHOOKS, json=body, auth=alice, headers=headers)
    assert_problem(again, 409)
    assert count(app, webhooks) == 1


def test_finished_messages_are_purged_after_30_days(client, alice, receiver, sender, clock, app):
    create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    sender.run_once()
    client.post(LINKS, json={"target": "https://example.com/b"}, auth=alice)  # still pending
    clock.now = datetime.now(UTC) + timedelta(days=29)
    assert sender.outbox.purge() == 0
    clock.now = datetime.now(UTC) + timedelta(days=31)
    assert sender.outbox.purge() == 1
    assert count(app, webhook_messages) == 1  # the pending one stays


def test_the_sender_command_delivers_until_sigterm(client, alice, receiver, database_url):
    create_webhook(client, alice, receiver.url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a", "slug": "by-cli"}, auth=alice)
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHORTENER_")}
    env.update(
        SHORTENER_DATABASE_URL=database_url,
        SHORTENER_WEBHOOK_ALLOW_PRIVATE="true",
        SHORTENER_WEBHOOK_POLL_INTERVAL="0.1",
    )
    command = [str(Path(sys.executable).with_name("shortener")), "webhooks", "send"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        (event,) = receiver.wait_for(1)
        assert event["data"]["slug"] == "by-cli"
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert "stopped" in log


def test_deleting_a_user_deletes_their_webhooks_and_messages(client, admin, alice, receiver, app):
    create_webhook(client, alice, receiver.url)
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    assert count(app, webhook_messages) == 1
    assert client.delete("/api/v1.0/users/alice?purge=true", auth=admin).status_code == 204
    assert count(app, webhooks) == 0
    assert count(app, webhook_messages) == 0


def test_the_sender_connects_to_the_address_it_checked(client, alice, receiver, app, monkeypatch):
    """The name is resolved once: the connection goes to the checked address, and the request
    still names the host (Host header; TLS would check the name)."""
    checked = []

    def only_loopback_v4(address: str) -> bool:
        checked.append(address)
        return address != "127.0.0.1"

    monkeypatch.setattr(webhook_sender, "refused_address", only_loopback_v4)
    answers = iter(["127.0.0.1", "127.0.0.2"])  # a second lookup would get another address
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(webhook_sender.socket, "getaddrinfo", resolve)
    url = receiver.url.replace("127.0.0.1", "hooks.example.com")
    create_webhook(client, alice, url, events=["link.created"])
    client.post(LINKS, json={"target": "https://example.com/a"}, auth=alice)
    strict = Sender(app.extensions["shortener"].database, allow_private=False)
    try:
        assert strict.run_once() == 1
    finally:
        strict.session.close()
    ((headers, _),) = receiver.received
    assert headers["Host"].startswith("hooks.example.com:")
    assert checked == ["127.0.0.1"]


def test_a_webhook_made_by_another_process_gets_the_next_create_at_once(
    database_url, app, client, alice, receiver
):
    """Whether a create's owner has an active webhook is read by the create's own INSERT:
    no process keeps a stale answer, however recently the webhook was made or changed."""
    other = make_app(database_url, WEBHOOK_ALLOW_PRIVATE=True)
    try:
        elsewhere = other.test_client()
        client.post(LINKS, json={"target": "https://example.com/before"}, auth=alice)
        assert count(app, webhook_messages) == 0
        webhook = create_webhook(elsewhere, alice, receiver.url, events=["link.created"])
        client.post(LINKS, json={"target": "https://example.com/first"}, auth=alice)
        assert count(app, webhook_messages) == 1
        elsewhere.patch(path_of(webhook["uri"]), json={"active": False}, auth=alice)
        client.post(LINKS, json={"target": "https://example.com/paused"}, auth=alice)
        assert count(app, webhook_messages) == 1
        elsewhere.patch(path_of(webhook["uri"]), json={"active": True}, auth=alice)
        batch = [{"target": f"https://example.com/batch/{n}"} for n in range(3)]
        answer = client.post(f"{LINKS}/batch", json={"links": batch}, auth=alice)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert count(app, webhook_messages) == 4
    finally:
        other.extensions["shortener"].close()
