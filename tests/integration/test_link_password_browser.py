"""A password-protected link in a real browser (Chromium): the form page loads under its
Content-Security-Policy without a violation, a wrong password shows it again, the right one
follows the 303 to the target with the forwarded query (the target's host is a local proxy of
the browser's, nothing leaves the machine), and the visit is counted only then."""

from __future__ import annotations

import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

pytestmark = pytest.mark.integration

TIMEOUT = 30
SECRET = "correct horse battery"
TARGET = "http://example.com/plans?lang=en"


class _TargetHost(BaseHTTPRequestHandler):
    """Stands in for the target's host: the browser's proxy, so nothing leaves the machine."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        type(self).seen.append(self.path)  # a proxy is sent the absolute URI
        body = b"landed"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def target_host():
    _TargetHost.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TargetHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_the_form_in_a_browser(live_server, browser, target_host):
    slug = f"vault-{secrets.token_hex(4)}"
    links = f"{live_server.url}/api/v1.0/links"
    body = {"target": TARGET, "slug": slug, "password": SECRET, "forward_query": True}
    created = requests.post(links, json=body, auth=live_server.admin, timeout=TIMEOUT)
    assert created.status_code == 201, created.text

    proxy = f"http://127.0.0.1:{target_host.server_address[1]}"
    context = browser.new_context(proxy={"server": proxy, "bypass": "127.0.0.1,localhost"})
    try:
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(message.text))

        shown = page.goto(f"{live_server.url}/{slug}?lang=de&ref=mail")
        assert shown.status == 200
        assert page.locator("h1").inner_text() == "Password required"

        page.fill("input[name=password]", "not the password")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "Wrong password" in page.content()
        assert _TargetHost.seen == []

        page.fill("input[name=password]", SECRET)
        with page.expect_navigation():
            page.click("button[type=submit]")
        pages = [url for url in _TargetHost.seen if not url.endswith("/favicon.ico")]
        assert pages == [f"{TARGET}&ref=mail"]
        assert page.url == f"{TARGET}&ref=mail"
        assert page.locator("body").inner_text() == "landed"
        assert not [text for text in console if "Content Security Policy" in text], console
    finally:
        context.close()

    deadline = time.monotonic() + 10  # the visit writer writes within a second or so
    while True:
        link = requests.get(f"{links}/{slug}", auth=live_server.admin, timeout=TIMEOUT).json()
        if link["visit_count"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert link["visit_count"] == 1
