"""Webhooks against ``shortener serve`` (gunicorn, the sender process beside the workers), on
SQLite and PostgreSQL: a link's changes and visits reach a receiver on 127.0.0.1, signed per
Standard Webhooks, and a receiver that never answers delays neither a redirect nor an API
answer."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from standardwebhooks.webhooks import Webhook
from support import WebhookReceiver

pytestmark = pytest.mark.integration

WEBHOOKS = "/api/v1.0/webhooks"
LINKS = "/api/v1.0/links"
TIMEOUT = 30


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def silent_receiver():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/never"
    listener.close()


def test_changes_and_visits_are_delivered_signed(shared_live_server, receiver):
    server = shared_live_server
    owner = server.create_user("hooks")
    created = requests.post(
        server.url + WEBHOOKS,
        json={"url": receiver.url, "events": ["link.created", "link.updated", "link.visited"]},
        auth=owner,
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    slug = owner[0]
    response = requests.post(
        server.url + LINKS,
        json={"target": "https://example.com/live", "slug": slug},
        auth=owner,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    (event,) = receiver.wait_for(1)
    headers, body = receiver.received[0]
    assert Webhook(hook["secret"]).verify(body, headers) == event
    assert event["type"] == "link.created" and event["data"]["slug"] == slug
    visit = requests.get(f"{server.url}/{slug}", allow_redirects=False, timeout=TIMEOUT)
    assert visit.status_code == 302
    events = receiver.wait_for(2)
    assert events[1]["type"] == "link.visited"
    assert events[1]["data"]["visits"][0]["slug"] == slug
    deliveries = requests.get(hook["deliveries"], auth=owner, timeout=TIMEOUT).json()
    assert [item["status"] for item in deliveries["deliveries"]] == ["succeeded", "succeeded"]
    assert all(item["status_code"] == 204 for item in deliveries["deliveries"])


def test_a_receiver_that_never_answers_delays_nothing(shared_live_server, silent_receiver):
    server = shared_live_server
    owner = server.create_user("stuck")
    body = {"url": silent_receiver, "events": ["link.created", "link.visited"]}
    assert requests.post(server.url + WEBHOOKS, json=body, auth=owner, timeout=TIMEOUT).ok
    slug = owner[0]
    for number in range(5):
        started = time.monotonic()
        response = requests.post(
            server.url + LINKS,
            json={"target": f"https://example.com/{number}", "slug": f"{slug}-{number}"},
            auth=owner,
            timeout=TIMEOUT,
        )
        assert response.status_code == 201
        visit = requests.get(f"{server.url}/{slug}-{number}", allow_redirects=False, timeout=5)
        assert visit.status_code == 302
        # Well below the sender's read timeout (10 s) for every request.
        assert time.monotonic() - started < 3
