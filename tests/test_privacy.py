"""Visitors who opt out (DNT, Sec-GPC) and untracked networks (SHORTENER_TRACKING_DISABLED_FOR)
are redirected, but no visit of theirs is recorded (issue 9, crawlers and privacy).

A skipped visit is proved skipped, not merely not yet written: the opted-out request comes
first, a counted one after it, and the test polls the API (with a deadline) until the counted
one shows. Visits are written in the order they were captured, so by then the first would show
too had it been recorded.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from conftest import PASSWORD, make_app
from werkzeug.test import Client, TestResponse

from shortener import create_app
from shortener.fast_redirect import FastRedirect
from shortener.services.actors import OPERATOR
from shortener.settings import ConfigurationError
from shortener.tracking import TrackingPolicy

LINKS = "/api/v1.0/links"
TARGET = "https://example.com/landing"
CREDENTIALS = ("carol", PASSWORD)
DEADLINE = 10.0


@pytest.fixture
def configured(database_url):
    """``configured(**config)`` -> an app with settings overridden, a user and a link "s"."""
    apps = []

    def build(**config):
        app = make_app(database_url, VISIT_FLUSH_INTERVAL=0.05, **config)
        apps.append(app)
        app.extensions["shortener"].users.create(
            OPERATOR, username="carol", password=PASSWORD, is_admin=False
        )
        body = {"target": TARGET, "slug": "s"}
        assert app.test_client().post(LINKS, json=body, auth=CREDENTIALS).status_code == 201
        return app

    yield build
    for app in apps:
        app.extensions["shortener"].close()


def view_client(app) -> Client:
    """A client of the Flask view behind the fast path (fast_redirect.py)."""
    wsgi = app.wsgi_app
    while not isinstance(wsgi, FastRedirect):
        wsgi = wsgi.application
    return Client(wsgi.application, TestResponse)


def visit(client, *, remote_addr: str = "198.51.100.7", **headers) -> None:
    response = client.get("/s", headers=headers, environ_base={"REMOTE_ADDR": remote_addr})
    assert response.status_code == 302
    assert response.headers["Location"] == TARGET


def visits_once_counted(app, expected: int) -> int:
    """visit_count once it reached ``expected`` (polled through the API), or when the deadline
    passed; then the visits themselves agree."""
    client = app.test_client()
    deadline = time.monotonic() + DEADLINE
    while True:
        count = client.get(f"{LINKS}/s", auth=CREDENTIALS).get_json()["visit_count"]
        if count >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    listed = client.get(f"{LINKS}/s/visits", auth=CREDENTIALS).get_json()
    assert len(listed["visits"]) == count
    return count


def paths(app) -> list[Client]:
    """The fast path in front (found links), and the Flask view behind it."""
    return [app.test_client(), view_client(app)]


# -- DNT and Sec-GPC --------------------------------------------------------------------------
OPTED_OUT = [{"DNT": "1"}, {"Sec-GPC": "1"}, {"DNT": "1", "Sec-GPC": "1"}, {"DNT": " 1 "}]


@pytest.mark.parametrize("headers", OPTED_OUT)
def test_opted_out_visitors_are_redirected_without_a_visit(configured, headers):
    app = configured()
    for client in paths(app):
        visit(client, **headers)
        visit(client)  # counted: proves the writer ran past the skipped one
    assert visits_once_counted(app, 2) == 2


@pytest.mark.parametrize("headers", [{"DNT": "0"}, {"Sec-GPC": "0"}, {"DNT": "null"}, {}])
def test_other_values_are_no_opt_out(configured, headers):
    app = configured()
    for client in paths(app):
        visit(client, **headers)
    assert visits_once_counted(app, 2) == 2


def test_honor_do_not_track_false_records_opted_out_visits(configured):
    app = configured(HONOR_DO_NOT_TRACK=False)
    for client in paths(app):
        visit(client, DNT="1")
        visit(client, **{"Sec-GPC": "1"})
    assert visits_once_counted(app, 4) == 4


def test_head_still_records_nothing(configured):
    app = configured()
    assert app.test_client().head("/s").status_code == 302
    visit(app.test_client())
    assert visits_once_counted(app, 1) == 1


# -- untracked networks -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "untracked, address",
    [
        ("203.0.113.0/24", "203.0.113.9"),
        ("203.0.113.9", "203.0.113.9"),  # a bare address: a network of one
        ("10.0.0.0/8, 2001:db8::/32", "2001:db8::1"),
        ("203.0.113.0/24", "::ffff:203.0.113.9"),  # an IPv4 client of a dual-stack socket
    ],
)
def test_addresses_in_untracked_networks_are_redirected_without_a_visit(
    configured, untracked, address
):
    app = configured(TRACKING_DISABLED_FOR=untracked)
    for client in paths(app):
        visit(client, remote_addr=address)
        visit(client, remote_addr="198.51.100.7")
    assert visits_once_counted(app, 2) == 2


def test_behind_a_trusted_proxy_the_forwarded_client_address_is_matched(configured):
    """The address the visits and the rate limits use: ProxyFix's, from X-Forwarded-For."""
    app = configured(TRUSTED_PROXIES=1, TRACKING_DISABLED_FOR="203.0.113.0/24,127.0.0.0/8")
    client = app.test_client()
    # The proxy's own address (127.0.0.1, untracked) does not decide: the client's does.
    visit(client, remote_addr="127.0.0.1", **{"X-Forwarded-For": "203.0.113.50"})
    visit(client, remote_addr="127.0.0.1", **{"X-Forwarded-For": "198.51.100.20"})
    assert visits_once_counted(app, 1) == 1
    # Only the last entry, the one the trusted proxy added, is believed: the client's own
    # entry before it (198.51.100.1, tracked) does not decide.
    visit(client, remote_addr="127.0.0.1", **{"X-Forwarded-For": "198.51.100.1, 203.0.113.3"})
    visit(client, remote_addr="127.0.0.1", **{"X-Forwarded-For": "198.51.100.21"})
    assert visits_once_counted(app, 2) == 2


def test_without_untracked_networks_every_address_is_recorded(configured):
    app = configured()
    for address in ("203.0.113.9", "127.0.0.1", "::1", "not-an-address"):
        visit(app.test_client(), remote_addr=address)
    assert visits_once_counted(app, 4) == 4


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["10.0.0.300/8", "10.0.0.1/8", "not-a-network", "10.0.0.0/33", "10.0.0.0/8;::1", 42, True],
)
def test_an_invalid_network_is_refused_at_start_up(value, tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "TRACKING_DISABLED_FOR": value})
    message = str(refused.value)
    assert "SHORTENER_TRACKING_DISABLED_FOR" in message and "CIDR" in message
    assert repr(value) in message


@pytest.mark.parametrize("value", ["maybe", "1", 1, "", None])
def test_an_invalid_do_not_track_policy_is_refused_at_start_up(value, tmp_path):
    with pytest.raises(ConfigurationError, match="SHORTENER_HONOR_DO_NOT_TRACK must be true or"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "HONOR_DO_NOT_TRACK": value})


def test_settings_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SHORTENER_TRACKING_DISABLED_FOR", "192.0.2.0/24 2001:db8::/32")
    monkeypatch.setenv("SHORTENER_HONOR_DO_NOT_TRACK", "false")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    settings = app.extensions["shortener.settings"]
    assert settings.tracking_disabled_for == (
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert settings.honor_do_not_track is False
    app.extensions["shortener"].close()
    monkeypatch.setenv("SHORTENER_TRACKING_DISABLED_FOR", "192.0.2.0/33")
    with pytest.raises(ConfigurationError, match="SHORTENER_TRACKING_DISABLED_FOR"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/y.db"})


def test_the_defaults_honor_opt_outs_and_track_every_address(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    settings = app.extensions["shortener.settings"]
    assert settings.tracking_disabled_for == ()
    assert settings.honor_do_not_track is True
    app.extensions["shortener"].close()


# -- the policy itself ------------------------------------------------------------------------
def test_the_policy_decides_from_headers_and_the_address():
    policy = TrackingPolicy(untracked=[ipaddress.ip_network("192.0.2.0/24")])
    assert policy.records({"REMOTE_ADDR": "198.51.100.1"})
    assert not policy.records({"REMOTE_ADDR": "192.0.2.1"})
    assert not policy.records({"REMOTE_ADDR": "198.51.100.1", "HTTP_DNT": "1"})
    assert not policy.records({"REMOTE_ADDR": "198.51.100.1", "HTTP_SEC_GPC": "1"})
    assert policy.records({"HTTP_DNT": "0"})  # no address: nothing to match
    ignoring = TrackingPolicy(honor_do_not_track=False)
    assert ignoring.records({"REMOTE_ADDR": "192.0.2.1", "HTTP_DNT": "1", "HTTP_SEC_GPC": "1"})


def test_the_policy_is_cheap_on_the_hot_path():
    """Defaults: two header lookups. Networks: one cached answer per address."""
    policy = TrackingPolicy(untracked=[ipaddress.ip_network(f"10.{n}.0.0/16") for n in range(50)])
    environ = {"REMOTE_ADDR": "198.51.100.1", "HTTP_USER_AGENT": "x"}
    policy.records(environ)
    started = time.perf_counter()
    for _ in range(100_000):
        policy.records(environ)
    per_call = (time.perf_counter() - started) / 100_000
    assert per_call < 5e-6, per_call  # ~0.3 us here; the redirect itself takes ~100 us
