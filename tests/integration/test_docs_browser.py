"""The Swagger UI page in a real browser (Chromium, tests/browser.py) against a live server.

A person opens /api/v1.0/docs: Swagger UI renders every operation of /api/v1.0/openapi.json,
with no console error, no Content-Security-Policy violation and no request to another host;
"Try it out" works on the public root, and after "Authorize" (Basic or Bearer) on the links.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.integration

API = "/api/v1.0"
DOCS = f"{API}/docs"
TIMEOUT = 30
RENDER_MS = 20_000
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Kept by the browser's own code from before the page runs, so nothing of the page can miss it.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI} at ${where}`);
});
"""


@dataclass
class Observed:
    """What the page did that a person would not see at once."""

    console_errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def document(live_server) -> dict:
    response = requests.get(f"{live_server.url}{API}/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def new_user(server, prefix: str) -> tuple[str, str]:
    """A user of this test alone, made by the server's admin; its Basic credentials."""
    credentials = (f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(18))
    response = requests.post(
        f"{server.url}{API}/users",
        json={"username": credentials[0], "password": credentials[1]},
        auth=server.admin,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return credentials


def open_docs(page, server) -> Observed:
    """Opens the page, recording console errors and requests, and waits for Swagger UI."""
    observed = Observed()
    page.on(
        "console",
        lambda message: message.type == "error" and observed.console_errors.append(message.text),
    )
    page.on("pageerror", lambda error: observed.console_errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: observed.requested.append(request.url))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    response = page.goto(server.url + DOCS)
    assert response.status == 200
    page.locator(".opblock").first.wait_for(timeout=RENDER_MS)
    return observed


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def document_path(document: dict, api_path: str) -> str:
    """The key under ``paths`` of the API path, whether the server URL holds /api/v1.0 or not."""
    servers = document.get("servers") or [{"url": "/"}]
    base = urlsplit(servers[0]["url"]).path.rstrip("/")
    for path in document["paths"]:
        if base + path == api_path:
            return path
    raise AssertionError(f"{api_path} is not in the document (server {base!r})")


def operation_block(page, method: str, path: str):
    return page.locator(
        f".opblock:has(.opblock-summary-path[data-path='{path}'])"
        f":has(.opblock-summary-method:text-is('{method}'))"
    )


def try_it_out(page, document: dict, method: str, api_path: str) -> str:
    """Expands the operation, clicks "Try it out" then "Execute"; the status code shown."""
    block = operation_block(page, method, document_path(document, api_path))
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=RENDER_MS)
    return status.inner_text().strip()


def authorize(page, scheme: str, **values: str) -> None:
    """Fills one scheme of the "Authorize" dialog, applies it and closes the dialog."""
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".dialog-ux")
    container = dialog.locator(".auth-container", has=page.locator(f"code:text-is('{scheme}')"))
    for name, value in values.items():
        container.locator(f"input[name='{name}'], #auth-bearer-{name}").fill(value)
    container.get_by_role("button", name="Apply credentials").click()
    container.locator("button", has_text="Logout").wait_for(timeout=RENDER_MS)
    dialog.locator(".close-modal").click()


def assert_quiet(page, observed: Observed, server) -> None:
    assert page.evaluate("window.cspViolations") == []
    assert observed.console_errors == []
    other_hosts = [url for url in observed.requested if not url.startswith(server.url + "/")]
    assert other_hosts == []


def test_the_page_lists_every_operation(live_server, document, browser_page, tmp_path):
    page = browser_page
    observed = open_docs(page, live_server)
    expected = operations(document)
    summaries = page.locator(".opblock-summary")
    summaries.nth(len(expected) - 1).wait_for(timeout=RENDER_MS)
    shown = set()
    for summary in summaries.all():
        method = summary.locator(".opblock-summary-method").inner_text().strip()
        path = summary.locator(".opblock-summary-path").get_attribute("data-path")
        shown.add((method, path))
    assert shown == expected
    assert page.locator(".errors-wrapper").count() == 0  # Swagger UI read the document cleanly
    screenshot = Path(tmp_path) / "docs.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    assert_quiet(page, observed, live_server)


def test_try_it_out_on_the_root(live_server, document, browser_page):
    observed = open_docs(browser_page, live_server)
    assert try_it_out(browser_page, document, "GET", f"{API}/") == "200"
    assert_quiet(browser_page, observed, live_server)


def test_authorize_with_basic_then_list_links(live_server, document, browser_page):
    username, password = new_user(live_server, "docs-basic")
    observed = open_docs(browser_page, live_server)
    authorize(browser_page, "basicAuth", username=username, password=password)
    assert try_it_out(browser_page, document, "GET", f"{API}/links") == "200"
    assert_quiet(browser_page, observed, live_server)


def test_authorize_with_bearer_then_list_links(live_server, document, browser_page):
    owner = new_user(live_server, "docs-bearer")
    created = requests.post(
        f"{live_server.url}{API}/tokens",
        json={"name": "swagger ui", "scopes": ["links:read"]},
        auth=owner,
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    observed = open_docs(browser_page, live_server)
    authorize(browser_page, "bearerAuth", value=created.json()["token"])
    assert try_it_out(browser_page, document, "GET", f"{API}/links") == "200"
    assert_quiet(browser_page, observed, live_server)


def cancel_browser_logins(page) -> None:
    """Answers the browser's own login prompt with "Cancel", as a person would.

    A 401 carries ``WWW-Authenticate: Basic``, so Chromium asks for a password itself and the
    request waits for the answer; headless, nobody would give one.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.on(
        "Fetch.requestPaused",
        lambda event: cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]}),
    )
    cdp.on(
        "Fetch.authRequired",
        lambda event: cdp.send(
            "Fetch.continueWithAuth",
            {"requestId": event["requestId"], "authChallengeResponse": {"response": "CancelAuth"}},
        ),
    )
    cdp.send("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})


def test_without_authorize_the_links_answer_401(live_server, document, browser_page):
    """The checks above are real: the same clicks without "Authorize" are refused."""
    cancel_browser_logins(browser_page)
    open_docs(browser_page, live_server)
    assert try_it_out(browser_page, document, "GET", f"{API}/links") == "401"
