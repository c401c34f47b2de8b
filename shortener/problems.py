"""The one error renderer: RFC 9457 problem+json for every error, from any route.

Flask's error handlers and Flask-RESTful's ``handle_error`` both end here. Outside ``/api/``
a browser that prefers HTML gets a short page instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from http import HTTPStatus

from flask import Blueprint, Flask, Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException

from .declarations import PUBLIC, described
from .services.errors import PROBLEM_TYPES, NotFound, ShortenerError, Unavailable
from .storage import DatabaseUnavailable

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

# Details for Werkzeug's exceptions that read well to an API client.
_HTTP_DETAILS = {
    400: "The request could not be understood.",
    401: "Send valid credentials with HTTP Basic authentication.",
    404: "Nothing is here; start from the API root and follow its links.",
    405: "This resource does not support that method; see the Allow header.",
    413: "The request body is larger than this server accepts.",
    415: "Send the body as application/json.",
    429: "Too many requests; try again after the number of seconds in Retry-After.",
}
# Headers of an HTTPException worth keeping on the problem response.
_KEPT_HEADERS = (
    "Allow",
    "WWW-Authenticate",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)

blueprint = Blueprint("problems", __name__)


@blueprint.get("/problems/<name>")
@described("GET", "getProblemType", "What a problem type means", scope=PUBLIC, errors=(404,),
           tags=("root",))  # fmt: skip
def describe(name: str) -> Response:
    """Problem types dereference to their description."""
    problem = PROBLEM_TYPES.get(name)
    if problem is None:
        return render_error(NotFound(f"There is no problem type '{name}'."))
    body = {"type": request.base_url, "title": problem.title, "status": problem.status}
    return Response(json.dumps(body) + "\n", mimetype="application/json")


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, render_error)


def render_error(error: Exception) -> Response:
    if isinstance(error, DatabaseUnavailable):
        current_app.logger.warning("database unavailable: %s", error)
        error = Unavailable(
            "The database is unavailable; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, ShortenerError):
        return problem_response(
            error.status,
            title=error.title,
            detail=error.detail,
            problem=error.problem,
            errors=error.errors,
            headers=error.headers,
            extensions=error.extensions,
        )
    if isinstance(error, HTTPException) and error.code is not None:
        headers = {name: value for name, value in error.get_headers() if name in _KEPT_HEADERS}
        detail = _HTTP_DETAILS.get(error.code) or error.description
        return problem_response(error.code, detail=detail, headers=headers)
    current_app.logger.error(
        "unhandled error on %s %s", request.method, request.path, exc_info=error
    )
    return problem_response(500, detail="The server failed; the error has been logged.")


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    problem: str = "about:blank",
    errors: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> Response:
    body = _problem(status, title, detail, problem, errors, extensions)
    if _wants_html():
        return _html_response(status, str(body["title"]), detail, headers)
    response = Response(json.dumps(body) + "\n", status=status, mimetype=PROBLEM_JSON)
    if headers:
        response.headers.update(headers)
    return response


def problem_of(error: ShortenerError) -> dict[str, object]:
    """The problem+json object of ``error``, as a member of another answer (a batch item's)."""
    return _problem(
        error.status, error.title, error.detail, error.problem, error.errors, error.extensions
    )


def _problem(
    status: int,
    title: str | None,
    detail: str | None,
    problem: str,
    errors: Mapping[str, object] | None,
    extensions: Mapping[str, object] | None,
) -> dict[str, object]:
    title = title or HTTPStatus(status).phrase
    if problem == "about:blank":
        type_uri = "about:blank"
        title = HTTPStatus(status).phrase  # RFC 9457: with about:blank, the status phrase
    else:
        type_uri = url_for("problems.describe", name=problem, _external=True)
    body: dict[str, object] = {"type": type_uri, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if extensions:
        body.update(extensions)
    return body


def is_api_path(path: str) -> bool:
    """Under /api/: JSON only, never cached, rate limited (see limits.py and http_headers.py)."""
    return path.startswith("/api/") or path == "/api"


def _wants_html() -> bool:
    if is_api_path(request.path):
        return False
    accept = request.accept_mimetypes
    return (
        accept.quality("text/html")
        > max(accept.quality("application/json"), accept.quality(PROBLEM_JSON))
        and "text/html" in accept.values()
    )


def _html_response(
    status: int, title: str, detail: str | None, headers: Mapping[str, str] | None
) -> Response:
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{status} {escape(title)}</title></head>\n"
        f"<body><h1>{escape(title)}</h1><p>{escape(detail or '')}</p></body></html>\n"
    )
    response = Response(page, status=status, mimetype="text/html")
    if headers:
        response.headers.update(headers)
    return response
