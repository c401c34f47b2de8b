"""GET /api/v1.0/: public, the entry point a client starts from."""

from __future__ import annotations

from urllib.parse import unquote

from flask import url_for
from flask_restful import Resource

from ..auth import current_credential
from ..declarations import OPTIONAL
from ..schemas.root import RootSchema
from .operations import operation


def _template(endpoint: str, variable: str) -> str:
    """An RFC 6570 level 1 template, e.g. ``https://sho.rt/api/v1.0/links/{slug}``."""
    return unquote(url_for(endpoint, **{variable: f"{{{variable}}}"}, _external=True))


class Root(Resource):
    @operation(
        "getRoot",
        "The entry point: links to everything else",
        scope=OPTIONAL,
        response=RootSchema,
        tags=("root",),
    )
    def get(self):
        body = {
            "uri": url_for("root", _external=True),
            "links": url_for("links", _external=True),
            "users": url_for("users", _external=True),
            "stats": url_for("stats", _external=True),
            "history": url_for("history", _external=True),
            "tokens": url_for("tokens", _external=True),
            "webhooks": url_for("webhooks", _external=True),
            "openapi": url_for("openapi", _external=True),
            "docs": url_for("docs.page", _external=True),
            "link": _template("link", "slug"),
            "user": _template("user", "username"),
        }
        credential = current_credential()
        if credential is not None:
            body["me"] = url_for("user", username=credential.user.username, _external=True)
        return body
