"""GET and HEAD /<slug>: the hot path, a plain Flask view rather than a Resource.

Found links are answered before Flask, by fast_redirect.py, with the same answer; this view
serves what the fast path hands on (unknown slugs, unusual requests) and documents the
operation.

One indexed read finds the target; the visit is handed to the in-memory VisitRecorder, so no
database write, lock or failure can slow or fail a redirect.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, current_app, redirect, request, url_for
from werkzeug.routing import BaseConverter

from .declarations import PUBLIC, described
from .fast_redirect import resolved
from .link_passwords import NO_STORE, admitted, refuse_cross_site
from .services.errors import NotFound
from .services.lifetime import LIMITED_CACHE_CONTROL
from .services.rules import VARIANT_COOKIE, VARIANT_COOKIE_MAX_AGE, Decision, Visitor
from .services.visits import RawVisit
from .tracking import policy

blueprint = Blueprint("redirects", __name__)


def init_app(app: Flask) -> None:
    """Registered after every other route: the slug route must know the paths it leaves alone."""
    app.url_map.converters["slug"] = _slug_converter(_single_segment_paths(app))
    app.register_blueprint(blueprint)


def _single_segment_paths(app: Flask) -> list[str]:
    """Paths such as ``health`` or ``robots.txt`` that a route of their own serves."""
    return sorted(
        rule.rule[1:]
        for rule in app.url_map.iter_rules()
        if rule.rule.count("/") == 1 and len(rule.rule) > 1 and "<" not in rule.rule
    )


def _slug_converter(taken: list[str]) -> type[BaseConverter]:
    """Any path segment but the paths other routes serve. Werkzeug answers OPTIONS and 405
    with the methods of every rule that matches a path: with a plain ``<slug>``, ``/health``
    also matched the slug route, and ``OPTIONS /health`` offered the password form's POST."""
    pattern = "[^/]+" if not taken else f"(?!(?:{'|'.join(map(re.escape, taken))})$)[^/]+"

    class SlugConverter(BaseConverter):
        regex = pattern

    return SlugConverter


REDIRECT_STATUSES = {
    301: "Moved permanently: the link's redirect_status.",
    303: "See other: the link's redirect_status.",
    307: "Temporary redirect: the link's redirect_status.",
    308: "Permanent redirect: the link's redirect_status.",
}
_FOLLOW = dict(
    scope=PUBLIC,
    status=302,
    response_description="Found: the link's redirect_status (302 unless it says otherwise).",
    other_statuses=REDIRECT_STATUSES,
    headers=("Location", "Cache-Control"),
    errors=(401, 404, 410, 429, 503),
    content_type="",
    tags=("redirect",),
)


@blueprint.get("/")
@described("GET", "getHome", "The bare host: redirects to the API root", scope=PUBLIC,
           status=302, headers=("Location",), content_type="", tags=("redirect",))  # fmt: skip
def home() -> Response:
    """The bare host points programs at the API root, by its absolute URI like every other."""
    return redirect(url_for("root", _external=True), code=302)


@blueprint.get("/<slug:slug>")
@described("GET", "followLink", "Follow a short link (records a visit)", **_FOLLOW)
@described("HEAD", "checkLink", "Where a short link points, without a visit", **_FOLLOW)
def follow(slug: str) -> Response:
    services = current_app.extensions["shortener"]
    # Stamped before the lookup: a visit is never older than the link it resolved to. The
    # same lookup as the fast path's (fast_redirect.py), or the one it made for this request.
    visited_at, found = resolved(request.environ, services.links, slug)
    if found is None:
        raise NotFound(f"There is no short link '{slug}'.")
    cache_control = current_app.extensions["shortener.settings"].redirect_cache_control
    if found.password_hash is not None:  # its password first (link_passwords.py)
        form = request.form.get("password") if request.method == "POST" else None
        refused = admitted(services.links, found, slug, form)
        if refused is not None:
            return refused
        cache_control = NO_STORE
    if found.limited:  # a window or a cap: its target, its expired_target, 404 or 410
        let_in = services.links.admit(found, slug, counts=request.method != "HEAD")
        routed = let_in is found  # an expired link's expired_target is not routed
        found = let_in
        cache_control = LIMITED_CACHE_CONTROL
    else:
        routed = True
    decision = None
    if routed and found.routing is not None:  # rules, then variants (services/rules.py)
        decision = _decide(services.links, found)
        cache_control = LIMITED_CACHE_CONTROL  # the answer depends on the visitor
    # HEAD records nothing; nor does a visitor who opted out or an untracked address.
    if request.method != "HEAD" and policy(current_app).records(request.environ):
        headers = request.headers
        services.recorder.record(
            RawVisit(
                link_id=found.link_id,
                visited_at=visited_at,
                referrer=headers.get("Referer"),
                user_agent=headers.get("User-Agent"),
                remote_addr=request.remote_addr,
                # The target chosen (a rule's, a variant's, expired_target or the link's with
                # its UTM fields), before any forwarded query.
                target_used=found.target if decision is None else decision.target,
                rule=None if decision is None else decision.rule,
                variant=None if decision is None else decision.variant,
            )
        )
    response = Response(
        status=303 if request.method == "POST" else found.status,  # after the password form
        headers={
            "Location": services.links.destination(
                found, found.target if decision is None else decision.target, request.query_string
            ),
            "Cache-Control": cache_control,
        },
    )
    if decision is not None and decision.set_cookie is not None:
        # The visitor keeps this variant: scoped to this short link's path.
        response.set_cookie(
            VARIANT_COOKIE,
            decision.set_cookie,
            max_age=VARIANT_COOKIE_MAX_AGE,
            path=request.script_root + "/" + slug,
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
    return response


@blueprint.post("/<slug:slug>")
@described("POST", "unlockLink", "Follow a password-protected link with its form's password",
           description="The password form's answer: the form field password "
           "(application/x-www-form-urlencoded), else HTTP Basic credentials. The right "
           "password (or none needed) answers 303 to the target and records a visit; a wrong "
           "one the form again (401). Refused (403) when the browser says the form was sent "
           "from another site.",
           scope=PUBLIC, status=303, response_description="See other: the link's target.",
           headers=("Location", "Cache-Control"), errors=(401, 403, 404, 410, 429, 503),
           content_type="", tags=("redirect",))  # fmt: skip
def unlock(slug: str) -> Response:
    """POST /<slug>: the password form (link_passwords.py), then the redirect as GET's."""
    refuse_cross_site()
    return follow(slug)


def _decide(links, found) -> Decision:
    headers = request.headers
    visitor = Visitor(
        user_agent=headers.get("User-Agent"),
        accept_language=headers.get("Accept-Language"),
        query_string=request.query_string.decode("latin-1"),
        remote_addr=request.remote_addr,
        now=links.clock(),
        country_of=links.country_of,
    )
    return links.route(found, visitor, request.cookies.get(VARIANT_COOKIE))
