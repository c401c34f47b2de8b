"""GET and HEAD /<slug> answered in front of Flask: the redirect at the speed of its lookup.

A plain WSGI callable wraps the Flask app. For ``GET`` or ``HEAD`` of one path segment that
is a well-formed slug, not reserved, sent as it is (no percent-encoding, no body, no script
prefix), it looks the slug up (the worker's link cache, services/link_cache.py) and, when
the link is found, answers exactly what the Flask view ``redirects.follow`` answers (status,
``Location``, ``Cache-Control``, ``Content-Type``, ``Content-Length: 0``, in that order) and
records the visit as it does (``GET`` only, unless tracking.py says not to; stamped before
the lookup). Everything else goes to Flask unchanged: unknown slugs (404 problem or HTML page,
and the not-found rate limit), other methods (405), reserved paths, anything unusual. A
lookup that did not find the link, or failed, is handed to the view with the request, so a
request asks the database once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response
from werkzeug.urls import iri_to_uri

from .services.links import REDIRECT_STATUSES
from .services.slugs import SLUG_PATTERN
from .services.visits import RawVisit
from .storage.records import Redirect
from .tracking import policy

# The environ key under which the fast path hands its lookup to the Flask view.
RESOLVED = "shortener.resolved"
# The status lines Werkzeug writes ("302 FOUND"), so both paths send the same.
STATUS_LINES = {status: Response(status=status).status for status in REDIRECT_STATUSES}
CONTENT_TYPE = ("Content-Type", Response.default_mimetype + "; charset=utf-8")
CONTENT_LENGTH = ("Content-Length", "0")
# Targets whose Location header is already worked out (Werkzeug's iri_to_uri costs ~15 us).
LOCATIONS_KEPT = 100_000

_well_formed = SLUG_PATTERN.fullmatch


@functools.lru_cache(maxsize=LOCATIONS_KEPT)
def location(target: str) -> str:
    """The Location header Werkzeug sends for ``target``."""
    uri = iri_to_uri(target)
    return target if uri == target else uri


class FastRedirect:
    """WSGI middleware in front of the Flask app; ``application`` is the app's own WSGI."""

    def __init__(self, application: Callable, app: Flask) -> None:
        self.application = application
        self.services = app.extensions["shortener"]
        self.reserved = self.services.links.reserved_slugs
        settings = app.extensions["shortener.settings"]
        self.cache_control = ("Cache-Control", settings.redirect_cache_control)
        self.records = policy(app).records  # DNT, Sec-GPC and untracked networks (tracking.py)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        slug = path[1:]
        if (
            (method != "GET" and method != "HEAD")
            or path[:1] != "/"
            or _well_formed(slug) is None
            or slug.lower() in self.reserved
            or environ.get("SCRIPT_NAME")
            or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
            or _sent_path(environ) != path
        ):
            return self.application(environ, start_response)
        services = self.services
        visited_at = datetime.now(UTC)  # before the lookup, as the view does
        try:
            found = services.links.resolve(slug)
        except Exception as error:  # noqa: BLE001 - the view raises it, and answers as always
            environ[RESOLVED] = (slug, visited_at, error)
            return self.application(environ, start_response)
        if (
            found is None
            or found.limited  # a window or a cap: the view checks them
            # a password to ask for, or a query to forward (services/forwarding.py)
            or (found.options and (found.password_hash is not None or environ.get("QUERY_STRING")))
            or found.routing is not None  # rules or variants: the view decides per visitor
            or found.status not in STATUS_LINES
            or not found.target.isascii()
        ):
            environ[RESOLVED] = (slug, visited_at, found)
            return self.application(environ, start_response)
        if method == "GET" and self.records(environ):  # HEAD records nothing
            services.recorder.record(
                RawVisit(
                    link_id=found.link_id,
                    visited_at=visited_at,
                    referrer=environ.get("HTTP_REFERER"),
                    user_agent=environ.get("HTTP_USER_AGENT"),
                    remote_addr=environ.get("REMOTE_ADDR"),
                )
            )
        start_response(
            STATUS_LINES[found.status],
            [
                ("Location", location(found.target)),
                self.cache_control,
                CONTENT_TYPE,
                CONTENT_LENGTH,
            ],
        )
        return []


def _sent_path(environ: dict[str, Any]) -> str | None:
    """The path as the client sent it (gunicorn's RAW_URI, else REQUEST_URI), without the
    query: it differs from PATH_INFO when the client percent-encoded anything."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        return None
    return raw.partition("?")[0]


def resolved(environ: dict[str, Any], links, slug: str) -> tuple[datetime, Redirect | None]:
    """When the visit happened and where ``slug`` points: the fast path's lookup if it made
    one for this request (raised again if it failed), else a new one, stamped before it."""
    handed = environ.pop(RESOLVED, None)
    if handed is not None and handed[0] == slug:
        outcome = handed[2]
        if isinstance(outcome, Exception):
            raise outcome
        return handed[1], outcome
    visited_at = datetime.now(UTC)
    return visited_at, links.resolve(slug)


def install(app: Flask) -> None:
    """Puts the fast path in front of the app's WSGI (inside ProxyFix, installed after it)."""
    app.wsgi_app = FastRedirect(app.wsgi_app, app)
