"""Targets that point at the shortener itself under another spelling are refused (422): the
same address however written (inet_aton's short, decimal, hex and octal forms, IPv4-mapped
IPv6), and any loopback spelling when the shortener is served on loopback. Any port."""

from __future__ import annotations

import pytest
import requests
from support import assert_problem

LINKS = "/api/v1.0/links"
LOOPBACK_SPELLINGS = [
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]
MESSAGE = "Must not point at this shortener (it would redirect to itself)."


@pytest.mark.parametrize("served_on", ["http://127.0.0.1", "http://localhost:5000"])
def test_every_spelling_of_this_host_is_refused(client, alice, row_counts, served_on):
    """Each spelling, on the server's own port and on another: none is stored."""
    before = row_counts()
    for spelling in LOOPBACK_SPELLINGS:
        for port in ("", ":8080"):
            response = client.post(
                LINKS, json={"target": f"http://{spelling}{port}/x"}, auth=alice, base_url=served_on
            )
            body = assert_problem(response, 422, field="target")
            assert body["errors"]["target"] == [MESSAGE], spelling
    assert row_counts() == before


def test_the_same_address_under_another_spelling_is_refused(client, alice):
    """Served on 10.0.0.5: 167772165 and 0xa000005 are that address."""
    for spelling in ("10.0.0.5", "167772165", "0xa000005", "012.0.0.5", "10.5", "[::ffff:a00:5]"):
        response = client.post(
            LINKS, json={"target": f"https://{spelling}/"}, auth=alice, base_url="http://10.0.0.5"
        )
        assert_problem(response, 422, field="target")


def test_the_public_hosts_addresses_are_refused_too(make_user, database_url):
    from conftest import make_app

    app = make_app(database_url, PUBLIC_URL="http://127.0.0.1:9000")
    try:
        alice = ("alice", "correct horse battery")
        from shortener.services.actors import OPERATOR

        app.extensions["shortener"].users.create(OPERATOR, username=alice[0], password=alice[1])
        client = app.test_client()
        response = client.post(
            LINKS, json={"target": "http://2130706433/"}, auth=alice, base_url="http://sho.rt"
        )
        assert_problem(response, 422, field="target")
    finally:
        app.extensions["shortener"].close()


def test_other_hosts_are_accepted(client, alice):
    for target in (
        "http://10.0.0.1/",
        "http://167772161/",  # another machine's address, as a number: not this one
        "https://example.com/",
        "https://localhost.example.com/",
        "http://999.1.1.1/",
    ):
        response = client.post(
            LINKS, json={"target": target}, auth=alice, base_url="http://127.0.0.1"
        )
        assert response.status_code == 201, response.get_data(as_text=True)


def test_a_non_loopback_server_accepts_loopback_targets(client, alice):
    """Served as sho.rt, http://localhost/ is the visitor's own machine, not a loop here."""
    response = client.post(
        LINKS, json={"target": "http://localhost:3000/"}, auth=alice, base_url="http://sho.rt"
    )
    assert response.status_code == 201


@pytest.mark.integration
def test_the_live_server_refuses_its_own_spellings(shared_live_server):
    server = shared_live_server
    user = server.create_user("self-targets")
    for spelling in LOOPBACK_SPELLINGS:
        response = requests.post(
            server.url + LINKS, json={"target": f"http://{spelling}:1/loop"}, auth=user, timeout=30
        )
        assert response.status_code == 422, (spelling, response.text)
        assert response.json()["errors"]["target"] == [MESSAGE]
