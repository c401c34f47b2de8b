"""GET and HEAD /<slug>: the hot path, a plain Flask view rather than a Resource."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, redirect, request, url_for

from .services.errors import NotFound

blueprint = Blueprint("redirects", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/")
def home() -> Response:
    """The bare host points programs at the API root."""
    return redirect(url_for("root"), code=302)


@blueprint.get("/<slug>")
def follow(slug: str) -> Response:
    links = current_app.extensions["shortener"].links
    found = links.peek(slug) if request.method == "HEAD" else links.follow(slug)
    if found is None:
        raise NotFound(f"There is no short link '{slug}'.")
    return Response(
        status=found.status,
        headers={
            "Location": found.target,
            "Cache-Control": current_app.extensions["shortener.settings"].redirect_cache_control,
        },
    )
