"""Headers of every API response: never cached, never sniffed, and CORS when configured.

Everything under /api/, problems included, answers ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff``; redirects keep their own ``Cache-Control``, and so do the
static files of the Swagger UI page (docs.py) and QR codes (resources/qr.py).

CORS is off unless ``SHORTENER_CORS_ORIGINS`` lists origins (or is ``*``). For a listed
origin the API answers ``Access-Control-Allow-Origin: <that origin>``,
``Access-Control-Allow-Credentials: true`` and ``Vary: Origin``; with ``*`` it answers
``Access-Control-Allow-Origin: *`` and never allows credentials. Other origins get no CORS
headers. A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed
origin is answered here, before authentication and rate limits, with the route's methods.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound

from . import docs
from .problems import is_api_path
from .settings import Settings

ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key"
# What a script on another origin may read: the hypermedia and retry headers.
EXPOSED_HEADERS = ", ".join(
    (
        "Location",
        "Link",
        "Retry-After",
        "WWW-Authenticate",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "ETag",
        "Idempotency-Replayed",
    )
)
PREFLIGHT_MAX_AGE_SECONDS = 600
# API endpoints whose successful answers keep the Cache-Control they set.
OWN_CACHE_CONTROL = frozenset((docs.ASSET_ENDPOINT, "link_qr"))


class ApiHeaders:
    def __init__(self, settings: Settings) -> None:
        self.any_origin = settings.cors_origins == ("*",)
        self.origins = frozenset(() if self.any_origin else settings.cors_origins)
        self.cors = self.any_origin or bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self.any_origin or origin in self.origins)

    def before_request(self) -> Response | None:
        """Answers a CORS preflight from an allowed origin for a route that exists."""
        if (
            not self.cors
            or request.method != "OPTIONS"
            or "Access-Control-Request-Method" not in request.headers
            or not is_api_path(request.path)
            or request.url_rule is None
            or not self.allows(request.headers.get("Origin"))
        ):
            return None
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(
            sorted(request.url_rule.methods or ())
        )
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return response

    def after_request(self, response: Response) -> Response:
        if not is_api_path(request.path):
            return response
        headers = response.headers
        if request.endpoint not in OWN_CACHE_CONTROL or response.status_code >= 400:
            headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        if not self.cors:
            return response
        if self.any_origin:
            headers["Access-Control-Allow-Origin"] = "*"
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            return response
        response.vary.add("Origin")  # the answer differs by Origin, even when it is refused
        origin = request.headers.get("Origin")
        if self.allows(origin):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response


def refuse_encoded_slashes() -> None:
    """``/api%2fv1.0%2flinks`` is one path segment, not three: 404. Werkzeug decodes ``%2F``
    to ``/`` before routing, so the raw path (``RAW_URI``, set by gunicorn and Werkzeug) is
    checked; no route has a segment that may hold a slash (a slug never does). A ``%2F`` in
    the query string is fine."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and "%2" in raw:
        path = raw.partition("?")[0]
        if "%2f" in path.lower():
            raise NotFound()


def init_app(app: Flask, settings: Settings) -> None:
    """Registered before the rate limits: a preflight is answered without being counted, and
    this after_request runs last, so a 429 gets these headers too."""
    app.before_request(refuse_encoded_slashes)
    api_headers = ApiHeaders(settings)
    if api_headers.cors:  # otherwise there is no preflight to answer, and nothing to run
        app.before_request(api_headers.before_request)
    app.after_request(api_headers.after_request)
