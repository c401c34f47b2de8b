"""GET (and HEAD) /robots.txt: crawlers may follow the crawlable links only.

The file disallows everything (``Disallow: /``: the API, the docs and every short link) and
allows each link whose ``crawlable`` is true, one ``Allow: /<slug>$`` a line, sorted by code
point. Crawlers that follow RFC 9309 take the most specific matching rule, so it wins over
``Disallow: /`` for that path. The ``$`` anchors the end: robots.txt rules are prefixes, and a
bare ``Allow: /abc`` would also allow the link ``abcd`` that its owner did not make
crawlable. (A crawler that does not know ``$`` matches nothing with it: it crawls too little,
never too much.) Slugs hold only letters, digits, ``-`` and ``_``: nothing to escape.

One query reads the crawlable slugs alone (a partial index holds exactly them), on every
request: a link made crawlable, or no longer, shows on the next request. Answers carry a
strong ``ETag`` of the content and ``Cache-Control: public, max-age=300``: a crawler or a
shared cache may keep the file five minutes and then revalidate with ``If-None-Match``
(``304``). ``HEAD`` answers the same headers without the body.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, Response, current_app, request

from .declarations import PUBLIC, described

blueprint = Blueprint("robots", __name__)

MAX_AGE = 300
_ROBOTS = dict(
    scope=PUBLIC,
    description="Disallows every path but the crawlable links (their `crawlable` field): "
    "`User-agent: *`, `Disallow: /`, then `Allow: /<slug>$` per crawlable link, sorted. "
    f"Cached for {MAX_AGE} seconds (`Cache-Control`), with a strong `ETag` (`If-None-Match` "
    "answers 304).",
    headers=("ETag", "Cache-Control"),
    other_statuses={304: "Not modified: the ETag sent in If-None-Match is current."},
    errors=(503,),
    content_type="text/plain",
    tags=("robots",),
)


@blueprint.get("/robots.txt")
@described("GET", "getRobots", "Which paths crawlers may follow", **_ROBOTS)
@described("HEAD", "checkRobots", "The robots.txt headers, without the body", **_ROBOTS)
def robots() -> Response:
    slugs = current_app.extensions["shortener"].links.crawlable_slugs()
    body = render(slugs).encode()
    response = Response(body, mimetype="text/plain")  # text/plain; charset=utf-8
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


def render(slugs: list[str]) -> str:
    lines = ["User-agent: *", "Disallow: /", *(f"Allow: /{slug}$" for slug in slugs)]
    return "\n".join(lines) + "\n"


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
