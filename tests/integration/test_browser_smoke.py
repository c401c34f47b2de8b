"""A real browser reaches the live server: what tests of pages for people build on."""

from __future__ import annotations

import json

import pytest
import requests

pytestmark = pytest.mark.integration

TIMEOUT = 30


def test_a_browser_reads_the_api_root(live_server, browser_page):
    root = live_server.url + "/api/v1.0/"

    response = browser_page.goto(root)

    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    shown = json.loads(browser_page.locator("body").inner_text())
    assert shown == requests.get(root, timeout=TIMEOUT).json()
    assert shown["uri"] == root
