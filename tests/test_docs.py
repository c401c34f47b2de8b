"""The Swagger UI page: its HTML, its Content-Security-Policy and its files, through HTTP.

The page in a real browser is tested in tests/integration/test_docs_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import make_app
from support import assert_problem

API = "/api/v1.0"
DOCS = f"{API}/docs"
PAGE_URL = f"http://localhost{DOCS}"
EXPECTED_CSP = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


class PageParts(HTMLParser):
    """The page's scripts (with their inline text), stylesheets, icons and inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.references: list[str] = []
        self.inline_styles = 0
        self.openapi_url: str | None = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "style" in attributes or tag == "style":
            self.inline_styles += 1
        if any(name.startswith("on") for name in attributes):
            self.inline_styles += 1  # an event handler attribute is inline script
        if tag == "script":
            self.scripts.append({"src": attributes.get("src"), "text": ""})
            self._in_script = True
        if tag == "link":
            self.references.append(attributes["href"])
        if tag == "script" and attributes.get("src"):
            self.references.append(attributes["src"])
        if "data-openapi-url" in attributes:
            self.openapi_url = attributes["data-openapi-url"]

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1]["text"] += data


def get(client, path: str, **kwargs):
    """A GET whose body is read and whose file is closed (a file response holds one open)."""
    with client.get(path, **kwargs) as response:
        response.get_data()
    return response


def parse_page(client) -> PageParts:
    parts = PageParts()
    parts.feed(client.get(DOCS).get_data(as_text=True))
    return parts


def asset_paths(client) -> list[str]:
    """Every file the page refers to, as a path on this server."""
    return [
        urlsplit(urljoin(PAGE_URL, reference)).path for reference in parse_page(client).references
    ]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for directive in filter(None, (part.strip() for part in header.split(";"))):
        name, *values = directive.split()
        directives[name] = values
    return directives


# -- the page ---------------------------------------------------------------------------------


def test_page_is_html_without_credentials(client):
    response = client.get(DOCS)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.mimetype_params == {"charset": "utf-8"}
    assert '<div id="swagger-ui"' in response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_page_has_a_restrictive_content_security_policy(client):
    header = client.get(DOCS).headers["Content-Security-Policy"]
    assert csp_directives(header) == EXPECTED_CSP
    assert "unsafe" not in header


def test_page_has_no_inline_script_or_style(client):
    parts = parse_page(client)
    assert [script["src"] for script in parts.scripts] == [
        "docs/swagger-ui-bundle.js",
        "docs/docs-init.js",
    ]
    assert all(not script["text"].strip() for script in parts.scripts)
    assert parts.inline_styles == 0


def test_page_reads_the_openapi_document_of_the_api(client):
    openapi_url = parse_page(client).openapi_url
    assert urlsplit(urljoin(PAGE_URL, openapi_url)).path == f"{API}/openapi.json"


@pytest.mark.parametrize("path", [DOCS, f"{DOCS}/docs-init.js"])
def test_page_and_init_script_refer_to_no_other_host(client, path):
    """The page works offline: no http(s) URL, and no //host reference of any kind."""
    text = get(client, path).get_data(as_text=True)
    assert not re.search(r"https?:", text, re.IGNORECASE)
    assert "//" not in text


def test_init_script_configures_swagger_ui(client):
    text = get(client, f"{DOCS}/docs-init.js").get_data(as_text=True)
    assert "SwaggerUIBundle(" in text
    assert "persistAuthorization: false" in text
    assert "validatorUrl: null" in text  # no badge image from the public validator
    assert "dataset.openapiUrl" in text


def test_page_with_a_slash_redirects_to_the_page(client):
    response = client.get(f"{DOCS}/")
    assert response.status_code == 308
    assert response.headers["Location"] == PAGE_URL


def test_page_answers_only_get(client):
    response = client.post(DOCS)
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


# -- the files --------------------------------------------------------------------------------


def test_every_file_of_the_page_is_served_and_cacheable(client):
    paths = asset_paths(client)
    assert len(paths) == 6, paths  # two stylesheets, two icons, two scripts
    expected_types = {".css": "text/css", ".png": "image/png"}
    for path in paths:
        response = get(client, path)
        assert response.status_code == 200, path
        assert response.get_data(), path
        suffix = path[path.rindex(".") :]
        if suffix == ".js":
            assert response.mimetype in {"text/javascript", "application/javascript"}, path
        else:
            assert response.mimetype == expected_types[suffix], path
        assert response.headers["Cache-Control"] == "public, max-age=3600", path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        etag = response.headers["ETag"]
        revalidated = get(client, path, headers={"If-None-Match": etag})
        assert revalidated.status_code == 304, path
        assert revalidated.headers["Cache-Control"] == "public, max-age=3600"


def test_bundled_swagger_ui_is_current(client):
    """Swagger UI 5 reads OpenAPI 3.1; flask-swagger-ui ships its VERSION file."""
    version = get(client, f"{DOCS}/VERSION").get_data(as_text=True).strip()
    assert re.fullmatch(r"v(\d+)\.\d+\.\d+", version), version
    assert int(version[1:].split(".")[0]) >= 5


@pytest.mark.parametrize(
    "path",
    [
        f"{DOCS}/missing.js",
        f"{DOCS}/index.html",  # the page is only at its own address
        f"{DOCS}/../resources/__init__.py",
        f"{DOCS}/%2e%2e/__init__.py",
        f"{DOCS}/..%2f__init__.py",
    ],
)
def test_missing_file_is_a_problem(client, path):
    response = client.get(path)
    assert_problem(response, 404)
    assert response.headers["Cache-Control"] == "no-store"


def test_file_answers_only_get(client):
    response = client.delete(f"{DOCS}/docs-init.js")
    assert_problem(response, 405)


# -- rate limits ------------------------------------------------------------------------------


@pytest.fixture
def limited_app(database_url):
    app = make_app(database_url, API_RATE_LIMIT="2/minute", RATELIMIT_STORAGE_URI="memory://")
    yield app
    app.extensions["shortener"].close()


def test_page_and_files_are_not_counted_against_the_api_limit(limited_app):
    client = limited_app.test_client()
    paths = [DOCS, *asset_paths(client)]
    for _ in range(3):
        for path in paths:
            response = get(client, path)
            assert response.status_code == 200, path
            assert "RateLimit-Limit" not in response.headers
    counted = client.get(f"{API}/links")  # the first counted request of this address
    assert counted.headers["RateLimit-Remaining"] == "1"
