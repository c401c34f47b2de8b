"""A real browser for tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright.

Playwright cannot download its own browsers here, so it launches the system's. Without
Chromium or the playwright package the tests that ask for a browser skip, saying which is
missing and how to install it (``make test`` does, as root).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
# What this machine needs: no sandbox (root in a container), no GPU, and nothing that talks to
# the network on its own. Playwright adds --headless and a fresh, temporary user-data-dir of
# its own for every launch (it refuses a --user-data-dir here).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING_CHROMIUM = (
    f"Chromium is not installed at {CHROMIUM}: `make test` installs it as root, "
    "or run `apt-get install -y chromium chromium-driver`"
)
MISSING_PLAYWRIGHT = "the playwright package is not installed: pip install -e '.[dev]'"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (playwright.sync_api.Browser) for the session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(MISSING_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(MISSING_PLAYWRIGHT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(browser) -> Iterator[object]:
    """A page in a context of its own (no cookies, cache or storage from other tests)."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
