"""The Swagger UI page for people: ``GET /api/v1.0/docs``, offline, under a strict CSP.

Swagger UI's files come from the flask-swagger-ui package's ``dist/`` folder (a current Swagger
UI, on this machine, so the page needs no CDN). Its blueprint is not used: it renders an inline
script, which the page's Content-Security-Policy forbids. Our page and the small script that
starts Swagger UI on ``/api/v1.0/openapi.json`` live in ``shortener/static/docs/``.

The page and its files are under /api/, so the problem+json errors and the API headers apply;
the files are cacheable (http_headers.py) and none of it counts against the API rate limit
(limits.py): a page of static files must not be refused to a reader.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, Response, redirect, send_from_directory, url_for

from .declarations import PUBLIC, described
from .resources import API_PREFIX

BLUEPRINT_NAME = "docs"
PAGE_ENDPOINT = f"{BLUEPRINT_NAME}.page"
ASSET_ENDPOINT = f"{BLUEPRINT_NAME}.asset"

OWN_FILES = Path(__file__).resolve().parent / "static" / "docs"
SWAGGER_UI_FILES = Path(str(files("flask_swagger_ui") / "dist"))
PAGE = (OWN_FILES / "index.html").read_bytes()  # under 1 KB, and never cached (no-store)
OWN_ASSETS = frozenset({"docs-init.js"})
# Revalidated (ETag, Last-Modified) after an hour: an upgrade shows within the hour.
ASSET_MAX_AGE_SECONDS = 3600

# Scripts and styles from this server only, no inline script; data: images are the icons in
# swagger-ui.css; "Try it out" and the document are fetched from this server only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

blueprint = Blueprint(BLUEPRINT_NAME, __name__, url_prefix=f"{API_PREFIX}/docs")


@blueprint.get("")
@described("GET", "getDocs", "This documentation, for people (Swagger UI)", scope=PUBLIC,
           content_type="text/html", tags=("root",))  # fmt: skip
def page() -> Response:
    """The HTML page; its references are relative to it, so it also works under a prefix."""
    response = Response(PAGE, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@blueprint.get("/")
@described("GET", "getDocsWithSlash", "Redirects to the documentation page", scope=PUBLIC,
           status=308, headers=("Location",), content_type="", tags=("root",))  # fmt: skip
def page_with_slash() -> Response:
    """The page's relative references need its address without the slash."""
    return redirect(url_for(PAGE_ENDPOINT, _external=True), code=308)


@blueprint.get("/<path:filename>")
@described("GET", "getDocsFile", "A file of the documentation page", scope=PUBLIC,
           errors=(404,), content_type="application/octet-stream", tags=("root",))  # fmt: skip
def asset(filename: str) -> Response:
    """One of our files or Swagger UI's; a missing one is a problem+json 404."""
    folder = OWN_FILES if filename in OWN_ASSETS else SWAGGER_UI_FILES
    return send_from_directory(folder, filename, max_age=ASSET_MAX_AGE_SECONDS)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
